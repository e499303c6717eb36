"""``rayk8s bench``: deterministic generators, a baseline the checker accepts, a quick suite
whose every full decision passes the checker, and well-formed markdown, JSON and PNG output.

No timing is asserted; the harness measures time, the tests do not judge it.
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from rayk8s.autoscaler import (
    NodeType,
    PlacementGroup,
    ResourceDemand,
    ResourceRequest,
    SchedulingRequest,
    UnfulfilledReason,
    verify,
)
from rayk8s.bench import (
    QUICK_GRID,
    STRATEGIES,
    SUITES,
    TRACE_FAMILIES,
    Decision,
    Policy,
    Strategy,
    TraceScale,
    apply_policy,
    generate,
    generate_trace,
    run_trace,
)
from rayk8s.bench._ffd import first_fit_decreasing
from rayk8s.cli import main
from rayk8s.simulate import simulate

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs ray (.[bench])")
needs_plot = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib (.[plot])")

SMALL = NodeType("small", {"CPU": 4}, cost=1.0)
BIG = NodeType("big", {"CPU": 16}, cost=3.0)


# --- generators ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(TRACE_FAMILIES))
def test_trace_generators_are_deterministic_and_seeded(family: str) -> None:
    """The same family, scale and seed give an equal trace; another seed gives another."""
    first = generate_trace(family, "quick", seed=0)
    assert first == generate_trace(family, "quick", seed=0)
    assert first.arrivals, "a trace without arrivals measures nothing"
    assert first.arrivals != generate_trace(family, "quick", seed=1).arrivals


def test_the_quick_suite_has_every_family() -> None:
    """The CI suite covers every scenario family and every trace family."""
    quick = SUITES["quick"]
    assert {family for family, _, _ in quick.scenarios} == {family for family, _, _ in QUICK_GRID}
    assert set(quick.traces) == set(TRACE_FAMILIES)


def test_gpu_scarcity_hits_its_quota_and_its_launch_failures() -> None:
    """The scarce GPU type never runs more nodes than its quota, and launches fail."""
    trace = generate_trace("gpu-scarcity", "quick")
    quota = trace.node_types["gpu-1"].quota
    assert quota is not None and quota < (trace.node_types["gpu-1"].node_type.max_workers or 0)
    result = simulate(trace)
    assert result.summary["per_type"]["gpu-1"]["peak_nodes"] <= quota
    assert result.summary["launch_failures"] > 0


#: Every family at full length and rate, with a coarse 30 s step so a run takes under a second.
SWEEP = TraceScale("test", duration_s=2 * 3600, step_s=30, rate=1.0)


def _sweep(family: str, *policies: Policy) -> list[dict[str, Any]]:
    trace = TRACE_FAMILIES[family](random.Random(f"0:{family}:full"), SWEEP, 0)
    return [simulate(apply_policy(trace, policy), timeline=False).summary for policy in policies]


@pytest.mark.parametrize("family", ["bursty", "diurnal", "long-tailed"])
def test_upscaling_speed_trades_waiting_against_nodes(family: str) -> None:
    """Each of these families ramps faster than a slow upscaling speed follows: an eager speed
    fulfils demand sooner on average than a slow one (same idle timeout)."""
    slow, eager = _sweep(family, Policy(0.5, 5.0), Policy(4.0, 5.0))
    assert eager["time_to_fulfil_mean_s"] < slow["time_to_fulfil_mean_s"]


@pytest.mark.parametrize("family", sorted(TRACE_FAMILIES))
def test_the_idle_timeout_trades_cost_against_churn_and_waiting(family: str) -> None:
    """Every family has gaps near the idle timeouts: a short timeout costs less but launches
    more and keeps work waiting longer than a long one."""
    short, long = _sweep(family, Policy(1.0, 1.0), Policy(1.0, 15.0))
    assert short["cost"] < long["cost"]
    assert short["launches"] > long["launches"]
    assert short["time_to_fulfil_mean_s"] > long["time_to_fulfil_mean_s"]


def test_gpu_scarcity_patience_saves_failed_launches() -> None:
    """Under scarcity a patient policy keeps the GPU nodes it won: fewer launch failures than an eager one."""
    eager, patient = _sweep("gpu-scarcity", Policy(4.0, 1.0), Policy(0.5, 15.0))
    assert patient["launch_failures"] < eager["launch_failures"]


def test_the_idle_timeout_policy_changes_idle_node_hours() -> None:
    """Sweeping the idle timeout is not a no-op: a shorter one leaves fewer idle node-hours."""
    trace = generate_trace("bursty", "quick")
    short = simulate(apply_policy(trace, Policy(1.0, 1.0))).summary
    long = simulate(apply_policy(trace, Policy(1.0, 15.0))).summary
    assert short["idle_node_hours"] < long["idle_node_hours"]
    assert long["terminations"] <= short["terminations"]


# --- the first-fit-decreasing baseline --------------------------------------------------------


def test_ffd_opens_the_cheapest_type_that_holds_the_item() -> None:
    """Ten one-CPU tasks: three small nodes (cost 3), not one big one (also 3, but FFD does not look ahead)."""
    request = SchedulingRequest(node_types=[BIG, SMALL], demands=[ResourceDemand({"CPU": 1}, 10)])
    result = first_fit_decreasing(request)
    assert dict(result.launch) == {"small": 3}
    assert result.cost == pytest.approx(3.0)
    assert verify(request, result) == []


def test_ffd_respects_limits_strategies_and_reports_what_is_left() -> None:
    """STRICT_SPREAD bundles land on distinct nodes; past max_workers the rest is reported."""
    request = SchedulingRequest(
        node_types=[attrs.evolve(SMALL, max_workers=3)],
        demands=[ResourceDemand({"CPU": 4}, 5), ResourceDemand({"CPU": 8}, 1)],
        placement_groups=[PlacementGroup([{"CPU": 1}] * 3, "STRICT_SPREAD")],
        resource_requests=[ResourceRequest({"CPU": 2}, 2)],
    )
    result = first_fit_decreasing(request)
    assert verify(request, result) == []
    assert result.launch == {"small": 3}
    reasons = {(item.kind.value, item.reason) for item in result.unfulfilled}
    assert ("demand", UnfulfilledReason.MAX_WORKERS) in reasons
    assert ("demand", UnfulfilledReason.INFEASIBLE) in reasons


@pytest.mark.parametrize(("family", "size", "existing"), [c for c in QUICK_GRID if c[1] == 1_000])
def test_ffd_decisions_pass_the_checker(family: str, size: int, existing: int) -> None:
    """On every family at 1k demands, the baseline's decision is valid by the independent checker."""
    request = generate(family, size, existing).request
    assert verify(request, first_fit_decreasing(request)) == []


