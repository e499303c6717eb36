"""Seeded trace generators and the autoscaling policies swept over them on the simulator.

Every generator takes a :class:`random.Random` (seeded from the family, the scale and the
suite seed, so a trace is the same on every machine) and a :class:`TraceScale`, and
returns a :class:`~rayk8s.simulate.Trace`. Arrivals are binned per minute.

Families, each built so the policies swept (upscaling speed 0.5 to 4, idle timeout 1 to
15 minutes) trade something real against each other — docs/benchmarks.md has the table:

``bursty``
    Quiet stretches broken by bursts (exponential gaps, 8 minutes on average) of a few
    hundred short CPU tasks — batch jobs submitted by hand. A burst needs tens of nodes at
    once (upscaling speed: wait against peak nodes); the gaps straddle the idle timeouts
    (keep the nodes for the next burst, or give them back and launch again).
``diurnal``
    A working day squeezed into the trace: a quiet night, the morning's queued work landing
    at once and the day's rate behind it (a ramp steeper than a slow upscaling speed
    follows), a lunch dip of about ten minutes (between the idle timeouts), the afternoon,
    a quiet evening. Mixed CPU and memory shapes of a few minutes each.
``long-tailed``
    Jobs of a few hundred one-CPU tasks with Pareto durations (shape 1.2, 30 s minimum,
    capped at 40 minutes), a gap of 3 to 15 minutes between jobs: each job needs many
    nodes at once, most tasks finish fast and a few stragglers pin nodes long after, so
    the idle timeout decides whether the nodes the next job needs are still there.
``gpu-scarcity``
    Bursts of GPU jobs, more than the cheap GPU type's quota holds, with pauses around the
    idle timeouts; the cheap type also fails 30% of launches and takes 150 s to start, a
    dearer four-GPU type is the fallback; a few long GPU jobs and CPU work alongside. A
    patient policy (long idle timeout) keeps the scarce nodes between bursts: fewer
    launches, fewer failures, shorter waits, more idle GPU hours; an eager one gives them
    back and fights the quota and the failures again at every burst.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable

import attrs

from rayk8s.autoscaler import NodeType, Resources
from rayk8s.simulate import Arrival, Trace, TraceNodeType

__all__ = [
    "COMPARE_POLICIES",
    "POLICIES",
    "TRACE_FAMILIES",
    "Policy",
    "TraceScale",
    "apply_policy",
    "generate_trace",
    "policies",
]

GI = 2**30


@attrs.frozen
class TraceScale:
    """How big a generated trace is: simulated ``duration_s``, the simulator's ``step_s``,
    and ``rate``, a multiplier on the arrival rate."""

    name: str
    duration_s: float
    step_s: float
    rate: float


QUICK = TraceScale("quick", duration_s=20 * 60, step_s=5, rate=0.3)
FULL = TraceScale("full", duration_s=2 * 3600, step_s=5, rate=1.0)
SCALES = {QUICK.name: QUICK, FULL.name: FULL}


@attrs.frozen
class Policy:
    """The autoscaling policy a trace is run with: ``upscaling_speed`` (Ray's; launch at most
    ``max(5, speed x running)`` nodes per type at once) and ``idle_timeout_minutes``."""

    upscaling_speed: float
    idle_timeout_minutes: float

    @property
    def name(self) -> str:
        return f"up{self.upscaling_speed:g}-idle{self.idle_timeout_minutes:g}m"


def apply_policy(trace: Trace, policy: Policy) -> Trace:
    """``trace`` with ``policy``'s settings (per-type idle timeouts are left as they are)."""
    return attrs.evolve(trace, upscaling_speed=policy.upscaling_speed, idle_timeout_minutes=policy.idle_timeout_minutes)


#: The policies swept per suite: Ray's defaults and the corners around them.
POLICIES: dict[str, tuple[Policy, ...]] = {
    "quick": (Policy(1.0, 5.0), Policy(4.0, 1.0)),
    "full": tuple(Policy(speed, idle) for speed in (0.5, 1.0, 4.0) for idle in (1.0, 5.0, 15.0)),
}


