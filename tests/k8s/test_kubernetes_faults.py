"""The Kubernetes provider under faults injected between it and the real API server.

A small proxy (``_fault_proxy.py``) answers chosen requests with 429 + Retry-After or
500, drops connections before or after the server acted, delays responses, cuts watch
streams, and makes a watch resume from a resourceVersion the server has forgotten. The
provider's real client code runs against the real API server; afterwards there must be
no duplicate pods, no lost pods, and no termination caused by a failed read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api

from rayk8s.autoscaler import (
    Autoscaler,
    AutoscalerConfig,
    LoadSnapshot,
    NodeType,
    NodeTypeConfig,
    NodeUsage,
    ResourceDemand,
    StaticLoadSource,
)
from rayk8s.errors import LaunchError
from rayk8s.providers._tags import TAG_CLUSTER_NAME
from rayk8s.providers.kubernetes import KubernetesNodeProvider
from rayk8s.testing import ControlPlane
from tests.k8s._fault_proxy import FaultProxy
from tests.k8s._helpers import make_provider, pod_template, wait_for, worker_tags

CLUSTER = "faulty"


@pytest.fixture
def proxy(control_plane: ControlPlane) -> Iterator[FaultProxy]:
    with FaultProxy(control_plane) as proxy:
        yield proxy


class Sleeps:
    """The provider's sleep, recorded (and really slept, so the server sees the pauses)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def provider(proxy: FaultProxy, namespace: str, sleeps: Sleeps) -> Iterator[KubernetesNodeProvider]:
    client = proxy.client()
    provider = KubernetesNodeProvider(
        {
            "type": "kubernetes",
            "namespace": namespace,
            "delete_grace_period_s": 0,
            "watch_grace_period_s": 1,
            "retry": {"max_attempts": 5, "initial_backoff_s": 0.05, "max_backoff_s": 0.5},
        },
        CLUSTER,
        api_client=client,
        sleep=sleeps,
    )
    try:
        assert provider.cache.wait_synced(30)
        yield provider
    finally:
        provider.close()
        client.close()


def break_watch(provider: KubernetesNodeProvider, proxy: FaultProxy, *faults: dict[str, Any]) -> None:
    """Once the watch is connected, inject ``faults`` and break it: the next watch
    requests are the ones the faults apply to."""
    wait_for("the watch to connect", lambda: provider.cache.watching, timeout_s=30)
    for fault in faults:
        proxy.inject(**fault)
    provider.cache.interrupt()


def cluster_pods(api_client: ApiClient, namespace: str) -> list[str]:
    pods = CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector=f"{TAG_CLUSTER_NAME}={CLUSTER}")
    return sorted(p.metadata.name for p in pods.items if p.metadata.deletion_timestamp is None)


def test_throttled_creates_wait_as_long_as_retry_after_says_and_create_each_pod_once(
    provider: KubernetesNodeProvider, proxy: FaultProxy, sleeps: Sleeps, api_client: ApiClient, namespace: str
) -> None:
    """429 with Retry-After: the provider waits that long, retries, and creates exactly ``count`` pods."""
    proxy.inject("status", method="POST", path="/pods$", status=429, retry_after=1, times=2)
    ids = provider.create_node(pod_template(), worker_tags(CLUSTER, "throttled"), 3)
    assert len(set(ids)) == 3
    assert sleeps.waits.count(1.0) == 2
    assert provider.api_calls.get("create") == 5
    assert cluster_pods(api_client, namespace) == sorted(ids)


