"""An independent checker of scheduling decisions.

:func:`check_decision` reads a :class:`~rayk8s.autoscaler.SchedulingResult` against the
:class:`~rayk8s.autoscaler.SchedulingRequest` it answers and lists every rule the decision
breaks, as sentences. It shares no code with the scheduler: it re-adds every placement
with :class:`~rayk8s.autoscaler.Resources` arithmetic.

Rules checked:

* every existing node it names exists; what a running node is given fits its free
  capacity, what a pending node is given fits its full capacity; ``request_resources``
  bundles counted on a node fit its total capacity;
* every new node group is of a known, available type; what each node of the group holds
  fits the type's resources (work and ``request_resources`` bundles separately); a group
  holding placement-group bundles has count 1; ``launch`` equals the groups' counts per
  type; ``cost`` equals the new nodes' cost;
* counts add up: for each task shape, placed + unfulfilled = demanded; the same for
  ``request_resources`` shapes; every placement-group instance is placed whole (each of its
  bundles exactly once, with the bundle's shape) or not at all, and placed + unfulfilled
  instances = the group's count;
* strategies: a STRICT_PACK instance on one node, a STRICT_SPREAD instance on distinct nodes;
* limits: per-type and cluster ``max_workers`` (head nodes do not count) are not exceeded
  by the launch; ``min_workers`` are met when the limits allow; no node of an unavailable
  type is launched;
* waste: no new group of reason ``demand`` or ``placement_group`` that holds nothing;
* reasons: nothing reported ``infeasible`` fits an empty node of some node type.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from rayk8s.autoscaler import (
    BundlePlacement,
    DemandKind,
    LaunchReason,
    NodeStatus,
    PlacementStrategy,
    Resources,
    SchedulingRequest,
    SchedulingResult,
    ShapeCount,
    UnfulfilledReason,
)

__all__ = ["check_decision"]


def _pg_name(index: int, name: str | None) -> str:
    return name if name is not None else f"pg{index}"


def _load(assigned: Iterable[ShapeCount], bundles: Iterable[BundlePlacement] = ()) -> Resources:
    total = Resources()
    for item in assigned:
        if item.count < 0:
            raise ValueError(f"negative count {item.count} of {item.shape}")
        total = total + item.shape * item.count
    for bundle in bundles:
        total = total + bundle.shape
    return total


def check_decision(request: SchedulingRequest, result: SchedulingResult) -> list[str]:
    """Every rule ``result`` breaks for ``request``, as sentences; empty when it is sound."""
    problems: list[str] = []
    nodes = {node.id: node for node in request.nodes}

    placed_tasks: dict[Resources, int] = defaultdict(int)
    placed_requests: dict[Resources, int] = defaultdict(int)
    # (pg, instance) -> list of (node key, bundle index, shape)
    bundle_places: dict[tuple[str, int], list[tuple[str, int, Resources]]] = defaultdict(list)

    def collect(
        node_key: str,
        copies: int,
        item_assigned: Iterable[ShapeCount],
        item_requests: Iterable[ShapeCount],
        item_bundles: Iterable[BundlePlacement],
    ) -> None:
        for sc in item_assigned:
            placed_tasks[sc.shape] += sc.count * copies
        for sc in item_requests:
            placed_requests[sc.shape] += sc.count * copies
        for b in item_bundles:
            bundle_places[(b.pg, b.instance)].append((node_key, b.bundle, b.shape))

    # --- existing nodes
    for node_id, assignment in result.existing.items():
        node = nodes.get(node_id)
        if node is None:
            problems.append(f"existing[{node_id}]: no such node in the request")
            continue
        node_type = request.node_types.get(node.node_type)
        total = node.total if node.total is not None else (node_type.resources if node_type else None)
        if total is None:
            problems.append(f"existing[{node_id}]: node of unknown type {node.node_type!r} has no total")
            total = Resources()
        free = total if node.status is NodeStatus.PENDING or node.available is None else node.available
        try:
            load = _load(assignment.assigned, assignment.bundles)
            requests_load = _load(assignment.resource_requests)
        except ValueError as error:
            problems.append(f"existing[{node_id}]: {error}")
            continue
        if not load.fits_in(free):
            problems.append(f"existing[{node_id}]: given {load}, more than its free capacity {free}")
        if not requests_load.fits_in(total):
            problems.append(
                f"existing[{node_id}]: counted on for request_resources {requests_load}, more than its total {total}"
            )
        collect(f"existing:{node_id}", 1, assignment.assigned, assignment.resource_requests, assignment.bundles)

    # --- new nodes
    launched: dict[str, int] = defaultdict(int)
    cost = 0.0
    for group in result.new_nodes:
        node_type = request.node_types.get(group.node_type)
        if node_type is None:
            problems.append(f"new_nodes[{group.id}]: unknown node type {group.node_type!r}")
            continue
        if group.node_type in request.unavailable_node_types:
            problems.append(f"new_nodes[{group.id}]: type {group.node_type!r} is unavailable, yet launched")
        if group.count < 1:
            problems.append(f"new_nodes[{group.id}]: count {group.count} is not positive")
            continue
        if group.bundles and group.count != 1:
            problems.append(f"new_nodes[{group.id}]: holds placement-group bundles but has count {group.count}")
        try:
            load = _load(group.assigned, group.bundles)
            requests_load = _load(group.resource_requests)
        except ValueError as error:
            problems.append(f"new_nodes[{group.id}]: {error}")
            continue
        if not load.fits_in(node_type.resources):
            problems.append(
                f"new_nodes[{group.id}]: each node holds {load}, more than type {group.node_type} offers "
                f"({node_type.resources})"
            )
        if not requests_load.fits_in(node_type.resources):
            problems.append(
                f"new_nodes[{group.id}]: counted on for request_resources {requests_load}, more than type "
                f"{group.node_type} offers ({node_type.resources})"
            )
        if (
            group.reason in (LaunchReason.DEMAND, LaunchReason.PLACEMENT_GROUP)
            and not group.assigned
            and not group.bundles
            and not group.resource_requests
        ):
            problems.append(
                f"new_nodes[{group.id}]: {group.count} node(s) launched for {group.reason.value} hold nothing"
            )
        launched[group.node_type] += group.count
        cost += node_type.cost * group.count
        collect(f"new:{group.id}", group.count, group.assigned, group.resource_requests, group.bundles)

    launch = {t: c for t, c in result.launch.items() if c}
    if launch != dict(launched):
        problems.append(
            f"launch {dict(sorted(launch.items()))} differs from the new node groups {dict(sorted(launched.items()))}"
        )
    if abs(cost - result.cost) > 1e-6 * max(1.0, abs(cost)):
        problems.append(f"cost {result.cost} differs from the new nodes' cost {cost}")

    # --- counts add up
    unfulfilled_tasks: dict[Resources, int] = defaultdict(int)
    unfulfilled_requests: dict[Resources, int] = defaultdict(int)
    unfulfilled_pgs: dict[str, int] = defaultdict(int)
    every_type = list(request.node_types.values())
    for item in result.unfulfilled:
        if item.count < 1:
            problems.append(f"unfulfilled: {item.kind.value} entry with count {item.count}")
        if item.kind is DemandKind.PLACEMENT_GROUP:
            if item.pg is None:
                problems.append("unfulfilled: placement-group entry without a name")
            else:
                unfulfilled_pgs[item.pg] += item.count
            continue
        if item.shape is None:
            problems.append(f"unfulfilled: {item.kind.value} entry without a shape")
            continue
        (unfulfilled_tasks if item.kind is DemandKind.DEMAND else unfulfilled_requests)[item.shape] += item.count
        if item.reason is UnfulfilledReason.INFEASIBLE and any(item.shape.fits_in(t.resources) for t in every_type):
            problems.append(f"unfulfilled: {item.shape} is called infeasible, yet a node type holds it")

    def add_up(
        what: str, demanded: Mapping[Resources, int], placed: Mapping[Resources, int], unplaced: Mapping[Resources, int]
    ) -> None:
        for shape in set(demanded) | set(placed) | set(unplaced):
            want, got, left = demanded.get(shape, 0), placed.get(shape, 0), unplaced.get(shape, 0)
            if got + left != want:
                problems.append(f"{what} {shape}: demanded {want}, placed {got} + unfulfilled {left} = {got + left}")

    demanded_tasks: dict[Resources, int] = defaultdict(int)
    for demand in request.demands:
        demanded_tasks[demand.shape] += demand.count
    demanded_requests: dict[Resources, int] = defaultdict(int)
    for rr in request.resource_requests:
        demanded_requests[rr.shape] += rr.count
    add_up("demand", demanded_tasks, placed_tasks, unfulfilled_tasks)
    add_up("request_resources", demanded_requests, placed_requests, unfulfilled_requests)

    # --- placement groups
    by_name = {_pg_name(i, pg.name): pg for i, pg in enumerate(request.placement_groups)}
    placed_instances: dict[str, int] = defaultdict(int)
    for (pg_name, instance), places in sorted(bundle_places.items()):
        pg = by_name.get(pg_name)
        where = f"placement group {pg_name} instance {instance}"
        if pg is None:
            problems.append(f"{where}: no such placement group")
            continue
        if not 0 <= instance < pg.count:
            problems.append(f"{where}: instance out of range (count {pg.count})")
            continue
        placed_instances[pg_name] += 1
        indexes = sorted(b for _, b, _ in places)
        if indexes != list(range(len(pg.bundles))):
            problems.append(f"{where}: bundles placed {indexes}, expected each of 0..{len(pg.bundles) - 1} once")
        for _, b, shape in places:
            if 0 <= b < len(pg.bundles) and shape != pg.bundles[b]:
                problems.append(f"{where}: bundle {b} placed as {shape}, but it is {pg.bundles[b]}")
        node_keys = [key for key, _, _ in places]
        if pg.strategy is PlacementStrategy.STRICT_PACK and len(set(node_keys)) > 1:
            problems.append(f"{where}: STRICT_PACK bundles on {len(set(node_keys))} nodes")
        if pg.strategy is PlacementStrategy.STRICT_SPREAD and len(set(node_keys)) != len(node_keys):
            problems.append(f"{where}: STRICT_SPREAD bundles share a node")
    for name, pg in by_name.items():
        got, left = placed_instances.get(name, 0), unfulfilled_pgs.get(name, 0)
        if got + left != pg.count:
            problems.append(
                f"placement group {name}: count {pg.count}, placed {got} + unfulfilled {left} = {got + left}"
            )
    for name in set(unfulfilled_pgs) - set(by_name):
        problems.append(f"unfulfilled: placement group {name} is not in the request")

    # --- limits
    existing_workers: dict[str, int] = defaultdict(int)
    for node in request.nodes:
        if not node.is_head:
            existing_workers[node.node_type] += 1
    total_workers = sum(existing_workers.values()) + sum(launch.values())
    for name, node_type in request.node_types.items():
        have, new = existing_workers.get(name, 0), launch.get(name, 0)
        if node_type.max_workers is not None and new and have + new > node_type.max_workers:
            problems.append(f"{name}: {have} existing + {new} new workers exceed max_workers {node_type.max_workers}")
        cluster_full = request.max_workers is not None and total_workers >= request.max_workers
        if have + new < node_type.min_workers and name not in request.unavailable_node_types and not cluster_full:
            problems.append(
                f"{name}: {have} existing + {new} new workers are fewer than min_workers {node_type.min_workers}"
            )
    if request.max_workers is not None and launch and total_workers > request.max_workers:
        problems.append(
            f"{total_workers} workers after the launch exceed the cluster's max_workers {request.max_workers}"
        )
    return problems
