"""Shared helpers for the Kubernetes provider tests: pod templates, polling, providers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api

from rayk8s.providers._tags import (
    NODE_KIND_WORKER,
    STATUS_UNINITIALIZED,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_REQUEST,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)
from rayk8s.providers.kubernetes import KubernetesNodeProvider

T = TypeVar("T")


def pod_template(**spec: Any) -> dict[str, Any]:
    """A small Ray worker pod template (never pulled: KWOK only pretends to run it)."""
    return {
        "metadata": {"labels": {"app": "ray"}, "annotations": {"example.com/note": "kept"}},
        "spec": {
            "containers": [
                {
                    "name": "ray",
                    "image": "registry.invalid/ray:never-pulled",
                    "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}},
                }
            ],
            **spec,
        },
    }


def worker_tags(cluster: str, request: str = "r1", node_type: str = "cpu", **extra: str) -> dict[str, str]:
    return {
        TAG_CLUSTER_NAME: cluster,
        TAG_NODE_KIND: NODE_KIND_WORKER,
        TAG_USER_NODE_TYPE: node_type,
        TAG_NODE_STATUS: STATUS_UNINITIALIZED,
        TAG_LAUNCH_REQUEST: request,
        **extra,
    }


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 60, interval_s: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def service_account_with_role(
    api_client: ApiClient, namespace: str, name: str, rules: list[dict[str, Any]], role: str | None = None
) -> None:
    """ServiceAccount ``name`` in ``namespace``, bound to a Role (``role``, default ``name``) with ``rules``."""
    from kubernetes.client import CoreV1Api, RbacAuthorizationV1Api

    role = role or name
    CoreV1Api(api_client).create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac = RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": role}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": f"{name}-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )


@contextmanager
def make_provider(
    api_client: ApiClient, namespace: str, cluster: str = "test", **config: Any
) -> Iterator[KubernetesNodeProvider]:
    """A provider on ``namespace`` with a fast retry policy; closed afterwards."""
    provider_config: dict[str, Any] = {
        "type": "kubernetes",
        "namespace": namespace,
        "delete_grace_period_s": 0,
        "retry": {"max_attempts": 6, "initial_backoff_s": 0.05, "max_backoff_s": 1.0},
        **config,
    }
    provider = KubernetesNodeProvider(provider_config, cluster, api_client=api_client)
    try:
        yield provider
    finally:
        provider.close()


def pod_names(pods: Mapping[str, Any] | Any) -> set[str]:
    return {pod.metadata.name for pod in pods.items}


def apply_rbac(api_client: ApiClient, namespace: str, path: Path) -> None:
    """Create the ServiceAccount, Role and RoleBinding documents of ``path`` in ``namespace`` (others are skipped)."""
    core = CoreV1Api(api_client)
    rbac = RbacAuthorizationV1Api(api_client)
    for document in yaml.safe_load_all(path.read_text()):
        kind = (document or {}).get("kind")
        if kind == "ServiceAccount":
            core.create_namespaced_service_account(namespace, document)
        elif kind == "Role":
            rbac.create_namespaced_role(namespace, document)
        elif kind == "RoleBinding":
            rbac.create_namespaced_role_binding(namespace, document)
