"""The harness: run a suite of scenarios through strategies, and traces through policies
and strategies (the autoscaler step on the simulator, with each strategy's scheduler).

:func:`run_bench` returns one JSON-able document (``meta``, ``scenarios``, ``traces``,
``summary``); :mod:`rayk8s.bench._report` renders it as markdown and plots it.
"""

from __future__ import annotations

import importlib.util
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from rayk8s.autoscaler import SchedulingRequest, schedule, verify
from rayk8s.bench._scenarios import FULL_GRID, QUICK_GRID, BenchScenario, generate
from rayk8s.bench._strategies import STRATEGIES, Decision, Strategy, demand_units
from rayk8s.bench._traces import COMPARE_POLICIES, POLICIES, TRACE_FAMILIES, Policy, apply_policy, generate_trace
from rayk8s.simulate import simulate

__all__ = ["SUITES", "Suite", "run_bench", "run_scenario", "run_trace"]

Progress = Callable[[str], None]


@attrs.frozen
class Suite:
    """What a suite runs: scheduler scenarios ``(family, demand units, existing nodes)``,
    trace families at ``trace_scale``, the ``policies`` swept over them with the reference
    strategy (rayk8s's default), the ``compare_policies`` under which every other strategy
    that can drive the autoscaler runs them too, and how long to keep re-running a decision
    to take the median of its time (``timing_budget_s``; 0: once)."""

    name: str
    scenarios: tuple[tuple[str, int, int], ...]
    traces: tuple[str, ...]
    trace_scale: str
    policies: tuple[Policy, ...]
    timing_budget_s: float
    compare_policies: tuple[Policy, ...] = ()


SUITES: dict[str, Suite] = {
    # CI: every scheduler family at 100 demands, every trace family at 20 minutes, two policies.
    "quick": Suite(
        "quick",
        tuple(case for case in QUICK_GRID if case[1] == 100),
        tuple(TRACE_FAMILIES),
        "quick",
        POLICIES["quick"],
        0.0,
        COMPARE_POLICIES["quick"],
    ),
    # benchmarks/RESULTS.md: 100 to 100,000 demands, two-hour traces, nine policies,
    # the other strategies under three of them.
    "full": Suite("full", FULL_GRID, tuple(TRACE_FAMILIES), "full", POLICIES["full"], 1.0, COMPARE_POLICIES["full"]),
}

#: The strategy that runs every policy of a suite on the traces (when it is chosen).
REFERENCE = "rayk8s"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _decide(strategy: Strategy, request: SchedulingRequest, budget_s: float) -> Decision:
    """Decide once, and again while ``budget_s`` lasts (at most 5 runs); the median time."""
    decision = strategy.decide(request)
    times = [decision.elapsed_ms]
    while sum(times) / 1000 < budget_s and len(times) < 5:
        times.append(strategy.decide(request).elapsed_ms)
    return attrs.evolve(decision, elapsed_ms=statistics.median(times))


def _ratio(cost: float, bound: float | None) -> float | None:
    if bound is None:
        return None
    if bound <= 1e-9:
        return 1.0 if cost <= 1e-9 else math.inf
    return cost / bound


def run_scenario(
    scenario: BenchScenario,
    strategies: Sequence[Strategy],
    *,
    bound: bool = True,
    timing_budget_s: float = 0.0,
) -> dict[str, Any]:
    """One scenario through every strategy: a JSON-able row.

    The lower bound (scipy) is the least cost of any plan that places what rayk8s's default
    decision placed (:func:`rayk8s.bench._bound.lower_bound`); it holds for every strategy
    here, so ``cost / bound`` compares them on one scale. A strategy that places less can
    come in under 1.
    """
    request = scenario.request
    row: dict[str, Any] = {
        "scenario": scenario.name,
        "family": scenario.family,
        "size": scenario.size,
        "demands": demand_units(request),
        "existing": scenario.existing,
        "shapes": scenario.distinct_shapes,
        "strategies": {},
    }
    bound_value: float | None = None
    if bound and _has("scipy"):
        from rayk8s.bench._bound import lower_bound, placed_from_result

        lb = lower_bound(request, placed_from_result(request, schedule(request)))
        bound_value = lb.value
        row["bound"] = {"value": lb.value, "lp": lb.lp, "integral": lb.integral, "status": lb.status}
    for strategy in strategies:
        entry: dict[str, Any]
        if not strategy.available():
            entry = {"skipped": f"needs {strategy.requires}"}
        elif strategy.max_units is not None and scenario.size > strategy.max_units:
            entry = {"skipped": f"too slow above {strategy.max_units:,} demands"}
        else:
            decision = _decide(strategy, request, timing_budget_s)
            entry = {
                "ms": decision.elapsed_ms,
                "nodes": decision.nodes,
                "cost": decision.cost,
                "ratio": _ratio(decision.cost, bound_value),
                "unfulfilled": decision.unfulfilled,
                "estimated": decision.estimated,
                "launch": dict(sorted(decision.launch.items())),
            }
            if decision.note:
                entry["note"] = decision.note
            if decision.result is not None:
                entry["violations"] = verify(decision.decided or request, decision.result)
        row["strategies"][strategy.name] = entry
    return row


