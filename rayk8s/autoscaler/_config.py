"""The autoscaler's settings, grouped and documented field by field (units in the names)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from rayk8s.autoscaler._model import NodeType
from rayk8s.errors import ConfigError

__all__ = ["AutoscalerConfig", "NodeTypeConfig"]


def _plain(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


def _non_negative_number(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(attribute.name, f"expected a non-negative number, got {value!r}")


@attrs.frozen
class NodeTypeConfig:
    """A node type plus what the autoscaler needs to launch and retire it.

    ``node_config``: passed verbatim to the provider's ``create_node`` (a pod template
    for Kubernetes, say). ``idle_timeout_minutes``: this type's idle timeout; ``None``
    uses the cluster's.
    """

    node_type: NodeType
    node_config: Mapping[str, Any] = attrs.field(factory=dict, converter=_plain, hash=False)
    idle_timeout_minutes: float | None = attrs.field(default=None, validator=_non_negative_number)

    @property
    def name(self) -> str:
        return self.node_type.name


def _node_type_configs(
    value: Mapping[str, NodeTypeConfig | NodeType] | Iterable[NodeTypeConfig | NodeType],
) -> Mapping[str, NodeTypeConfig]:
    items = value.values() if isinstance(value, Mapping) else value
    out: dict[str, NodeTypeConfig] = {}
    for item in items:
        config = item if isinstance(item, NodeTypeConfig) else NodeTypeConfig(item)
        if config.name in out:
            raise ConfigError(f"available_node_types.{config.name}", "duplicate node type name")
        out[config.name] = config
    return out


def _hash_node_type(config: NodeTypeConfig) -> str:
    canonical = json.dumps(
        {"resources": config.node_type.resources.to_dict(), "node_config": config.node_config},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@attrs.frozen
class AutoscalerConfig:
    """Everything the autoscaler step decides by (besides the load and the nodes).

    - ``cluster_name``: tagged on every node; only nodes with this tag are managed.
    - ``node_types``: name -> :class:`NodeTypeConfig` (a plain :class:`NodeType` is
      wrapped with an empty ``node_config``).
    - ``head_node_type``: the head's type. The head is never launched nor terminated by
      the autoscaler; its type is launched as a worker only if it sets a positive
      ``max_workers``.
    - ``max_workers``: cluster-wide cap on worker nodes (``None``: no cap).
    - ``upscaling_speed``: pending launches of a type are capped at
      ``max(5, upscaling_speed * running nodes of the type)`` (Ray's default 1.0).
    - ``idle_timeout_minutes``: a worker idle this long is terminated (Ray's default 5).
    - ``launch_backoff_initial_s`` / ``launch_backoff_max_s``: after a launch failure or
      a stuck node, the type is not launched for ``initial * 2**(failures - 1)`` seconds,
      capped at ``max``.
    - ``stuck_timeout_s``: a node that has not joined Ray this long after its creation
      is terminated and its type backs off.
    - ``heartbeat_timeout_s``: a node whose last heartbeat is older than this is
      terminated and replaced (Ray's 30 s).
    - ``terminate_retry_s``: a node still listed this long after we asked to terminate
      it is asked again (termination is idempotent).
    """

    cluster_name: str
    node_types: Mapping[str, NodeTypeConfig] = attrs.field(converter=_node_type_configs, hash=False)
    head_node_type: str | None = None
    max_workers: int | None = attrs.field(default=None, validator=_non_negative_number)
    upscaling_speed: float = attrs.field(default=1.0, validator=_non_negative_number)
    idle_timeout_minutes: float = attrs.field(default=5.0, validator=_non_negative_number)
    launch_backoff_initial_s: float = attrs.field(default=30.0, validator=_non_negative_number)
    launch_backoff_max_s: float = attrs.field(default=600.0, validator=_non_negative_number)
    stuck_timeout_s: float = attrs.field(default=600.0, validator=_non_negative_number)
    heartbeat_timeout_s: float = attrs.field(default=30.0, validator=_non_negative_number)
    terminate_retry_s: float = attrs.field(default=60.0, validator=_non_negative_number)
    _hashes: Mapping[str, str] = attrs.field(init=False, eq=False, hash=False, repr=False)
    _worker_types: Mapping[str, NodeType] = attrs.field(init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.cluster_name:
            raise ConfigError("cluster_name", "expected a non-empty cluster name")
        if self.head_node_type is not None and self.head_node_type not in self.node_types:
            raise ConfigError(
                "head_node_type",
                f"unknown node type {self.head_node_type!r} (known: {', '.join(sorted(self.node_types)) or 'none'})",
            )
        if self.launch_backoff_max_s < self.launch_backoff_initial_s:
            raise ConfigError("launch_backoff_max_s", "must be at least launch_backoff_initial_s")
        object.__setattr__(self, "_hashes", {name: _hash_node_type(c) for name, c in self.node_types.items()})
        workers = {
            name: c.node_type
            for name, c in self.node_types.items()
            if name != self.head_node_type or (c.node_type.max_workers or 0) > 0
        }
        object.__setattr__(self, "_worker_types", workers)

    def launch_config_hash(self, node_type: str) -> str:
        """A digest of what defines a node of ``node_type`` (its resources and node_config).

        A node whose ``ray-launch-config`` tag differs is outdated and replaced once idle.
        Changing ``min_workers``, ``max_workers`` or ``cost`` does not outdate nodes.
        """
        try:
            return self._hashes[node_type]
        except KeyError:
            raise ConfigError("node_type", f"unknown node type {node_type!r}") from None

    @property
    def worker_node_types(self) -> Mapping[str, NodeType]:
        """The node types the autoscaler may launch (the head's only if it allows workers)."""
        return self._worker_types

    def idle_timeout_s(self, node_type: str) -> float:
        """The idle timeout of ``node_type`` in seconds (its own, else the cluster's)."""
        config = self.node_types.get(node_type)
        minutes = config.idle_timeout_minutes if config is not None else None
        return 60.0 * (self.idle_timeout_minutes if minutes is None else minutes)
