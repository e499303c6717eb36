"""The test substrate is real Kubernetes: scheduling, GC, RBAC, CRDs, watches.

Each test checks one behaviour that an imitation of the API server would get
wrong or leave out, through the real API server on 127.0.0.1 only.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest
from kubernetes.client import (
    ApiClient,
    ApiextensionsV1Api,
    CoreV1Api,
    CustomObjectsApi,
    V1ConfigMap,
    V1Container,
    V1ObjectMeta,
    V1OwnerReference,
    V1Pod,
    V1PodSpec,
    V1ResourceRequirements,
)
from kubernetes.client.exceptions import ApiException

from rayk8s.testing import ControlPlane
from tests.k8s._helpers import service_account_with_role, wait_for


def make_pod(name: str, **spec: Any) -> V1Pod:
    return V1Pod(
        metadata=V1ObjectMeta(name=name),
        spec=V1PodSpec(
            containers=[V1Container(name="main", image="registry.invalid/never-pulled:1")],
            **spec,
        ),
    )


def big_container(cpu: str) -> V1Container:
    return V1Container(
        name="main",
        image="registry.invalid/never-pulled:1",
        resources=V1ResourceRequirements(requests={"cpu": cpu}),
    )


def condition(pod: V1Pod, kind: str) -> Any:
    return next((c for c in pod.status.conditions or [] if c.type == kind), None)


def gone(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_pod_is_scheduled_onto_a_kwok_node_and_becomes_running(api_client: ApiClient, namespace: str) -> None:
    core = CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, make_pod("worker"))

    def running() -> V1Pod | None:
        pod = core.read_namespaced_pod("worker", namespace)
        return pod if pod.status.phase == "Running" and pod.status.pod_ip else None

    pod = wait_for("the pod to be Running with an IP", running)
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    assert condition(pod, "PodScheduled").status == "True"
    assert condition(pod, "Ready").status == "True"
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(node.spec.pod_cidr)
    assert pod.status.host_ip == next(a.address for a in node.status.addresses if a.type == "InternalIP")


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        pytest.param(
            {"node_selector": {"rayk8s.test/no-such-label": "x"}},
            "node(s) didn't match Pod's node affinity/selector",
            id="selector-matches-no-node",
        ),
        pytest.param(
            {"containers": [big_container(cpu="9")]},  # nodes have 8 CPUs
            "Insufficient cpu",
            id="larger-than-any-node",
        ),
    ],
)
def test_pod_that_fits_no_node_stays_pending_as_unschedulable(
    api_client: ApiClient, namespace: str, spec: dict[str, Any], why: str
) -> None:
    core = CoreV1Api(api_client)
    pod = make_pod("nowhere")
    for key, value in spec.items():
        setattr(pod.spec, key, value)
    core.create_namespaced_pod(namespace, pod)

    def unschedulable() -> V1Pod | None:
        pod = core.read_namespaced_pod("nowhere", namespace)
        scheduled = condition(pod, "PodScheduled")
        return pod if scheduled is not None and scheduled.status == "False" else None

    pod = wait_for("PodScheduled=False", unschedulable)
    assert condition(pod, "PodScheduled").reason == "Unschedulable"
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None
    assert why in condition(pod, "PodScheduled").message


def test_deleting_an_owner_garbage_collects_its_dependants(api_client: ApiClient, namespace: str) -> None:
    core = CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, V1ConfigMap(metadata=V1ObjectMeta(name="owner")))
    reference = V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_config_map(
        namespace,
        V1ConfigMap(metadata=V1ObjectMeta(name="dependant", owner_references=[reference])),
    )
    pod = make_pod("dependant-pod")
    pod.metadata.owner_references = [reference]
    core.create_namespaced_pod(namespace, pod)
    unrelated = core.create_namespaced_config_map(namespace, V1ConfigMap(metadata=V1ObjectMeta(name="unrelated")))

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    wait_for(
        "the dependant ConfigMap to be collected",
        lambda: gone(lambda: core.read_namespaced_config_map("dependant", namespace)),
    )
    wait_for(
        "the dependant Pod to be collected",
        lambda: gone(lambda: core.read_namespaced_pod("dependant-pod", namespace)),
    )
    still = core.read_namespaced_config_map("unrelated", namespace)
    assert still.metadata.uid == unrelated.metadata.uid


def test_service_account_token_can_do_what_its_role_allows_and_nothing_else(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str
) -> None:
    core = CoreV1Api(api_client)
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    service_account_with_role(api_client, namespace, "reader", rules, role="pod-reader")
    core.create_namespaced_pod(namespace, make_pod("visible"))
    with control_plane.service_account_client(namespace, "reader") as reader_client:
        reader = CoreV1Api(reader_client)
        # Allowed: exactly the verbs on pods in this namespace.
        assert [p.metadata.name for p in reader.list_namespaced_pod(namespace).items] == ["visible"]
        assert reader.read_namespaced_pod("visible", namespace).metadata.name == "visible"

        forbidden: list[Callable[[], object]] = [
            lambda: reader.list_namespaced_config_map(namespace),
            lambda: reader.create_namespaced_pod(namespace, make_pod("sneaky")),
            lambda: reader.delete_namespaced_pod("visible", namespace),
            lambda: reader.list_namespaced_pod("default"),
            lambda: reader.list_node(),
        ]
        for call in forbidden:
            with pytest.raises(ApiException) as caught:
                call()
            assert caught.value.status == 403, caught.value.reason


def test_crd_with_a_structural_schema_rejects_an_invalid_object(
    api_client: ApiClient,
) -> None:
    extensions = ApiextensionsV1Api(api_client)
    custom = CustomObjectsApi(api_client)
    group = f"t{uuid.uuid4().hex[:8]}.rayk8s.test"
    crd_name = f"widgets.{group}"
    extensions.create_custom_resource_definition(
        {
            "metadata": {"name": crd_name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "required": ["replicas"],
                                        "properties": {
                                            "replicas": {
                                                "type": "integer",
                                                "minimum": 0,
                                            },
                                            "mode": {
                                                "type": "string",
                                                "enum": ["fast", "slow"],
                                            },
                                        },
                                    },
                                    "status": {
                                        "type": "object",
                                        "properties": {"ready": {"type": "integer"}},
                                    },
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    try:

        def established() -> bool:
            crd = extensions.read_custom_resource_definition(crd_name)
            return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

        wait_for("the CRD to be Established", established)

        def widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
            return {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": spec,
            }

        def create(body: dict[str, Any]) -> dict[str, Any]:
            return custom.create_namespaced_custom_object(group, "v1", "default", "widgets", body)

        for spec, complaint in [
            ({"replicas": "three"}, "spec.replicas"),
            ({"replicas": -1}, "spec.replicas"),
            ({"mode": "fast"}, "spec.replicas: Required value"),
            ({"replicas": 1, "mode": "sideways"}, "spec.mode"),
        ]:
            with pytest.raises(ApiException) as caught:
                create(widget("bad", spec))
            assert caught.value.status == 422
            assert complaint in caught.value.body

        created = create(widget("good", {"replicas": 2, "mode": "fast", "colour": "blue"}))
        assert created["spec"] == {
            "replicas": 2,
            "mode": "fast",
        }  # unknown field pruned
        # The status subresource: writes to the main resource leave status alone.
        created["status"] = {"ready": 2}
        replaced = custom.replace_namespaced_custom_object(group, "v1", "default", "widgets", "good", created)
        assert "status" not in replaced
    finally:
        extensions.delete_custom_resource_definition(crd_name)


def test_watch_resumes_from_a_resource_version_and_a_too_old_one_is_gone(api_client: ApiClient, namespace: str) -> None:
    core = CoreV1Api(api_client)
    created = core.create_namespaced_config_map(
        namespace, V1ConfigMap(metadata=V1ObjectMeta(name="counter"), data={"n": "0"})
    )
    for n in ("1", "2"):
        core.patch_namespaced_config_map("counter", namespace, {"data": {"n": n}})

    watch = kubernetes.watch.Watch()
    seen = []
    for event in watch.stream(
        core.list_namespaced_config_map,
        namespace,
        field_selector="metadata.name=counter",
        resource_version=created.metadata.resource_version,
        timeout_seconds=10,
    ):
        seen.append((event["type"], event["object"].data["n"]))
        if len(seen) == 2:
            watch.stop()
    assert seen == [("MODIFIED", "1"), ("MODIFIED", "2")]

    # A too-old resourceVersion: one from before the window that the API
    # server's watch cache for a resource holds. A new resource type's cache
    # starts at the newest revision, so the ConfigMap's old resourceVersion
    # predates it (as happens to any resource after events leave the cache).
    extensions = ApiextensionsV1Api(api_client)
    custom = CustomObjectsApi(api_client)
    group = f"t{uuid.uuid4().hex[:8]}.rayk8s.test"
    extensions.create_custom_resource_definition(
        {
            "metadata": {"name": f"clocks.{group}"},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "clocks", "singular": "clock", "kind": "Clock"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
    )
    try:

        def expired() -> ApiException | None:
            try:
                for _ in kubernetes.watch.Watch().stream(
                    custom.list_namespaced_custom_object,
                    group,
                    "v1",
                    namespace,
                    "clocks",
                    resource_version=created.metadata.resource_version,
                    timeout_seconds=1,
                ):
                    pass
            except ApiException as error:
                if error.status in (
                    404,
                    429,
                    503,
                ):  # CRD not served / cache not ready yet
                    return None
                return error
            return None

        error = wait_for("a watch from a too-old resourceVersion to fail", expired)
        assert error.status == 410, error
        assert "too old resource version" in error.reason
    finally:
        extensions.delete_custom_resource_definition(f"clocks.{group}")


def test_exec_into_a_pod_runs_the_command_here(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str
) -> None:
    """The exec API works: the API server reaches KWOK, which runs the command in ``exec_home``."""
    from kubernetes.stream import stream

    core = CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, make_pod("shell"))
    wait_for("the pod to run", lambda: core.read_namespaced_pod("shell", namespace).status.phase == "Running")
    client = stream(
        core.connect_get_namespaced_pod_exec,
        "shell",
        namespace,
        command=["sh", "-c", "echo $HOME; pwd"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    try:
        client.run_forever(timeout=30)
        output = client.read_stdout()
    finally:
        client.close()
        client.sock.shutdown()
    assert output.split() == [str(control_plane.exec_home)] * 2
