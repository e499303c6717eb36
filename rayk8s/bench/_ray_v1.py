"""Run Ray v1's autoscaler scheduler on a rayk8s scheduling request, for comparison.

Ray v1's ``ResourceDemandScheduler.get_nodes_to_launch`` (in
``ray.autoscaler._private.resource_demand_scheduler``) is called directly, with the inputs
Ray's ``StandardAutoscaler`` would give it, built from the same
:class:`~rayk8s.autoscaler.SchedulingRequest`:

* ``node_types``: each rayk8s node type as ``{"resources", "min_workers", "max_workers",
  "node_config"}`` (a type without a ``max_workers`` of its own gets a huge one: Ray reads
  a missing ``max_workers`` as 0), plus a head node type with no resources (Ray insists on
  one; a head node of that type is always there, and rayk8s' head nodes become it).
* ``nodes``: the existing nodes, served by a tiny in-memory ``NodeProvider``
  (:class:`_Provider`: ``non_terminated_nodes``, ``node_tags``, ``internal_ip``).
  A running node's free capacity is in ``unused_resources_by_ip``; a pending node is left
  out of it, so Ray counts it with its type's full resources — the same rule as rayk8s.
* ``resource_demands``: one dict per task, shape by shape in request order, as Ray's
  monitor expands the GCS's aggregated load. *Untruncated* passes all of them; *capped*
  keeps the first ``AUTOSCALER_MAX_RESOURCE_DEMAND_VECTOR_SIZE`` (1000) feasible and the
  first 1000 infeasible entries, as ``LoadMetrics.get_resource_demand_vector`` does.
* ``pending_placement_groups``: one ``PlacementGroupTableData`` per placement-group
  instance (placement groups are not capped in Ray).
* ``ensure_min_cluster_size``: the ``request_resources`` bundles, one dict each.
* ``upscaling_speed`` is set huge, so Ray's launch-pacing limit (at most
  ``max(5, upscaling_speed * running)`` pending nodes per type) does not cut the plan:
  we compare plans, not pacing.

Only ``get_nodes_to_launch`` is timed. Ray knows no prices: the cost of its plan is
computed with the rayk8s node types' costs. :func:`coverage` says how much of the full
demand the plan can actually hold.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Mapping
from typing import Any

import attrs

from rayk8s.autoscaler import NodeStatus, PlacementStrategy, Resources, SchedulingRequest

__all__ = ["RAY_CAP", "RayPlan", "available", "coverage", "ray_version", "run_ray_v1"]

#: Ray's AUTOSCALER_MAX_RESOURCE_DEMAND_VECTOR_SIZE default.
RAY_CAP = 1000
_UNLIMITED = 10**9
_HEAD_TYPE = "rayk8s-bench-head"


def available() -> bool:
    """True when the ``ray`` package is importable."""
    return importlib.util.find_spec("ray") is not None


def ray_version() -> str:
    import ray

    return str(ray.__version__)


@attrs.frozen
class RayPlan:
    """What Ray v1 decided for one request.

    ``launch`` is node type -> count; ``elapsed_ms`` the time of ``get_nodes_to_launch``
    alone; ``entries`` the length of the demand vector Ray was given;
    ``unfulfilled_entries`` how many entries Ray itself reports it could not place;
    ``cost`` the plan's cost at the rayk8s prices.
    """

    mode: str
    launch: Mapping[str, int]
    elapsed_ms: float
    entries: int
    unfulfilled_entries: int
    cost: float

    @property
    def nodes(self) -> int:
        return sum(self.launch.values())


class _Provider:
    """The smallest NodeProvider Ray's scheduler needs: tags and an address per node."""

    def __init__(self, tags: dict[str, dict[str, str]]) -> None:
        self._tags = tags

    def non_terminated_nodes(self, tag_filters: Mapping[str, str]) -> list[str]:
        return [n for n, t in self._tags.items() if all(t.get(k) == v for k, v in tag_filters.items())]

    def node_tags(self, node_id: str) -> dict[str, str]:
        return self._tags[node_id]

    def internal_ip(self, node_id: str) -> str:
        return f"addr-{node_id}"  # only a key into Ray's per-address maps


def _as_ray(resources: Resources) -> dict[str, float]:
    return {name: float(amount) for name, amount in resources.items()}


def _fits(need: Mapping[str, float], capacity: Mapping[str, float]) -> bool:
    return all(amount <= capacity.get(name, 0.0) for name, amount in need.items())