#: The policies under which every strategy that can drive the autoscaler runs each trace
#: (the reference strategy, rayk8s's default, runs all of :data:`POLICIES`): Ray's
#: defaults, and in the full suite a patient and an eager corner too.
COMPARE_POLICIES: dict[str, tuple[Policy, ...]] = {
    "quick": (Policy(1.0, 5.0),),
    "full": (Policy(0.5, 15.0), Policy(1.0, 5.0), Policy(4.0, 1.0)),
}


def policies(suite: str) -> tuple[Policy, ...]:
    return POLICIES[suite]


def _type(
    name: str,
    resources: dict[str, float],
    cost: float,
    *,
    max_workers: int | None = None,
    delay: float = 45.0,
    failure: float = 0.0,
    quota: int | None = None,
) -> TraceNodeType:
    return TraceNodeType(
        NodeType(name, resources, max_workers=max_workers, cost=cost),
        launch_delay_s=delay,
        launch_failure_rate=failure,
        quota=quota,
    )


CPU_TYPES = {
    "cpu-4": _type("cpu-4", {"CPU": 4, "memory": 16 * GI}, 0.20, max_workers=100, delay=40),
    "cpu-16": _type("cpu-16", {"CPU": 16, "memory": 64 * GI}, 0.77, max_workers=40, delay=60),
    "highmem-16": _type("highmem-16", {"CPU": 16, "memory": 128 * GI}, 1.01, max_workers=20, delay=60),
}


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method below 30, a rounded normal above)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _arrivals(items: Iterable[tuple[float, Resources, float]]) -> tuple[Arrival, ...]:
    """Aggregate ``(at, shape, duration)`` tasks into arrivals of equal minute, shape and duration."""
    counts: Counter[tuple[float, Resources, float]] = Counter(items)
    return tuple(
        Arrival(at=at, shape=shape, count=count, duration_s=duration)
        for (at, shape, duration), count in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][2]))
    )


def _trace(scale: TraceScale, seed: int, node_types: dict[str, TraceNodeType], arrivals: tuple[Arrival, ...]) -> Trace:
    return Trace(
        node_types=node_types,
        duration_s=scale.duration_s,
        step_s=scale.step_s,
        max_workers=150,
        seed=seed,
        arrivals=arrivals,
    )


_SMALL = (
    (6.0, Resources({"CPU": 1, "memory": 2 * GI})),
    (3.0, Resources({"CPU": 2, "memory": 4 * GI})),
    (1.0, Resources({"CPU": 4, "memory": 16 * GI})),
)
_MIXED = (
    *_SMALL,
    (1.0, Resources({"CPU": 2, "memory": 24 * GI})),
    (0.5, Resources({"CPU": 8, "memory": 96 * GI})),
)


def _pick(rng: random.Random, table: tuple[tuple[float, Resources], ...]) -> Resources:
    return rng.choices([shape for _, shape in table], weights=[w for w, _ in table])[0]


