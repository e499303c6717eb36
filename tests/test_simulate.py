"""rayk8s simulate: trace parsing, the simulator's measurements, the CLI and the plot."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rayk8s.errors import ConfigError, RayK8sError
from rayk8s.simulate import Simulator, Trace, simulate
from rayk8s.simulate._plot import plot_timeline

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "traces").glob("*.yaml"))

SUMMARY_KEYS = {
    "time_to_fulfil_p50_s",
    "time_to_fulfil_p95_s",
    "node_hours",
    "cost",
    "idle_node_hours",
    "peak_nodes",
    "launches",
    "terminations",
    "unfulfilled_at_end",
}


def small(**overrides: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {
        "node_types": {"cpu": {"resources": {"CPU": 4}, "max_workers": 10, "cost": 0.5, "launch_delay_s": 30}},
        "idle_timeout_minutes": 2,
        "step_s": 5,
        "duration_s": 900,
        "arrivals": [{"at": 0, "shape": {"CPU": 1}, "count": 40, "duration_s": 60}],
    }
    trace.update(overrides)
    return trace


def cpu_type(**fields: Any) -> dict[str, Any]:
    return {"cpu": {"resources": {"CPU": 4}, **fields}}


# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"node_types": None}, "node_types"),
        ({"node_types": {}}, "node_types"),
        ({"duration_s": "long"}, "duration_s"),
        ({"duration_s": 0}, "duration_s"),
        ({"step_s": 10_000}, "step_s"),
        ({"max_workers": -1}, "max_workers"),
        ({"colour": "blue"}, "colour"),
        ({"node_types": {"cpu": {"resources": {"CPU": "four"}}}}, "node_types.cpu.resources.CPU"),
        (
            {"node_types": {"cpu": {"resources": {"CPU": 4}, "launch_failure_rate": 2}}},
            "node_types.cpu.launch_failure_rate",
        ),
        (
            {"node_types": {"cpu": {"resources": {"CPU": 4}, "min_workers": 3, "max_workers": 1}}},
            "node_types.cpu.min_workers",
        ),
        ({"node_types": {"cpu": {"resources": {"CPU": 4}, "gpus": 1}}}, "node_types.cpu.gpus"),
        ({"arrivals": [{"at": 0, "shape": {"CPU": 1}, "count": 0, "duration_s": 1}]}, "arrivals[0].count"),
        ({"arrivals": [{"at": 0, "shape": {"CPU": 1}}]}, "arrivals[0].duration_s"),
        ({"arrivals": [{}, {"at": -1, "shape": {"CPU": 1}, "duration_s": 1}]}, "arrivals[0].at"),
        ({"arrivals": "lots"}, "arrivals"),
        (
            {"placement_groups": [{"at": 0, "strategy": "TIGHT", "bundles": [{"CPU": 1}], "duration_s": 1}]},
            "placement_groups[0].strategy",
        ),
        ({"placement_groups": [{"at": 0, "bundles": [], "duration_s": 1}]}, "placement_groups[0].bundles"),
    ],
)
def test_bad_traces_name_the_field(change: dict[str, Any], path: str) -> None:
    """Every mistake is a ConfigError naming the field path."""
    with pytest.raises(ConfigError) as raised:
        Trace.from_dict(small(**change))
    assert raised.value.path == path


def test_a_trace_file_that_does_not_exist_names_the_file() -> None:
    """A missing file is a ConfigError whose path is the file name."""
    with pytest.raises(ConfigError) as raised:
        Trace.from_file("no/such/trace.yaml")
    assert "no/such/trace.yaml" in str(raised.value)


def test_a_trace_builds_the_autoscaler_and_provider_settings() -> None:
    """The trace's settings reach the autoscaler config and the fake provider's config."""
    trace = Trace.from_dict(small(upscaling_speed=2, max_workers=7, stuck_timeout_s=120, seed=3))
    config = trace.autoscaler_config()
    assert (config.upscaling_speed, config.max_workers, config.stuck_timeout_s) == (2.0, 7, 120.0)
    assert config.idle_timeout_s("cpu") == 120
    assert trace.provider_config()["launch_delay_s"] == {"cpu": 30.0}
    assert trace.provider_config()["seed"] == 3


# -- simulation ---------------------------------------------------------------------------


def test_a_burst_is_served_and_the_cluster_scales_back_to_zero() -> None:
    """All demand is placed, nodes are launched and, after the idle timeout, all terminated."""
    result = simulate(Trace.from_dict(small()))
    s = result.summary
    assert s["unfulfilled_at_end"] == 0 and s["placed"] == s["arrived"] == 40
    assert s["launches"] == s["terminations"] == s["peak_nodes"] == 10  # 40 CPUs on 4-CPU nodes
    assert result.timeline[0]["nodes"] == {"cpu": 5}  # the upscaling speed: 5 pending before any run
    assert result.timeline[-1]["nodes"] == {"cpu": 0}
    assert s["time_to_fulfil_p50_s"] is not None and s["time_to_fulfil_p50_s"] >= 30  # the launch delay
    assert s["idle_node_hours"] > 0
    assert s["cost"] == pytest.approx(s["node_hours"] * 0.5)


def test_the_mean_time_to_fulfil_lies_between_nothing_and_the_longest_wait() -> None:
    """The mean wait is reported next to the percentiles and is consistent with them."""
    s = simulate(Trace.from_dict(small())).summary
    assert 0 < s["time_to_fulfil_mean_s"] <= s["time_to_fulfil_p95_s"] + 60


def test_the_simulated_autoscaler_asks_the_scheduler_it_is_given() -> None:
    """simulate(trace, scheduler=...): the same trace under first-fit decreasing buys only the
    cheap small nodes, one by one, where rayk8s's scheduler buys nodes that are cheaper per CPU."""
    from rayk8s.bench._ffd import first_fit_decreasing

    types = {
        "small": {"resources": {"CPU": 2}, "max_workers": 40, "cost": 0.3},
        "big": {"resources": {"CPU": 16}, "max_workers": 10, "cost": 1.6},
    }
    trace = Trace.from_dict(small(node_types=types))
    own = simulate(trace).summary["per_type"]
    ffd = simulate(trace, scheduler=first_fit_decreasing).summary["per_type"]
    assert own["big"]["launches"] > 0
    assert ffd["big"]["launches"] == 0 and ffd["small"]["launches"] > own["small"]["launches"]


