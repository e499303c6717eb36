"""Scale-up latency on a real local Ray cluster: rayk8s versus Ray's own autoscaler.

Run from the repository root (needs ``rayk8s[ray]``; about two minutes)::

    python -m benchmarks.bench_ray_local
    python -m benchmarks.bench_ray_local --repeat 3 --tasks 8

The same burst on the same machine, one system after the other: from a cluster of a head
with no CPU and no workers, submit ``--tasks`` tasks of ``{CPU: 1}`` (each sleeps
``--task-s`` seconds and records when it started) on a worker type of 2 CPUs, max 4
workers. Measured from the submission: the first task started, every task started.

- ``rayk8s``: ``rayk8s up`` on a local cluster (the ``local`` provider: one ``ray start``
  process group per worker, started concurrently), monitor update interval 1 s.
- ``ray``: Ray's ``ray.cluster_utils.AutoscalingCluster`` -- Ray's autoscaler with its fake
  multi-node provider, which Ray's own tests use (``AUTOSCALER_UPDATE_INTERVAL_S=1``).

Both use upscaling speed 1.0, 78 MiB object stores, and idle timeout 1 minute. Ray's
``AutoscalingCluster`` runs ``ray stop --force``, which stops every Ray process on the
machine: do not run this next to another Ray cluster. Each run is a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORKER_CPUS = 2
MAX_WORKERS = 4
OBJECT_STORE = 78_643_200


def _burst(tasks: int, task_s: float) -> dict[str, float]:
    import ray

    @ray.remote(num_cpus=1, max_retries=0)
    def timed(seconds: float) -> float:
        started = time.time()
        time.sleep(seconds)
        return started

    submitted = time.time()
    starts = ray.get([timed.remote(task_s) for _ in range(tasks)], timeout=600)
    return {"first_started_s": min(starts) - submitted, "all_started_s": max(starts) - submitted}


def run_rayk8s(tasks: int, task_s: float) -> dict[str, float]:
    import ray

    from rayk8s.launcher import ClusterConfig, LocalCluster

    with tempfile.TemporaryDirectory(prefix="bench-rayk8s-") as tmp:
        config = ClusterConfig.from_dict(
            {
                "cluster_name": "bench",
                "max_workers": MAX_WORKERS,
                "upscaling_speed": 1.0,
                "idle_timeout_minutes": 1,
                "provider": {"type": "local", "state_dir": tmp, "object_store_memory": OBJECT_STORE},
                "head_node_type": "head",
                "available_node_types": {
                    "head": {"resources": {"CPU": 0}},
                    "cpu": {"resources": {"CPU": WORKER_CPUS}, "max_workers": MAX_WORKERS},
                },
                "autoscaler": {"update_interval_s": 1},
            }
        )
        cluster = LocalCluster(config, echo=lambda text: None)
        try:
            address = cluster.up(restart=True)
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            result = _burst(tasks, task_s)
            ray.shutdown()
        finally:
            cluster.down()
    return result


def _fake_multinode_config(head_resources: dict[str, Any], worker_node_types: dict[str, Any], **extra: Any) -> dict:
    """The cluster config Ray's fake multi-node provider runs with.

    ``AutoscalingCluster`` reads its base from ``fake_multi_node/example.yaml``, which the
    PyPI wheel of Ray 2.60 does not ship; this is the same config written out.
    """
    return {
        "cluster_name": "fake_multinode",
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            **worker_node_types,
            "ray.head.default": {"resources": dict(head_resources), "node_config": {}, "max_workers": 0},
        },
        "head_node_type": "ray.head.default",
        "auth": {},
        "docker": {},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        **extra,
    }


def run_ray(tasks: int, task_s: float) -> dict[str, float]:
    import ray
    from ray.cluster_utils import AutoscalingCluster

    class Cluster(AutoscalingCluster):  # type: ignore[misc]
        def _generate_config(
            self, head_resources: Any, worker_node_types: Any, autoscaler_v2: bool = False, **kw: Any
        ) -> Any:
            return _fake_multinode_config(head_resources, worker_node_types, **kw)

    cluster = Cluster(
        head_resources={"CPU": 0, "object_store_memory": OBJECT_STORE},
        worker_node_types={
            "cpu": {
                "resources": {"CPU": WORKER_CPUS, "object_store_memory": OBJECT_STORE},
                "node_config": {},
                "min_workers": 0,
                "max_workers": MAX_WORKERS,
            }
        },
        max_workers=MAX_WORKERS,
        upscaling_speed=1.0,
        idle_timeout_minutes=1,
    )
    try:
        cluster.start()
        ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
        result = _burst(tasks, task_s)
        ray.shutdown()
    finally:
        cluster.shutdown()
    return result


def _one(system: str, tasks: int, task_s: float) -> dict[str, Any]:
    started = time.monotonic()
    result = run_rayk8s(tasks, task_s) if system == "rayk8s" else run_ray(tasks, task_s)
    return {"system": system, **result, "wall_s": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs per system (default 1)")
    parser.add_argument("--tasks", type=int, default=8, help="tasks in the burst (default 8)")
    parser.add_argument("--task-s", type=float, default=5.0, help="seconds each task runs (default 5)")
    parser.add_argument("--one", choices=["rayk8s", "ray"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.tasks, args.task_s)))
        return
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)}
    rows: dict[str, list[dict[str, Any]]] = {"rayk8s": [], "ray": []}
    for _ in range(args.repeat):
        for system in ("rayk8s", "ray"):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_ray_local", "--one", system, "--tasks", str(args.tasks),
                 "--task-s", str(args.task_s)],
                cwd=root, env=env, capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            if out.returncode != 0:
                sys.exit(f"{system} run failed:\n{out.stderr[-4000:]}")
            rows[system].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"Burst of {args.tasks} x {{CPU: 1}} on {WORKER_CPUS}-CPU workers (max {MAX_WORKERS}), head with 0 CPU;")
    print(f"median of {args.repeat} run(s) per system, same machine, same run")
    print(f"{'system':<40} {'first task started':>19} {'all tasks started':>18} {'run wall':>9}")
    labels = {"rayk8s": "rayk8s (local provider)", "ray": "Ray autoscaler (AutoscalingCluster)"}
    for system, items in rows.items():
        first = statistics.median(r["first_started_s"] for r in items)
        last = statistics.median(r["all_started_s"] for r in items)
        wall = statistics.median(r["wall_s"] for r in items)
        print(f"{labels[system]:<40} {first:>17.1f} s {last:>16.1f} s {wall:>7.0f} s")


if __name__ == "__main__":
    main()
