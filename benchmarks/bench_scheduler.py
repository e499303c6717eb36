"""The scheduler benchmark: rayk8s' ``schedule()`` next to Ray v1 and a lower bound on cost.

Run from the repository root::

    python benchmarks/bench_scheduler.py                 # the full suite (several minutes)
    python benchmarks/bench_scheduler.py --quick         # 100 and 1k demands, under a minute
    python benchmarks/bench_scheduler.py --family mixed --output json

For every scenario of :mod:`benchmarks.scenarios` it prints, side by side: our decision
time, node count and cost; Ray v1's ``get_nodes_to_launch`` on the same input untruncated
(up to ``--ray-untruncated-max`` demands; above that "skipped (too slow)") and as deployed
with its 1000-entry cap, with the share of the demand the capped plan covers; and the LP
lower bound on cost (see :mod:`benchmarks.lower_bound`). Every one of our decisions is
checked by :func:`rayk8s.autoscaler.verify`; violations are printed loudly. A
summary checks the targets: at least 100x faster than untruncated Ray v1 at 10k demands,
cost no higher than Ray v1's on any scenario, mean cost within 1.05x of the bound, and
100k demands over 5,000 nodes in under a second and 500 MB peak RSS (measured in a fresh
process, so nothing else the benchmark did is counted).

Ray and scipy are optional (``pip install .[bench]``): without them their columns say so.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scenarios import FAMILIES, FULL_GRID, QUICK_GRID, RSS_CASE, Scenario, generate
from rayk8s.autoscaler import SchedulingRequest, SchedulingResult, schedule, verify

TARGET_SPEEDUP = 100.0
TARGET_RATIO = 1.05
TARGET_TIME_MS = 1000.0
TARGET_RSS_MB = 500.0


def _time_ours(request: SchedulingRequest, budget_s: float = 1.0, max_runs: int = 5) -> tuple[SchedulingResult, float]:
    """Run ``schedule`` at least once, more while the budget lasts; the median time in ms."""
    times: list[float] = []
    result: SchedulingResult | None = None
    spent = 0.0
    while not times or (spent < budget_s and len(times) < max_runs):
        started = time.perf_counter()
        result = schedule(request)
        elapsed = time.perf_counter() - started
        times.append(elapsed * 1000)
        spent += elapsed
    assert result is not None
    return result, statistics.median(times)


def _has_scipy() -> bool:
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        return False
    return True


def run_scenario(scenario: Scenario, *, ray: bool, ray_untruncated_max: int, bound: bool) -> dict[str, Any]:
    """Everything the table shows for one scenario, as a JSON-able dict."""
    request = scenario.request
    row: dict[str, Any] = {
        "scenario": scenario.name,
        "family": scenario.family,
        "size": scenario.size,
        "demands": scenario.units,
        "existing": scenario.existing,
        "shapes": scenario.distinct_shapes,
    }
    ours: SchedulingResult | None = None
    try:
        gc.collect()
        ours, elapsed_ms = _time_ours(request)
    except NotImplementedError as error:
        row["ours"] = {"error": f"not implemented: {error}"}
    else:
        unfulfilled = sum(u.count for u in ours.unfulfilled)
        violations = verify(request, ours)
        row["ours"] = {
            "ms": elapsed_ms,
            "nodes": ours.new_node_count,
            "cost": ours.cost,
            "launch": dict(sorted(ours.launch.items())),
            "unfulfilled": unfulfilled,
            "violations": violations,
        }

    if ray:
        from benchmarks.ray_v1 import RAY_CAP, coverage, run_ray_v1

        tasks = sum(d.count for d in request.demands)
        untruncated = None
        if scenario.size <= ray_untruncated_max:
            gc.collect()
            untruncated = run_ray_v1(request)
            claimed = max(0, untruncated.entries - untruncated.unfulfilled_entries) + (scenario.units - tasks)
            row["ray"] = {
                "ms": untruncated.elapsed_ms,
                "nodes": untruncated.nodes,
                "cost": untruncated.cost,
                "launch": dict(untruncated.launch),
                "covered": coverage(request, untruncated.launch, claimed_units=claimed),
            }
        else:
            row["ray"] = {"skipped": "too slow"}
        if untruncated is not None and tasks <= RAY_CAP:
            # The cap cuts nothing (placement groups are never capped): the same call, the same plan.
            capped = untruncated
        else:
            gc.collect()
            capped = run_ray_v1(request, cap=RAY_CAP)
        claimed = max(0, capped.entries - capped.unfulfilled_entries) + (scenario.units - tasks)
        row["ray_capped"] = {
            "ms": capped.elapsed_ms,
            "nodes": capped.nodes,
            "cost": capped.cost,
            "launch": dict(capped.launch),
            "entries": capped.entries,
            "covered": coverage(request, capped.launch, claimed_units=claimed),
        }

    if bound:
        from benchmarks.lower_bound import lower_bound, placed_from_result

        placed = placed_from_result(request, ours) if ours is not None else None
        lb = lower_bound(request, placed)
        free = lower_bound(request, placed, accelerator_rule=False)
        row["bound"] = {"value": lb.value, "lp": lb.lp, "integral": lb.integral, "status": lb.status}
        row["bound_any_plan"] = {"value": free.value, "lp": free.lp, "integral": free.integral}
        if ours is not None:
            row["ours"]["ratio"] = _ratio(ours.cost, lb.value)
    return row


def _ratio(cost: float, bound: float) -> float:
    if bound <= 1e-9:
        return 1.0 if cost <= 1e-9 else math.inf
    return cost / bound


# --- the fresh-process measurement of the headline case ------------------------------------


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def rss_child(family: str, size: int, existing: int, seed: int) -> dict[str, Any]:
    """In this (fresh) process: generate the case, schedule it once, report time and peak RSS."""
    scenario = generate(family, size, existing, seed)
    gc.collect()
    before = _rss_now_mb()
    started = time.perf_counter()
    result = schedule(scenario.request)
    elapsed_ms = (time.perf_counter() - started) * 1000
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "scenario": scenario.name,
        "ms": elapsed_ms,
        "peak_rss_mb": peak_mb,
        "rss_before_schedule_mb": before,
        "nodes": result.new_node_count,
        "cost": result.cost,
    }


def measure_rss_case(seed: int) -> dict[str, Any]:
    family, size, existing = RSS_CASE
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--rss-child",
        f"{family}:{size}:{existing}",
        "--seed",
        str(seed),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return dict(json.loads(done.stdout))


# --- output ---------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| scenario | demands | existing | shapes | ours ms | ours nodes | ours cost | ours unfulfilled "
        "| Ray ms | Ray nodes | Ray cost | capped ms | capped nodes | capped cost | capped covered "
        "| bound | ours/bound | bound (any plan) | check |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for row in rows:
        ours = row.get("ours", {})
        ray = row.get("ray", {})
        cap = row.get("ray_capped", {})
        bound = row.get("bound", {})
        free = row.get("bound_any_plan", {})
        if "error" in ours:
            our_cells = ["n/a"] * 4
            check = "n/a"
        else:
            our_cells = [_fmt(ours["ms"], 2), _fmt(ours["nodes"]), _fmt(ours["cost"], 2), _fmt(ours["unfulfilled"])]
            check = "ok" if not ours["violations"] else f"**{len(ours['violations'])} VIOLATIONS**"
        if not ray:
            ray_cells = ["no ray"] * 3
        elif "skipped" in ray:
            ray_cells = ["skipped (too slow)", "—", "—"]
        else:
            ray_cells = [_fmt(ray["ms"], 1), _fmt(ray["nodes"]), _fmt(ray["cost"], 2)]
        if cap:
            cap_cells = [_fmt(cap["ms"], 1), _fmt(cap["nodes"]), _fmt(cap["cost"], 2), f"{cap['covered']:.1%}"]
        else:
            cap_cells = ["no ray"] * 4
        if bound:
            bound_cells = [_fmt(bound["value"], 2), _fmt(ours.get("ratio"), 3), _fmt(free["value"], 2)]
        else:
            bound_cells = ["no scipy"] * 3
        cells = [
            row["scenario"],
            _fmt(row["demands"]),
            _fmt(row["existing"]),
            _fmt(row["shapes"]),
            *our_cells,
            *ray_cells,
            *cap_cells,
            *bound_cells,
            check,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarize(rows: list[dict[str, Any]], rss: dict[str, Any] | None) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    measured = [r for r in rows if "ms" in r.get("ours", {})]

    speedups = [
        (r["scenario"], r["ray"]["ms"] / max(r["ours"]["ms"], 1e-6))
        for r in measured
        if r["size"] == 10_000 and "ms" in r.get("ray", {})
    ]
    if speedups:
        worst = min(speedups, key=lambda item: item[1])
        summary["speedup_at_10k"] = {
            "min": worst[1],
            "min_scenario": worst[0],
            "all": dict(speedups),
            "target": TARGET_SPEEDUP,
            "pass": worst[1] >= TARGET_SPEEDUP,
        }

    compared = [r for r in measured if "cost" in r.get("ray", {})]
    above = [
        {
            "scenario": r["scenario"],
            "ours": r["ours"]["cost"],
            "ray": r["ray"]["cost"],
            "ours_launch": r["ours"]["launch"],
            "ray_launch": r["ray"]["launch"],
            "ours_unfulfilled": r["ours"]["unfulfilled"],
            "ray_covered": r["ray"]["covered"],
        }
        for r in compared
        if r["ours"]["cost"] > r["ray"]["cost"] + 1e-9
    ]
    if compared:
        summary["cost_vs_ray"] = {"compared": len(compared), "above_ray": above, "pass": not above}

    ratios = [r["ours"]["ratio"] for r in measured if "ratio" in r["ours"]]
    if ratios:
        finite = [x for x in ratios if math.isfinite(x)]
        mean = statistics.fmean(finite) if len(finite) == len(ratios) else math.inf
        summary["cost_over_bound"] = {
            "mean": mean,
            "max": max(ratios),
            "max_scenario": max(measured, key=lambda r: r["ours"].get("ratio", 0))["scenario"],
            "target": TARGET_RATIO,
            "pass": mean <= TARGET_RATIO,
        }

    violations = {r["scenario"]: r["ours"]["violations"] for r in measured if r["ours"]["violations"]}
    summary["checker"] = {"scenarios_checked": len(measured), "violations": violations, "pass": not violations}

    if rss is not None:
        entry = dict(rss)
        if "error" not in rss:
            entry["target_ms"] = TARGET_TIME_MS
            entry["target_rss_mb"] = TARGET_RSS_MB
            entry["pass"] = rss["ms"] < TARGET_TIME_MS and rss["peak_rss_mb"] < TARGET_RSS_MB
        summary["headline_100k_x_5000"] = entry
    return summary


def summary_text(summary: dict[str, Any]) -> str:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "**FAIL**"

    out = ["", "## Targets", ""]
    speed = summary.get("speedup_at_10k")
    if speed:
        out.append(
            f"- Speed at 10k demands vs Ray v1 untruncated: {verdict(speed['pass'])} — at least "
            f"{speed['min']:,.0f}x (slowest: {speed['min_scenario']}; target {speed['target']:.0f}x)"
        )
    else:
        out.append("- Speed at 10k demands vs Ray v1 untruncated: not measured (no 10k scenario, or no ray)")
    cost = summary.get("cost_vs_ray")
    if cost:
        out.append(
            f"- Cost no higher than Ray v1 (untruncated) on every scenario: {verdict(cost['pass'])} — "
            f"{cost['compared'] - len(cost['above_ray'])} of {cost['compared']} scenarios at or below Ray"
        )
        for item in cost["above_ray"]:
            out.append(
                f"  - **{item['scenario']}**: ours {item['ours']:.2f} {item['ours_launch']} "
                f"(unfulfilled {item['ours_unfulfilled']}) vs Ray {item['ray']:.2f} {item['ray_launch']} "
                f"(covers {item['ray_covered']:.1%})"
            )
    else:
        out.append("- Cost vs Ray v1: not measured (no ray, or our scheduler missing)")
    ratio = summary.get("cost_over_bound")
    if ratio:
        out.append(
            f"- Mean cost / lower bound within {ratio['target']}: {verdict(ratio['pass'])} — mean "
            f"{ratio['mean']:.4f}, worst {ratio['max']:.4f} ({ratio['max_scenario']})"
        )
    head = summary.get("headline_100k_x_5000")
    if head and "error" not in head:
        out.append(
            f"- {head['scenario']} in a fresh process: {verdict(head['pass'])} — {head['ms']:,.1f} ms "
            f"(target < {head['target_ms']:,.0f}), peak RSS {head['peak_rss_mb']:,.0f} MB "
            f"(target < {head['target_rss_mb']:,.0f}; {head['rss_before_schedule_mb']:,.0f} MB before schedule())"
        )
    elif head:
        out.append(f"- 100k x 5,000 in a fresh process: **FAIL** — {head['error']}")
    checker = summary["checker"]
    out.append(
        f"- Checker: {verdict(checker['pass'])} — {checker['scenarios_checked']} decisions checked, "
        f"{sum(len(v) for v in checker['violations'].values())} violations"
    )
    for scenario, problems in checker["violations"].items():
        out.append(f"  - **VIOLATIONS in {scenario}**:")
        out.extend(f"    - {p}" for p in problems[:10])
        if len(problems) > 10:
            out.append(f"    - ... and {len(problems) - 10} more")
    return "\n".join(out)


def render(document: dict[str, Any]) -> str:
    """The markdown report of a run (its JSON form in, text out)."""
    meta = document["meta"]
    title = f"# Scheduler benchmark (seed {meta['seed']}, Ray {meta['ray'] or 'not installed'}, {meta['wall_s']:.0f} s)"
    return "\n".join([title, "", table(document["scenarios"]), summary_text(document["summary"])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only 100 and 1k demands (under a minute)")
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES), help="only this family (repeatable)")
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ray-untruncated-max",
        type=int,
        default=10_000,
        help="run Ray v1 untruncated only up to this many demands (it is slow above)",
    )
    parser.add_argument("--no-ray", action="store_true", help="leave Ray v1 out")
    parser.add_argument("--no-bound", action="store_true", help="leave the LP bound out")
    parser.add_argument("--no-rss", action="store_true", help="skip the fresh-process 100k x 5,000 measurement")
    parser.add_argument("--json-out", metavar="PATH", help="also write the JSON form to PATH")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.rss_child:
        family, size, existing = args.rss_child.split(":")
        print(json.dumps(rss_child(family, int(size), int(existing), args.seed)))
        return 0

    from benchmarks import ray_v1

    use_ray = not args.no_ray and ray_v1.available()
    use_bound = not args.no_bound and _has_scipy()
    grid = QUICK_GRID if args.quick else FULL_GRID
    wanted = set(args.family) if args.family else None
    cases = [case for case in grid if wanted is None or case[0] in wanted]

    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for family, size, existing in cases:
        scenario = generate(family, size, existing, args.seed)
        row = run_scenario(scenario, ray=use_ray, ray_untruncated_max=args.ray_untruncated_max, bound=use_bound)
        rows.append(row)
        ours = row["ours"]
        progress = f"{scenario.name}: ours {ours.get('ms', float('nan')):.2f} ms"
        if "ms" in row.get("ray", {}):
            progress += f", Ray v1 {row['ray']['ms']:.0f} ms"
        if ours.get("violations"):
            progress += f" — {len(ours['violations'])} CHECKER VIOLATIONS: {ours['violations'][:3]}"
        print(f"[{time.perf_counter() - started:6.1f}s] {progress}", file=sys.stderr, flush=True)

    rss = None
    if not args.no_rss and not args.quick and (wanted is None or RSS_CASE[0] in wanted):
        rss = measure_rss_case(args.seed)
    summary = summarize(rows, rss)
    meta = {
        "seed": args.seed,
        "python": sys.version.split()[0],
        "ray": ray_v1.ray_version() if use_ray else None,
        "ray_untruncated_max": args.ray_untruncated_max,
        "wall_s": time.perf_counter() - started,
    }
    document = {"meta": meta, "scenarios": rows, "summary": summary}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(json.dumps(document, indent=2, default=str) if args.output == "json" else render(document))
    violations = summary["checker"]["violations"]
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
