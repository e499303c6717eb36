"""Reading a live Ray cluster's load from its GCS, and telling Ray what the autoscaler does.

:class:`RayLoadSource` reads Ray's ``ClusterResourceState`` -- the message Ray's own
autoscaler v2 and KubeRay's autoscaler read (``ray.autoscaler.v2.sdk
.get_cluster_resource_state``) -- in one GCS call per update, and turns it into a
:class:`~rayk8s.autoscaler.LoadSnapshot`:

- ``pending_resource_requests`` (tasks and actors waiting, by shape, with counts) ->
  ``demands``;
- ``pending_gang_resource_requests`` (placement groups waiting) -> ``placement_groups``,
  the strategy taken from the request's ``details`` (``<pg id>:<STRATEGY>|<state>``) or,
  failing that, from its placement constraints (affinity: ``STRICT_PACK``,
  anti-affinity: ``STRICT_SPREAD``, none: ``PACK``);
- ``cluster_resource_constraints`` (``ray.autoscaler.sdk.request_resources``) ->
  ``resource_requests``;
- ``node_states`` -> per-node usage: total and available resources, idle time (a node
  Ray reports ``IDLE`` has been idle ``idle_duration_ms``; ``RUNNING`` means busy), dead
  nodes left out (so a node that had joined and died reads as lost).

Ray node ids are mapped to provider node ids by the node's ``instance_id`` -- the
``RAY_CLOUD_INSTANCE_ID`` a node was started with, which is how Ray's autoscaler v2 and
KubeRay name a node's machine -- and failing that by its ``rayk8s.io/node-id`` label.
Nodes with neither are not the autoscaler's (a node started by hand) and are left out.

Implicit resources (``node:<ip>``, ``node:__internal_head__``, placement-group bundle
resources such as ``CPU_group_<id>``) are dropped: they are not node capacity. A task
waiting only on a placement group's bundle resources is that group's demand, already
counted by its gang request. Label selectors are not read (the scheduler has no labels).

:meth:`RayLoadSource.report` sends the autoscaler's state back
(``ReportAutoscalingState``, as Ray's v2 monitor does), so that ``ray status`` lists
pending nodes, recent launch failures and infeasible demand -- where the head runs with
autoscaler v2 enabled (``RAY_enable_autoscaler_v2=1``), as the ``local`` provider's head
does.

``ray`` is imported when a source is built, not when this module is imported, so
``rayk8s`` works without it; without it, :class:`RayK8sError` names the ``rayk8s[ray]``
extra.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import structlog

from rayk8s.autoscaler import (
    LoadSnapshot,
    NodeState,
    NodeUsage,
    PlacementGroup,
    PlacementStrategy,
    ResourceDemand,
    ResourceRequest,
    Resources,
    UpdateResult,
)
from rayk8s.errors import RayK8sError

__all__ = ["LABEL_NODE_ID", "RAY_EXTRA_HINT", "RayLoadSource", "RayNode", "require_ray"]

log = structlog.get_logger()

#: The Ray node label that carries the provider node id when ``instance_id`` is empty.
LABEL_NODE_ID = "rayk8s.io/node-id"
RAY_EXTRA_HINT = "the Ray integration needs Ray: pip install 'rayk8s[ray]'"

_STRATEGIES = {s.value for s in PlacementStrategy}


def require_ray() -> Any:
    """Import and return the ``ray`` package, or raise :class:`RayK8sError` naming the extra."""
    try:
        return importlib.import_module("ray")
    except ImportError as error:
        raise RayK8sError(f"{RAY_EXTRA_HINT} ({error})") from None


def _protos() -> Any:
    """Ray's autoscaler protobuf module (``ray.core.generated.autoscaler_pb2``; untyped)."""
    return importlib.import_module("ray.core.generated.autoscaler_pb2")


def _capacity(amounts: Mapping[str, float]) -> dict[str, float]:
    """Real node capacity: without ``node:*`` markers and placement-group bundle resources."""
    return {
        name: float(value)
        for name, value in amounts.items()
        if value > 0 and not name.startswith("node:") and "_group_" not in name and not name.startswith("bundle_group")
    }


def _is_bundle_shape(amounts: Mapping[str, float]) -> bool:
    return any("_group_" in name or name.startswith("bundle_group") for name in amounts)


@attrs.frozen
class RayNode:
    """One node as Ray reports it: Ray's hex node id, the provider node id it maps to
    (``None`` if none), Ray's status (``RUNNING``, ``IDLE``, ``DRAINING``, ``DEAD``)."""

    ray_node_id: str
    provider_node_id: str | None
    status: str
    node_type: str
    ip: str


