"""Scheduling strategies the harness compares, each behind one small adapter.

A :class:`Strategy` is a name, a sentence, and ``decide(request) -> Decision``. Strategies
that produce a full :class:`~rayk8s.autoscaler.SchedulingResult` (rayk8s and its variants,
the first-fit-decreasing baseline) hand it back in :attr:`Decision.result`, and the harness
checks it with :func:`~rayk8s.autoscaler.verify`; Ray's schedulers return launch counts
only, so how much of the demand their plan holds is estimated by packing
(:func:`rayk8s.bench._ray_v1.coverage`).

A strategy with a full result can also drive the autoscaler step over time: its
``scheduler`` (``SchedulingRequest -> SchedulingResult``) is passed to the simulator as
``Autoscaler(scheduler=...)``, so traces compare strategies as well as policies. Ray's
adapters have none (a launch count per type is not a placement the step can act on:
which existing nodes to keep, which launches are for placement groups), so they sit out
the traces.

Adding a strategy is one entry in :data:`STRATEGIES`.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable, Mapping

import attrs

from rayk8s.autoscaler import DemandKind, Scheduler, SchedulingRequest, SchedulingResult, schedule
from rayk8s.bench._ffd import first_fit_decreasing

__all__ = ["STRATEGIES", "Decision", "Strategy", "demand_units", "get_strategy", "unfulfilled_units"]


@attrs.frozen
class Decision:
    """One strategy's decision on one request.

    ``launch``: node type -> new nodes; ``cost``: their hourly cost at the request's
    prices; ``elapsed_ms``: the decision alone; ``unfulfilled``: demand units (tasks and
    placement-group bundles) the plan leaves unplaced — exact when ``result`` is given,
    otherwise estimated (``estimated``); ``result``: the full decision when the strategy
    gives one, and ``decided`` the request it answers when a variant changed it (the
    checker checks ``result`` against that); ``note``: anything the reader should know.
    """

    launch: Mapping[str, int]
    cost: float
    elapsed_ms: float
    unfulfilled: int
    result: SchedulingResult | None = None
    decided: SchedulingRequest | None = None
    estimated: bool = False
    note: str = ""

    @property
    def nodes(self) -> int:
        return sum(self.launch.values())


@attrs.frozen
class Strategy:
    """A named way to decide a :class:`~rayk8s.autoscaler.SchedulingRequest`.

    ``requires``: a module that must be importable (``ray``); ``max_units``: on scenarios
    of a nominal size above this many demand units the strategy is skipped as too slow
    (``None``: never); ``scheduler``: the same strategy as a scheduling function the
    autoscaler step can run on (``None``: it gives no full result, so no traces).
    """

    name: str
    description: str
    decide: Callable[[SchedulingRequest], Decision] = attrs.field(repr=False)
    requires: str | None = None
    max_units: int | None = None
    scheduler: Scheduler | None = attrs.field(default=None, repr=False)

    def available(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


def demand_units(request: SchedulingRequest) -> int:
    """Tasks plus placement-group bundles."""
    tasks = sum(d.count for d in request.demands)
    return tasks + sum(len(g.bundles) * g.count for g in request.placement_groups)


def unfulfilled_units(result: SchedulingResult) -> int:
    """Tasks plus placement-group bundles a decision leaves unplaced."""
    total = 0
    for item in result.unfulfilled:
        if item.kind is DemandKind.DEMAND:
            total += item.count
        elif item.kind is DemandKind.PLACEMENT_GROUP:
            total += item.count * len(item.bundles)
    return total


def _timed(
    decide: Callable[[SchedulingRequest], SchedulingResult],
    variant: Callable[[SchedulingRequest], SchedulingRequest] | None = None,
) -> Callable[[SchedulingRequest], Decision]:
    """Run ``decide`` (on ``variant(request)`` when given) and time it; cost at the real prices."""

    def run(request: SchedulingRequest) -> Decision:
        decided = variant(request) if variant is not None else request
        started = time.perf_counter()
        result = decide(decided)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Decision(
            launch=dict(result.launch),
            cost=sum(request.node_types[t].cost * n for t, n in result.launch.items()),
            elapsed_ms=elapsed_ms,
            unfulfilled=unfulfilled_units(result),
            result=result,
            decided=decided if variant is not None else None,
        )

    return run


def _isolated(request: SchedulingRequest) -> SchedulingRequest:
    return attrs.evolve(request, isolate_accelerators=True)


def _unpriced(request: SchedulingRequest) -> SchedulingRequest:
    """Every price 1: the scheduler then minimises the node count."""
    return attrs.evolve(request, node_types={name: attrs.evolve(t, cost=1.0) for name, t in request.node_types.items()})


def _schedule_isolated(request: SchedulingRequest) -> SchedulingResult:
    return schedule(_isolated(request))


def _schedule_unpriced(request: SchedulingRequest) -> SchedulingResult:
    return schedule(_unpriced(request))


def _covered_unfulfilled(request: SchedulingRequest, launch: Mapping[str, int], claimed: int) -> int:
    from rayk8s.bench._ray_v1 import coverage

    units = demand_units(request)
    covered = coverage(request, launch, claimed_units=claimed)
    return max(0, math.floor(units * (1 - covered) + 1e-9))


def _ray_v1(cap: int | None) -> Callable[[SchedulingRequest], Decision]:
    def run(request: SchedulingRequest) -> Decision:
        from rayk8s.bench._ray_v1 import run_ray_v1

        plan = run_ray_v1(request, cap=cap)
        tasks = sum(d.count for d in request.demands)
        claimed = max(0, plan.entries - plan.unfulfilled_entries) + (demand_units(request) - tasks)
        return Decision(
            launch=dict(plan.launch),
            cost=plan.cost,
            elapsed_ms=plan.elapsed_ms,
            unfulfilled=_covered_unfulfilled(request, plan.launch, claimed),
            estimated=True,
            note=f"demand vector capped at {cap} entries" if cap is not None and tasks > cap else "",
        )

    return run


def _ray_v2(request: SchedulingRequest) -> Decision:
    from rayk8s.bench._ray_v2 import run_ray_v2

    plan = run_ray_v2(request)
    claimed = demand_units(request) - plan.infeasible_tasks - plan.infeasible_bundles
    return Decision(
        launch=plan.launch,
        cost=plan.cost,
        elapsed_ms=plan.elapsed_ms,
        unfulfilled=_covered_unfulfilled(request, plan.launch, claimed),
        estimated=True,
    )


#: Ray's AUTOSCALER_MAX_RESOURCE_DEMAND_VECTOR_SIZE default (v1 cuts the demand vector there).
RAY_V1_CAP = 1000

#: Every strategy, by name, in table order.
STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("rayk8s", "rayk8s.autoscaler.schedule(), the default", _timed(schedule), scheduler=schedule),
        Strategy(
            "rayk8s-isolate",
            "rayk8s with isolate_accelerators: plain work never on new accelerator nodes",
            _timed(schedule, _isolated),
            scheduler=_schedule_isolated,
        ),
        Strategy(
            "rayk8s-unpriced",
            "rayk8s with every price set equal (fewest nodes), costed at the real prices",
            _timed(schedule, _unpriced),
            scheduler=_schedule_unpriced,
        ),
        Strategy(
            "ffd",
            "first-fit decreasing; a new node is the cheapest type that holds the item",
            _timed(first_fit_decreasing),
            scheduler=first_fit_decreasing,
        ),
        Strategy(
            "ray-v1",
            f"Ray 2.60 v1 ResourceDemandScheduler as deployed (demand vector capped at {RAY_V1_CAP})",
            _ray_v1(RAY_V1_CAP),
            requires="ray",
        ),
        Strategy(
            "ray-v1-untruncated",
            "Ray 2.60 v1 ResourceDemandScheduler with the whole demand vector",
            _ray_v1(None),
            requires="ray",
            max_units=10_000,
        ),
        Strategy(
            "ray-v2",
            "Ray 2.60 v2 ResourceDemandScheduler.schedule() (the whole demand, by count)",
            _ray_v2,
            requires="ray",
            max_units=1_000,
        ),
    )
}


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; a KeyError names the known ones."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})") from None
