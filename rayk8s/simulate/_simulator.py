"""The time-stepped simulator: the real autoscaler on the fake provider, driven by a trace.

Each step of ``step_s`` virtual seconds:

1. the clock moves to ``t``; the fake provider turns nodes whose launch delay has passed
   into running nodes;
2. the workload (:class:`TraceLoadSource`) finishes tasks whose time is up, admits the
   arrivals due by ``t``, notices nodes that started or went away, and places pending
   tasks and placement groups on running nodes as capacity allows (first fit, in arrival
   order; placement groups whole, by strategy);
3. :meth:`Autoscaler.update` runs once, reading the provider and the workload;
4. the step is recorded (nodes per type, pending demand, launches, terminations).

Launch failures are drawn per node from the type's ``launch_failure_rate`` with a
generator seeded by the trace's ``seed``, so a run is reproducible. The simulated Ray
does not model heartbeats (``last_heartbeat`` is not reported).
"""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs

from rayk8s.autoscaler import (
    Autoscaler,
    LoadSnapshot,
    NodeUsage,
    PlacementGroup,
    PlacementStrategy,
    ResourceDemand,
    Resources,
    Scheduler,
    StatusSummary,
    schedule,
)
from rayk8s.autoscaler._ports import ProviderNodeStatus
from rayk8s.providers.fake import FakeNodeProvider, ManualClock
from rayk8s.simulate._trace import PlacementGroupArrival, Trace

__all__ = ["SimulationResult", "Simulator", "TraceLoadSource", "simulate"]

Units = tuple[tuple[str, int], ...]


class _SimNode:
    __slots__ = ("free", "id", "idle_since", "node_type", "running", "usage")

    def __init__(self, node_id: str, node_type: str, total: Resources, now: float) -> None:
        self.id = node_id
        self.node_type = node_type
        self.free: dict[str, int] = dict(total.units)
        self.running = 0  # task groups and bundles placed here
        self.idle_since: float | None = now
        self.usage: NodeUsage | None = None  # cached; None when stale

    def fits(self, units: Units) -> int:
        free = self.free
        best = -1
        for name, amount in units:
            have = free.get(name, 0) // amount
            if have == 0:
                return 0
            if best < 0 or have < best:
                best = have
        return best

    def take(self, units: Units, times: int, now: float) -> None:
        free = self.free
        for name, amount in units:
            free[name] -= amount * times
        self.running += 1
        self.idle_since = None
        self.usage = None

    def give(self, units: Units, times: int, now: float) -> None:
        free = self.free
        for name, amount in units:
            free[name] += amount * times
        self.running -= 1
        if self.running == 0:
            self.idle_since = now
        self.usage = None


@attrs.define
class _PendingTasks:
    arrived_at: float
    shape: Resources
    units: Units
    count: int
    duration_s: float


@attrs.define
class _PendingGroups:
    arrived_at: float
    arrival: PlacementGroupArrival
    count: int
    name: str