# --- Ray v2 -----------------------------------------------------------------------------------


@needs_ray
def test_ray_v2_plans_the_obvious() -> None:
    """Ray v2's scheduler, on our inputs: four strictly spread bundles need four nodes."""
    from rayk8s.bench._ray_v2 import run_ray_v2

    request = SchedulingRequest(
        node_types=[SMALL], placement_groups=[PlacementGroup([{"CPU": 1}] * 4, strategy="STRICT_SPREAD")]
    )
    plan = run_ray_v2(request)
    assert plan.launch == {"small": 4}
    assert plan.infeasible_groups == 0
    infeasible = run_ray_v2(SchedulingRequest(node_types=[SMALL], demands=[ResourceDemand({"CPU": 8}, 2)]))
    assert infeasible.launch == {}
    assert infeasible.infeasible_tasks == 2


# --- the quick suite, end to end --------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("bench")
    args = ["bench", "--suite", "quick", "--out", str(out), "--output", "json"]
    if importlib.util.find_spec("matplotlib") is None:
        args.append("--no-plots")
    result = CliRunner().invoke(main, args)
    return result, out


def test_the_quick_suite_passes_the_checker_on_every_decision(quick_run: tuple[Any, Path]) -> None:
    """Every full decision (rayk8s, its variants, FFD) on every quick scenario is checked and valid."""
    result, _ = quick_run
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    checked = 0
    for row in document["scenarios"]:
        for name in ("rayk8s", "rayk8s-isolate", "rayk8s-unpriced", "ffd"):
            entry = row["strategies"][name]
            assert entry["violations"] == [], (row["scenario"], name)
            assert entry["unfulfilled"] >= 0 and entry["nodes"] == sum(entry["launch"].values())
            checked += 1
    assert checked == 4 * len(SUITES["quick"].scenarios)
    summary = document["summary"]["strategies"]
    assert all(s["violations"] == 0 for s in summary.values())


