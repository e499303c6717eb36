"""Fixtures for tests against the real Kubernetes control plane.

Every test in tests/k8s is marked ``k8s``. The control plane (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, KWOK with 3 fake
Nodes of 8 CPU / 32Gi) starts once per session, built first if needed; each
test gets a fresh namespace and an ``ApiClient`` that verifies the server's
certificate. Tests talk only to the API server on 127.0.0.1.

``RAYK8S_SKIP_K8S=1`` skips these tests. Otherwise a control plane that cannot
be built or started fails them with one line saying why.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client import ApiClient, CoreV1Api, V1Namespace, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

from rayk8s.testing import ControlPlane, ControlPlaneError

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.k8s)


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    """The session's control plane; started on first use, stopped at the end."""
    if os.environ.get("RAYK8S_SKIP_K8S") == "1":
        pytest.skip("RAYK8S_SKIP_K8S=1: Kubernetes tests skipped")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    # Show build and start-up progress live, not after the fact.
    live = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    try:
        with live:
            plane = ControlPlane.start()
    except ControlPlaneError as error:
        failure = f"Kubernetes control plane unavailable: {error}"
    else:
        failure = ""
    if failure:  # outside the except block, so pytest shows this one line only
        pytest.fail(failure, pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def api_client(control_plane: ControlPlane) -> Iterator[ApiClient]:
    """An admin ``ApiClient`` (system:masters) from the control plane's kubeconfig."""
    client = kubernetes.config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(api_client: ApiClient, control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace, with its ``default`` ServiceAccount; deleted afterwards."""
    core = CoreV1Api(api_client)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=name)))
    # Pods are admitted only once the ServiceAccount controller has made "default".
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except ApiException as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name)