class TraceLoadSource:
    """The simulated Ray cluster's load: the trace's tasks, queued and placed on running nodes.

    A :class:`~rayk8s.autoscaler.LoadSource`: :meth:`load` reports pending demand by
    shape, pending placement groups and per-node usage. :meth:`advance` moves it to
    ``now`` (call it once per step before the autoscaler's update).
    """

    def __init__(self, trace: Trace, provider: FakeNodeProvider, cluster_name: str) -> None:
        self.trace = trace
        self.provider = provider
        self.cluster_name = cluster_name
        self.nodes: dict[str, _SimNode] = {}
        self._arrivals = list(trace.arrivals)
        self._pg_arrivals = list(trace.placement_groups)
        self._next_arrival = 0
        self._next_pg = 0
        self._pending: list[_PendingTasks] = []
        self._pending_groups: list[_PendingGroups] = []
        self._ends: list[tuple[float, int, list[tuple[str, Units, int]]]] = []
        self._sequence = 0
        self._dirty = True
        self.waits: list[tuple[float, int]] = []  # (seconds waited, how many)
        self.arrived = 0
        self.placed = 0
        self.lost = 0

    # -- the LoadSource interface -------------------------------------------------------

    def load(self) -> LoadSnapshot:
        by_shape: Counter[Resources] = Counter()
        for item in self._pending:
            by_shape[item.shape] += item.count
        demands = [ResourceDemand(shape, count) for shape, count in by_shape.items()]
        groups = [
            PlacementGroup(item.arrival.bundles, item.arrival.strategy, item.count, item.name)
            for item in self._pending_groups
        ]
        usage: dict[str, NodeUsage] = {}
        for node in self.nodes.values():
            if node.usage is None:
                node.usage = NodeUsage(node.id, Resources.from_units(node.free), idle_since=node.idle_since)
            usage[node.id] = node.usage
        return LoadSnapshot(demands=demands, placement_groups=groups, nodes=usage)

    # -- the workload ---------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Tasks and placement-group instances waiting for capacity."""
        return sum(item.count for item in self._pending) + sum(item.count for item in self._pending_groups)

    @property
    def busy_nodes(self) -> int:
        return sum(1 for node in self.nodes.values() if node.running)

    def advance(self, now: float) -> None:
        """Finish, admit, notice nodes, and place, as of ``now``."""
        ends = self._ends
        while ends and ends[0][0] <= now:
            _, _, parts = heapq.heappop(ends)
            for node_id, units, times in parts:
                node = self.nodes.get(node_id)
                if node is not None:
                    node.give(units, times, now)
            self._dirty = True
        while self._next_arrival < len(self._arrivals) and self._arrivals[self._next_arrival].at <= now:
            a = self._arrivals[self._next_arrival]
            units = tuple(sorted(a.shape.units.items()))
            self._pending.append(_PendingTasks(now, a.shape, units, a.count, a.duration_s))
            self.arrived += a.count
            self._next_arrival += 1
            self._dirty = True
        while self._next_pg < len(self._pg_arrivals) and self._pg_arrivals[self._next_pg].at <= now:
            g = self._pg_arrivals[self._next_pg]
            self._pending_groups.append(_PendingGroups(now, g, g.count, f"pg{self._next_pg}"))
            self.arrived += g.count
            self._next_pg += 1
            self._dirty = True
        self._sync_nodes(now)
        if self._dirty:
            self._place(now)
            self._dirty = False

    def _sync_nodes(self, now: float) -> None:
        listed = set()
        for pnode in self.provider.nodes().nodes:
            if pnode.status is not ProviderNodeStatus.RUNNING:
                continue
            listed.add(pnode.id)
            if pnode.id not in self.nodes:
                type_name = pnode.node_type or ""
                spec = self.trace.node_types.get(type_name)
                total = spec.node_type.resources if spec is not None else Resources()
                self.nodes[pnode.id] = _SimNode(pnode.id, type_name, total, now)
                self._dirty = True
        if len(listed) != len(self.nodes):
            for node_id in [n for n in self.nodes if n not in listed]:
                if self.nodes[node_id].running:
                    self.lost += 1
                del self.nodes[node_id]

    def _place(self, now: float) -> None:
        open_nodes = [n for n in self.nodes.values() if any(self_free > 0 for self_free in n.free.values())]
        if not open_nodes:
            return
        for group in self._pending_groups:
            while group.count and self._place_group(group.arrival, open_nodes, now):
                group.count -= 1
                self.placed += 1
                self.waits.append((now - group.arrived_at, 1))
        self._pending_groups = [g for g in self._pending_groups if g.count]
        for task in self._pending:
            for node in open_nodes:
                if not task.count:
                    break
                fit = node.fits(task.units)
                if fit <= 0:
                    continue
                times = min(fit, task.count)
                node.take(task.units, times, now)
                self._finish_later(now + task.duration_s, [(node.id, task.units, times)])
                task.count -= times
                self.placed += times
                self.waits.append((now - task.arrived_at, times))
        self._pending = [t for t in self._pending if t.count]

    def _place_group(self, arrival: PlacementGroupArrival, nodes: list[_SimNode], now: float) -> bool:
        bundles = [tuple(sorted(b.units.items())) for b in arrival.bundles]
        plan = _plan_group(bundles, arrival.strategy, nodes)
        if plan is None:
            return False
        parts = []
        for node, units in plan:
            node.take(units, 1, now)
            parts.append((node.id, units, 1))
        self._finish_later(now + arrival.duration_s, parts)
        return True

    def _finish_later(self, at: float, parts: list[tuple[str, Units, int]]) -> None:
        self._sequence += 1
        heapq.heappush(self._ends, (at, self._sequence, parts))


