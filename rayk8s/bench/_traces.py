"""Seeded trace generators and the autoscaling policies swept over them on the simulator.

Every generator takes a :class:`random.Random` (seeded from the family, the scale and the
suite seed, so a trace is the same on every machine) and a :class:`TraceScale`, and
returns a :class:`~rayk8s.simulate.Trace`. Arrivals are binned per minute.

Families:

``bursty``
    Quiet stretches broken by bursts (exponential gaps, 8 minutes on average) of a few
    hundred short CPU tasks — the shape of batch jobs submitted by hand.
``diurnal``
    A day compressed into the trace: the arrival rate follows a sine between a tenth and
    the whole of its peak; mixed CPU and memory shapes of a few minutes each.
``long-tailed``
    A steady arrival rate of one-CPU tasks whose durations are Pareto-distributed
    (shape 1.2, 30 s minimum, capped at an hour): most finish fast, a few hold a node for
    very long, which is what makes idle timeouts and bin choice matter.
``gpu-scarcity``
    GPU work beyond what the cloud will give: the cheap GPU type has a quota below its
    ``max_workers`` and a 30% launch-failure rate, a dearer one is the fallback; CPU work
    alongside. Shows back-off, fallback and time to fulfil under scarcity.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable

import attrs

from rayk8s.autoscaler import NodeType, Resources
from rayk8s.simulate import Arrival, Trace, TraceNodeType

__all__ = ["POLICIES", "TRACE_FAMILIES", "Policy", "TraceScale", "apply_policy", "generate_trace", "policies"]

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
FULL = TraceScale("full", duration_s=2 * 3600, step_s=2, rate=1.0)
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


def diurnal(rng: random.Random, scale: TraceScale, seed: int) -> Trace:
    items: list[tuple[float, Resources, float]] = []
    period = scale.duration_s
    peak = 40.0 * scale.rate  # tasks per minute at the peak
    for minute in range(int(scale.duration_s // 60)):
        t = minute * 60.0
        level = 0.1 + 0.9 * (1 - math.cos(2 * math.pi * t / period)) / 2
        for _ in range(_poisson(rng, peak * level)):
            items.append((t, _pick(rng, _MIXED), float(rng.choice((120, 240, 300, 600)))))
    return _trace(scale, seed, dict(CPU_TYPES), _arrivals(items))


def long_tailed(rng: random.Random, scale: TraceScale, seed: int) -> Trace:
    items: list[tuple[float, Resources, float]] = []
    rate = 12.0 * scale.rate
    shape = Resources({"CPU": 1, "memory": 2 * GI})
    for minute in range(int(scale.duration_s * 0.75 // 60)):
        for _ in range(_poisson(rng, rate)):
            duration = min(3600.0, 30.0 * rng.paretovariate(1.2))
            items.append((minute * 60.0, shape, float(round(duration, -1) or 30)))
    return _trace(scale, seed, dict(CPU_TYPES), _arrivals(items))


def gpu_scarcity(rng: random.Random, scale: TraceScale, seed: int) -> Trace:
    types = {
        "cpu-16": CPU_TYPES["cpu-16"],
        "gpu-1": _type(
            "gpu-1", {"CPU": 8, "GPU": 1, "memory": 60 * GI}, 1.20, max_workers=24, delay=120, failure=0.3, quota=6
        ),
        "gpu-4": _type("gpu-4", {"CPU": 32, "GPU": 4, "memory": 240 * GI}, 5.50, max_workers=3, delay=180),
    }
    gpu_task = Resources({"CPU": 4, "GPU": 1, "memory": 16 * GI})
    cpu_task = Resources({"CPU": 2, "memory": 4 * GI})
    items: list[tuple[float, Resources, float]] = []
    for minute in range(int(scale.duration_s * 0.7 // 60)):
        t = minute * 60.0
        for _ in range(_poisson(rng, 2.5 * scale.rate + 0.2)):
            items.append((t, gpu_task, float(rng.choice((300, 600, 900)))))
        for _ in range(_poisson(rng, 8 * scale.rate)):
            items.append((t, cpu_task, float(rng.choice((60, 120, 240)))))
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
