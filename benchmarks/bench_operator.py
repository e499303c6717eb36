"""Operator benchmark: one operator process managing 50 RayClusters on a real API server.

Run from the repository root (needs the control-plane build; see docs/kubernetes-tests.md)::

    python -m benchmarks.bench_operator                  # 50 clusters, 5 s update interval
    python -m benchmarks.bench_operator --clusters 10    # quicker

Starts its own control plane (with KWOK), applies the CRD and the operator's RBAC from
``examples/kubernetes/operator_configs/``, and runs ``python -m rayk8s.operator`` as its
ServiceAccount with the ``simulated`` load source (KWOK's pods run no Ray). Then:

1. **up**: creates N RayClusters (a head and minWorkers 1 worker each) and waits until
   every cluster's pods are Running and its status says ``Running``;
2. **steady**: ``--steady`` seconds with nothing to do;
3. **scale-up**: declares 3 CPUs of work on every cluster at once and measures, per
   cluster, the time from its annotation patch until its third worker pod exists (the
   *reaction latency*: up to one update interval of waiting, plus the update);
4. **scale-down**: removes the work; waits until every cluster is back to one worker.

Reports per-update duration (``elapsed_ms`` of the operator's ``autoscaler_update`` log
line: head check, ``Autoscaler.update()`` and status write, queueing for a thread
included) p50/p95 in the steady state and during the scale-up, the reaction latency
p50/p95, and the operator's RSS (steady and peak, from ``/proc``).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client import CoreV1Api

from rayk8s.operator import WORK_ANNOTATION
from rayk8s.testing import ControlPlane
from tests.k8s._operator import Clusters, OperatorProcess, example, install_crd, install_rbac

NAMESPACE = "rayk8s-bench"
_UPDATE = re.compile(r"^[a-z0-9-]+:\S+ \S+ \[info\s*\] autoscaler_update .*\belapsed_ms=(?P<ms>[0-9.]+)")


def cluster_body(name: str) -> dict[str, Any]:
    """example_cluster2 (minWorkers 1, maxWorkers 3) with tiny pods and 1 Ray CPU per worker."""
    body = example("example_cluster2.yaml", idleTimeoutMinutes=0.2)
    body["metadata"]["name"] = name
    for pod_type in body["spec"]["podTypes"]:
        container = pod_type["podConfig"]["spec"]["containers"][0]
        container["resources"] = {"limits": {"cpu": "100m", "memory": "64Mi"}}
    body["spec"]["podTypes"][1]["rayResources"] = {"CPU": 1}
    return body


class RssSampler(threading.Thread):
    """Samples a process's resident set size (``VmRSS``) every ``interval_s``."""

    def __init__(self, pid: int, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                text = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            kib = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
            self.samples.append((time.monotonic(), kib * 1024))
            self.stop.wait(self.interval_s)

    def between(self, start: float, end: float) -> list[int]:
        return [rss for at, rss in self.samples if start <= at <= end]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def update_durations(log: str, since_line: int, until_line: int | None = None) -> list[float]:
    lines = log.splitlines()[since_line:until_line]
    return [float(m.group("ms")) for line in lines if (m := _UPDATE.match(line))]


def wait(what: str, probe: Any, timeout_s: float, interval_s: float = 0.5) -> float:
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)
    return time.monotonic() - started


