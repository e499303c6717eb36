"""Pods as the provider sees them: manifests from templates, tags as labels, resources, status.

Pure functions over plain dicts (pods are handled as the API's JSON, not the client's
model classes: a thousand pods parse in milliseconds that way).

Tags are stored as pod labels under the same keys (``ray-cluster-name``,
``ray-node-type``, ``ray-user-node-type``, ``ray-node-status``, ``ray-launch-config``,
``ray-launch-request``). A label value is at most 63 characters of ``[A-Za-z0-9._-]``
starting and ending with an alphanumeric; a tag value that is not (a long hash, a node
type with a slash) is stored as ``h-<digest>`` in the label and verbatim in the
annotation ``tags.rayk8s.io/<key>``, and read back verbatim.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rayk8s.autoscaler._ports import ProviderNode, ProviderNodeStatus
from rayk8s.autoscaler._resources import UNITS_PER_ONE, Resources, parse_quantity
from rayk8s.autoscaler._tags import (
    NODE_KIND_HEAD,
    TAG_CLUSTER_NAME,
    TAG_NODE_KIND,
)
from rayk8s.errors import ConfigError

__all__ = [
    "TAG_ANNOTATION_PREFIX",
    "head_component",
    "is_valid_label_value",
    "label_value",
    "pod_manifest",
    "pod_to_node",
    "resources_from_pod_template",
    "tag_labels",
    "tags_of",
    "unschedulable_message",
    "waiting_problem",
]

#: Annotations ``tags.rayk8s.io/<key>`` keep tag values a label cannot hold.
TAG_ANNOTATION_PREFIX = "tags.rayk8s.io/"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_valid_label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.match(value) is not None


def check_label_key(key: str, path: str = "tags") -> None:
    """Raise :class:`ConfigError` unless ``key`` is a valid label key (``[prefix/]name``)."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ConfigError(f"{path}.{key}", "a tag key's prefix must be a DNS subdomain (it is stored as a pod label)")
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        raise ConfigError(
            f"{path}.{key}",
            "a tag key must be a label name: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends",
        )


def label_value(value: str) -> str:
    """``value`` if a label can hold it, else ``h-`` and a digest of it (stable)."""
    if is_valid_label_value(value):
        return value
    return "h-" + hashlib.sha256(value.encode()).hexdigest()[:40]


def _annotation_key(key: str) -> str:
    return TAG_ANNOTATION_PREFIX + key.replace("/", "_")


def tag_labels(tags: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations that store ``tags`` (annotations only for values a label cannot hold)."""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for key, value in tags.items():
        check_label_key(key)
        text = str(value)
        labels[key] = label_value(text)
        if labels[key] != text:
            annotations[_annotation_key(key)] = text
    return labels, annotations


def tags_of(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The tags a pod's metadata stores: its labels, with hashed values read from annotations."""
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    tags = dict(labels)
    for key, value in labels.items():
        original = annotations.get(_annotation_key(key))
        if original is not None and label_value(original) == value:
            tags[key] = original
    return tags


def head_component(cluster_name: str) -> str:
    """The ``component`` label value of the head pod, which the head Service selects."""
    return f"{cluster_name}-ray-head"


def pod_manifest(
    template: Mapping[str, Any],
    tags: Mapping[str, str],
    cluster_name: str,
    *,
    owner_reference: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The pod to create for one node: the template with name, labels and owner set.

    The template is a Pod manifest (``metadata``, ``spec``); its labels and annotations are
    kept and the tags' labels win. ``generateName`` is ``<cluster>-ray-head-`` for the head
    (which also gets ``component=<cluster>-ray-head``) and ``<cluster>-ray-worker-``
    otherwise. Raises :class:`ConfigError` for a template that is not a mapping with a
    ``spec``.
    """
    if not isinstance(template, Mapping):
        raise ConfigError(
            "node_config", f"expected a pod template (a mapping with metadata and spec), got {template!r}"
        )
    spec = template.get("spec")
    if not isinstance(spec, Mapping):
        raise ConfigError("node_config.spec", "expected the pod spec (a mapping with containers)")
    metadata_in = template.get("metadata") or {}
    if not isinstance(metadata_in, Mapping):
        raise ConfigError("node_config.metadata", f"expected a mapping, got {metadata_in!r}")
    all_tags = {**tags, TAG_CLUSTER_NAME: cluster_name}
    labels, annotations = tag_labels(all_tags)
    is_head = all_tags.get(TAG_NODE_KIND) == NODE_KIND_HEAD
    if is_head:
        labels["component"] = head_component(cluster_name)
    metadata: dict[str, Any] = {
        key: copy.deepcopy(value)
        for key, value in metadata_in.items()
        if key not in ("name", "generateName", "namespace", "resourceVersion", "uid")
    }
    metadata["generateName"] = f"{cluster_name}-ray-{'head' if is_head else 'worker'}-"
    metadata["labels"] = {**(metadata_in.get("labels") or {}), **labels}
    merged_annotations = {**(metadata_in.get("annotations") or {}), **annotations}
    if merged_annotations:
        metadata["annotations"] = merged_annotations
    if owner_reference:
        metadata["ownerReferences"] = [dict(owner_reference)]
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": copy.deepcopy(dict(spec))}
    return pod


def _timestamp(value: object) -> float:
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def unschedulable_message(pod: Mapping[str, Any]) -> str | None:
    """The scheduler's message when the pod is Pending with ``PodScheduled=False/Unschedulable``."""
    status = pod.get("status") or {}
    if status.get("phase", "Pending") != "Pending":
        return None
    for condition in status.get("conditions") or ():
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return str(condition.get("message") or "Unschedulable")
    return None


#: Container waiting reasons that will not resolve by waiting (the kubelet's names).
STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "CrashLoopBackOff",
    }
)


