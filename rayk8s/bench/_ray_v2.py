"""Run Ray v2's autoscaler scheduler on a rayk8s scheduling request, for comparison.

Ray v2's ``ResourceDemandScheduler.schedule(SchedulingRequest)`` (in
``ray.autoscaler.v2.scheduler``, Ray 2.60) is called directly with the inputs Ray's v2
autoscaler would give it, built from the same :class:`~rayk8s.autoscaler.SchedulingRequest`:

* ``node_type_configs``: each rayk8s node type as a ``NodeTypeConfig`` (``min_worker_nodes``,
  ``max_worker_nodes`` — a huge number when rayk8s has none —, ``resources``). A type rayk8s
  may not launch now (``unavailable_node_types``) is capped at the nodes it already has.
  Head nodes get a type of their own that cannot grow.
* ``current_instances``: a running node is an instance in ``RAY_RUNNING`` with a Ray node
  state reporting its total and free resources; a pending node is an instance in
  ``ALLOCATED`` with no Ray node yet, which the scheduler counts with its type's full
  resources — the same rule as rayk8s.
* ``resource_requests``: the demand by shape with its count (the GCS aggregates as rayk8s
  does; v2 does not truncate it).
* ``gang_resource_requests``: one per placement-group instance; STRICT_PACK bundles carry an
  affinity constraint and STRICT_SPREAD bundles an anti-affinity constraint on a label of
  the instance, PACK and SPREAD none, as the GCS builds them.
* ``cluster_resource_constraints``: the ``request_resources`` bundles.
* ``max_num_nodes``: the cluster ``max_workers`` plus the head nodes; no idle timeout and no
  launch-config check (nothing is terminated).

Only ``schedule`` is timed. Ray knows no prices: the plan's cost is computed with the
rayk8s node types' costs.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import attrs

from rayk8s.autoscaler import NodeStatus, PlacementStrategy, Resources, SchedulingRequest

__all__ = ["RayV2Plan", "run_ray_v2"]

_UNLIMITED = 10**9
_HEAD_TYPE = "rayk8s-bench-head"


@attrs.frozen
class RayV2Plan:
    """What Ray v2 decided: ``launch`` (type -> count), the time of ``schedule`` alone, the
    task units and placement-group instances it reports infeasible, the cost at rayk8s prices."""

    launch: dict[str, int]
    elapsed_ms: float
    infeasible_tasks: int
    infeasible_groups: int
    infeasible_bundles: int
    cost: float

    @property
    def nodes(self) -> int:
        return sum(self.launch.values())


def _as_ray(resources: Resources) -> dict[str, float]:
    return {name: float(amount) for name, amount in resources.items()}


def _build(request: SchedulingRequest) -> Any:
    from ray.autoscaler.v2.instance_manager.config import NodeTypeConfig
    from ray.autoscaler.v2.scheduler import SchedulingRequest as RaySchedulingRequest
    from ray.autoscaler.v2.schema import AutoscalerInstance
    from ray.autoscaler.v2.utils import ResourceRequestUtil
    from ray.core.generated.autoscaler_pb2 import (  # type: ignore[attr-defined]
        ClusterResourceConstraint,
        GangResourceRequest,
        NodeState,
        ResourceRequestByCount,
    )
    from ray.core.generated.instance_manager_pb2 import Instance, NodeKind  # type: ignore[attr-defined]

    existing: Counter[str] = Counter(node.node_type for node in request.nodes if not node.is_head)
    configs: dict[str, Any] = {}
    for name, node_type in request.node_types.items():
        most = _UNLIMITED if node_type.max_workers is None else node_type.max_workers
        least = min(node_type.min_workers, most)
        if name in request.unavailable_node_types:
            most, least = existing[name], 0
        configs[name] = NodeTypeConfig(
            name=name, min_worker_nodes=least, max_worker_nodes=most, resources=_as_ray(node_type.resources)
        )
    heads = 0
    instances = []
    for index, node in enumerate(request.nodes):
        type_name = _HEAD_TYPE if node.is_head else node.node_type
        total = node.total or (
            request.node_types[node.node_type].resources if node.node_type in request.node_types else None
        )
        total = total or node.available or Resources()
        if node.is_head:
            heads += 1
        if type_name not in configs or node.is_head:
            previous = configs.get(type_name)
            count = (previous.max_worker_nodes if previous is not None else 0) + 1
            configs[type_name] = NodeTypeConfig(
                name=type_name, min_worker_nodes=0, max_worker_nodes=count, resources=_as_ray(total)
            )
        kind = NodeKind.HEAD if node.is_head else NodeKind.WORKER
        if node.status is NodeStatus.RUNNING:
            free = node.available if node.available is not None else total
            im = Instance(instance_id=node.id, instance_type=type_name, status=Instance.RAY_RUNNING, node_kind=kind)
            im.node_id = f"{index:028x}"
            ray_node = NodeState(
                node_id=bytes.fromhex(f"{index:056x}"),
                instance_id=node.id,
                ray_node_type_name=type_name,
                total_resources=_as_ray(total),
                available_resources=_as_ray(free),
            )
            instances.append(AutoscalerInstance(im_instance=im, ray_node=ray_node, cloud_instance_id=node.id))
        else:
            im = Instance(instance_id=node.id, instance_type=type_name, status=Instance.ALLOCATED, node_kind=kind)
            instances.append(AutoscalerInstance(im_instance=im, cloud_instance_id=node.id))

    demands = [
        ResourceRequestByCount(request=ResourceRequestUtil.make(_as_ray(d.shape)), count=d.count)
        for d in request.demands
    ]
    constraint_kind = {
        PlacementStrategy.STRICT_PACK: ResourceRequestUtil.PlacementConstraintType.AFFINITY,
        PlacementStrategy.STRICT_SPREAD: ResourceRequestUtil.PlacementConstraintType.ANTI_AFFINITY,
    }
    gangs = []
    for g, group in enumerate(request.placement_groups):
        kind_of = constraint_kind.get(group.strategy)
        for instance in range(group.count):
            label = f"_PG_rayk8s_{g}_{instance}"
            constraints = None if kind_of is None else [(kind_of, label, "")]
            bundles = [ResourceRequestUtil.make(_as_ray(b), constraints) for b in group.bundles]
            gangs.append(GangResourceRequest(requests=bundles, details=label))
    constraints = []
    if request.resource_requests:
        constraints.append(
            ClusterResourceConstraint(
                resource_requests=[
                    ResourceRequestByCount(request=ResourceRequestUtil.make(_as_ray(r.shape)), count=r.count)
                    for r in request.resource_requests
                ]
            )
        )
    return RaySchedulingRequest(
        disable_launch_config_check=True,
        node_type_configs=configs,
        max_num_nodes=None if request.max_workers is None else request.max_workers + heads,
        resource_requests=demands,
        gang_resource_requests=gangs,
        cluster_resource_constraints=constraints,
        current_instances=instances,
    )


def run_ray_v2(request: SchedulingRequest) -> RayV2Plan:
    """Run Ray v2's ``ResourceDemandScheduler.schedule`` on ``request``."""
    from ray.autoscaler.v2.scheduler import ResourceDemandScheduler

    logging.getLogger("ray.autoscaler").setLevel(logging.ERROR)
    built = _build(request)
    scheduler = ResourceDemandScheduler()
    started = time.perf_counter()
    reply = scheduler.schedule(built)
    elapsed_ms = (time.perf_counter() - started) * 1000
    launch: Counter[str] = Counter()
    for item in reply.to_launch:
        launch[item.instance_type] += item.count
    plan = {name: count for name, count in sorted(launch.items()) if count}
    cost = sum(request.node_types[t].cost * c for t, c in plan.items() if t in request.node_types)
    return RayV2Plan(
        launch=plan,
        elapsed_ms=elapsed_ms,
        infeasible_tasks=len(reply.infeasible_resource_requests),
        infeasible_groups=len(reply.infeasible_gang_resource_requests),
        infeasible_bundles=sum(len(g.requests) for g in reply.infeasible_gang_resource_requests),
        cost=cost,
    )
