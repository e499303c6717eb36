"""Kubernetes provider benchmark: one node type from 0 to 1,000 pods and back, on a real API server.

Run from the repository root (needs the control-plane build; see docs/kubernetes-tests.md)::

    python -m benchmarks.bench_kubernetes              # 1,000 pods
    python -m benchmarks.bench_kubernetes --pods 200   # quicker

Starts its own control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, KWOK with enough fake Nodes for the pods), then drives the real
:class:`~rayk8s.autoscaler.Autoscaler` with the Kubernetes provider:

1. **up**: a ``request_resources`` constraint of ``N`` one-CPU bundles on a one-CPU node
   type; updates run until ``N`` pods are Running. Each Running pod is then reported by
   the load source as joined and idle (as Ray would), so the autoscaler tags it
   ``up-to-date`` (one label patch per pod).
2. **steady**: updates with nothing to do; the target is **0 LIST calls** per update.
3. **down**: the constraint is dropped; every node is idle past the timeout and is
   terminated; updates run until no pod is left.

Prints wall times, the API calls by verb and resource, and LIST calls per steady-state
update. Every call is counted by the provider itself (each retry counts).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import kubernetes
from kubernetes.client import CoreV1Api

from rayk8s.autoscaler import (
    Autoscaler,
    AutoscalerConfig,
    LoadSnapshot,
    NodeType,
    NodeTypeConfig,
    NodeUsage,
    ResourceRequest,
)
from rayk8s.providers import ProviderNodeStatus
from rayk8s.providers._tags import TAG_CLUSTER_NAME
from rayk8s.providers.kubernetes import KubernetesNodeProvider
from rayk8s.testing import ControlPlane

CLUSTER = "bench"
NAMESPACE = "rayk8s-bench"
PODS_PER_NODE = 110

POD_TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "ray"}},
    "spec": {
        "containers": [
            {
                "name": "ray",
                "image": "registry.invalid/ray:never-pulled",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            }
        ]
    },
}


class RayLike:
    """A load source standing in for Ray: running pods have joined and are idle.

    ``requests``: the ``request_resources`` bundles; ``idle_since``: the idle start
    reported for every running pod (far in the past once scale-down should happen).
    """

    def __init__(self, provider: KubernetesNodeProvider) -> None:
        self.provider = provider
        self.requests = 0
        self.idle_since = time.time()

    def load(self) -> LoadSnapshot:
        running = [n.id for n in self.provider.nodes().nodes if n.status is ProviderNodeStatus.RUNNING]
        return LoadSnapshot(
            resource_requests=[ResourceRequest({"CPU": 1}, self.requests)] if self.requests else [],
            nodes=[NodeUsage(node_id, {"CPU": 1}, idle_since=self.idle_since) for node_id in running],
        )


def count_pods(core: CoreV1Api) -> tuple[int, int]:
    """(pods of the cluster, Running ones), from a fresh LIST by a separate client (not counted)."""
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"{TAG_CLUSTER_NAME}={CLUSTER}").items
    return len(pods), sum(1 for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None)


def run(pods: int, concurrency: int, steady_updates: int, interval_s: float) -> dict[str, Any]:
    nodes = max(1, math.ceil(pods * 1.05 / PODS_PER_NODE))
    started = time.perf_counter()
    with ControlPlane.start(nodes=nodes, node_cpu="200", node_memory="1Ti", node_pods=PODS_PER_NODE, echo=False) as cp:
        startup_s = time.perf_counter() - started
        admin = kubernetes.config.new_client_from_config(config_file=str(cp.kubeconfig))
        observer = CoreV1Api(admin)
        observer.create_namespace({"metadata": {"name": NAMESPACE}})
        while True:  # pods are admitted once the namespace's default ServiceAccount exists
            try:
                observer.read_namespaced_service_account("default", NAMESPACE)
                break
            except kubernetes.client.exceptions.ApiException:
                time.sleep(0.1)
        provider_client = kubernetes.config.new_client_from_config(config_file=str(cp.kubeconfig))
        provider = KubernetesNodeProvider(
            {"type": "kubernetes", "namespace": NAMESPACE, "create_concurrency": concurrency},
            CLUSTER,
            api_client=provider_client,
        )
        node_type = NodeType("worker", {"CPU": 1}, max_workers=pods)
        config = AutoscalerConfig(
            CLUSTER,
            [NodeTypeConfig(node_type, POD_TEMPLATE)],
            max_workers=pods,
            idle_timeout_minutes=10,
            stuck_timeout_s=3600,
        )
        load = RayLike(provider)
        autoscaler = Autoscaler(config, provider=provider, load_source=load, clock=time.time)
        errors: list[str] = []

        def update() -> Any:
            result = autoscaler.update()
            errors.extend(str(e) for e in result.errors)
            return result

        # 1. up
        load.requests = pods
        t0 = time.perf_counter()
        updates_up = 0
        created_at: float | None = None
        while True:
            update()
            updates_up += 1
            if created_at is None and provider.api_calls.get("create") >= pods:
                created_at = time.perf_counter() - t0
            total, running = count_pods(observer)
            if running >= pods:
                break
            time.sleep(interval_s)
        up_s = time.perf_counter() - t0
        # Let every pod be tagged up-to-date (joined), then measure the steady state.
        for _ in range(3):
            update()
        calls_before = provider.api_calls.snapshot()
        steady_times = []
        for _ in range(steady_updates):
            s0 = time.perf_counter()
            result = update()
            steady_times.append(time.perf_counter() - s0)
            assert not result.launches and not result.terminations, result.log_fields()
        calls_after = provider.api_calls.snapshot()
        steady_delta = {k: calls_after.get(k, 0) - calls_before.get(k, 0) for k in calls_after}
        steady_lists = steady_delta.get(("list", "pods"), 0)

        # 3. down
        load.requests = 0
        load.idle_since = time.time() - 3600
        t1 = time.perf_counter()
        updates_down = 0
        while True:
            update()
            updates_down += 1
            total, _ = count_pods(observer)
            if total == 0 and not provider.non_terminated_nodes({}):
                break
            time.sleep(interval_s)
        down_s = time.perf_counter() - t1
        calls = provider.api_calls.snapshot()
        stats = provider.cache.stats
        provider.close()
        provider_client.close()
        admin.close()
    return {
        "pods": pods,
        "kwok_nodes": nodes,
        "create_concurrency": concurrency,
        "control_plane_start_s": round(startup_s, 1),
        "up_s": round(up_s, 1),
        "up_creates_done_s": round(created_at or 0.0, 1),
        "up_updates": updates_up,
        "down_s": round(down_s, 1),
        "down_updates": updates_down,
        "steady_updates": steady_updates,
        "steady_list_calls_per_update": steady_lists / steady_updates,
        "steady_api_calls": {f"{verb} {res}": n for (verb, res), n in sorted(steady_delta.items()) if n},
        "steady_update_ms_median": round(sorted(steady_times)[len(steady_times) // 2] * 1000, 1),
        "api_calls": {f"{verb} {res}": n for (verb, res), n in sorted(calls.items())},
        "api_calls_total": sum(calls.values()),
        "cache": {"lists": stats.lists, "relists": stats.relists, "watches": stats.watches, "events": stats.events},
        "update_errors": errors[:5],
        "update_error_count": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10, help="provider.create_concurrency")
    parser.add_argument("--steady-updates", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between updates")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    out = run(args.pods, args.concurrency, args.steady_updates, args.interval)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"Kubernetes provider: 0 -> {out['pods']} -> 0 pods ({out['kwok_nodes']} KWOK nodes, "
          f"create_concurrency {out['create_concurrency']})")  # fmt: skip
    rows = [
        ("scale up: 0 -> all Running", f"{out['up_s']} s", f"{out['up_updates']} updates"),
        ("  of which creating the pods", f"{out['up_creates_done_s']} s", ""),
        ("scale down: all -> 0 pods gone", f"{out['down_s']} s", f"{out['down_updates']} updates"),
        ("steady-state update (median)", f"{out['steady_update_ms_median']} ms", f"{out['steady_updates']} updates"),
        ("LIST calls per steady-state update", f"{out['steady_list_calls_per_update']:g}", "target 0"),
        ("API calls in the steady state", str(sum(out["steady_api_calls"].values())), ""),
        ("API calls, whole run", str(out["api_calls_total"]), ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name.ljust(width)}  {value:>10}  {note}")
    print("  API calls by verb and resource: " + ", ".join(f"{k}={v}" for k, v in out["api_calls"].items()))
    print(f"  pod cache: {out['cache']}")
    if out["update_error_count"]:
        print(f"  update errors: {out['update_error_count']} (first: {out['update_errors']})")


if __name__ == "__main__":
    main()
