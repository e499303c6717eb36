"""The Kubernetes provider on the real control plane: pods, labels, Services, owners,
scheduling, quota, invalid templates, the watch cache, API call counts and RBAC."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    ApiClient,
    CoreV1Api,
    DiscoveryV1Api,
)

from rayk8s.autoscaler import (
    Autoscaler,
    AutoscalerConfig,
    LoadSnapshot,
    NodeType,
    NodeTypeConfig,
    ResourceDemand,
    StaticLoadSource,
)
from rayk8s.errors import APIForbiddenError, LaunchConfigError, QuotaError
from rayk8s.providers import ProviderNodeStatus, make_provider
from rayk8s.providers._tags import (
    NODE_KIND_HEAD,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_CONFIG,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)
from rayk8s.providers.kubernetes import KubernetesNodeProvider
from rayk8s.testing import ControlPlane
from tests.k8s._fault_proxy import FaultProxy
from tests.k8s._helpers import apply_rbac, pod_template, wait_for, worker_tags
from tests.k8s._helpers import make_provider as provider_on

RBAC_EXAMPLE = Path(__file__).parents[2] / "examples" / "kubernetes" / "autoscaler-rbac.yaml"


def live_pods(core: CoreV1Api, namespace: str, selector: str = "") -> dict[str, Any]:
    pods = core.list_namespaced_pod(namespace, label_selector=selector or None).items
    return {p.metadata.name: p for p in pods if p.metadata.deletion_timestamp is None}


def test_provider_type_kubernetes_builds_this_provider(api_client: ApiClient, namespace: str) -> None:
    """``provider.type: kubernetes`` finds the provider; a config error names the field."""
    provider = make_provider({"type": "kubernetes", "namespace": namespace}, "c1", api_client=api_client)
    try:
        assert isinstance(provider, KubernetesNodeProvider)
    finally:
        provider.close()  # type: ignore[attr-defined]


def test_pods_are_named_and_labelled_per_the_design_and_the_head_service_selects_the_head(
    api_client: ApiClient, namespace: str
) -> None:
    """Worker and head pods get generateName, the tag labels, the template's own labels and
    annotations, and the head ``component``; a tag value no label can hold is stored hashed
    with the original in an annotation and read back verbatim; the head Service exposes
    10001/8265/6379 and its endpoints are the head pod."""
    core = CoreV1Api(api_client)
    long_config = "sha256:" + "ab" * 40  # 87 characters with a colon: not a label value
    with provider_on(api_client, namespace, "demo") as provider:
        workers = provider.create_node(
            pod_template(), worker_tags("demo", "w1", node_type="cpu/small", **{TAG_LAUNCH_CONFIG: long_config}), 2
        )
        (head,) = provider.create_node(
            pod_template(), {**worker_tags("demo", "h1", node_type="head"), TAG_NODE_KIND: NODE_KIND_HEAD}, 1
        )
        assert all(w.startswith("demo-ray-worker-") for w in workers)
        assert head.startswith("demo-ray-head-")
        pods = live_pods(core, namespace)
        worker = pods[workers[0]]
        labels = worker.metadata.labels
        assert labels[TAG_CLUSTER_NAME] == "demo"
        assert labels[TAG_NODE_KIND] == "worker"
        assert labels[TAG_NODE_STATUS] == "uninitialized"
        assert labels["app"] == "ray"  # the template's labels are kept
        assert worker.metadata.annotations["example.com/note"] == "kept"
        assert labels[TAG_LAUNCH_CONFIG].startswith("h-") and len(labels[TAG_LAUNCH_CONFIG]) <= 63
        assert worker.metadata.annotations[f"tags.rayk8s.io/{TAG_LAUNCH_CONFIG}"] == long_config
        assert "component" not in labels
        assert pods[head].metadata.labels["component"] == "demo-ray-head"
        assert pods[head].metadata.labels[TAG_NODE_KIND] == "head"
        # Tags read back verbatim, through the cache.
        assert provider.node_tags(workers[0])[TAG_LAUNCH_CONFIG] == long_config
        assert provider.node_tags(workers[0])[TAG_USER_NODE_TYPE] == "cpu/small"
        assert set(provider.non_terminated_nodes({TAG_USER_NODE_TYPE: "cpu/small"})) == set(workers)
        # Selectors: the cluster label selects exactly this cluster's pods.
        assert set(live_pods(core, namespace, f"{TAG_CLUSTER_NAME}=demo")) == {*workers, head}
        assert set(live_pods(core, namespace, "component=demo-ray-head")) == {head}

        service = core.read_namespaced_service("demo-ray-head", namespace)
        assert service.spec.type == "ClusterIP"
        assert service.spec.selector == {"component": "demo-ray-head"}
        assert {p.name: p.port for p in service.spec.ports} == {"client": 10001, "dashboard": 8265, "gcs": 6379}
        assert provider.ensure_services() == {"demo-ray-head": "unchanged"}  # idempotent

        wait_for("the head to run", lambda: provider.is_running(head))
        head_ip = provider.internal_ip(head)
        discovery = DiscoveryV1Api(api_client)

        def endpoints() -> set[str]:
            slices = discovery.list_namespaced_endpoint_slice(
                namespace, label_selector="kubernetes.io/service-name=demo-ray-head"
            ).items
            return {a for s in slices for e in s.endpoints or [] for a in e.addresses}

        assert wait_for("the head Service's endpoints", lambda: endpoints() == {head_ip}, timeout_s=60)


def test_extra_services_from_the_config_are_created_and_kept_in_step(api_client: ApiClient, namespace: str) -> None:
    """``provider.services`` are created with the head selector; running again reads them and
    writes nothing; a Service changed by hand is patched back; a deleted one is made again."""
    core = CoreV1Api(api_client)
    extra = {"metadata": {"name": "svc-extra"}, "spec": {"ports": [{"name": "serve", "port": 8000}]}}
    with provider_on(api_client, namespace, "svc", services=[extra]) as provider:
        assert provider.ensure_services() == {"svc-ray-head": "created", "svc-extra": "created"}
        version = core.read_namespaced_service("svc-extra", namespace).metadata.resource_version
        before = provider.api_calls.snapshot()
        assert provider.ensure_services() == {"svc-ray-head": "unchanged", "svc-extra": "unchanged"}
        after = provider.api_calls.snapshot()
        assert {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)} == {
            ("get", "services"): 2
        }
        assert core.read_namespaced_service("svc-extra", namespace).metadata.resource_version == version
        core.patch_namespaced_service(
            "svc-extra", namespace, {"metadata": {"labels": {"ray-cluster-name": "someone-else"}}}
        )
        core.delete_namespaced_service("svc-ray-head", namespace)
        assert provider.ensure_services() == {"svc-ray-head": "created", "svc-extra": "updated"}
    service = core.read_namespaced_service("svc-extra", namespace)
    assert service.spec.selector == {"component": "svc-ray-head"}
    assert [p.port for p in service.spec.ports] == [8000]
    assert service.metadata.labels["ray-cluster-name"] == "svc"


def test_deleting_the_owner_garbage_collects_the_pods_and_services(api_client: ApiClient, namespace: str) -> None:
    """With ``owner_reference``, every pod and Service is owned: deleting the owner removes them."""
    core = CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "my-raycluster"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "my-raycluster", "uid": owner.metadata.uid}
    with provider_on(api_client, namespace, "owned", owner_reference=reference) as provider:
        ids = provider.create_node(pod_template(), worker_tags("owned"), 2)
        provider.ensure_services()
        assert live_pods(core, namespace)[ids[0]].metadata.owner_references[0].uid == owner.metadata.uid
        core.delete_namespaced_config_map("my-raycluster", namespace, propagation_policy="Background")
        wait_for("the pods to be collected", lambda: not live_pods(core, namespace), timeout_s=60)
        wait_for("the provider to see them go", lambda: provider.non_terminated_nodes({}) == [], timeout_s=30)
        wait_for(
            "the Service to be collected",
            lambda: not core.list_namespaced_service(namespace, label_selector=f"{TAG_CLUSTER_NAME}=owned").items,
            timeout_s=60,
        )


def test_a_pod_no_node_can_take_is_reported_unschedulable(api_client: ApiClient, namespace: str) -> None:
    """A node type whose nodeSelector matches no KWOK node: pending, with the scheduler's reason."""
    with provider_on(api_client, namespace, "nowhere") as provider:
        (node_id,) = provider.create_node(
            pod_template(nodeSelector={"rayk8s.test/pool": "none"}), worker_tags("nowhere"), 1
        )
        node = wait_for("Unschedulable", lambda: (n := provider.node(node_id)) is not None and n.unschedulable and n)
        assert node.status is ProviderNodeStatus.PENDING
        assert "node affinity/selector" in node.unschedulable
        assert not provider.is_running(node_id)


