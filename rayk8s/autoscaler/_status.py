"""The cluster's status after an update, as a value with two renderings.

:class:`StatusSummary` is built from a :class:`~rayk8s.autoscaler._decide.Decision` (and
what acting on it did). :meth:`StatusSummary.monitor_lines` renders the monitor block Ray's
autoscaler writes to the operator's logs (``Cluster status: N nodes``,
``MostDelayedHeartbeats``, ``NodeIdleSeconds``, ... ``Node requests``; the operator adds
its ``<cluster>:`` prefix and timestamps). :meth:`StatusSummary.render_status` renders a
``ray status``-style summary: healthy and pending nodes, recent failures, usage, demands.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from rayk8s.autoscaler._config import AutoscalerConfig
from rayk8s.autoscaler._decide import Decision, FailureRecord, PlannedTermination
from rayk8s.autoscaler._lifecycle import NodeState
from rayk8s.autoscaler._model import PlacementGroup, ResourceDemand, ResourceRequest
from rayk8s.autoscaler._policy import Backoff
from rayk8s.autoscaler._resources import UNITS_PER_ONE, Resources
from rayk8s.autoscaler._result import Unfulfilled

__all__ = ["Stat", "StatusSummary"]

_GIB_RESOURCES = frozenset({"memory", "object_store_memory"})
#: How many nodes ``Cluster resources`` lists before summarising the rest.
CLUSTER_RESOURCES_LISTED = 50


@attrs.frozen
class Stat:
    """Min, mean and max of some per-node seconds."""

    min: float
    mean: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat | None:
        if not values:
            return None
        return cls(min(values), sum(values) / len(values), max(values))

    def render(self) -> str:
        return f"Min={self.min:.0f} Mean={self.mean:.0f} Max={self.max:.0f}"


@attrs.frozen
class StatusSummary:
    """What the cluster looks like after one update.

    ``worker_nodes``: live worker nodes (launching or running). ``most_delayed_heartbeats``:
    the five longest times since a heartbeat, by node IP (or id). ``node_idle_seconds`` and
    ``time_since_last_heartbeat``: over running nodes Ray reports. ``resource_usage``:
    ``(resource, used, total)`` over those nodes. ``worker_node_types``: live workers per
    type. ``node_counts``: live nodes per type, head included. ``healthy``: running nodes
    per type. ``pending``: ``(type, state, count)`` for nodes not yet running.
    ``node_requests``: nodes launched in this update per type. ``held_back``: why
    terminations were held back, if they were.
    """

    cluster_name: str
    now: float
    worker_nodes: int = 0
    most_delayed_heartbeats: tuple[tuple[str, float], ...] = ()
    node_idle_seconds: Stat | None = None
    time_since_last_heartbeat: Stat | None = None
    resource_usage: tuple[tuple[str, float, float], ...] = ()
    worker_node_types: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    cluster_resources: tuple[Resources, ...] = ()
    node_counts: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    healthy: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    pending: tuple[tuple[str, str, int], ...] = ()
    placement_group_demands: tuple[PlacementGroup, ...] = ()
    resource_demands: tuple[ResourceDemand, ...] = ()
    resource_requests: tuple[ResourceRequest, ...] = ()
    unfulfilled: tuple[Unfulfilled, ...] = ()
    node_requests: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    deferred: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    terminations: tuple[PlannedTermination, ...] = ()
    recent_failures: tuple[FailureRecord, ...] = ()
    backoff: Mapping[str, Backoff] = attrs.field(factory=dict, hash=False)
    held_back: str | None = None
    errors: tuple[str, ...] = ()

    @classmethod
    def from_decision(
        cls,
        config: AutoscalerConfig,
        decision: Decision,
        *,
        node_requests: Mapping[str, int] | None = None,
        terminations: Iterable[PlannedTermination] = (),
        errors: Iterable[str] = (),
    ) -> StatusSummary:
        """Summarise ``decision``; ``node_requests`` and ``terminations`` are what was done."""
        now = decision.now
        heartbeats: list[tuple[str, float]] = []
        idle_seconds: list[float] = []
        used: Counter[str] = Counter()
        total: Counter[str] = Counter()
        totals: list[Resources] = []
        node_counts: Counter[str] = Counter()
        worker_types: Counter[str] = Counter()
        healthy: Counter[str] = Counter()
        pending: Counter[tuple[str, str]] = Counter()
        for view in decision.nodes:
            if not view.state.live:
                continue
            node_counts[view.node_type] += 1
            if not view.is_head:
                worker_types[view.node_type] += 1
            if view.state is not NodeState.RUNNING:
                pending[(view.node_type, view.state.value)] += 1
                continue
            healthy[view.node_type] += 1
            usage = view.usage
            if usage is None:
                continue
            if usage.last_heartbeat is not None:
                heartbeats.append((view.internal_ip or view.id, max(0.0, now - usage.last_heartbeat)))
            if usage.idle_since is not None:
                idle_seconds.append(max(0.0, now - usage.idle_since))
            node_total = usage.total if usage.total is not None else _type_resources(config, view.node_type)
            totals.append(node_total)
            for name, amount in node_total.units.items():
                total[name] += amount
                free = usage.available.units.get(name, 0)
                used[name] += max(0, amount - free)
        # The summary shows the cluster after acting: launched nodes are pending, terminated ones gone.
        for node_type, count in (node_requests or {}).items():
            node_counts[node_type] += count
            worker_types[node_type] += count
            pending[(node_type, NodeState.REQUESTED.value)] += count
        terminations = tuple(terminations)
        states = {view.id: view for view in decision.nodes}
        for item in terminations:
            gone = states.get(item.node_id)
            if gone is None or not gone.state.live:
                continue
            node_counts[gone.node_type] -= 1
            worker_types[gone.node_type] -= 1
            if gone.state is NodeState.RUNNING:
                healthy[gone.node_type] -= 1
            else:
                pending[(gone.node_type, gone.state.value)] -= 1
        heartbeats.sort(key=lambda item: (-item[1], item[0]))
        result = decision.scheduling
        return cls(
            cluster_name=config.cluster_name,
            now=now,
            worker_nodes=sum(worker_types.values()),
            most_delayed_heartbeats=tuple(heartbeats[:5]),
            node_idle_seconds=Stat.of(idle_seconds),
            time_since_last_heartbeat=Stat.of([seconds for _, seconds in heartbeats]),
            resource_usage=tuple(
                (name, used[name] / UNITS_PER_ONE, total[name] / UNITS_PER_ONE) for name in sorted(total)
            ),
            worker_node_types={name: count for name, count in sorted(worker_types.items()) if count > 0},
            cluster_resources=tuple(totals),
            node_counts={name: count for name, count in sorted(node_counts.items()) if count > 0},
            healthy={name: count for name, count in sorted(healthy.items()) if count > 0},
            pending=tuple((t, s, c) for (t, s), c in sorted(pending.items()) if c > 0),
            placement_group_demands=decision.load.placement_groups,
            resource_demands=decision.load.demands,
            resource_requests=decision.load.resource_requests,
            unfulfilled=result.unfulfilled if result is not None else (),
            node_requests=dict(sorted((node_requests or {}).items())),
            deferred=dict(sorted(decision.deferred.items())),
            terminations=terminations,
            recent_failures=decision.memory.recent_failures,
            backoff={name: item for name, item in sorted(decision.memory.backoff.items()) if item.until > now},
            held_back=decision.hold_reason,
            errors=tuple(errors),
        )

    # -- the monitor block (Ray's operator logs) --------------------------------------

    def monitor_lines(self) -> list[str]:
        """The monitor block, one string per line, in the seed's order and wording."""
        idle = self.node_idle_seconds.render() if self.node_idle_seconds else "Min=0 Mean=0 Max=0"
        heartbeat = self.time_since_last_heartbeat.render() if self.time_since_last_heartbeat else "Min=0 Mean=0 Max=0"
        delayed = "{" + ", ".join(f"{key!r}: {seconds!r}" for key, seconds in self.most_delayed_heartbeats) + "}"
        lines = [
            f"Cluster status: {self.worker_nodes} nodes",
            f" - MostDelayedHeartbeats: {delayed}",
            f" - NodeIdleSeconds: {idle}",
            f" - ResourceUsage: {_usage_line(self.resource_usage)}",
            f" - TimeSinceLastHeartbeat: {heartbeat}",
            "Worker node types:",
            *(f" - {name}: {count}" for name, count in self.worker_node_types.items()),
            f"Cluster resources: {_cluster_resources(self.cluster_resources)}",
            f"Node counts: {dict(self.node_counts)!r}",
            f"Placement group demands: {_pg_list(self.placement_group_demands)}",
            f"Resource demands: {_shape_list((d.shape, d.count) for d in self.resource_demands)}",
            f"Unfulfilled demands: {_unfulfilled_list(self.unfulfilled)}",
            f"Node requests: {dict(self.node_requests)!r}",
        ]
        return lines

    def render_monitor(self, prefix: str = "") -> str:
        """The monitor block as text; ``prefix`` (``"<cluster>:"``) starts every line."""
        return "\n".join(prefix + line for line in self.monitor_lines())

    # -- ray status --------------------------------------------------------------------

    def render_status(self) -> str:
        """A ``ray status``-style summary: nodes, failures, usage and demands."""
        when = datetime.datetime.fromtimestamp(self.now, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        rule = "-" * 63
        lines = [f"======== Autoscaler status: {when} ========", "Node status", rule, "Healthy:"]
        lines += [f" {count} {name}" for name, count in self.healthy.items()] or [" (no healthy nodes)"]
        lines.append("Pending:")
        pending = [f" {name}, {count} {state}" for name, state, count in self.pending]
        pending += [f" {name}, {count} waiting (upscaling speed)" for name, count in self.deferred.items()]
        lines += pending or [" (no pending nodes)"]
        lines.append("Recent failures:")
        failures = [
            f" {item.node_type}: {item.kind} x{item.count} at {_clock(item.at)}: {item.reason}"
            for item in self.recent_failures
        ]
        failures += [
            f" {name}: backing off until {_clock(item.until)} ({item.failures} failure(s) in a row)"
            for name, item in self.backoff.items()
        ]
        lines += failures or [" (no failures)"]
        if self.terminations:
            lines.append("Terminating:")
            lines += [f" {t.node_id} ({t.node_type}): {t.reason.value}, {t.detail}" for t in self.terminations]
        if self.held_back:
            lines.append(f"Terminations held back: {self.held_back}")
        if self.errors:
            lines.append("Errors:")
            lines += [f" {error}" for error in self.errors]
        lines += ["", "Resources", rule, "Usage:"]
        lines += [f" {_usage_item(name, u, t)}" for name, u, t in self.resource_usage] or [" (no resources)"]
        lines += ["", "Demands:"]
        demands = [f" {_shape(d.shape)}: {d.count}+ pending tasks/actors" for d in self.resource_demands]
        demands += [
            f" {_bundles(pg.bundles)} ({pg.strategy.value}): {pg.count}+ pending placement groups"
            for pg in self.placement_group_demands
        ]
        demands += [f" {_shape(r.shape)}: {r.count} from request_resources()" for r in self.resource_requests]
        lines += demands or [" (no resource demands)"]
        if self.unfulfilled:
            lines.append("Unfulfilled:")
            lines += [f" {_unfulfilled_item(u)}: {u.count} ({u.reason.value}: {u.detail})" for u in self.unfulfilled]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for ``--output json`` and status reporting)."""
        return {
            "cluster_name": self.cluster_name,
            "now": self.now,
            "worker_nodes": self.worker_nodes,
            "node_counts": dict(self.node_counts),
            "healthy": dict(self.healthy),
            "pending": [{"type": t, "state": s, "count": c} for t, s, c in self.pending],
            "resource_usage": {name: {"used": u, "total": t} for name, u, t in self.resource_usage},
            "node_requests": dict(self.node_requests),
            "deferred": dict(self.deferred),
            "terminations": [
                {"node_id": t.node_id, "type": t.node_type, "reason": t.reason.value, "detail": t.detail}
                for t in self.terminations
            ],
            "recent_failures": [
                {"at": f.at, "type": f.node_type, "kind": f.kind, "reason": f.reason, "count": f.count}
                for f in self.recent_failures
            ],
            "backoff": {name: {"until": b.until, "failures": b.failures} for name, b in self.backoff.items()},
            "unfulfilled": [u.to_dict() for u in self.unfulfilled],
            "held_back": self.held_back,
            "errors": list(self.errors),
        }


def _type_resources(config: AutoscalerConfig, node_type: str) -> Resources:
    item = config.node_types.get(node_type)
    return item.node_type.resources if item is not None else Resources()


def _clock(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime("%H:%M:%S")


def _ray_number(value: float) -> float:
    return float(round(value, 2))


def _usage_item(name: str, used: float, total: float) -> str:
    if name in _GIB_RESOURCES:
        return f"{_ray_number(used / 2**30)} GiB/{_ray_number(total / 2**30)} GiB {name}"
    return f"{_ray_number(used)}/{_ray_number(total)} {name}"


def _usage_line(usage: Sequence[tuple[str, float, float]]) -> str:
    return ", ".join(_usage_item(name, used, total) for name, used, total in usage)


def _float_dict(resources: Resources) -> dict[str, float]:
    return {name: float(amount) for name, amount in resources.items()}


def _shape(resources: Resources) -> str:
    return repr(_float_dict(resources))


def _bundles(bundles: Sequence[Resources]) -> str:
    counts = Counter(bundles)
    return " + ".join(f"{_shape(shape)} * {count}" for shape, count in sorted(counts.items()))


def _cluster_resources(totals: Sequence[Resources]) -> str:
    listed = ", ".join(_shape(item) for item in totals[:CLUSTER_RESOURCES_LISTED])
    more = len(totals) - CLUSTER_RESOURCES_LISTED
    return f"[{listed}{f', ... {more} more' if more > 0 else ''}]"


def _shape_list(items: Iterable[tuple[Resources, int]]) -> str:
    return "[" + ", ".join(f"{_shape(shape)} * {count}" for shape, count in items) + "]"


def _pg_list(groups: Sequence[PlacementGroup]) -> str:
    return "[" + ", ".join(f"{_bundles(pg.bundles)} ({pg.strategy.value}) * {pg.count}" for pg in groups) + "]"


def _unfulfilled_item(item: Unfulfilled) -> str:
    if item.shape is not None:
        return _shape(item.shape)
    return f"{item.pg or 'placement group'} {_bundles(item.bundles)} ({item.strategy})"


def _unfulfilled_list(items: Sequence[Unfulfilled]) -> str:
    return "[" + ", ".join(f"{_unfulfilled_item(item)} * {item.count}" for item in items) + "]"