def _plan_group(
    bundles: list[Units], strategy: PlacementStrategy, nodes: list[_SimNode]
) -> list[tuple[_SimNode, Units]] | None:
    """Where each bundle goes (without taking anything), or ``None`` if the group does not fit."""
    if strategy in (PlacementStrategy.PACK, PlacementStrategy.STRICT_PACK):
        total: dict[str, int] = {}
        for units in bundles:
            for name, amount in units:
                total[name] = total.get(name, 0) + amount
        summed = tuple(sorted(total.items()))
        for node in nodes:
            if node.fits(summed) >= 1:
                return [(node, units) for units in bundles]
        if strategy is PlacementStrategy.STRICT_PACK:
            return None
    distinct = strategy in (PlacementStrategy.SPREAD, PlacementStrategy.STRICT_SPREAD)
    plan = _first_fit(bundles, nodes, distinct=distinct)
    if plan is None and strategy is PlacementStrategy.SPREAD:
        plan = _first_fit(bundles, nodes, distinct=False)
    return plan


def _first_fit(bundles: list[Units], nodes: list[_SimNode], *, distinct: bool) -> list[tuple[_SimNode, Units]] | None:
    shadow = {node.id: dict(node.free) for node in nodes}
    used: set[str] = set()
    plan: list[tuple[_SimNode, Units]] = []
    for units in bundles:
        for node in nodes:
            if distinct and node.id in used:
                continue
            free = shadow[node.id]
            if all(free.get(name, 0) >= amount for name, amount in units):
                for name, amount in units:
                    free[name] -= amount
                used.add(node.id)
                plan.append((node, units))
                break
        else:
            return None
    return plan