def test_quota_and_invalid_templates_fail_as_launch_errors_with_their_reason(
    api_client: ApiClient, namespace: str
) -> None:
    """Beyond a ResourceQuota: QuotaError for the pods not created (the others exist); a
    template the API server rejects: LaunchConfigError naming the field."""
    core = CoreV1Api(api_client)
    core.create_namespaced_resource_quota(namespace, {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "3"}}})
    wait_for(
        "the quota to be counted",
        lambda: (core.read_namespaced_resource_quota("q", namespace).status.hard or {}).get("pods") == "3",
    )
    with provider_on(api_client, namespace, "quota", create_concurrency=2) as provider:
        with pytest.raises(QuotaError) as raised:
            provider.create_node(pod_template(), worker_tags("quota", "q1"), 5)
        assert raised.value.count == 2
        assert "exceeded quota" in raised.value.reason
        assert len(live_pods(core, namespace)) == 3

        bad = pod_template()
        bad["spec"]["containers"][0]["name"] = "Not_A_Valid_Name"
        with pytest.raises(LaunchConfigError) as invalid:
            provider.create_node(bad, worker_tags("quota", "bad"), 2)
        assert "spec.containers[0].name" in invalid.value.reason
        assert invalid.value.count == 2


def test_terminate_uses_the_configured_grace_period(control_plane: ControlPlane, namespace: str) -> None:
    """Deletes carry ``delete_grace_period_s``; the node reads as terminated at once and goes."""
    with (
        FaultProxy(control_plane) as proxy,
        proxy.client() as client,
        provider_on(client, namespace, "grace", delete_grace_period_s=30) as provider,
    ):
        (node_id,) = provider.create_node(pod_template(), worker_tags("grace"), 1)
        wait_for("running", lambda: provider.is_running(node_id))
        provider.terminate_nodes([node_id])
        assert provider.is_terminated(node_id)
        (delete,) = [r for r in proxy.requests if r.method == "DELETE"]
        assert delete.path.endswith(f"/pods/{node_id}")
        assert delete.query["gracePeriodSeconds"] == ["30"]
        wait_for("the pod to go", lambda: provider.node(node_id) is None)