def test_server_errors_and_lost_responses_on_create_neither_duplicate_nor_lose_pods(
    provider: KubernetesNodeProvider, proxy: FaultProxy, api_client: ApiClient, namespace: str
) -> None:
    """A 500, a connection dropped before the server saw the create, and one dropped after
    it created the pod: the provider settles each by listing the launch request's pods,
    and ends with exactly ``count`` pods, all returned."""
    proxy.inject("status", method="POST", path="/pods$", status=500)
    proxy.inject("drop", method="POST", path="/pods$")
    proxy.inject("drop_after", method="POST", path="/pods$", times=2)
    proxy.inject("delay", method="POST", path="/pods$", delay_s=0.5, times=2)
    ids = provider.create_node(pod_template(), worker_tags(CLUSTER, "flaky"), 6)
    assert len(set(ids)) == 6
    assert cluster_pods(api_client, namespace) == sorted(ids)
    # The two creates the server performed but never confirmed were not repeated.
    assert provider.api_calls.get("create") == 6 + 2
    assert provider.api_calls.get("list") >= 2  # the first sync, then settling the request


def test_a_retried_create_node_after_a_timeout_launches_nothing_twice(
    provider: KubernetesNodeProvider, proxy: FaultProxy, api_client: ApiClient, namespace: str
) -> None:
    """Every create's response is lost and so is every list that would settle them: the
    caller gets a LaunchError. Repeating the same launch request afterwards (same
    provider, or a fresh one as after a restart) counts the pods the first call created
    and adds none; a plain repeat of a successful call adds none either."""
    proxy.inject("drop_after", method="POST", path="/pods$", times=100)
    proxy.inject("drop", method="GET", path="/pods$", watch=False, times=100)
    with pytest.raises(LaunchError):
        provider.create_node(pod_template(), worker_tags(CLUSTER, "timed-out"), 2)
    proxy.clear()
    created = cluster_pods(api_client, namespace)
    assert len(created) == 2  # the server did create them
    assert sorted(provider.create_node(pod_template(), worker_tags(CLUSTER, "timed-out"), 2)) == created
    with make_provider(api_client, namespace, CLUSTER) as restarted:
        assert sorted(restarted.create_node(pod_template(), worker_tags(CLUSTER, "timed-out"), 2)) == created
        again = restarted.create_node(pod_template(), worker_tags(CLUSTER, "fine"), 1)
        assert restarted.create_node(pod_template(), worker_tags(CLUSTER, "fine"), 1) == again
    assert len(cluster_pods(api_client, namespace)) == 3


def test_deletes_and_tag_patches_retry_through_server_errors(
    provider: KubernetesNodeProvider, proxy: FaultProxy, api_client: ApiClient, namespace: str
) -> None:
    """5xx and dropped connections on delete and patch are retried with back-off until they land."""
    ids = provider.create_node(pod_template(), worker_tags(CLUSTER, "d"), 2)
    proxy.inject("status", method="PATCH", status=503, times=2)
    provider.set_node_tags(ids[0], {"ray-node-status": "up-to-date"})
    proxy.inject("status", method="DELETE", status=500, times=2)
    proxy.inject("drop", method="DELETE")
    provider.terminate_nodes(ids)
    wait_for("the pods to be deleted", lambda: cluster_pods(api_client, namespace) == [])
    assert provider.api_calls.get("delete") == 2 + 3


def test_dropped_watch_resumes_without_listing_and_an_expired_one_relists(
    provider: KubernetesNodeProvider, proxy: FaultProxy, api_client: ApiClient, namespace: str
) -> None:
    """A watch cut mid-stream resumes from its resourceVersion (no LIST); a watch whose
    resourceVersion the server no longer has (410 Gone from the real API server) relists,
    and the cache again equals a fresh LIST."""
    lists = provider.api_calls.get("list")
    break_watch(provider, proxy, {"action": "cut", "watch": True, "delay_s": 0.2})
    ids = provider.create_node(pod_template(), worker_tags(CLUSTER, "w1"), 2)
    wait_for("the watch to be cut and resumed", lambda: provider.cache.stats.watches >= 3, timeout_s=30)
    assert provider.api_calls.get("list") == lists
    assert provider.cache.stats.expired == 0

    break_watch(provider, proxy, {"action": "expire", "watch": True})
    core = CoreV1Api(api_client)
    core.delete_namespaced_pod(ids[0], namespace, grace_period_seconds=0)  # a change the cache must not miss
    wait_for("the watch to expire and relist", lambda: provider.cache.stats.relists >= 1, timeout_s=30)
    assert provider.cache.stats.expired >= 1
    # The same expiry as an HTTP 410 answer to the watch request.
    break_watch(provider, proxy, {"action": "status", "watch": True, "status": 410})
    wait_for("a second relist", lambda: provider.cache.stats.relists >= 2, timeout_s=30)

    def in_step() -> bool:
        cached = {n.id for n in provider.nodes().nodes if n.status.value != "terminating"}
        return cached == set(cluster_pods(api_client, namespace))

    wait_for("the cache to equal a fresh LIST", in_step, timeout_s=30)
    assert not provider.nodes().partial


