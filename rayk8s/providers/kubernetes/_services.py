"""The head Service and any others the config lists, created idempotently.

The head Service ``<cluster>-ray-head`` (ClusterIP) selects ``component=<cluster>-ray-head``
(the label the head pod carries) and exposes the Ray client (10001), the dashboard (8265)
and the GCS port the workers join on (6379). ``provider.services`` lists more Service
manifests (Ray's cluster-launcher field); a Service without a selector gets the head's,
and one named like the head Service replaces it, with the GCS port added if it lacks it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.client import CoreV1Api

from rayk8s.autoscaler._tags import TAG_CLUSTER_NAME
from rayk8s.errors import APIConflictError, ConfigError
from rayk8s.providers.kubernetes._api import ApiCaller, read_or_none, server_has
from rayk8s.providers.kubernetes._pods import head_component

__all__ = ["HEAD_PORTS", "ensure_services", "head_service_manifest", "service_manifests"]

#: The head Service's ports: name -> port.
HEAD_PORTS = {"client": 10001, "dashboard": 8265, "gcs": 6379}


def head_service_manifest(cluster_name: str) -> dict[str, Any]:
    """The head Service of ``cluster_name``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{cluster_name}-ray-head", "labels": {TAG_CLUSTER_NAME: cluster_name}},
        "spec": {
            "type": "ClusterIP",
            "selector": {"component": head_component(cluster_name)},
            "ports": [
                {"name": name, "port": port, "targetPort": port, "protocol": "TCP"} for name, port in HEAD_PORTS.items()
            ],
        },
    }


def service_manifests(
    cluster_name: str,
    services: Sequence[Mapping[str, Any]] | None,
    owner_reference: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The head Service and the configured ones (``provider.services``), validated.

    A configured Service named like the head Service replaces it. Raises
    :class:`ConfigError` naming ``provider.services[i]...`` for a manifest without a name.
    """
    out: dict[str, dict[str, Any]] = {}
    head = head_service_manifest(cluster_name)
    out[head["metadata"]["name"]] = head
    for index, service in enumerate(services or ()):
        path = f"provider.services[{index}]"
        if not isinstance(service, Mapping):
            raise ConfigError(path, f"expected a Service manifest, got {service!r}")
        manifest = copy.deepcopy(dict(service))
        metadata = manifest.setdefault("metadata", {})
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
            raise ConfigError(f"{path}.metadata.name", "expected the Service's name")
        spec = manifest.setdefault("spec", {})
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}.spec", "expected a mapping")
        spec.setdefault("selector", {"component": head_component(cluster_name)})
        manifest.setdefault("apiVersion", "v1")
        manifest.setdefault("kind", "Service")
        metadata.pop("namespace", None)
        metadata.setdefault("labels", {})[TAG_CLUSTER_NAME] = cluster_name
        if metadata["name"] == head["metadata"]["name"]:
            _add_gcs_port(spec, f"{path}.spec.ports")
        out[metadata["name"]] = manifest
    if owner_reference:
        for manifest in out.values():
            manifest["metadata"]["ownerReferences"] = [dict(owner_reference)]
    return list(out.values())


def _add_gcs_port(spec: dict[str, Any], path: str) -> None:
    """Give a configured head Service the GCS port the workers join on, if it lacks it.

    Ray's example head Service lists only the client and dashboard ports; workers reach
    the head through this Service (``RAY_HEAD_IP``), so it must expose 6379 as well.
    """
    ports = spec.setdefault("ports", [])
    if not isinstance(ports, list):
        raise ConfigError(path, f"expected a list of ports, got {ports!r}")
    gcs = HEAD_PORTS["gcs"]
    if not any(isinstance(port, Mapping) and port.get("port") == gcs for port in ports):
        ports.append({"name": "gcs", "port": gcs, "targetPort": gcs, "protocol": "TCP"})


def ensure_services(
    core: CoreV1Api, caller: ApiCaller, namespace: str, manifests: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Make each Service match its manifest: read it, create it if missing, merge-patch it if
    it differs, else leave it. Idempotent; on an unchanged cluster, one ``get`` per Service.

    Returns ``{name: "created" | "updated" | "unchanged"}``. A Service's ``clusterIP`` and
    other server-set fields are kept.
    """
    done: dict[str, str] = {}
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        current = read_or_none(caller, "services", core.read_namespaced_service, name, namespace)
        if current is None:
            try:
                caller.call("create", "services", core.create_namespaced_service, namespace, manifest, idempotent=False)
            except APIConflictError:  # made since we read: compare with that one
                current = read_or_none(caller, "services", core.read_namespaced_service, name, namespace) or {}
            else:
                done[name] = "created"
                continue
        patch = {
            "metadata": {
                key: manifest["metadata"][key]
                for key in ("labels", "annotations", "ownerReferences")
                if key in manifest["metadata"]
            },
            "spec": manifest.get("spec", {}),
        }
        if server_has(current, patch):
            done[name] = "unchanged"
            continue
        caller.call(
            "patch",
            "services",
            core.patch_namespaced_service,
            name,
            namespace,
            patch,
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )
        done[name] = "updated"
    return done