def _build(request: SchedulingRequest, cap: int | None) -> dict[str, Any]:
    from ray.autoscaler._private.node_provider_availability_tracker import NodeAvailabilitySummary
    from ray.autoscaler.tags import (
        NODE_KIND_HEAD,
        NODE_KIND_WORKER,
        TAG_RAY_NODE_KIND,
        TAG_RAY_USER_NODE_TYPE,
    )
    from ray.core.generated.common_pb2 import Bundle  # type: ignore[attr-defined]
    from ray.core.generated.common_pb2 import PlacementStrategy as RayStrategy  # type: ignore[attr-defined]
    from ray.core.generated.gcs_pb2 import PlacementGroupTableData  # type: ignore[attr-defined]

    node_types: dict[str, dict[str, Any]] = {}
    for name, node_type in request.node_types.items():
        max_workers = _UNLIMITED if node_type.max_workers is None else node_type.max_workers
        if name in request.unavailable_node_types:
            max_workers = 0
        node_types[name] = {
            "resources": _as_ray(node_type.resources),
            "min_workers": min(node_type.min_workers, max_workers),
            "max_workers": max_workers,
            "node_config": {},
        }
    head_type = _HEAD_TYPE
    node_types[head_type] = {"resources": {}, "min_workers": 0, "max_workers": 0, "node_config": {}}

    tags: dict[str, dict[str, str]] = {}
    unused: dict[str, dict[str, float]] = {}
    head_seen = False
    for node in request.nodes:
        node_type_name = node.node_type
        if node.is_head and not head_seen:
            head_seen = True
            node_types[head_type]["resources"] = _as_ray(node.total or node.available or Resources())
            node_type_name = head_type
        elif node_type_name not in node_types:
            # A node of a type the scheduler does not launch: a type Ray may not launch either.
            total = node.total or node.available or Resources()
            node_types[node_type_name] = {"resources": _as_ray(total), "min_workers": 0, "max_workers": 0}
        kind = NODE_KIND_HEAD if node_type_name == head_type else NODE_KIND_WORKER
        tags[node.id] = {TAG_RAY_NODE_KIND: kind, TAG_RAY_USER_NODE_TYPE: node_type_name}
        if node.status is NodeStatus.RUNNING:
            if node.available is not None:
                unused[f"addr-{node.id}"] = _as_ray(node.available)
            else:
                unused[f"addr-{node.id}"] = dict(node_types[node_type_name]["resources"])
    if not head_seen:
        head_id = "rayk8s-bench-head-node"
        tags[head_id] = {TAG_RAY_NODE_KIND: NODE_KIND_HEAD, TAG_RAY_USER_NODE_TYPE: head_type}
        unused[f"addr-{head_id}"] = {}

    worker_caps = [t["resources"] for n, t in node_types.items() if n != head_type and t["max_workers"] > 0]
    waiting: list[dict[str, float]] = []
    infeasible: list[dict[str, float]] = []
    for demand in request.demands:
        shape = _as_ray(demand.shape)
        feasible = any(_fits(shape, c) for c in worker_caps)
        target = waiting if feasible else infeasible
        if cap is not None and len(target) >= cap:
            continue
        take = demand.count if cap is None else min(demand.count, cap - len(target))
        target.extend([shape] * take)  # Ray's monitor repeats one dict per shape, too
    demands = waiting + infeasible

    strategies = {
        PlacementStrategy.PACK: RayStrategy.PACK,
        PlacementStrategy.SPREAD: RayStrategy.SPREAD,
        PlacementStrategy.STRICT_PACK: RayStrategy.STRICT_PACK,
        PlacementStrategy.STRICT_SPREAD: RayStrategy.STRICT_SPREAD,
    }
    pgs = []
    for pg in request.placement_groups:
        for _ in range(pg.count):
            pgs.append(
                PlacementGroupTableData(
                    strategy=strategies[pg.strategy],
                    bundles=[Bundle(unit_resources=_as_ray(b)) for b in pg.bundles],
                )
            )
    requests = [_as_ray(r.shape) for r in request.resource_requests for _ in range(r.count)]

    max_workers = _UNLIMITED if request.max_workers is None else request.max_workers
    return {
        "provider": _Provider(tags),
        "node_types": node_types,
        "head_type": head_type,
        "max_workers": max_workers,
        "call": {
            "nodes": list(tags),
            "launching_nodes": {},
            "resource_demands": demands,
            "unused_resources_by_ip": unused,
            "pending_placement_groups": pgs,
            "max_resources_by_ip": {},
            "ensure_min_cluster_size": requests,
            "node_availability_summary": NodeAvailabilitySummary(node_availabilities={}),
        },
    }