def run(clusters_wanted: int, interval_s: float, steady_s: float) -> dict[str, Any]:
    nodes = 3
    with (
        ControlPlane.start(nodes=nodes, node_cpu="100", node_memory="1Ti", node_pods=250, echo=False) as cp,
        tempfile.TemporaryDirectory(prefix="rayk8s-bench-operator-") as tmp,
    ):
        admin = kubernetes.config.new_client_from_config(config_file=str(cp.kubeconfig))
        core = CoreV1Api(admin)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        wait("the default ServiceAccount", lambda: _has_default_sa(core), 30, 0.1)
        install_crd(admin)
        install_rbac(admin, NAMESPACE)
        clusters = Clusters(admin, NAMESPACE)
        operator = OperatorProcess(cp, NAMESPACE, Path(tmp), interval=interval_s)
        assert operator.process is not None
        rss = RssSampler(operator.process.pid)
        rss.start()
        names = [f"bench-{i:02d}" for i in range(clusters_wanted)]
        try:
            # 1. up
            t0 = time.monotonic()
            for name in names:
                clusters.create(cluster_body(name))
            counts = lambda: _counts(core)  # noqa: E731
            wait(
                "every cluster: head and 1 worker Running",
                lambda: all(counts().get(n, (0, 0, 0))[1:] == (1, 1) for n in names),
                600,
            )
            up_s = time.monotonic() - t0
            wait("every status Running", lambda: _all_running(clusters, names), 120)
            up_all_s = time.monotonic() - t0
            # 2. steady
            steady_from = time.monotonic()
            steady_line = len(operator.log().splitlines())
            time.sleep(steady_s)
            steady_until = time.monotonic()
            scale_line = len(operator.log().splitlines())
            steady_ms = update_durations(operator.log(), steady_line, scale_line)
            # 3. scale-up: 3 one-CPU tasks per cluster, 3 one-CPU workers (the head holds 0.1 CPU)
            work = json.dumps([{"shape": {"CPU": 1}, "count": 3}])
            patched: dict[str, float] = {}
            for name in names:
                clusters.patch(name, {"metadata": {"annotations": {WORK_ANNOTATION: work}}})
                patched[name] = time.monotonic()
            reacted: dict[str, float] = {}
            deadline = time.monotonic() + 300
            while len(reacted) < len(names) and time.monotonic() < deadline:
                now = time.monotonic()
                for name, (workers, _, _) in counts().items():
                    if name in patched and name not in reacted and workers >= 3:
                        reacted[name] = now - patched[name]
                time.sleep(0.1)
            wait("every cluster: 3 workers Running", lambda: all(counts()[n][2] == 3 for n in names), 300)
            scale_end = len(operator.log().splitlines())
            scale_ms = update_durations(operator.log(), scale_line, scale_end)
            # 4. scale-down
            t3 = time.monotonic()
            for name in names:
                clusters.patch(name, {"metadata": {"annotations": {WORK_ANNOTATION: None}}})
            wait("every cluster back to 1 worker", lambda: all(counts()[n][0] == 1 for n in names), 600)
            down_s = time.monotonic() - t3
            rss.stop.set()
            steady_rss = rss.between(steady_from, steady_until)
            log = operator.log()
        finally:
            rss.stop.set()
            operator.stop()
            admin.close()
    latencies = list(reacted.values())
    updates = [line for line in log.splitlines() if "autoscaler_update" in line]
    return {
        "clusters": clusters_wanted,
        "update_interval_s": interval_s,
        "up_pods_running_s": round(up_s, 1),
        "up_all_status_running_s": round(up_all_s, 1),
        "steady_s": steady_s,
        "steady_updates": len(steady_ms),
        "steady_update_ms_p50": round(percentile(steady_ms, 0.5), 1),
        "steady_update_ms_p95": round(percentile(steady_ms, 0.95), 1),
        "scale_up_updates": len(scale_ms),
        "scale_up_update_ms_p50": round(percentile(scale_ms, 0.5), 1),
        "scale_up_update_ms_p95": round(percentile(scale_ms, 0.95), 1),
        "reaction_s_p50": round(percentile(latencies, 0.5), 2),
        "reaction_s_p95": round(percentile(latencies, 0.95), 2),
        "reaction_s_max": round(max(latencies), 2) if latencies else None,
        "reacted": len(latencies),
        "scale_down_s": round(down_s, 1),
        "rss_steady_mib": round(max(steady_rss) / 2**20, 1) if steady_rss else None,
        "rss_peak_mib": round(max(r for _, r in rss.samples) / 2**20, 1),
        "operator_errors": sum(1 for line in updates if "errors=[] " not in line),
    }


def _has_default_sa(core: CoreV1Api) -> bool:
    try:
        core.read_namespaced_service_account("default", NAMESPACE)
        return True
    except kubernetes.client.exceptions.ApiException:
        return False


def _counts(core: CoreV1Api) -> dict[str, tuple[int, int, int]]:
    """Per cluster: (live workers, Running heads, Running workers), from one LIST."""
    out: dict[str, list[int]] = {}
    for pod in core.list_namespaced_pod(NAMESPACE).items:
        labels = pod.metadata.labels or {}
        cluster = labels.get("ray-cluster-name")
        if cluster is None or pod.metadata.deletion_timestamp is not None:
            continue
        row = out.setdefault(cluster, [0, 0, 0])
        running = pod.status.phase == "Running"
        if labels.get("ray-node-type") == "worker":
            row[0] += 1
            row[2] += running
        elif running:
            row[1] += 1
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def _all_running(clusters: Clusters, names: list[str]) -> bool:
    items = clusters.api.list_namespaced_custom_object("cluster.ray.io", "v1", NAMESPACE, "rayclusters")["items"]
    phases = {item["metadata"]["name"]: (item.get("status") or {}).get("phase") for item in items}
    return all(phases.get(n) == "Running" for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--interval", type=float, default=5.0, help="the operator's update interval, seconds")
    parser.add_argument("--steady", type=float, default=30.0, help="seconds of steady state to measure")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    out = run(args.clusters, args.interval, args.steady)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"Operator: {out['clusters']} RayClusters, one operator process, update interval {out['update_interval_s']} s"
    )
    rows = [
        ("create -> all pods Running", f"{out['up_pods_running_s']} s", ""),
        ("create -> all status Running", f"{out['up_all_status_running_s']} s", ""),
        (
            "update duration, steady (p50 / p95)",
            f"{out['steady_update_ms_p50']} / {out['steady_update_ms_p95']} ms",
            f"{out['steady_updates']} updates",
        ),
        (
            "update duration, scale-up (p50 / p95)",
            f"{out['scale_up_update_ms_p50']} / {out['scale_up_update_ms_p95']} ms",
            f"{out['scale_up_updates']} updates",
        ),
        (
            "work declared -> 3rd worker created (p50 / p95)",
            f"{out['reaction_s_p50']} / {out['reaction_s_p95']} s",
            f"max {out['reaction_s_max']} s, {out['reacted']} clusters",
        ),
        ("work removed -> back to 1 worker", f"{out['scale_down_s']} s", "idle timeout 12 s"),
        ("operator RSS, steady / peak", f"{out['rss_steady_mib']} / {out['rss_peak_mib']} MiB", ""),
        ("updates with errors", str(out["operator_errors"]), ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name.ljust(width)}  {value:>18}  {note}")


if __name__ == "__main__":
    main()