def test_after_the_first_sync_a_steady_state_update_makes_no_list_call(
    control_plane: ControlPlane, namespace: str
) -> None:
    """The autoscaler scales up, then updates in a steady state: no LIST reaches the API
    server (counted by the provider and, independently, on the wire by a proxy), and
    every call the provider made is counted by verb and resource."""
    with FaultProxy(control_plane) as proxy, proxy.client() as client:
        provider = KubernetesNodeProvider(
            {"type": "kubernetes", "namespace": namespace, "delete_grace_period_s": 0}, "steady", api_client=client
        )
        try:
            node_type = NodeType("cpu", {"CPU": 1}, max_workers=10)
            config = AutoscalerConfig("steady", [NodeTypeConfig(node_type, pod_template())], upscaling_speed=10)
            load = StaticLoadSource(LoadSnapshot(demands=[ResourceDemand({"CPU": 1}, 4)]))
            autoscaler = Autoscaler(config, provider=provider, load_source=load, clock=time.time)
            assert autoscaler.update().launched == {"cpu": 4}
            wait_for(
                "4 pods running", lambda: sum(provider.is_running(i) for i in provider.non_terminated_nodes()) == 4
            )
            lists_on_wire = proxy.count("GET", watch=False)
            counted = provider.api_calls.snapshot()
            for _ in range(20):
                result = autoscaler.update()
                assert result.launched == {}
            assert proxy.count("GET", watch=False) == lists_on_wire == 1
            assert provider.api_calls.snapshot() == counted
            assert counted[("list", "pods")] == 1
            assert counted[("create", "pods")] == 4
            assert counted[("watch", "pods")] >= 1
            from prometheus_client import REGISTRY

            exported = REGISTRY.get_sample_value(
                "rayk8s_kubernetes_api_calls_total", {"cluster": "steady", "verb": "create", "resource": "pods"}
            )
            assert exported is not None and exported >= 4
        finally:
            provider.close()