def test_a_simulation_is_reproducible() -> None:
    """Same trace and seed: the same summary and timeline, launch failures included."""
    trace = Trace.from_dict(
        small(
            node_types={"cpu": {"resources": {"CPU": 4}, "max_workers": 10, "launch_failure_rate": 0.4}},
            seed=11,
        )
    )
    first, second = simulate(trace), simulate(trace)
    assert first.summary == second.summary
    assert first.timeline == second.timeline
    assert first.summary["launch_failures"] > 0


def test_launch_failures_fall_back_to_another_type() -> None:
    """A type whose launches always fail backs off; demand is served by the next type."""
    trace = Trace.from_dict(
        small(
            node_types={
                "cheap": {"resources": {"CPU": 4}, "cost": 0.1, "launch_failure_rate": 1.0},
                "dear": {"resources": {"CPU": 4}, "cost": 1.0},
            },
        )
    )
    s = simulate(trace).summary
    assert s["per_type"]["cheap"]["launches"] == 0
    assert s["per_type"]["dear"]["launches"] > 0
    assert s["launch_failures"] > 0 and s["unfulfilled_at_end"] == 0


def test_placement_groups_are_placed_whole() -> None:
    """A STRICT_SPREAD gang gets one node per bundle; all instances are placed."""
    trace = Trace.from_dict(
        small(
            arrivals=[],
            placement_groups=[
                {"at": 0, "strategy": "STRICT_SPREAD", "bundles": [{"CPU": 1}] * 4, "count": 2, "duration_s": 60}
            ],
        )
    )
    result = simulate(trace)
    assert result.summary["placed"] == 2 and result.summary["unfulfilled_at_end"] == 0
    assert result.summary["peak_nodes"] >= 4


