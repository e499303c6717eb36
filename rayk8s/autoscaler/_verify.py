"""An independent check of a scheduling decision: ``verify(request, result) -> [violations]``.

It re-derives everything from the request and the result alone, with plain resource
arithmetic, and shares no code with the scheduler's packing. The tests, the benchmark
and anyone debugging a decision use it to confirm that capacities, strategies, limits
and counts all add up.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from rayk8s.autoscaler._model import NodeStatus, PlacementStrategy, SchedulingRequest
from rayk8s.autoscaler._resources import Resources
from rayk8s.autoscaler._result import (
    BundlePlacement,
    DemandKind,
    LaunchReason,
    SchedulingResult,
    ShapeCount,
    UnfulfilledReason,
)

__all__ = ["verify"]

_ACCELERATORS = frozenset({"GPU", "TPU", "NPU", "HPU", "neuron_cores"})


def _total(items: Iterable[ShapeCount], bundles: Iterable[BundlePlacement] = ()) -> Resources:
    total = Resources()
    for item in items:
        total = total + item.shape * item.count
    for bundle in bundles:
        total = total + bundle.shape
    return total


def verify(request: SchedulingRequest, result: SchedulingResult) -> list[str]:
    """Every way ``result`` breaks the rules for ``request``; an empty list if none."""
    problems: list[str] = []
    types = request.node_types
    nodes = {node.id: node for node in request.nodes}

    # Capacity of every existing node.
    for node_id, given in result.existing.items():
        node = nodes.get(node_id)
        if node is None:
            problems.append(f"existing[{node_id}]: no such node in the request")
            continue
        known = types[node.node_type].resources if node.node_type in types else None
        total = node.total or known or node.available or Resources()
        free = total if node.status is NodeStatus.PENDING or node.available is None else node.available
        used = _total(given.assigned, given.bundles)
        if not used.fits_in(free):
            problems.append(f"existing[{node_id}]: given {used} but has {free} free")
        if not _total(given.resource_requests).fits_in(total):
            problems.append(f"existing[{node_id}]: counted on for requests beyond its total {total}")

    # Capacity of every new node, and what launches.
    launch: Counter[str] = Counter()
    cost = 0.0
    for group in result.new_nodes:
        node_type = types.get(group.node_type)
        if node_type is None:
            problems.append(f"{group.id}: unknown node type {group.node_type!r}")
            continue
        if group.node_type in request.unavailable_node_types:
            problems.append(f"{group.id}: launches unavailable node type {group.node_type!r}")
        if group.count < 1:
            problems.append(f"{group.id}: count {group.count}")
        if group.bundles and group.count != 1:
            problems.append(f"{group.id}: holds bundles but has count {group.count}")
        used = _total(group.assigned, group.bundles)
        if not used.fits_in(node_type.resources):
            problems.append(f"{group.id}: each node given {used}, type {group.node_type} has {node_type.resources}")
        if not _total(group.resource_requests).fits_in(node_type.resources):
            problems.append(f"{group.id}: counted on for requests beyond {node_type.resources}")
        if group.reason is LaunchReason.DEMAND and not (group.assigned or group.bundles or group.resource_requests):
            problems.append(f"{group.id}: {group.count} node(s) launched for demand hold nothing")
        launch[group.node_type] += group.count
        cost += node_type.cost * group.count
    if dict(launch) != {t: n for t, n in result.launch.items() if n}:
        problems.append(f"launch {dict(result.launch)} does not match new_nodes {dict(launch)}")
    if abs(cost - result.cost) > 1e-6 * max(1.0, cost):
        problems.append(f"cost {result.cost} but new nodes cost {cost}")

    # Limits.
    workers: Counter[str] = Counter(node.node_type for node in request.nodes if not node.is_head)
    for name, count in launch.items():
        limit = types[name].max_workers if name in types else None
        if limit is not None and count and workers[name] + count > limit:
            problems.append(f"type {name}: {workers[name]} existing + {count} new exceeds max_workers {limit}")
    existing_workers = sum(workers.values())
    launched = sum(launch.values())
    if request.max_workers is not None and launched and existing_workers + launched > request.max_workers:
        problems.append(
            f"{existing_workers} existing + {launched} new exceeds cluster max_workers {request.max_workers}"
        )
    for name, node_type in types.items():
        have = workers[name] + launch[name]
        cluster_room = request.max_workers is None or existing_workers + launched < request.max_workers
        if have < node_type.min_workers and cluster_room and name not in request.unavailable_node_types:
            problems.append(f"type {name}: {have} nodes, below min_workers {node_type.min_workers}")

    for item in result.unfulfilled:
        if item.reason is UnfulfilledReason.INFEASIBLE and item.shape is not None:
            holders = [name for name, t in types.items() if item.shape.fits_in(t.resources)]
            if holders:
                problems.append(f"unfulfilled {item.shape} is called infeasible, yet {holders[0]} holds it")
    problems += _check_counts(request, result)
    problems += _check_placement_groups(request, result)
    return problems


def _check_counts(request: SchedulingRequest, result: SchedulingResult) -> list[str]:
    problems = []
    for kind, wanted_items, field in (
        (DemandKind.DEMAND, request.demands, "assigned"),
        (DemandKind.RESOURCE_REQUEST, request.resource_requests, "resource_requests"),
    ):
        wanted: Counter[Resources] = Counter()
        for item in wanted_items:
            wanted[item.shape] += item.count
        got: Counter[Resources] = Counter()
        for given in result.existing.values():
            for placed in getattr(given, field):
                got[placed.shape] += placed.count
        for group in result.new_nodes:
            for placed in getattr(group, field):
                got[placed.shape] += placed.count * group.count
        for missing in result.unfulfilled:
            if missing.kind is kind and missing.shape is not None:
                got[missing.shape] += missing.count
        for shape in wanted.keys() | got.keys():
            if wanted[shape] != got[shape]:
                problems.append(f"{kind.value} {shape}: {wanted[shape]} wanted, {got[shape]} placed or reported")
    return problems


def _check_placement_groups(request: SchedulingRequest, result: SchedulingResult) -> list[str]:
    problems = []
    where: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
    shapes: dict[tuple[str, int, int], Resources] = {}
    holders = [(node_id, given.bundles) for node_id, given in result.existing.items()]
    holders += [(group.id, group.bundles) for group in result.new_nodes]
    for node_id, bundles in holders:
        for bundle in bundles:
            slot = where[(bundle.pg, bundle.instance)]
            if bundle.bundle in slot:
                problems.append(f"{bundle.pg}[{bundle.instance}] bundle {bundle.bundle} placed twice")
            slot[bundle.bundle] = node_id
            shapes[(bundle.pg, bundle.instance, bundle.bundle)] = bundle.shape
    unplaced = Counter({item.pg: item.count for item in result.unfulfilled if item.kind is DemandKind.PLACEMENT_GROUP})
    for index, group in enumerate(request.placement_groups):
        name = group.name or f"pg{index}"
        placed = 0
        for instance in range(group.count):
            slot = where.pop((name, instance), {})
            if not slot:
                continue
            placed += 1
            if sorted(slot) != list(range(len(group.bundles))):
                problems.append(f"{name}[{instance}]: bundles {sorted(slot)} placed, not all {len(group.bundles)}")
                continue
            for b, wanted in enumerate(group.bundles):
                if shapes[(name, instance, b)] != wanted:
                    problems.append(f"{name}[{instance}] bundle {b}: shape {shapes[(name, instance, b)]} != {wanted}")
            distinct = len(set(slot.values()))
            if group.strategy is PlacementStrategy.STRICT_PACK and distinct != 1:
                problems.append(f"{name}[{instance}]: STRICT_PACK on {distinct} nodes")
            if group.strategy is PlacementStrategy.STRICT_SPREAD and distinct != len(group.bundles):
                problems.append(
                    f"{name}[{instance}]: STRICT_SPREAD of {len(group.bundles)} bundles on {distinct} nodes"
                )
        if placed + unplaced[name] != group.count:
            problems.append(f"{name}: {placed} placed + {unplaced[name]} unfulfilled != {group.count}")
    for pg, instance in where:
        problems.append(f"{pg}[{instance}]: placed but not requested")
    return problems
