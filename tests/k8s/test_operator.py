"""The RayCluster operator on the real control plane, run as a process under its ServiceAccount's RBAC.

Pods are KWOK's (they run nothing), so the operator runs with the ``simulated`` load
source: the work a cluster should run is declared in its ``rayk8s.io/simulated-work``
annotation.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from rayk8s.operator import WORK_ANNOTATION
from rayk8s.testing import ControlPlane
from tests.k8s._helpers import wait_for
from tests.k8s._operator import (
    Clusters,
    OperatorProcess,
    example,
    install_crd,
    install_rbac,
    service_account_api,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def clusters(api_client: ApiClient, namespace: str) -> Clusters:
    install_crd(api_client)
    install_rbac(api_client, namespace)
    return Clusters(api_client, namespace)


@pytest.fixture
def operator(
    control_plane: ControlPlane, namespace: str, clusters: Clusters, tmp_path: Path
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(control_plane, namespace, tmp_path)
    try:
        yield process
    finally:
        code = process.stop()
        print(process.log()[-20000:])  # shown when a test fails
        assert code in (0, None, -9), f"the operator exited with {code}"


def api_calls(operator: OperatorProcess, cluster: str) -> dict[str, float]:
    """The provider's API calls for ``cluster`` by verb and resource, from the operator's metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).read().decode()
    prefix = f'rayk8s_kubernetes_api_calls_total{{cluster="{cluster}",'
    return {line.split("}")[0]: float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)}


def work(clusters: Clusters, name: str, cpus: int) -> None:
    value = json.dumps([{"shape": {"CPU": 1}, "count": cpus}]) if cpus else None
    clusters.patch(name, {"metadata": {"annotations": {WORK_ANNOTATION: value}}})


def test_two_example_clusters_come_up_with_their_min_workers(operator: OperatorProcess, clusters: Clusters) -> None:
    """Both example clusters: a Running head and minWorkers Running workers, status Running, Services, owners."""
    clusters.create(example("example_cluster.yaml"))
    clusters.create(example("example_cluster2.yaml"))
    wait_for("example-cluster: head + 2 workers", lambda: clusters.running("example-cluster") == (1, 2))
    wait_for("example-cluster2: head + 1 worker", lambda: clusters.running("example-cluster2") == (1, 1))
    wait_for(
        "both phases Running",
        lambda: {clusters.phase("example-cluster"), clusters.phase("example-cluster2")} == {"Running"},
    )
    body = clusters.get("example-cluster")
    assert body is not None
    status = body["status"]
    assert status["nodes"] == {"head-node": 1, "worker-node": 2}
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "ConfigValid": "True",
        "HeadReady": "True",
        "Autoscaling": "True",
    }
    service = clusters.core.read_namespaced_service("example-cluster-ray-head", clusters.namespace)
    assert {p.port for p in service.spec.ports} == {10001, 8265, 6379}
    assert service.metadata.owner_references[0].uid == body["metadata"]["uid"]
    for pod in clusters.pods("example-cluster"):
        assert pod.metadata.owner_references[0].kind == "RayCluster"
        assert pod.metadata.owner_references[0].uid == body["metadata"]["uid"]
        assert pod.metadata.name.startswith(("example-cluster-ray-head-", "example-cluster-ray-worker-"))
    response = clusters.api.list_namespaced_custom_object(
        "cluster.ray.io",
        "v1",
        clusters.namespace,
        "rayclusters",
        _headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        _preload_content=False,
    )
    table = json.loads(response.data)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]  # kubectl get rayclusters
    assert sorted((row["cells"][0], row["cells"][1]) for row in table["rows"]) == [
        ("example-cluster", "Running"),
        ("example-cluster2", "Running"),
    ]
    log = operator.log()
    monitor = [line for line in log.splitlines() if "Cluster status:" in line]
    assert monitor and all(line.startswith(("example-cluster:", "example-cluster2:")) for line in monitor)
    assert "cluster=example-cluster" not in log  # the cluster is the prefix, not a field