def test_the_quick_suite_reports_the_promised_metrics(quick_run: tuple[Any, Path]) -> None:
    """Scenarios: time, nodes, cost, cost/bound, unfulfilled; traces: fulfil p50/p95, node-hours, churn, peak."""
    result, out = quick_run
    document = json.loads((out / "results.json").read_text())
    assert document == {**json.loads(result.stdout), "plots": document["plots"]}
    for row in document["scenarios"]:
        for entry in row["strategies"].values():
            if "skipped" not in entry:
                assert {"ms", "nodes", "cost", "ratio", "unfulfilled"} <= entry.keys()
    traces = document["traces"]
    quick = SUITES["quick"]
    trace_strategies = [name for name, s in STRATEGIES.items() if s.scheduler is not None]
    swept = {(family, "rayk8s", policy.name) for family in TRACE_FAMILIES for policy in quick.policies}
    compared = {
        (family, name, policy.name)
        for family in TRACE_FAMILIES
        for name in trace_strategies
        for policy in quick.compare_policies
    }
    assert {(t["trace"], t["strategy"], t["policy"]) for t in traces} == swept | compared
    for trace in traces:
        assert trace["summary"]["errors"] == 0, (trace["trace"], trace["strategy"])  # no rule broken, no crash
        assert {
            "time_to_fulfil_p50_s",
            "time_to_fulfil_p95_s",
            "time_to_fulfil_mean_s",
            "node_hours",
            "idle_node_hours",
            "launches",
            "terminations",
            "peak_nodes",
        } <= trace["summary"].keys()
        assert trace["timeline"] and {"t", "nodes", "pending_demands"} <= trace["timeline"][0].keys()
    per_strategy = document["summary"]["traces"]
    assert list(per_strategy) == trace_strategies
    assert per_strategy["rayk8s"]["cost_vs_reference"] == pytest.approx(1.0)
    assert all(item["runs"] == len(TRACE_FAMILIES) * len(quick.compare_policies) for item in per_strategy.values())


def test_the_quick_suite_writes_markdown_naming_its_command(quick_run: tuple[Any, Path]) -> None:
    """RESULTS.md says which command made it and holds the tables; its plot links exist."""
    _, out = quick_run
    markdown = (out / "RESULTS.md").read_text()
    assert f"Generated by `rayk8s bench --suite quick --out {out}`" in markdown
    for heading in (
        "### Summary per strategy",
        "### Cost / bound per scenario",
        "## Autoscaling policies",
        "## Scheduling strategies on the simulator",
    ):
        assert heading in markdown
    for name in STRATEGIES:
        assert f"| `{name}` |" in markdown
    for line in markdown.splitlines():
        if line.startswith("!["):
            assert (out / line.split("(")[1].rstrip(")")).is_file()


@needs_plot
def test_the_quick_suite_writes_png_plots(quick_run: tuple[Any, Path]) -> None:
    """A cost-against-bound chart, one timeline per trace family and the strategies on the traces, as PNG files."""
    _, out = quick_run
    names = sorted(p.name for p in (out / "plots").iterdir())
    expected = ["cost-vs-bound.png", "trace-strategies.png", *(f"timeline-{f}.png" for f in TRACE_FAMILIES)]
    assert names == sorted(expected)
    for path in (out / "plots").iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_strategies_without_a_full_result_sit_the_traces_out() -> None:
    """Ray's adapters give counts, not placements: chosen alone, no trace runs; with rayk8s, only rayk8s runs."""
    from rayk8s.bench._run import trace_runs

    quick = SUITES["quick"]
    ray_like = Strategy("counts", "counts only", lambda request: Decision({}, 0.0, 0.0, 0))
    assert trace_runs(quick, [ray_like]) == []
    runs = trace_runs(quick, [ray_like, STRATEGIES["ffd"]])
    assert [(s.name, p) for s, p in runs] == [("ffd", p) for p in quick.policies]
    with pytest.raises(ValueError, match="cannot drive traces"):
        run_trace("bursty", quick.policies[0], scale="quick", seed=0, strategy=ray_like)


# --- the command line -------------------------------------------------------------------------


def test_an_unknown_strategy_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["bench", "--strategy", "rayk8s,nope"])
    assert result.exit_code == 2
    assert "unknown strategy 'nope'" in result.output


def test_a_violation_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A strategy whose decision breaks the rules is caught by the checker: exit 1, flagged in the table."""

    def cheat(request: SchedulingRequest) -> Decision:
        result = first_fit_decreasing(request)
        forged = attrs.evolve(result, cost=result.cost / 2)  # claims half the real cost
        return Decision(launch=result.launch, cost=forged.cost, elapsed_ms=0.0, unfulfilled=0, result=forged)

    monkeypatch.setitem(STRATEGIES, "cheat", Strategy("cheat", "forges its cost", cheat))
    args = ["bench", "--strategy", "cheat", "--family", "uniform-cpu", "--no-traces", "--no-bound"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "VIOLATIONS" in result.stdout
    assert "the checker found" in result.stderr


def test_the_report_says_why_the_bound_is_off() -> None:
    """`--no-bound` is named as the reason the bound is off, not a missing scipy."""
    args = ["bench", "--strategy", "ffd", "--family", "uniform-cpu", "--no-traces", "--no-bound"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "lower bound off (--no-bound)" in result.stdout
