"""Running the operator as a real process against the control plane, as its ServiceAccount.

``install`` applies the CRD and the RBAC of ``examples/kubernetes/operator_configs/`` (not
the operator pod: KWOK's pods run nothing). :class:`OperatorProcess` starts
``python -m rayk8s.operator`` with a kubeconfig holding the ServiceAccount's token, so
every call it makes passes RBAC; its stdout goes to a log file the test can read.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient, ApiextensionsV1Api, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from rayk8s.operator import GROUP, PLURAL, VERSION
from rayk8s.testing import ControlPlane
from tests.k8s._helpers import apply_rbac, wait_for

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "examples" / "kubernetes" / "operator_configs"
SERVICE_ACCOUNT = "ray-operator-serviceaccount"


def load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((CONFIGS / name).read_text()) if doc]


def install_crd(api_client: ApiClient) -> None:
    """Create the RayCluster CRD from cluster_crd.yaml (once per control plane) and wait until served."""
    api = ApiextensionsV1Api(api_client)
    (crd,) = load("cluster_crd.yaml")
    with contextlib.suppress(ApiException):
        api.create_custom_resource_definition(crd)

    def established() -> bool:
        conditions = api.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_for("the RayCluster CRD to be established", established, timeout_s=30)


def install_rbac(api_client: ApiClient, namespace: str) -> None:
    """The ServiceAccount, Role and RoleBinding of operator.yaml (the pod is left out)."""
    apply_rbac(api_client, namespace, CONFIGS / "operator.yaml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """``python -m rayk8s.operator`` as the operator's ServiceAccount; logs in ``log_path``."""

    def __init__(
        self, control_plane: ControlPlane, namespace: str, directory: Path, *extra: str, interval: float = 0.5
    ) -> None:
        self.namespace = namespace
        self.kubeconfig = control_plane.service_account_kubeconfig(
            namespace, SERVICE_ACCOUNT, directory / "operator.kubeconfig"
        )
        self.log_path = directory / "operator.log"
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.args = [
            sys.executable,
            "-m",
            "rayk8s.operator",
            "--namespace",
            namespace,
            "--kubeconfig",
            str(self.kubeconfig),
            "--load-source",
            "simulated",
            "--update-interval",
            str(interval),
            "--delete-grace-period",
            "0",
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
            *extra,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Clusters:
    """RayClusters in one namespace, through the admin client."""

    def __init__(self, api_client: ApiClient, namespace: str) -> None:
        self.api = CustomObjectsApi(api_client)
        self.core = CoreV1Api(api_client)
        self.namespace = namespace

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, copy.deepcopy(body)
        )
        return result

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
            return result
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, body)

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def phase(self, name: str) -> str | None:
        body = self.get(name)
        return None if body is None else (body.get("status") or {}).get("phase")

    def pods(self, cluster: str, kind: str | None = None, *, phase: str | None = None) -> list[Any]:
        selector = f"ray-cluster-name={cluster}" + (f",ray-node-type={kind}" if kind else "")
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        pods = [p for p in pods if p.metadata.deletion_timestamp is None]
        if phase is not None:
            pods = [p for p in pods if p.status.phase == phase]
        return pods

    def running(self, cluster: str) -> tuple[int, int]:
        """(running heads, running workers) of ``cluster``."""
        return len(self.pods(cluster, "head", phase="Running")), len(self.pods(cluster, "worker", phase="Running"))

    def events(self, name: str) -> list[Any]:
        events = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}").items
        return list(events)


def example(name: str = "example_cluster.yaml", **spec: Any) -> dict[str, Any]:
    """An example RayCluster with ``spec`` fields replaced (test timings: quick idle timeout)."""
    (body,) = load(name)
    body["spec"].update(spec)
    return body


def service_account_api(control_plane: ControlPlane, namespace: str) -> ApiClient:
    return control_plane.service_account_client(namespace, SERVICE_ACCOUNT)
