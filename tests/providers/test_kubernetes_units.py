"""The Kubernetes provider's pure parts, without a cluster: labels, manifests, resources,
pod status, error mapping, retries and config checking."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from rayk8s.autoscaler import NodeType, ResourceDemand, SchedulingRequest, schedule
from rayk8s.errors import (
    APIConflictError,
    APIError,
    APIForbiddenError,
    APINotFoundError,
    APIServerError,
    APITooManyRequestsError,
    ConfigError,
)
from rayk8s.providers import ProviderNodeStatus, get_provider_class
from rayk8s.providers.kubernetes import KubernetesNodeProvider, KubernetesProviderConfig, RetryPolicy
from rayk8s.providers.kubernetes._api import ApiCallCounter, ApiCaller, map_api_error
from rayk8s.providers.kubernetes._pods import (
    label_value,
    pod_manifest,
    pod_to_node,
    resources_from_pod_template,
    tag_labels,
    tags_of,
)
from rayk8s.providers.kubernetes._services import head_service_manifest, service_manifests


def template(**resources: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "ray", "image": "ray", "resources": resources}]}}


# -- labels -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["cpu", "a.b_c-d", "x" * 63, "", "0"])
def test_valid_label_values_are_kept(value: str) -> None:
    """A value a label can hold is stored as is, with no annotation."""
    assert tag_labels({"k": value}) == ({"k": value}, {})


@pytest.mark.parametrize("value", ["x" * 64, "cpu/small", "-leading", "trailing-", "sha256:abc", "with space"])
def test_other_values_are_hashed_and_kept_verbatim_in_an_annotation(value: str) -> None:
    """A value no label can hold becomes a stable ``h-<digest>`` label; tags_of gives back the original."""
    labels, annotations = tag_labels({"ray-launch-config": value})
    hashed = labels["ray-launch-config"]
    assert hashed.startswith("h-") and len(hashed) <= 63 and label_value(value) == hashed
    assert annotations == {"tags.rayk8s.io/ray-launch-config": value}
    assert tags_of({"labels": labels, "annotations": annotations}) == {"ray-launch-config": value}


def test_an_annotation_that_does_not_match_its_label_is_ignored() -> None:
    """A stale annotation (the label was changed since) does not override the label."""
    metadata = {"labels": {"k": "new"}, "annotations": {"tags.rayk8s.io/k": "old/value"}}
    assert tags_of(metadata) == {"k": "new"}


@pytest.mark.parametrize("key", ["has space", "-x", "a/b/c", "UPPER.case/ok!", "x" * 64])
def test_tag_keys_that_are_not_label_keys_are_config_errors(key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        tag_labels({key: "v"})
    assert raised.value.path == f"tags.{key}"


# -- manifests ------------------------------------------------------------------------------


def test_worker_manifest_merges_template_metadata_and_tags() -> None:
    """generateName per kind; template labels/annotations kept, tags win; owner set; name dropped."""
    pod_template = {
        "metadata": {"name": "ignored", "labels": {"app": "ray", "ray-node-type": "wrong"}, "annotations": {"a": "1"}},
        "spec": {"containers": [{"name": "ray", "image": "ray"}]},
    }
    owner = {"apiVersion": "cluster.ray.io/v1", "kind": "RayCluster", "name": "c", "uid": "u-1"}
    pod = pod_manifest(
        pod_template, {"ray-node-type": "worker", "ray-user-node-type": "cpu"}, "c", owner_reference=owner
    )
    assert pod["metadata"]["generateName"] == "c-ray-worker-"
    assert "name" not in pod["metadata"]
    assert pod["metadata"]["labels"] == {
        "app": "ray",
        "ray-node-type": "worker",
        "ray-user-node-type": "cpu",
        "ray-cluster-name": "c",
    }
    assert pod["metadata"]["annotations"] == {"a": "1"}
    assert pod["metadata"]["ownerReferences"] == [owner]
    assert pod["spec"] == pod_template["spec"] and pod["spec"] is not pod_template["spec"]


def test_head_manifest_carries_the_component_label_the_head_service_selects() -> None:
    pod = pod_manifest(template(), {"ray-node-type": "head"}, "c")
    assert pod["metadata"]["generateName"] == "c-ray-head-"
    assert pod["metadata"]["labels"]["component"] == "c-ray-head"
    assert head_service_manifest("c")["spec"]["selector"] == {"component": "c-ray-head"}


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ("nope", "node_config"),
        ({"metadata": {}}, "node_config.spec"),
        ({"spec": {}, "metadata": 3}, "node_config.metadata"),
    ],
)
def test_a_template_that_is_not_a_pod_is_a_config_error(bad: Any, path: str) -> None:
    with pytest.raises(ConfigError) as raised:
        pod_manifest(bad, {}, "c")
    assert raised.value.path == path


def test_service_manifests_add_the_head_selector_owner_and_check_names() -> None:
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u"}
    services = service_manifests("c", [{"metadata": {"name": "extra"}, "spec": {"ports": [{"port": 1}]}}], owner)
    assert [s["metadata"]["name"] for s in services] == ["c-ray-head", "extra"]
    assert services[1]["spec"]["selector"] == {"component": "c-ray-head"}
    assert all(s["metadata"]["ownerReferences"] == [owner] for s in services)
    with pytest.raises(ConfigError) as raised:
        service_manifests("c", [{"spec": {}}])
    assert raised.value.path == "provider.services[0].metadata.name"


# -- resources ------------------------------------------------------------------------------


def test_resources_come_from_limits_with_exact_units() -> None:
    """CPU from limits (500m is 0.5), memory exact (1M is 10**6, not 2**20), any */gpu is GPU."""
    derived = resources_from_pod_template(
        template(limits={"cpu": "500m", "memory": "1M", "nvidia.com/gpu": 2, "amd.com/gpu": "1"}, requests={"cpu": 4})
    )
    assert derived.to_dict() == {"CPU": 0.5, "memory": 1_000_000, "GPU": 3}


def test_requests_are_used_when_there_are_no_limits_and_explicit_resources_win() -> None:
    derived = resources_from_pod_template(template(requests={"cpu": "2", "memory": "4Gi"}))
    assert derived.to_dict() == {"CPU": 2, "memory": 4 * 2**30}
    overridden = resources_from_pod_template(template(limits={"cpu": "8"}), {"CPU": 6, "custom": 1})
    assert overridden.to_dict() == {"CPU": 6, "custom": 1}
    assert resources_from_pod_template(template(limits={"cpu": "8"}), {"CPU": 0}).to_dict() == {}


def test_a_bad_quantity_names_the_template_field() -> None:
    with pytest.raises(ConfigError) as raised:
        KubernetesNodeProvider.fillout_available_node_types_resources(
            {"gpu": {"node_config": template(limits={"nvidia.com/gpu": "lots"})}}
        )
    assert (
        raised.value.path == "available_node_types.gpu.node_config.spec.containers[0].resources.limits.nvidia.com/gpu"
    )


def test_a_node_type_without_pods_can_be_chosen_for_a_demand_from_its_template() -> None:
    """Scale from zero: with resources filled out from pod templates, the scheduler launches
    the GPU type for a GPU demand although no pod of it exists."""
    types = KubernetesNodeProvider.fillout_available_node_types_resources(
        {
            "cpu": {"node_config": template(limits={"cpu": "4", "memory": "16Gi"}), "max_workers": 10},
            "gpu": {"node_config": template(limits={"cpu": "8", "memory": "60Gi", "nvidia.com/gpu": 1})},
        }
    )
    assert types["gpu"]["resources"] == {"CPU": 8, "memory": 60 * 2**30, "GPU": 1}
    node_types = [NodeType(name, t["resources"], max_workers=10) for name, t in types.items()]
    decision = schedule(SchedulingRequest(node_types=node_types, demands=[ResourceDemand({"GPU": 1, "CPU": 1}, 2)]))
    assert decision.launch == {"gpu": 2}


# -- pod status -------------------------------------------------------------------------------


def pod(phase: str = "Pending", **extra: Any) -> dict[str, Any]:
    metadata = {"name": "p", "labels": {"a": "b"}, "creationTimestamp": "2024-01-01T00:00:00Z"}
    metadata.update(extra.pop("metadata", {}))
    return {"metadata": metadata, "status": {"phase": phase, **extra}}


def test_pod_status_maps_phase_ip_and_deletion() -> None:
    assert pod_to_node(pod("Pending")).status is ProviderNodeStatus.PENDING
    assert pod_to_node(pod("Running")).status is ProviderNodeStatus.PENDING  # no IP yet
    running = pod_to_node(pod("Running", podIP="10.0.0.1"))
    assert (running.status, running.internal_ip) == (ProviderNodeStatus.RUNNING, "10.0.0.1")
    assert running.created_at == 1704067200.0
    assert pod_to_node(pod("Failed")).status is ProviderNodeStatus.FAILED
    assert pod_to_node(pod("Succeeded")).status is ProviderNodeStatus.FAILED
    deleting = pod_to_node(pod("Running", podIP="10.0.0.1", metadata={"deletionTimestamp": "2024-01-01T00:01:00Z"}))
    assert deleting.status is ProviderNodeStatus.TERMINATING


def test_a_pending_pod_the_scheduler_cannot_place_is_reported_unschedulable() -> None:
    unschedulable = pod(
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}]
    )
    assert pod_to_node(unschedulable).unschedulable == "0/3 nodes"
    waiting = pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}])
    assert pod_to_node(waiting).unschedulable is None
    assert pod_to_node(pod()).unschedulable is None


# -- API errors and retries -------------------------------------------------------------------


def api_exception(status: int, message: str = "m", headers: dict[str, str] | None = None) -> ApiException:
    error = ApiException(status=status, reason="r")
    error.body = json.dumps({"kind": "Status", "message": message})
    error.headers = headers or {}
    return error


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (403, APIForbiddenError),
        (404, APINotFoundError),
        (409, APIConflictError),
        (429, APITooManyRequestsError),
        (500, APIServerError),
        (503, APIServerError),
        (422, APIError),
    ],
)
def test_api_exceptions_map_by_status_and_name_the_call(status: int, kind: type[APIError]) -> None:
    error = map_api_error("create pods", api_exception(status, "pods is forbidden"))
    assert type(error) is kind
    assert (error.call, error.status, error.reason) == ("create pods", status, "pods is forbidden")
    assert str(error).startswith("create pods failed")


def test_retry_after_is_read_and_connection_errors_are_server_errors() -> None:
    throttled = map_api_error("list pods", api_exception(429, headers={"Retry-After": "3"}))
    assert isinstance(throttled, APITooManyRequestsError) and throttled.retry_after == 3.0
    dropped = map_api_error("list pods", ProtocolError("Connection aborted"))
    assert isinstance(dropped, APIServerError) and dropped.status == 0


class Flaky:
    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def caller(max_attempts: int = 5) -> tuple[ApiCaller, list[float]]:
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=max_attempts, initial_backoff_s=1, max_backoff_s=4)
    return ApiCaller(ApiCallCounter("t"), policy, sleep=waits.append, rng=random.Random(0)), waits


def test_429_waits_retry_after_and_5xx_backs_off_exponentially_with_jitter_up_to_the_cap() -> None:
    api, waits = caller(max_attempts=10)
    flaky = Flaky(
        api_exception(429, headers={"Retry-After": "7"}),
        api_exception(500),
        api_exception(502),
        ProtocolError("reset"),
        api_exception(503),
        api_exception(500),
    )
    assert api.call("get", "pods", flaky) == "ok"
    assert waits[0] == 7.0
    caps = [2, 4, 4, 4, 4]  # after attempt n: 2**(n-1) s capped at 4; each wait in [cap/2, cap]
    for wait, cap in zip(waits[1:], caps, strict=True):
        assert cap / 2 <= wait <= cap
    assert api.counter.get("get") == 7


def test_non_idempotent_calls_are_not_repeated_after_a_server_error_but_are_after_429() -> None:
    api, _ = caller()
    with pytest.raises(APIServerError):
        api.call("create", "pods", Flaky(api_exception(500)), idempotent=False)
    assert api.counter.get("create") == 1
    assert api.call("create", "pods", Flaky(api_exception(429)), idempotent=False) == "ok"
    assert api.counter.get("create") == 3


def test_client_errors_are_raised_at_once_and_attempts_are_bounded() -> None:
    api, waits = caller(max_attempts=3)
    with pytest.raises(APIForbiddenError):
        api.call("list", "secrets", Flaky(api_exception(403)))
    with pytest.raises(APIServerError):
        api.call("list", "pods", Flaky(*[api_exception(500)] * 5))
    assert api.counter.snapshot() == {("list", "secrets"): 1, ("list", "pods"): 3}
    assert len(waits) == 2


def test_bugs_are_not_mistaken_for_api_failures() -> None:
    api, _ = caller()
    with pytest.raises(KeyError):
        api.call("get", "pods", Flaky(KeyError("bug")))


# -- config -----------------------------------------------------------------------------------


def test_the_registry_knows_the_kubernetes_provider() -> None:
    assert get_provider_class({"type": "kubernetes"}) is KubernetesNodeProvider


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({}, "provider.namespace"),
        ({"namespace": "Bad_Name"}, "provider.namespace"),
        ({"namespace": "ns", "create_concurrency": 0}, "provider.create_concurrency"),
        ({"namespace": "ns", "delete_grace_period_s": -1}, "provider.delete_grace_period_s"),
        ({"namespace": "ns", "retry": {"max_attempts": 0}}, "provider.retry.max_attempts"),
        ({"namespace": "ns", "retry": {"initial_backoff_s": "fast"}}, "provider.retry.initial_backoff_s"),
        ({"namespace": "ns", "retry": {"jitter": 1}}, "provider.retry.jitter"),
        ({"namespace": "ns", "owner_reference": {"kind": "RayCluster"}}, "provider.owner_reference.apiVersion"),
        ({"namespace": "ns", "services": "svc"}, "provider.services"),
        ({"namespace": "ns", "colour": "blue"}, "provider.colour"),
    ],
)
def test_bad_provider_config_names_the_field(config: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as raised:
        KubernetesProviderConfig.from_dict({"type": "kubernetes", **config})
    assert raised.value.path == path


def test_good_provider_config_and_rays_own_keys_are_accepted() -> None:
    config = KubernetesProviderConfig.from_dict(
        {
            "type": "kubernetes",
            "namespace": "ray",
            "use_internal_ips": True,
            "autoscaler_service_account": {"metadata": {"name": "x"}},
            "retry": {"max_attempts": 2},
            "create_concurrency": 4,
        }
    )
    assert (config.namespace, config.create_concurrency, config.retry.max_attempts) == ("ray", 4, 2)
    assert config.retry.max_backoff_s == RetryPolicy().max_backoff_s


def test_cluster_names_that_cannot_name_pods_are_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        KubernetesNodeProvider({"type": "kubernetes", "namespace": "ns"}, "Not_Valid", api_client=object())  # type: ignore[arg-type]
    assert raised.value.path == "cluster_name"
