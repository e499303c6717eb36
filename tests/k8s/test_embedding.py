"""examples/embedding/configmap_controller.py, a custom controller embedding the autoscaler, on the control plane."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes.client import ApiClient, CoreV1Api, V1ConfigMap, V1ObjectMeta

from rayk8s.testing import ControlPlane
from tests.k8s._helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = """
spec:
  containers:
    - name: ray
      image: registry.invalid/ray:never-pulled
      resources: {limits: {cpu: "1", memory: 256Mi}}
"""

pytestmark = pytest.mark.slow


def test_the_configmap_controller_scales_its_pods(
    control_plane: ControlPlane, api_client: ApiClient, namespace: str, tmp_path: Path
) -> None:
    """min_workers pods come up; work adds pods; no work removes idle ones; deleting the ConfigMap deletes them all."""
    core = CoreV1Api(api_client)
    data = {"pod_template": TEMPLATE, "min_workers": "1", "max_workers": "4", "idle_timeout_minutes": "0.05"}
    core.create_namespaced_config_map(
        namespace,
        V1ConfigMap(metadata=V1ObjectMeta(name="demo", labels={"rayk8s.io/autoscale": "true"}), data=data),
    )
    log_path = tmp_path / "controller.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "examples" / "embedding" / "configmap_controller.py"),
                "--namespace",
                namespace,
                "--kubeconfig",
                str(control_plane.kubeconfig),
                "--interval",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        )

    def running() -> int:
        pods = core.list_namespaced_pod(namespace, label_selector="ray-cluster-name=demo").items
        return len([p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None])

    def live() -> int:
        pods = core.list_namespaced_pod(namespace, label_selector="ray-cluster-name=demo").items
        return len([p for p in pods if p.metadata.deletion_timestamp is None])

    try:
        wait_for("min_workers: 1 pod", lambda: running() == 1, 60)
        core.patch_namespaced_config_map(
            "demo", namespace, {"data": {"work": json.dumps([{"shape": {"CPU": 1}, "count": 3}])}}
        )
        wait_for("3 pods for 3 CPUs of work", lambda: running() == 3 and live() == 3, 60)
        core.patch_namespaced_config_map("demo", namespace, {"data": {"work": "[]"}})
        wait_for("idle pods removed down to min_workers", lambda: live() == 1, 60)
        pod = core.list_namespaced_pod(namespace, label_selector="ray-cluster-name=demo").items[0]
        assert pod.metadata.owner_references[0].kind == "ConfigMap"
        core.delete_namespaced_config_map("demo", namespace)
        wait_for("the pods deleted with the ConfigMap", lambda: live() == 0, 60)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        print(log_path.read_text())
    assert "demo: started" in log_path.read_text()