def test_a_broken_watch_makes_reads_partial_and_the_autoscaler_terminates_nothing(
    provider: KubernetesNodeProvider, proxy: FaultProxy, api_client: ApiClient, namespace: str
) -> None:
    """While the watch cannot reconnect beyond the grace period, nodes() is partial and an
    update that would terminate idle nodes terminates none; once the watch is back, it does."""
    node_type = NodeType("cpu", {"CPU": 1}, max_workers=10)
    config = AutoscalerConfig(
        CLUSTER, [NodeTypeConfig(node_type, pod_template())], idle_timeout_minutes=0, stuck_timeout_s=3600
    )
    ids = provider.create_node(pod_template(), worker_tags(CLUSTER, "idle"), 2)
    wait_for("pods to run", lambda: all(provider.is_running(i) for i in ids))
    now = time.time()
    idle = StaticLoadSource(LoadSnapshot(nodes=[NodeUsage(i, {"CPU": 1}, idle_since=now - 3600) for i in ids]))
    autoscaler = Autoscaler(config, provider=provider, load_source=idle, clock=time.time)

    break_watch(provider, proxy, {"action": "status", "method": "GET", "watch": True, "status": 500, "times": 10_000})
    wait_for("reads to turn partial", lambda: provider.nodes().partial, timeout_s=30)
    result = autoscaler.update()
    assert result.terminations == ()
    assert result.held_back
    assert cluster_pods(api_client, namespace) == sorted(ids)

    proxy.clear()
    wait_for("the watch to recover", lambda: not provider.nodes().partial, timeout_s=30)
    result = autoscaler.update()
    assert {t.node_id for t in result.terminations} == set(ids)


def test_an_autoscaler_through_a_faulty_api_ends_with_exactly_the_pods_it_wanted(
    provider: KubernetesNodeProvider, proxy: FaultProxy, api_client: ApiClient, namespace: str
) -> None:
    """Scale to 8 pods (min_workers) while creates, reads and watches fail in every way:
    exactly 8 pods exist, and nothing was terminated."""
    node_type = NodeType("cpu", {"CPU": 1}, min_workers=8, max_workers=20)
    config = AutoscalerConfig(CLUSTER, [NodeTypeConfig(node_type, pod_template())])
    demand = StaticLoadSource(LoadSnapshot(demands=[ResourceDemand({"CPU": 1}, 4)]))
    autoscaler = Autoscaler(config, provider=provider, load_source=demand, clock=time.time)
    proxy.inject("status", method="POST", path="/pods$", status=429, retry_after=0, times=2)
    proxy.inject("drop_after", method="POST", path="/pods$", times=2)
    proxy.inject("status", method="POST", path="/pods$", status=500, times=1)
    break_watch(
        provider,
        proxy,
        {"action": "cut", "watch": True, "delay_s": 0.3, "times": 3},
        {"action": "expire", "watch": True, "times": 1},
    )
    results = []
    for _ in range(10):
        results.append(autoscaler.update())
        if len(cluster_pods(api_client, namespace)) >= 8 and not provider.nodes().partial:
            break
        time.sleep(0.3)
    for _ in range(3):  # more updates: nothing more is launched
        results.append(autoscaler.update())
    assert len(cluster_pods(api_client, namespace)) == 8
    assert sum(len(r.terminations) for r in results) == 0