def test_a_busy_node_is_never_terminated_in_a_simulation() -> None:
    """No task is lost to a terminated node: long tasks outlive several idle timeouts."""
    trace = Trace.from_dict(small(arrivals=[{"at": 0, "shape": {"CPU": 4}, "count": 3, "duration_s": 800}]))
    s = simulate(trace).summary
    assert s["lost_tasks"] == 0 and s["placed"] == 3


def test_the_timeline_has_one_record_per_step() -> None:
    """The timeline holds t, nodes per type and pending demand for every step."""
    result = Simulator(Trace.from_dict(small())).run()
    assert len(result.timeline) == 900 // 5 + 1
    assert [e["t"] for e in result.timeline[:3]] == [0, 5, 10]
    assert {"t", "nodes", "pending_demands"} <= set(result.timeline[0])
    assert result.timeline[0]["pending_demands"] == 40


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_traces_run_and_serve_their_demand(path: Path) -> None:
    """Each example trace parses, runs, and leaves no demand unserved."""
    result = simulate(Trace.from_file(path), timeline=False)
    assert result.summary["unfulfilled_at_end"] == 0
    assert result.summary["errors"] == 0
    assert set(result.summary) >= SUMMARY_KEYS


def test_there_are_at_least_three_example_traces() -> None:
    """Burst then quiet, diurnal mixed CPU/GPU with failures, placement groups."""
    assert {p.stem for p in EXAMPLES} >= {"burst-then-quiet", "diurnal-mixed", "placement-groups"}


# -- CLI and plot ---------------------------------------------------------------------------


def test_the_cli_prints_the_promised_json() -> None:
    """`python -m rayk8s simulate TRACE --output json` prints summary and timeline with the promised keys."""
    completed = subprocess.run(
        [sys.executable, "-m", "rayk8s", "simulate", "examples/traces/burst-then-quiet.yaml", "--output", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    data = json.loads(completed.stdout)
    assert set(data["summary"]) >= SUMMARY_KEYS
    assert {"t", "nodes", "pending_demands"} <= set(data["timeline"][0])


def test_the_cli_prints_a_text_summary_and_fails_cleanly_on_bad_input(tmp_path: Path) -> None:
    """Text output names the measures; a bad trace is one error line naming the field, exit code 2."""
    ok = subprocess.run(
        [sys.executable, "-m", "rayk8s", "simulate", "examples/traces/placement-groups.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert "Time to fulfil: p50" in ok.stdout and "Node-hours" in ok.stdout and "peak" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("node_types: {cpu: {resources: {CPU: 4}}}\nduration_s: soon\n")
    failed = subprocess.run(
        [sys.executable, "-m", "rayk8s", "simulate", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert failed.returncode == 2
    assert "duration_s" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    """--plot writes a PNG of nodes per type and pending demand."""
    pytest.importorskip("matplotlib")
    result = simulate(Trace.from_dict(small()))
    out = tmp_path / "sim.png"
    plot_timeline(result.timeline, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plotting_without_matplotlib_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without matplotlib, plotting raises a rayk8s error naming the plot extra."""
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(RayK8sError, match=r"rayk8s\[plot\]"):
        plot_timeline([], tmp_path / "x.png")


def test_without_a_trace_the_built_in_one_runs() -> None:
    """`rayk8s simulate` with no TRACE runs the packaged default trace and says so on stderr."""
    completed = subprocess.run(
        [sys.executable, "-m", "rayk8s", "simulate", "--output", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "built-in trace" in completed.stderr
    summary = json.loads(completed.stdout)["summary"]
    assert summary["launches"] > 0 and summary["terminations"] > 0
    assert summary["unfulfilled_at_end"] == 0