def run_ray_v1(request: SchedulingRequest, *, cap: int | None = None) -> RayPlan:
    """Run Ray v1's ``get_nodes_to_launch`` on ``request``; ``cap`` truncates the demand vector."""
    from ray.autoscaler._private.resource_demand_scheduler import ResourceDemandScheduler

    logging.getLogger("ray.autoscaler").setLevel(logging.ERROR)
    built = _build(request, cap)
    scheduler = ResourceDemandScheduler(
        built["provider"],
        built["node_types"],
        built["max_workers"],
        built["head_type"],
        upscaling_speed=float(_UNLIMITED),
    )
    started = time.perf_counter()
    to_launch, unfulfilled = scheduler.get_nodes_to_launch(**built["call"])
    elapsed_ms = (time.perf_counter() - started) * 1000
    launch = {t: int(c) for t, c in sorted(to_launch.items()) if c}
    cost = sum(request.node_types[t].cost * c for t, c in launch.items() if t in request.node_types)
    return RayPlan(
        mode="untruncated" if cap is None else f"capped at {cap}",
        launch=launch,
        elapsed_ms=elapsed_ms,
        entries=len(built["call"]["resource_demands"]),
        unfulfilled_entries=len(unfulfilled),
        cost=cost,
    )


def coverage(request: SchedulingRequest, launch: Mapping[str, int], claimed_units: int = 0) -> float:
    """The fraction of demand units (tasks and bundles) a plan can hold, estimated by packing.

    Packs the full demand onto the existing nodes' free capacity (a pending node's full
    capacity) and the plan's new nodes with Ray v1's first-fit-decreasing order
    (``get_bin_pack_residual``: more resource kinds first, then larger sums), worked per
    shape instead of per task so it stays fast at 100k demands. First fit depends on the
    order of the nodes, so two orders are tried (new accelerator and large nodes first; small
    nodes first) and the better kept, together with ``claimed_units``, what Ray's own
    accounting says it placed. A STRICT_PACK instance is one item of its summed shape
    (worth its bundles); other bundles are items of their own, and STRICT_SPREAD's
    one-bundle-per-node rule is not enforced. It is an estimate, meant to tell a plan for
    the whole demand from a plan for a tenth of it; 1.0 when there is no demand.
    """
    # (shape, units each item is worth) -> items to place
    items: dict[tuple[Resources, int], int] = {}

    def add(shape: Resources, count: int, weight: int) -> None:
        if shape:
            items[(shape, weight)] = items.get((shape, weight), 0) + count

    for demand in request.demands:
        add(demand.shape, demand.count, 1)
    for pg in request.placement_groups:
        if pg.strategy is PlacementStrategy.STRICT_PACK:
            total = Resources()
            for bundle in pg.bundles:
                total = total + bundle
            add(total, pg.count, len(pg.bundles))
        else:
            for bundle in pg.bundles:
                add(bundle, pg.count, 1)
    total_units = sum(count * weight for (_, weight), count in items.items())
    if total_units == 0:
        return 1.0

    def order(shape: Resources) -> tuple[Any, ...]:
        ray_dict = _as_ray(shape)
        return (len(ray_dict), sum(ray_dict.values()), sorted(ray_dict.items()))

    keys = sorted(items, key=lambda key: order(key[0]), reverse=True)

    existing: dict[Resources, int] = {}
    for node in request.nodes:
        if node.status is NodeStatus.PENDING or node.available is None:
            free = node.total if node.total is not None else request.node_types[node.node_type].resources
        else:
            free = node.available
        existing[free] = existing.get(free, 0) + 1
    new = [(request.node_types[t].resources, n) for t, n in launch.items() if n and t in request.node_types]

    def size(resources: Resources) -> tuple[bool, float]:
        return (any(name in ("GPU", "TPU") for name in resources), resources.get("CPU", 0.0))

    best = 0
    for new_order in (sorted(new, key=lambda item: size(item[0]), reverse=True), sorted(new, key=lambda i: size(i[0]))):
        shape_units = [key[0].units for key in keys]
        weights = [key[1] for key in keys]
        left = [items[key] for key in keys]
        placed = 0
        for capacity, copies in [*existing.items(), *new_order]:
            units_free = capacity.units
            for _ in range(copies):
                room = dict(units_free)
                for j, need in enumerate(shape_units):
                    if not left[j]:
                        continue
                    take = min(min((room.get(r, 0) // a for r, a in need.items()), default=0), left[j])
                    if take:
                        left[j] -= take
                        placed += take * weights[j]
                        for r, a in need.items():
                            room[r] -= a * take
                if placed == total_units:
                    return 1.0
        best = max(best, placed)
    return max(best, claimed_units) / total_units
