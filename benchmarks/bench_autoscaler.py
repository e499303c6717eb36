"""Autoscaler benchmarks: one reconcile step at scale, and an hour of simulated time.

Run from the repository root::

    python -m benchmarks.bench_autoscaler            # both, printed as a table
    python -m benchmarks.bench_autoscaler --repeat 5

1. ``update``: one :meth:`Autoscaler.update` over 5,000 existing nodes (three types, Ray
   reporting scattered free capacity on each) and 100,000 pending demands (20 shapes).
   The first update also writes the ``up-to-date`` tag on every node; the steady-state
   update after it is the one the target applies to. Target: under 1 s.
2. ``simulate``: a one-hour trace at 1 s steps (3,601 updates) that peaks at 1,000 nodes:
   4,000 one-CPU tasks of 30 minutes on 4-CPU nodes, a scale-up at the upscaling speed,
   and a scale-down after the idle timeout. Target: under 60 s.

Seeded, so every run measures the same work.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from rayk8s.autoscaler import (
    Autoscaler,
    AutoscalerConfig,
    LoadSnapshot,
    NodeType,
    NodeUsage,
    ResourceDemand,
    Resources,
    StaticLoadSource,
)
from rayk8s.providers._tags import (
    NODE_KIND_WORKER,
    STATUS_UNINITIALIZED,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_CONFIG,
    TAG_LAUNCH_REQUEST,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)
from rayk8s.providers.fake import FakeNodeProvider, ManualClock
from rayk8s.simulate import Trace, simulate

UPDATE_TARGET_S = 1.0
SIMULATE_TARGET_S = 60.0


def build_update_case(seed: int = 0) -> tuple[Autoscaler, int, int]:
    """A cluster of 5,000 running, joined nodes and 100,000 pending demands."""
    rng = random.Random(seed)
    types = [
        NodeType("cpu-4", {"CPU": 4, "memory": "16Gi"}, max_workers=6000, cost=0.19),
        NodeType("cpu-16", {"CPU": 16, "memory": "64Gi"}, max_workers=6000, cost=0.76),
        NodeType("gpu", {"CPU": 8, "GPU": 1, "memory": "60Gi"}, max_workers=1000, cost=2.5),
    ]
    config = AutoscalerConfig("bench", types, max_workers=10_000)
    clock = ManualClock(1_000_000.0)
    provider = FakeNodeProvider({"type": "fake"}, "bench", clock=clock)
    usage: dict[str, NodeUsage] = {}
    for index in range(5_000):
        node_type = types[0] if index < 3_000 else types[1] if index < 4_500 else types[2]
        tags = {
            TAG_CLUSTER_NAME: "bench",
            TAG_NODE_KIND: NODE_KIND_WORKER,
            TAG_USER_NODE_TYPE: node_type.name,
            TAG_NODE_STATUS: STATUS_UNINITIALIZED,
            TAG_LAUNCH_CONFIG: config.launch_config_hash(node_type.name),
            TAG_LAUNCH_REQUEST: f"seed-{index // 100}",
        }
        (node_id,) = provider.create_node({}, tags, 1)
        total = node_type.resources.units
        free = {name: rng.randrange(0, amount + 1, max(1, amount // 8)) for name, amount in total.items()}
        busy = any(free[name] < total[name] for name in total)
        usage[node_id] = NodeUsage(
            node_id,
            Resources.from_units(free),
            idle_since=None if busy else clock() - rng.randrange(0, 200),
            last_heartbeat=clock(),
        )
    shapes: list[dict[str, float | str]] = [{"CPU": c} for c in (0.5, 1, 2, 4, 8)]
    shapes += [{"CPU": c, "memory": f"{m}Gi"} for c, m in ((1, 2), (2, 8), (4, 16))]
    shapes += [{"CPU": 1, "GPU": 1}, {"CPU": 4, "GPU": 1}]
    while len(shapes) < 20:
        shapes.append({"CPU": rng.choice((1, 2, 3)), "memory": f"{rng.choice((1, 3, 5, 6))}Gi"})
    counts = [100_000 // len(shapes)] * len(shapes)
    counts[0] += 100_000 - sum(counts)
    demands = [ResourceDemand(shape, count) for shape, count in zip(shapes, counts)]
    load = StaticLoadSource(LoadSnapshot(demands=demands, nodes=usage))
    autoscaler = Autoscaler(config, provider=provider, load_source=load, clock=clock)
    return autoscaler, 5_000, sum(counts)


def bench_update(repeat: int) -> dict[str, float]:
    """Time the first update (tags every node, launches) and the one after it (steady state)."""
    firsts, seconds = [], []
    for _ in range(repeat):
        autoscaler, _, _ = build_update_case()
        started = time.perf_counter()
        first = autoscaler.update()
        firsts.append(time.perf_counter() - started)
        started = time.perf_counter()
        second = autoscaler.update()
        seconds.append(time.perf_counter() - started)
        assert not first.errors and not second.errors, (first.errors, second.errors)
    return {"first_s": statistics.median(firsts), "median_s": statistics.median(seconds), "max_s": max(seconds)}


def hour_trace() -> Trace:
    return Trace.from_dict(
        {
            "node_types": {"cpu": {"resources": {"CPU": 4}, "max_workers": 1000, "cost": 0.19, "launch_delay_s": 30}},
            "idle_timeout_minutes": 5,
            "upscaling_speed": 1.0,
            "max_workers": 1000,
            "step_s": 1,
            "duration_s": 3600,
            "arrivals": [{"at": 0, "shape": {"CPU": 1}, "count": 4000, "duration_s": 1800}],
        }
    )


def bench_simulate() -> dict[str, float]:
    result = simulate(hour_trace(), timeline=True)
    return {
        "elapsed_s": result.elapsed_s,
        "peak_nodes": result.summary["peak_nodes"],
        "updates": result.summary["updates"],
        "p50_s": result.summary["time_to_fulfil_p50_s"] or 0.0,
        "p95_s": result.summary["time_to_fulfil_p95_s"] or 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="steady-state update() measurements (median shown)")
    parser.add_argument("--only", choices=["update", "simulate"], help="run one benchmark")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, bool | None]] = []
    if args.only in (None, "update"):
        update = bench_update(args.repeat)
        rows.append(
            (
                "update(): 5,000 nodes, 100k demands (steady state, median)",
                f"{update['median_s']:.3f} s",
                f"< {UPDATE_TARGET_S:g} s",
                update["median_s"] < UPDATE_TARGET_S,
            )
        )
        rows.append(("update(): the first one (also tags 5,000 nodes)", f"{update['first_s']:.3f} s", "-", None))
    if args.only in (None, "simulate"):
        sim = bench_simulate()
        rows.append(
            (
                f"simulate: 1 h at 1 s steps, peak {sim['peak_nodes']:.0f} nodes ({sim['updates']:.0f} updates)",
                f"{sim['elapsed_s']:.1f} s",
                f"< {SIMULATE_TARGET_S:g} s",
                sim["elapsed_s"] < SIMULATE_TARGET_S,
            )
        )
    width = max(len(row[0]) for row in rows)
    print(f"{'benchmark'.ljust(width)}  {'measured':>10}  {'target':>8}  ok")
    for name, measured, target, ok in rows:
        mark = "-" if ok is None else ("yes" if ok else "NO")
        print(f"{name.ljust(width)}  {measured:>10}  {target:>8}  {mark}")


if __name__ == "__main__":
    main()