def _strategy(gang: Any) -> PlacementStrategy:
    details = str(getattr(gang, "details", "") or "")
    if ":" in details:
        word = details.split(":", 1)[1].split("|", 1)[0].strip()
        if word in _STRATEGIES:
            return PlacementStrategy(word)
    for request in gang.requests:
        for constraint in request.placement_constraints:
            if constraint.HasField("anti_affinity"):
                return PlacementStrategy.STRICT_SPREAD
            if constraint.HasField("affinity"):
                return PlacementStrategy.STRICT_PACK
    return PlacementStrategy.PACK


def _pg_name(gang: Any) -> str | None:
    details = str(getattr(gang, "details", "") or "")
    return details.split(":", 1)[0] or None if ":" in details else None


class RayLoadSource:
    """A :class:`~rayk8s.autoscaler.LoadSource` reading a live Ray cluster's GCS.

    ``gcs_address``: the head's GCS address (``ip:port``). ``clock``: the autoscaler's
    clock (idle times are turned into ``idle_since`` on it). ``timeout_s``: the GCS call
    timeout. ``gcs_client``: an already-built ``ray._raylet.GcsClient`` (tests); built
    lazily otherwise. Raises :class:`RayK8sError` if Ray is not installed.
    """

    def __init__(
        self,
        gcs_address: str,
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 10.0,
        gcs_client: Any = None,
    ) -> None:
        require_ray()
        self.gcs_address = gcs_address
        self.clock = clock
        self.timeout_s = timeout_s
        self._client = gcs_client
        self._nodes: dict[str, RayNode] = {}
        self._state_version = 0
        self._autoscaler_version = 0
        self.reads = 0
        self.reports = 0

    @property
    def client(self) -> Any:
        """The GCS client (``ray._raylet.GcsClient``), connected on first use."""
        if self._client is None:
            self._client = importlib.import_module("ray._raylet").GcsClient(address=self.gcs_address)
        return self._client

    def read_state(self) -> Any:
        """One ``GetClusterResourceState`` call: Ray's ``ClusterResourceState`` protobuf."""
        autoscaler_pb2 = _protos()
        raw = self.client.get_cluster_resource_state(timeout_s=self.timeout_s)
        reply = autoscaler_pb2.GetClusterResourceStateReply()
        reply.ParseFromString(raw)
        self.reads += 1
        return reply.cluster_resource_state

    @property
    def ray_nodes(self) -> Mapping[str, RayNode]:
        """Every node of the last read by Ray node id (hex), dead ones included."""
        return dict(self._nodes)

    def ray_node_id(self, provider_node_id: str) -> RayNode | None:
        """The live Ray node (from the last read) that maps to ``provider_node_id``."""
        for node in self._nodes.values():
            if node.provider_node_id == provider_node_id and node.status != "DEAD":
                return node
        return None

    def load(self) -> LoadSnapshot:
        """Read the cluster's load: pending demand and per-node usage (one GCS call)."""
        autoscaler_pb2 = _protos()
        state = self.read_state()
        now = self.clock()
        self._state_version = int(state.cluster_resource_state_version)
        status_name = autoscaler_pb2.NodeStatus.Name
        nodes: dict[str, RayNode] = {}
        usage: list[NodeUsage] = []
        for node_state in state.node_states:
            ray_id = node_state.node_id.hex()
            labels = dict(node_state.labels)
            provider_id = node_state.instance_id or labels.get(LABEL_NODE_ID) or None
            status = status_name(node_state.status)
            nodes[ray_id] = RayNode(
                ray_id, provider_id, status, node_state.ray_node_type_name, node_state.node_ip_address
            )
            if provider_id is None or status == "DEAD":
                continue
            idle_since = now - node_state.idle_duration_ms / 1000.0 if status in ("IDLE", "DRAINING") else None
            usage.append(
                NodeUsage(
                    node_id=provider_id,
                    available=_capacity(node_state.available_resources),
                    total=_capacity(node_state.total_resources),
                    idle_since=idle_since,
                )
            )
        self._nodes = nodes
        demands = [
            ResourceDemand(_capacity(item.request.resources_bundle), int(item.count))
            for item in state.pending_resource_requests
            if item.count > 0
            and not _is_bundle_shape(item.request.resources_bundle)
            and _capacity(item.request.resources_bundle)
        ]
        groups = [
            PlacementGroup(
                [_capacity(request.resources_bundle) for request in gang.requests],
                _strategy(gang),
                name=_pg_name(gang),
            )
            for gang in state.pending_gang_resource_requests
            if len(gang.requests) > 0
        ]
        requests = [
            ResourceRequest(_capacity(item.request.resources_bundle), int(item.count))
            for constraint in state.cluster_resource_constraints
            for item in constraint.resource_requests
            if item.count > 0 and _capacity(item.request.resources_bundle)
        ]
        return LoadSnapshot(
            demands=_merge_demands(demands),
            placement_groups=groups,
            resource_requests=requests,
            nodes=usage,
        )

    def report(self, result: UpdateResult) -> bool:
        """Send the autoscaler's state to the GCS, so ``ray status`` shows it. Best effort.

        Reports pending nodes (launched, not yet joined) with their provider ids, the
        launches of this update as pending requests, recent launch failures, and demand
        the scheduler found infeasible. Returns whether the GCS took it; never raises.
        """
        pb = _protos()
        decision = result.decision
        state = pb.AutoscalingState(
            last_seen_cluster_resource_state_version=self._state_version,
            autoscaler_state_version=self._autoscaler_version + 1,
        )
        if decision is not None:
            for view in decision.nodes:
                if view.is_head or not view.state.pending:
                    continue
                state.pending_instances.append(
                    pb.PendingInstance(
                        instance_type_name=view.node_type,
                        ray_node_type_name=view.node_type,
                        instance_id=view.id,
                        ip_address=view.internal_ip or "",
                        details=_pending_detail(view.state),
                    )
                )
            for failure in decision.memory.recent_failures:
                state.failed_instance_requests.append(
                    pb.FailedInstanceRequest(
                        instance_type_name=failure.node_type,
                        ray_node_type_name=failure.node_type,
                        count=failure.count,
                        reason=f"{failure.kind}: {failure.reason}",
                        start_ts=int(failure.at * 1000),
                        failed_ts=int(failure.at * 1000),
                    )
                )
            scheduling = decision.scheduling
            for item in scheduling.unfulfilled if scheduling is not None else ():
                if item.reason.value != "infeasible":
                    continue
                for bundle in _unfulfilled_bundles(item):
                    request = pb.ResourceRequest()
                    for name, amount in bundle.items():
                        request.resources_bundle[name] = float(amount)
                    state.infeasible_resource_requests.append(request)
        for outcome in result.launches:
            if outcome.created:
                state.pending_instance_requests.append(
                    pb.PendingInstanceRequest(
                        instance_type_name=outcome.node_type,
                        ray_node_type_name=outcome.node_type,
                        count=outcome.created,
                        request_ts=int(result.now * 1000),
                    )
                )
        try:
            self.client.report_autoscaling_state(state.SerializeToString(), timeout_s=self.timeout_s)
        except Exception as error:
            log.warning("ray_report_failed", error=str(error))
            return False
        self._autoscaler_version += 1
        self.reports += 1
        return True

    def drain(self, provider_node_ids: Iterable[str], reason: str = "idle") -> tuple[list[str], dict[str, str]]:
        """Ask Ray to drain these nodes for idle termination (the raylet refuses a busy node).

        Returns ``(accepted, rejected)``: provider ids Ray accepted (or that Ray does not
        know alive: nothing to drain), and provider id -> why Ray refused or the call
        failed. Uses the nodes of the last :meth:`load`.
        """
        pb = _protos()
        accepted: list[str] = []
        rejected: dict[str, str] = {}
        for provider_id in provider_node_ids:
            node = self.ray_node_id(provider_id)
            if node is None:
                accepted.append(provider_id)
                continue
            try:
                ok, message = self.client.drain_node(
                    node.ray_node_id,
                    pb.DrainNodeReason.Value("DRAIN_NODE_REASON_IDLE_TERMINATION"),
                    f"rayk8s: {reason}",
                    0,
                    timeout=self.timeout_s,
                )
            except Exception as error:
                rejected[provider_id] = f"drain failed: {error}"
                continue
            if ok:
                accepted.append(provider_id)
            else:
                rejected[provider_id] = str(message) or "refused by the raylet"
        return accepted, rejected


def _merge_demands(demands: list[ResourceDemand]) -> list[ResourceDemand]:
    counts: dict[Resources, int] = {}
    for demand in demands:
        counts[demand.shape] = counts.get(demand.shape, 0) + demand.count
    return [ResourceDemand(shape, count) for shape, count in counts.items()]


def _pending_detail(state: NodeState) -> str:
    if state is NodeState.REQUESTED or state is NodeState.LAUNCHING:
        return "launching"
    return "starting ray"


def _unfulfilled_bundles(item: Any) -> list[Resources]:
    shape = getattr(item, "shape", None)
    if isinstance(shape, Resources):
        return [shape]
    bundles = getattr(item, "bundles", None)
    if bundles:
        return [b for b in bundles if isinstance(b, Resources)]
    return []