def test_the_operators_credentials_are_only_its_roles(control_plane: ControlPlane, clusters: Clusters) -> None:
    """The ServiceAccount the operator runs as may not touch another namespace: RBAC is enforced."""
    client = service_account_api(control_plane, clusters.namespace)
    try:
        with pytest.raises(ApiException) as error:
            CoreV1Api(client).list_namespaced_pod("default")
        assert error.value.status == 403
        CoreV1Api(client).list_namespaced_pod(clusters.namespace)  # its own: allowed
    finally:
        client.close()


def test_declared_work_scales_up_and_idle_workers_scale_down(operator: OperatorProcess, clusters: Clusters) -> None:
    """More work than fits launches workers up to maxWorkers; without work they go after the idle timeout.

    Each is a Kubernetes Event on the RayCluster and the last decision in its status;
    the operator's metrics and health endpoints answer.
    """
    clusters.create(example("example_cluster2.yaml", idleTimeoutMinutes=0.05))
    wait_for("head + 1 worker", lambda: clusters.running("example-cluster2") == (1, 1))
    work(clusters, "example-cluster2", 4)  # 1 CPU on the head + 3 one-CPU workers
    wait_for("3 workers", lambda: clusters.running("example-cluster2") == (1, 3))
    wait_for("a ScaledUp event", lambda: any(e.reason == "ScaledUp" for e in clusters.events("example-cluster2")), 30)
    body = clusters.get("example-cluster2")
    assert body is not None
    assert body["status"]["lastDecision"]["launched"] == {"worker-node": 2}
    work(clusters, "example-cluster2", 0)
    wait_for(
        "back to minWorkers",
        lambda: clusters.running("example-cluster2") == (1, 1) and len(clusters.pods("example-cluster2")) == 2,
        60,
    )
    wait_for(
        "a ScaledDown event", lambda: any(e.reason == "ScaledDown" for e in clusters.events("example-cluster2")), 30
    )
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).read().decode()
    assert 'rayk8s_operator_updates_total{cluster="example-cluster2"}' in metrics
    assert 'rayk8s_kubernetes_api_calls_total{cluster="example-cluster2",resource="pods",verb="create"}' in metrics
    # The steady state makes no API call for the cluster: pods come from the watch, an unchanged status is not written.
    calls = api_calls(operator, "example-cluster2")
    updates = operator.log().count("autoscaler_update")
    wait_for("4 more updates", lambda: operator.log().count("autoscaler_update") >= updates + 4, 30)
    assert api_calls(operator, "example-cluster2") == calls
    health = urllib.request.urlopen(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=10)
    assert health.status == 200