def waiting_problem(pod: Mapping[str, Any]) -> str | None:
    """``"<container>: <reason>: <message>"`` when a container waits for a reason that will not pass.

    Image pull failures, invalid images, container config errors and crash loops (see
    :data:`STUCK_REASONS`), in init containers too; ``None`` otherwise.
    """
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(key) or ():
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in STUCK_REASONS:
                message = waiting.get("message") or ""
                return f"container {container.get('name')}: {reason}" + (f": {message}" if message else "")
    return None


def pod_status(pod: Mapping[str, Any]) -> ProviderNodeStatus:
    """The node status of a pod: terminating once deletion is requested, then by phase.

    Running with a pod IP is ``running``; Pending (and Running without an IP yet, and
    Unknown) is ``pending``; Failed and Succeeded are ``failed`` (a Ray node that exits
    will not run again).
    """
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return ProviderNodeStatus.TERMINATING
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    if phase == "Running" and status.get("podIP"):
        return ProviderNodeStatus.RUNNING
    if phase in ("Failed", "Succeeded"):
        return ProviderNodeStatus.FAILED
    return ProviderNodeStatus.PENDING


def pod_to_node(pod: Mapping[str, Any]) -> ProviderNode:
    """The :class:`ProviderNode` for a pod (as the API's JSON)."""
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    node_status = pod_status(pod)
    ip = status.get("podIP") or None
    return ProviderNode(
        id=str(metadata.get("name", "")),
        status=node_status,
        tags=tags_of(metadata),
        created_at=_timestamp(metadata.get("creationTimestamp")),
        internal_ip=ip if node_status in (ProviderNodeStatus.RUNNING, ProviderNodeStatus.TERMINATING) else None,
        external_ip=None,
        unschedulable=unschedulable_message(pod) if node_status is ProviderNodeStatus.PENDING else None,
    )


def _is_gpu(name: str) -> bool:
    return name == "gpu" or name.endswith("/gpu")


def resources_from_pod_template(
    template: Mapping[str, Any],
    explicit: Mapping[str, Any] | None = None,
    *,
    path: str = "node_config",
    resources_path: str = "resources",
) -> Resources:
    """The Ray resources a pod from ``template`` offers, for a node type that does not state them.

    Read from the first container (the Ray container): ``CPU`` from its ``limits.cpu``, else
    ``requests.cpu`` (``500m`` is 0.5); ``memory`` from ``limits.memory``, else
    ``requests.memory``, in exact units (``1G`` is 10**9 bytes, ``1Gi`` 2**30); ``GPU``
    from ``nvidia.com/gpu`` or any other ``<vendor>/gpu`` limit. Entries of ``explicit``
    (the node type's ``resources``) override the derived ones. Quantities that do not parse
    raise :class:`ConfigError` naming the template field.
    """
    units: dict[str, int] = {}
    spec = template.get("spec") if isinstance(template, Mapping) else None
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    if isinstance(containers, list) and containers and isinstance(containers[0], Mapping):
        resources = containers[0].get("resources") or {}
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        base = f"{path}.spec.containers[0].resources"
        for key, name in (("cpu", "CPU"), ("memory", "memory")):
            if key in limits:
                units[name] = _units(limits[key], f"{base}.limits.{key}")
            elif key in requests:
                units[name] = _units(requests[key], f"{base}.requests.{key}")
        for key, value in limits.items():
            if _is_gpu(str(key)):
                units["GPU"] = units.get("GPU", 0) + _units(value, f"{base}.limits.{key}")
    derived = Resources.from_units(units)
    if not explicit:
        return derived
    stated = Resources.parse(explicit, resources_path)
    merged = dict(derived.units)
    merged.update({name: stated.units[name] for name in stated})
    for name in explicit:  # an explicit 0 removes a derived resource
        if name not in stated:
            merged.pop(str(name), None)
    return Resources.from_units(merged)


def _units(value: object, path: str) -> int:
    return int((parse_quantity(value, path) * UNITS_PER_ONE).to_integral_value())