def bursty(rng: random.Random, scale: TraceScale, seed: int) -> Trace:
    items: list[tuple[float, Resources, float]] = []
    t = rng.expovariate(1 / 120)
    horizon = scale.duration_s * 0.8
    while t < horizon:
        minute = 60.0 * int(t // 60)
        size = max(20, int(rng.lognormvariate(math.log(250 * scale.rate), 0.5)))
        for _ in range(size):
            items.append((minute, _pick(rng, _SMALL), float(rng.choice((60, 90, 120, 180, 300)))))
        t += rng.expovariate(1 / 480)
    return _trace(scale, seed, dict(CPU_TYPES), _arrivals(items))


def _working_day(fraction: float) -> float:
    """The load of a working day squeezed into the trace, as a share of the peak.

    Night (5%) until 15% of the trace, then the day at the peak, a lunch dip to 10% from
    45% to 53% (about ten minutes of a two-hour trace: between the idle timeouts swept),
    the afternoon at the peak, and the evening back to 5% from 82%.
    """
    if fraction < 0.15 or fraction >= 0.82:
        return 0.05
    if 0.45 <= fraction < 0.53:
        return 0.10
    return 1.0


def diurnal(rng: random.Random, scale: TraceScale, seed: int) -> Trace:
    items: list[tuple[float, Resources, float]] = []
    peak = 50.0 * scale.rate  # tasks per minute at the peak
    minutes = int(scale.duration_s // 60)
    level = 0.0
    for minute in range(minutes):
        t = minute * 60.0
        previous, level = level, _working_day(minute / minutes)
        count = _poisson(rng, peak * level)
        if level > 2 * previous > 0:
            # the morning (and after lunch): the work queued overnight lands at once, a
            # ramp steeper than the upscaling speed lets the cluster follow
            count += int(peak * 5 * level)
        for _ in range(count):
            items.append((t, _pick(rng, _MIXED), float(rng.choice((120, 240, 300, 600)))))
    return _trace(scale, seed, dict(CPU_TYPES), _arrivals(items))


def long_tailed(rng: random.Random, scale: TraceScale, seed: int) -> Trace:
    items: list[tuple[float, Resources, float]] = []
    shape = Resources({"CPU": 1, "memory": 2 * GI})
    t = 60.0
    horizon = scale.duration_s * 0.8
    while t < horizon:
        minute = 60.0 * int(t // 60)
        for _ in range(int(rng.uniform(250, 500) * scale.rate)):
            duration = min(2400.0, 30.0 * rng.paretovariate(1.2))
            items.append((minute, shape, float(round(duration, -1) or 30)))
        # the next job after a gap around the idle timeouts swept (1, 5, 15 minutes)
        t += 60.0 * rng.choice((3, 4, 7, 8, 12, 14)) + rng.uniform(0, 60)
    return _trace(scale, seed, dict(CPU_TYPES), _arrivals(items))


def gpu_scarcity(rng: random.Random, scale: TraceScale, seed: int) -> Trace:
    types = {
        "cpu-16": CPU_TYPES["cpu-16"],
        "gpu-1": _type(
            "gpu-1", {"CPU": 8, "GPU": 1, "memory": 60 * GI}, 1.20, max_workers=24, delay=150, failure=0.3, quota=8
        ),
        "gpu-4": _type("gpu-4", {"CPU": 32, "GPU": 4, "memory": 240 * GI}, 5.50, max_workers=3, delay=180),
    }
    gpu_task = Resources({"CPU": 4, "GPU": 1, "memory": 16 * GI})
    cpu_task = Resources({"CPU": 2, "memory": 4 * GI})
    items: list[tuple[float, Resources, float]] = []
    horizon = scale.duration_s * 0.85
    t = 60.0
    while t < horizon:
        # a burst of GPU jobs, more than the cheap type's quota holds, then a pause around
        # the idle timeouts swept: keeping the scarce nodes pays, giving them back churns,
        # launching fast runs into the quota and the launch failures
        minute = 60.0 * int(t // 60)
        for _ in range(max(2, round(rng.uniform(6, 14) * (0.5 + scale.rate / 2)))):
            items.append((minute, gpu_task, float(rng.choice((180, 240, 300, 420)))))
        t += 60.0 * rng.choice((4, 6, 8, 10, 12)) + rng.uniform(0, 60)
    for minute in range(int(horizon // 60)):
        t = minute * 60.0
        for _ in range(_poisson(rng, 0.3)):  # a few long GPU jobs keep some GPU nodes running
            items.append((t, gpu_task, 900.0))
        for _ in range(_poisson(rng, 4 * scale.rate)):
            items.append((t, cpu_task, float(rng.choice((60, 120, 240)))))
    items.sort(key=lambda item: item[0])
    return _trace(scale, seed, types, _arrivals(items))


#: Trace family name -> generator ``(rng, scale, seed) -> Trace``.
TRACE_FAMILIES: dict[str, Callable[[random.Random, TraceScale, int], Trace]] = {
    "bursty": bursty,
    "diurnal": diurnal,
    "long-tailed": long_tailed,
    "gpu-scarcity": gpu_scarcity,
}


def generate_trace(family: str, scale: str = "quick", seed: int = 0) -> Trace:
    """Generate one trace; the same arguments always give an equal trace."""
    if family not in TRACE_FAMILIES:
        raise KeyError(f"unknown trace family {family!r} (known: {', '.join(TRACE_FAMILIES)})")
    size = SCALES[scale]
    rng = random.Random(f"{seed}:{family}:{size.name}")
    return TRACE_FAMILIES[family](rng, size, seed)