def test_the_watch_cache_equals_a_fresh_list_under_churn(api_client: ApiClient, namespace: str) -> None:
    """While another client creates, relabels and deletes pods and the provider does too
    (with a forced reconnect midway), the cache ends equal to a fresh LIST: same pods,
    same resourceVersions, same statuses."""
    core = CoreV1Api(api_client)
    rng = random.Random(7)
    with provider_on(api_client, namespace, "churn") as provider:
        stop = threading.Event()

        def churn() -> None:
            names: list[str] = []
            while not stop.is_set():
                move = rng.random()
                if move < 0.5 or not names:
                    body = {
                        "metadata": {"generateName": "churn-ext-", "labels": worker_tags("churn", "ext")},
                        "spec": pod_template()["spec"],
                    }
                    names.append(core.create_namespaced_pod(namespace, body).metadata.name)
                elif move < 0.75:
                    name = rng.choice(names)
                    core.patch_namespaced_pod(
                        name, namespace, {"metadata": {"labels": {"touch": str(rng.randrange(100))}}},
                        _content_type="application/merge-patch+json",
                    )  # fmt: skip
                else:
                    name = names.pop(rng.randrange(len(names)))
                    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)

        worker = threading.Thread(target=churn)
        worker.start()
        try:
            for round_ in range(6):
                ids = provider.create_node(pod_template(), worker_tags("churn", f"p{round_}"), 3)
                provider.set_node_tags(ids[0], {"touched": "yes"})
                provider.terminate_nodes(ids[1:])
                if round_ == 3:
                    provider.cache.interrupt()  # a dropped connection: resume from the resourceVersion
        finally:
            stop.set()
            worker.join()

        def cache_matches() -> bool:
            listed = core.list_namespaced_pod(namespace, label_selector=f"{TAG_CLUSTER_NAME}=churn").items
            truth = {p.metadata.name: p.metadata.resource_version for p in listed}
            cached = {pod["metadata"]["name"]: pod["metadata"]["resourceVersion"] for pod in provider.cache.pods()}
            return truth == cached

        wait_for("the cache to equal a fresh LIST", cache_matches, timeout_s=60, interval_s=0.5)
        assert provider.cache.stats.lists == 1  # the reconnect resumed without listing again


def test_the_shipped_role_allows_everything_the_provider_does_and_nothing_more(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str
) -> None:
    """Authenticated as the ServiceAccount of examples/kubernetes/autoscaler-rbac.yaml, the
    provider lists, watches, creates, tags and deletes pods and makes its Services; a call
    the Role does not grant is refused with APIForbiddenError naming the call."""
    apply_rbac(api_client, namespace, RBAC_EXAMPLE)
    with (
        control_plane.service_account_client(namespace, "rayk8s-autoscaler") as client,
        provider_on(client, namespace, "rbac") as provider,
    ):
        head_tags = {**worker_tags("rbac", "h"), TAG_NODE_KIND: NODE_KIND_HEAD}
        (head,) = provider.create_node(pod_template(), head_tags, 1)  # also creates the head Service
        workers = provider.create_node(pod_template(), worker_tags("rbac", "w"), 2)
        assert not provider.nodes().partial
        provider.set_node_tags(workers[0], {TAG_NODE_STATUS: "up-to-date"})
        assert provider.ensure_services() == {"rbac-ray-head": "unchanged"}  # exists: read
        provider.terminate_nodes([head, *workers])
        wait_for("the pods to go", lambda: provider.non_terminated_nodes({}) == [])
        assert not provider.nodes().partial

        caller, core_as_sa = provider.caller, provider.core
        forbidden = [
            ("list secrets", lambda: caller.call("list", "secrets", core_as_sa.list_namespaced_secret, namespace)),
            ("delete namespaces", lambda: caller.call("delete", "namespaces", core_as_sa.delete_namespace, namespace)),
            (
                "delete services",
                lambda: caller.call(
                    "delete", "services", core_as_sa.delete_namespaced_service, "rbac-ray-head", namespace
                ),
            ),
            ("list nodes", lambda: caller.call("list", "nodes", core_as_sa.list_node)),
        ]
        for call, attempt in forbidden:
            with pytest.raises(APIForbiddenError) as refused:
                attempt()
            assert refused.value.call == call
            assert refused.value.status == 403
            assert "forbidden" in refused.value.reason
