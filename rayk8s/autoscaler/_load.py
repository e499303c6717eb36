"""What the autoscaler reads about load: pending demand and how busy each node is.

A :class:`LoadSource` answers one question per update, :meth:`LoadSource.load`, with a
:class:`LoadSnapshot` value. The Ray integration reads it from a live cluster's GCS; the
simulator derives it from a trace; :class:`StaticLoadSource` returns whatever it is given
(tests, scripted scenarios).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import attrs

from rayk8s.autoscaler._model import PlacementGroup, ResourceDemand, ResourceRequest
from rayk8s.autoscaler._resources import Resources

__all__ = ["LoadSnapshot", "LoadSource", "NodeUsage", "StaticLoadSource"]


def _resources(value: object) -> Resources:
    return value if isinstance(value, Resources) else Resources(value)  # type: ignore[arg-type]


def _optional_resources(value: object) -> Resources | None:
    return None if value is None else _resources(value)


@attrs.frozen
class NodeUsage:
    """How one node (by provider node id) is used, as Ray reports it.

    ``available``: free resources now. ``total``: what the node offers (``None``: the
    node type's resources). ``idle_since``: seconds (autoscaler clock) since when the node
    runs nothing; ``None`` means it is busy. ``last_heartbeat``: when Ray last heard from
    the node; ``None`` when the source does not track heartbeats.
    """

    node_id: str
    available: Resources = attrs.field(factory=Resources, converter=_resources)
    total: Resources | None = attrs.field(default=None, converter=_optional_resources)
    idle_since: float | None = None
    last_heartbeat: float | None = None

    @property
    def busy(self) -> bool:
        """True when the node runs work (the load source reports no idle time)."""
        return self.idle_since is None


def _demands(value: Iterable[ResourceDemand]) -> tuple[ResourceDemand, ...]:
    return tuple(value)


def _groups(value: Iterable[PlacementGroup]) -> tuple[PlacementGroup, ...]:
    return tuple(value)


def _requests(value: Iterable[ResourceRequest]) -> tuple[ResourceRequest, ...]:
    return tuple(value)


def _usage_by_id(value: Mapping[str, NodeUsage] | Iterable[NodeUsage]) -> Mapping[str, NodeUsage]:
    if isinstance(value, Mapping):
        return value
    return {usage.node_id: usage for usage in value}


@attrs.frozen
class LoadSnapshot:
    """The load at one time: pending demand and per-node usage.

    ``demands``: pending tasks and actors by shape. ``placement_groups``: pending
    placement groups. ``resource_requests``: the standing ``request_resources()``
    constraint. ``nodes``: usage per provider node id (nodes Ray does not know are absent).
    ``partial``: the source could not read everything; the autoscaler then terminates
    nothing. ``detail`` says what was missing.
    """

    demands: tuple[ResourceDemand, ...] = attrs.field(default=(), converter=_demands)
    placement_groups: tuple[PlacementGroup, ...] = attrs.field(default=(), converter=_groups)
    resource_requests: tuple[ResourceRequest, ...] = attrs.field(default=(), converter=_requests)
    nodes: Mapping[str, NodeUsage] = attrs.field(factory=dict, converter=_usage_by_id, hash=False)
    partial: bool = False
    detail: str = ""


class LoadSource(Protocol):
    """Where the autoscaler reads load from. One call per update.

    ``load()`` may raise; the autoscaler records the error, launches only what
    ``min_workers`` needs and terminates nothing in that update.
    """

    def load(self) -> LoadSnapshot: ...


class StaticLoadSource:
    """A load source that returns the snapshot it holds; assign ``snapshot`` to change it."""

    def __init__(self, snapshot: LoadSnapshot | None = None) -> None:
        self.snapshot = snapshot if snapshot is not None else LoadSnapshot()

    def load(self) -> LoadSnapshot:
        return self.snapshot