@attrs.frozen
class SimulationResult:
    """What a simulation measured: ``summary`` (the promised fields and more), the
    per-step ``timeline``, the final autoscaler ``status``, and wall-clock ``elapsed_s``."""

    summary: dict[str, Any]
    timeline: list[dict[str, Any]]
    status: StatusSummary | None
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``rayk8s simulate --output json``."""
        return {"summary": self.summary, "timeline": self.timeline, "stats": {"elapsed_s": self.elapsed_s}}

    def render_text(self) -> str:
        s = self.summary
        lines = [
            f"Simulated {s['duration_s']:g} s in steps of {s['step_s']:g} s ({s['updates']} updates)"
            f" in {self.elapsed_s:.1f} s",
            f"Demand:        {s['arrived']} arrived, {s['placed']} placed,"
            f" {s['unfulfilled_at_end']} unfulfilled at end",
            f"Time to fulfil: p50 {_seconds(s['time_to_fulfil_p50_s'])}, p95 {_seconds(s['time_to_fulfil_p95_s'])},"
            f" mean {_seconds(s['time_to_fulfil_mean_s'])}",
            f"Nodes:         peak {s['peak_nodes']}; {s['launches']} launched, {s['terminations']} terminated,"
            f" {s['launch_failures']} launch failures",
            f"Node-hours:    {s['node_hours']:.2f} (idle {s['idle_node_hours']:.2f}); cost {s['cost']:.2f}",
        ]
        for name, item in s["per_type"].items():
            lines.append(
                f"  {name}: {item['node_hours']:.2f} node-hours, cost {item['cost']:.2f},"
                f" peak {item['peak_nodes']}, {item['launches']} launched"
            )
        if s["errors"]:
            lines.append(f"Autoscaler errors: {s['errors']}")
        return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} s"


def _mean(waits: list[tuple[float, int]]) -> float | None:
    total = sum(count for _, count in waits)
    return sum(wait * count for wait, count in waits) / total if total else None


def _percentile(waits: list[tuple[float, int]], fraction: float) -> float | None:
    total = sum(count for _, count in waits)
    if total == 0:
        return None
    target = fraction * total
    seen = 0
    for wait, count in sorted(waits):
        seen += count
        if seen >= target:
            return wait
    return sorted(waits)[-1][0]  # pragma: no cover - the loop always reaches the target


class Simulator:
    """Run a :class:`Trace` through the real autoscaler on the fake provider.

    ``timeline``: record one entry per step (off saves memory for long benchmarks).
    ``on_step``: called after each step with ``(t, update_result)``. ``scheduler``: the
    scheduling function the autoscaler asks (default :func:`~rayk8s.autoscaler.schedule`),
    to compare schedulers over time on the same trace.
    """

    def __init__(
        self,
        trace: Trace,
        *,
        cluster_name: str = "simulated",
        timeline: bool = True,
        on_step: Callable[[float, Any], None] | None = None,
        scheduler: Scheduler = schedule,
    ) -> None:
        self.trace = trace
        self.clock = ManualClock(0.0)
        self.provider = FakeNodeProvider(
            trace.provider_config(), cluster_name, clock=self.clock, rng=random.Random(trace.seed)
        )
        self.workload = TraceLoadSource(trace, self.provider, cluster_name)
        self.autoscaler = Autoscaler(
            trace.autoscaler_config(cluster_name),
            provider=self.provider,
            load_source=self.workload,
            clock=self.clock,
            scheduler=scheduler,
        )
        self.record_timeline = timeline
        self.on_step = on_step

    def run(self) -> SimulationResult:
        trace = self.trace
        started = time.perf_counter()
        step = trace.step_s
        steps = int(trace.duration_s // step) + 1
        types = list(trace.node_types)
        node_seconds: dict[str, float] = dict.fromkeys(types, 0.0)
        peak_by_type: Counter[str] = Counter()
        launches: Counter[str] = Counter()
        idle_seconds = 0.0
        peak = 0
        terminations = 0
        failures = 0
        errors = 0
        timeline: list[dict[str, Any]] = []
        seen: set[str] = set()
        result = None
        for index in range(steps):
            now = index * step
            self.clock.set(now)
            self.workload.advance(now)
            result = self.autoscaler.update()
            errors += len([e for e in result.errors if e.stage != "launch"])
            failures += sum(o.failed for o in result.launches)
            terminations += len(result.terminations)
            listed = self.provider.nodes().nodes
            counts = Counter(n.node_type or "" for n in listed)
            if self.provider.created_total != len(seen):
                for pnode in listed:
                    if pnode.id not in seen:
                        seen.add(pnode.id)
                        launches[pnode.node_type or ""] += 1
            total_nodes = sum(counts.values())
            peak = max(peak, total_nodes)
            for name, count in counts.items():
                node_seconds[name] = node_seconds.get(name, 0.0) + count * step
                if count > peak_by_type[name]:
                    peak_by_type[name] = count
            idle_seconds += sum(1 for n in self.workload.nodes.values() if not n.running) * step
            if self.record_timeline:
                timeline.append(
                    {
                        "t": now,
                        "nodes": {name: counts.get(name, 0) for name in types},
                        "pending_demands": self.workload.pending_count,
                        "busy_nodes": self.workload.busy_nodes,
                        "launched": sum(o.created for o in result.launches),
                        "launch_failures": sum(o.failed for o in result.launches),
                        "terminated": len(result.terminations),
                    }
                )
            if self.on_step is not None:
                self.on_step(now, result)
        costs = {name: trace.node_types[name].node_type.cost for name in types}
        per_type = {
            name: {
                "node_hours": node_seconds[name] / 3600,
                "cost": node_seconds[name] / 3600 * costs[name],
                "peak_nodes": peak_by_type[name],
                "launches": launches[name],
            }
            for name in types
        }
        waits = self.workload.waits
        summary = {
            "time_to_fulfil_p50_s": _percentile(waits, 0.50),
            "time_to_fulfil_p95_s": _percentile(waits, 0.95),
            "time_to_fulfil_mean_s": _mean(waits),
            "node_hours": sum(node_seconds.values()) / 3600,
            "cost": sum(item["cost"] for item in per_type.values()),
            "idle_node_hours": idle_seconds / 3600,
            "peak_nodes": peak,
            "launches": sum(launches.values()),
            "terminations": terminations,
            "unfulfilled_at_end": self.workload.pending_count,
            "launch_failures": failures,
            "arrived": self.workload.arrived,
            "placed": self.workload.placed,
            "lost_tasks": self.workload.lost,
            "errors": errors,
            "updates": steps,
            "duration_s": trace.duration_s,
            "step_s": step,
            "per_type": per_type,
        }
        elapsed = time.perf_counter() - started
        return SimulationResult(summary, timeline, result.status if result is not None else None, elapsed)


def simulate(trace: Trace, *, timeline: bool = True, scheduler: Scheduler = schedule) -> SimulationResult:
    """Run ``trace`` (with ``scheduler`` deciding what to launch) and return what was measured."""
    return Simulator(trace, timeline=timeline, scheduler=scheduler).run()