def test_a_head_service_deleted_by_hand_is_made_again(operator: OperatorProcess, clusters: Clusters) -> None:
    """The operator (as its ServiceAccount) notices the deletion through its watch of Services and
    makes the head Service again at the cluster's next update (one get, one create), with a
    ServiceRecreated Event; before and after, updates make no Service call."""
    clusters.create(example("example_cluster2.yaml"))
    wait_for("phase Running", lambda: clusters.phase("example-cluster2") == "Running")
    name = "example-cluster2-ray-head"
    first = clusters.core.read_namespaced_service(name, clusters.namespace)

    def service_calls() -> dict[str, float]:
        return {key: n for key, n in api_calls(operator, "example-cluster2").items() if 'resource="services"' in key}

    def three_more_updates() -> None:
        updates = operator.log().count("autoscaler_update")
        wait_for("3 more updates", lambda: operator.log().count("autoscaler_update") >= updates + 3, 30)

    calls = service_calls()
    three_more_updates()
    assert service_calls() == calls

    clusters.core.delete_namespaced_service(name, clusters.namespace)

    def made_again() -> Any:
        try:
            service = clusters.core.read_namespaced_service(name, clusters.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return service if service.metadata.uid != first.metadata.uid else None

    again = wait_for("the head Service to be made again", made_again, 30)
    assert {p.port for p in again.spec.ports} == {10001, 8265, 6379}
    assert again.metadata.owner_references[0].uid == first.metadata.owner_references[0].uid
    wait_for(
        "a ServiceRecreated event",
        lambda: any(e.reason == "ServiceRecreated" for e in clusters.events("example-cluster2")),
        30,
    )
    after = service_calls()
    prefix = 'rayk8s_kubernetes_api_calls_total{cluster="example-cluster2",resource="services",verb='
    assert {key: after[key] - calls.get(key, 0) for key in after if after[key] != calls.get(key)} == {
        f'{prefix}"get"': 1,
        f'{prefix}"create"': 1,
    }
    three_more_updates()
    assert service_calls() == after
    assert "example-cluster2-ray-head:" not in operator.log()  # kopf's lines about Services are left out


def test_a_changed_spec_is_applied_without_restarting_ray(operator: OperatorProcess, clusters: Clusters) -> None:
    """Raising minWorkers adds a worker; the head pod and the running worker pods stay as they were."""
    clusters.create(example("example_cluster2.yaml"))
    wait_for("head + 1 worker", lambda: clusters.running("example-cluster2") == (1, 1))
    before = sorted(p.metadata.name for p in clusters.pods("example-cluster2"))
    pod_types = example("example_cluster2.yaml")["spec"]["podTypes"]
    pod_types[1]["minWorkers"] = 2
    clusters.patch("example-cluster2", {"spec": {"podTypes": pod_types}})
    wait_for("2 workers", lambda: clusters.running("example-cluster2") == (1, 2))
    after = sorted(p.metadata.name for p in clusters.pods("example-cluster2"))
    assert set(before) < set(after)  # nothing replaced, one added
    wait_for(
        "a ConfigReloaded event",
        lambda: any(e.reason == "ConfigReloaded" for e in clusters.events("example-cluster2")),
        30,
    )


def test_deleting_one_cluster_leaves_the_other_and_its_autoscaler(
    operator: OperatorProcess, clusters: Clusters
) -> None:
    """Deleting a RayCluster removes its pods and Service (ownerReferences); the other keeps pods and scaling."""
    clusters.create(example("example_cluster.yaml"))
    clusters.create(example("example_cluster2.yaml"))
    wait_for(
        "both up",
        lambda: clusters.running("example-cluster") == (1, 2) and clusters.running("example-cluster2") == (1, 1),
    )
    survivors = sorted(p.metadata.name for p in clusters.pods("example-cluster2"))
    clusters.delete("example-cluster")
    wait_for("example-cluster gone", lambda: clusters.get("example-cluster") is None, 30)
    wait_for(
        "its pods gone",
        lambda: (
            not clusters.core.list_namespaced_pod(
                clusters.namespace, label_selector="ray-cluster-name=example-cluster"
            ).items
        ),
        60,
    )
    wait_for(
        "its Service gone",
        lambda: (
            not [
                s
                for s in clusters.core.list_namespaced_service(clusters.namespace).items
                if s.metadata.name == "example-cluster-ray-head"
            ]
        ),
        60,
    )
    assert sorted(p.metadata.name for p in clusters.pods("example-cluster2")) == survivors
    work(clusters, "example-cluster2", 3)  # its autoscaler still runs
    wait_for("example-cluster2 scaled up", lambda: clusters.running("example-cluster2") == (1, 2))
    assert clusters.phase("example-cluster2") == "Running"


def test_an_invalid_raycluster_is_refused_or_reported_with_its_field_path(
    operator: OperatorProcess, clusters: Clusters
) -> None:
    """A wrong type is refused by the CRD schema; minWorkers above maxWorkers is status Error at its spec path.

    Correcting the spec brings the cluster up.
    """
    with pytest.raises(ApiException) as refused:
        clusters.create(example("example_cluster.yaml", maxWorkers="three"))
    assert refused.value.status == 422 and "spec.maxWorkers" in refused.value.body
    bad = example("example_cluster.yaml")
    bad["spec"]["podTypes"][1]["minWorkers"] = 5
    clusters.create(bad)
    wait_for("phase Error", lambda: clusters.phase("example-cluster") == "Error", 30)
    body = clusters.get("example-cluster")
    assert body is not None
    assert body["status"]["message"].startswith("spec.podTypes[1].minWorkers: min_workers (5) exceeds max_workers (3)")
    wait_for(
        "an InvalidSpec event",
        lambda: any(e.reason == "InvalidSpec" and e.type == "Warning" for e in clusters.events("example-cluster")),
        30,
    )
    assert clusters.pods("example-cluster") == []
    clusters.patch("example-cluster", {"spec": {"podTypes": example("example_cluster.yaml")["spec"]["podTypes"]}})
    wait_for("head + 2 workers once corrected", lambda: clusters.running("example-cluster") == (1, 2))
    wait_for("phase Running", lambda: clusters.phase("example-cluster") == "Running", 30)
    pods = sorted(p.metadata.name for p in clusters.pods("example-cluster"))
    clusters.patch("example-cluster", {"spec": {"headPodType": "no-such-type"}})
    wait_for("phase Error again", lambda: clusters.phase("example-cluster") == "Error", 30)
    body = clusters.get("example-cluster")
    assert body is not None
    assert body["status"]["message"].startswith("spec.headPodType: unknown node type")
    assert "last valid spec" in body["status"]["message"]
    assert sorted(p.metadata.name for p in clusters.pods("example-cluster")) == pods  # still running, untouched


def test_a_killed_operator_restarted_mid_scale_up_makes_no_duplicate_or_orphan(
    operator: OperatorProcess, clusters: Clusters
) -> None:
    """kill -9 while a scale-up is half done, start again: exactly the pods the work needs, one head, all owned."""
    spec = example("example_cluster.yaml", maxWorkers=20, upscalingSpeed=0)  # 5 launches per update
    spec["spec"]["podTypes"][1]["maxWorkers"] = 20
    spec["metadata"]["annotations"] = {WORK_ANNOTATION: json.dumps([{"shape": {"CPU": 1}, "count": 13}])}
    clusters.create(spec)
    wait_for("the scale-up under way", lambda: len(clusters.pods("example-cluster", "worker")) > 2, 30, 0.01)
    operator.kill()
    in_flight = len(clusters.pods("example-cluster", "worker"))
    assert in_flight < 12, "the scale-up finished before the kill; the test proves nothing"
    operator.start()
    wait_for("head + 12 workers Running", lambda: clusters.running("example-cluster") == (1, 12), 60)
    operator.kill()  # and once more, in the steady state
    operator.start()
    wait_for("the restarted operator's first updates", lambda: operator.log().count("cluster_started") >= 3, 30)
    time_marker = operator.log().count("autoscaler_update")
    wait_for("a few more updates", lambda: operator.log().count("autoscaler_update") >= time_marker + 4, 30)
    body = clusters.get("example-cluster")
    assert body is not None
    pods = clusters.core.list_namespaced_pod(clusters.namespace).items
    assert len([p for p in pods if p.metadata.labels.get("ray-node-type") == "head"]) == 1
    assert len([p for p in pods if p.metadata.labels.get("ray-node-type") == "worker"]) == 12
    for pod in pods:
        (owner,) = pod.metadata.owner_references
        assert owner.uid == body["metadata"]["uid"]


def test_a_launch_the_api_server_refuses_is_a_warning_event_and_the_recovery_phase(
    operator: OperatorProcess, clusters: Clusters
) -> None:
    """Workers the API server rejects: LaunchFailed Events, phase AutoscalingExceptionRecovery while backing off."""
    body = example("example_cluster2.yaml")
    body["spec"]["podTypes"][1]["podConfig"]["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"
    clusters.create(body)
    wait_for(
        "a LaunchFailed event",
        lambda: any(e.reason == "LaunchFailed" and e.type == "Warning" for e in clusters.events("example-cluster2")),
        30,
    )
    wait_for(
        "phase AutoscalingExceptionRecovery",
        lambda: clusters.phase("example-cluster2") == "AutoscalingExceptionRecovery",
        30,
    )
    status = (clusters.get("example-cluster2") or {})["status"]
    assert "worker-node" in status["message"] and "rejected the pod template" in status["message"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Autoscaling"] == "False"
    assert clusters.running("example-cluster2") == (1, 0)