_PROMISED = (
    "time_to_fulfil_p50_s",
    "time_to_fulfil_p95_s",
    "time_to_fulfil_mean_s",
    "node_hours",
    "idle_node_hours",
    "cost",
    "launches",
    "terminations",
    "peak_nodes",
    "unfulfilled_at_end",
    "launch_failures",
    "arrived",
    "placed",
    "errors",
)


def run_trace(
    family: str, policy: Policy, *, scale: str, seed: int, strategy: Strategy | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One trace under one policy on the simulator, the autoscaler asking ``strategy``'s
    scheduler (default: rayk8s's): its JSON-able row and the full timeline."""
    chosen = strategy or STRATEGIES[REFERENCE]
    if chosen.scheduler is None:
        raise ValueError(f"strategy {chosen.name!r} gives no full scheduling result, so it cannot drive traces")
    trace = apply_policy(generate_trace(family, scale, seed), policy)
    result = simulate(trace, scheduler=chosen.scheduler)
    row = {
        "trace": family,
        "strategy": chosen.name,
        "policy": policy.name,
        "upscaling_speed": policy.upscaling_speed,
        "idle_timeout_minutes": policy.idle_timeout_minutes,
        "duration_s": trace.duration_s,
        "step_s": trace.step_s,
        "summary": {key: result.summary[key] for key in _PROMISED},
        "sim_s": result.elapsed_s,
        # one point a minute keeps the JSON small; the plots use the full timeline
        "timeline": [
            {"t": e["t"], "nodes": sum(e["nodes"].values()), "pending_demands": e["pending_demands"]}
            for e in result.timeline
            if e["t"] % 60 == 0
        ],
    }
    return row, result.timeline


def _summary(rows: list[dict[str, Any]], names: Iterable[str]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for name in names:
        ran = [r for r in rows if "cost" in r["strategies"].get(name, {})]
        ratios = [r["strategies"][name]["ratio"] for r in ran if r["strategies"][name]["ratio"] is not None]
        checked = [r for r in ran if "violations" in r["strategies"][name]]
        cheapest = 0
        for r in ran:
            # cheapest among the plans that leave no more unplaced than the best one does
            entries = [e for e in r["strategies"].values() if "cost" in e]
            least = min(e["unfulfilled"] for e in entries)
            mine = r["strategies"][name]
            if (
                mine["unfulfilled"] <= least
                and mine["cost"] <= min(e["cost"] for e in entries if e["unfulfilled"] <= least) + 1e-9
            ):
                cheapest += 1
        per[name] = {
            "scenarios": len(ran),
            "skipped": sum(1 for r in rows if "skipped" in r["strategies"].get(name, {})),
            "mean_ratio": statistics.fmean(ratios) if ratios and all(map(math.isfinite, ratios)) else None,
            "max_ratio": max(ratios) if ratios else None,
            "cheapest": cheapest,
            "unfulfilled": sum(r["strategies"][name]["unfulfilled"] for r in ran),
            "median_ms": statistics.median(r["strategies"][name]["ms"] for r in ran) if ran else None,
            "checked": len(checked),
            "violations": sum(len(r["strategies"][name]["violations"]) for r in checked),
        }
    return per


def trace_runs(spec: Suite, strategies: Sequence[Strategy]) -> list[tuple[Strategy, Policy]]:
    """Which strategy runs the traces under which policy: the reference (rayk8s's default
    when chosen, else the first chosen strategy that can drive the autoscaler) under every
    policy of the suite, every other such strategy under the suite's ``compare_policies``.
    Strategies without a full result (Ray's) sit the traces out."""
    able = [s for s in strategies if s.scheduler is not None and s.available()]
    if not able:
        return []
    reference = next((s for s in able if s.name == REFERENCE), able[0])
    runs = [(reference, policy) for policy in spec.policies]
    for strategy in able:
        if strategy is not reference:
            runs += [(strategy, policy) for policy in spec.compare_policies]
    return runs


def _trace_summary(rows: list[dict[str, Any]], reference: str | None) -> dict[str, Any]:
    """Per strategy, over the (trace, policy) runs every strategy made: totals, and cost and
    node-hours relative to the reference strategy on the same runs."""
    by_run: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_run.setdefault((row["trace"], row["policy"]), {})[row["strategy"]] = row["summary"]
    names = list(dict.fromkeys(row["strategy"] for row in rows))
    shared = [run for run, entries in by_run.items() if len(entries) == len(names)]
    per: dict[str, Any] = {}
    for name in names:
        items = [by_run[run][name] for run in shared]
        p95 = [s["time_to_fulfil_p95_s"] for s in items if s["time_to_fulfil_p95_s"] is not None]
        mean = [s["time_to_fulfil_mean_s"] for s in items if s["time_to_fulfil_mean_s"] is not None]
        entry: dict[str, Any] = {
            "runs": len(items),
            "cost": sum(s["cost"] for s in items),
            "node_hours": sum(s["node_hours"] for s in items),
            "idle_node_hours": sum(s["idle_node_hours"] for s in items),
            "launches": sum(s["launches"] for s in items),
            "terminations": sum(s["terminations"] for s in items),
            "mean_fulfil_p95_s": statistics.fmean(p95) if p95 else None,
            "mean_fulfil_mean_s": statistics.fmean(mean) if mean else None,
            "unfulfilled_at_end": sum(s["unfulfilled_at_end"] for s in items),
            "errors": sum(s["errors"] for s in items),
        }
        if reference is not None and reference in names:
            ratios = [
                by_run[run][name]["cost"] / by_run[run][reference]["cost"]
                for run in shared
                if by_run[run][reference]["cost"] > 1e-9
            ]
            entry["cost_vs_reference"] = statistics.fmean(ratios) if ratios else None
        per[name] = entry
    return per


def run_bench(
    suite: str | Suite = "quick",
    *,
    strategies: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    traces: Sequence[str] | None = None,
    seed: int = 0,
    bound: bool = True,
    scenarios_on: bool = True,
    traces_on: bool = True,
    progress: Progress | None = None,
    keep_timelines: bool = False,
) -> dict[str, Any]:
    """Run a suite; the JSON-able document. ``keep_timelines`` also returns the full
    per-step timelines under ``"_timelines"`` (for the plots; not JSON-worthy)."""
    spec = SUITES[suite] if isinstance(suite, str) else suite
    chosen = [STRATEGIES[name] for name in (strategies or list(STRATEGIES))]
    say = progress or (lambda _: None)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if scenarios_on:
        for family, size, existing in spec.scenarios:
            if families is not None and family not in families:
                continue
            scenario = generate(family, size, existing, seed)
            row = run_scenario(scenario, chosen, bound=bound, timing_budget_s=spec.timing_budget_s)
            rows.append(row)
            bad = sum(len(e.get("violations", ())) for e in row["strategies"].values())
            say(f"[{time.perf_counter() - started:6.1f}s] {scenario.name}" + (f" — {bad} VIOLATIONS" if bad else ""))
    scenarios_s = time.perf_counter() - started
    trace_rows: list[dict[str, Any]] = []
    timelines: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    runs = trace_runs(spec, chosen)
    if traces_on:
        for family in spec.traces:
            if traces is not None and family not in traces:
                continue
            for strategy, policy in runs:
                trace_row, timeline = run_trace(family, policy, scale=spec.trace_scale, seed=seed, strategy=strategy)
                trace_rows.append(trace_row)
                if keep_timelines:
                    timelines[(family, strategy.name, policy.name)] = timeline
                say(f"[{time.perf_counter() - started:6.1f}s] trace {family}: {strategy.name} with {policy.name}")
    ray_version = None
    if _has("ray"):
        from rayk8s.bench._ray_v1 import ray_version as version

        ray_version = version()
    document: dict[str, Any] = {
        "meta": {
            "suite": spec.name,
            "seed": seed,
            "python": platform.python_version(),
            "ray": ray_version,
            "bound": bool(bound and _has("scipy")),
            "bound_off_reason": None if bound and _has("scipy") else ("--no-bound" if not bound else "needs scipy"),
            "strategies": {s.name: s.description for s in chosen},
            "policies": [p.name for p in spec.policies],
            "compare_policies": [p.name for p in spec.compare_policies],
            "trace_strategies": list(dict.fromkeys(strategy.name for strategy, _ in runs)),
            "trace_reference": runs[0][0].name if runs else None,
            "trace_scale": spec.trace_scale,
            "wall_s": time.perf_counter() - started,
            "scenarios_s": scenarios_s,
            "traces_s": time.perf_counter() - started - scenarios_s,
        },
        "scenarios": rows,
        "traces": trace_rows,
        "summary": {
            "strategies": _summary(rows, [s.name for s in chosen]),
            "traces": _trace_summary(trace_rows, runs[0][0].name if runs else None),
        },
    }
    if keep_timelines:
        document["_timelines"] = timelines
    return document
