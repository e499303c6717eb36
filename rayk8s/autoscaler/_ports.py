"""What the autoscaler step sees of a node provider: plain values, and the calls it makes.

:class:`rayk8s.providers.NodeProvider` is the full, documented interface that provider
authors implement; it returns these values from its bulk read. They are defined here, in
the pure layer, so :class:`~rayk8s.autoscaler.Autoscaler` can consume them without
importing the provider layer above it. :class:`ProviderPort` is the part of the
interface the autoscaler calls, as a structural protocol.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from rayk8s.autoscaler._tags import NODE_KIND_HEAD, TAG_NODE_KIND, TAG_USER_NODE_TYPE

__all__ = ["ProviderNode", "ProviderNodeStatus", "ProviderPort", "ProviderSnapshot"]


class ProviderNodeStatus(str, enum.Enum):
    """What the provider knows about a node's machine (not whether Ray runs on it).

    ``pending``: accepted, not running yet (a Pending pod, a booting instance).
    ``running``: the machine runs (a Running pod with an IP); Ray may not have joined yet.
    ``terminating``: deletion was requested and is under way.
    ``failed``: the node will never run (a Failed pod, an instance in error).
    """

    PENDING = "pending"
    RUNNING = "running"
    TERMINATING = "terminating"
    FAILED = "failed"


def _node_tuple(value: Iterable[ProviderNode]) -> tuple[ProviderNode, ...]:
    return tuple(value)


def _frozen_tags(value: Mapping[str, str]) -> Mapping[str, str]:
    return dict(value)


@attrs.frozen
class ProviderNode:
    """One node as the provider reports it.

    ``created_at`` is in seconds on the same clock the autoscaler is given (for real
    providers: Unix time). ``tags`` are every tag the node carries. ``unschedulable``
    says why a pending node cannot be placed when the provider knows it cannot (for
    Kubernetes: a Pending pod's ``PodScheduled=False/Unschedulable`` message), else
    ``None``.
    """

    id: str
    status: ProviderNodeStatus
    tags: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_tags, hash=False)
    created_at: float = 0.0
    internal_ip: str | None = None
    external_ip: str | None = None
    unschedulable: str | None = None

    @property
    def node_type(self) -> str | None:
        """The configured node type (tag ``ray-user-node-type``), if tagged."""
        return self.tags.get(TAG_USER_NODE_TYPE)

    @property
    def kind(self) -> str | None:
        """``head`` or ``worker`` (tag ``ray-node-type``), if tagged."""
        return self.tags.get(TAG_NODE_KIND)

    @property
    def is_head(self) -> bool:
        return self.kind == NODE_KIND_HEAD


@attrs.frozen
class ProviderSnapshot:
    """Every non-terminated node the provider knows, read at one time.

    ``partial`` is true when the provider could not read everything (a timed-out page of
    a list, say): the nodes listed exist, but others may too. The autoscaler terminates
    nothing on a partial read. ``detail`` says what was missing.
    """

    nodes: tuple[ProviderNode, ...] = attrs.field(default=(), converter=_node_tuple)
    partial: bool = False
    detail: str = ""


class ProviderPort(Protocol):
    """The calls :class:`~rayk8s.autoscaler.Autoscaler` makes on a provider.

    Every :class:`rayk8s.providers.NodeProvider` satisfies it; see that class for the
    contract of each method.
    """

    def nodes(self, tag_filters: Mapping[str, str] | None = None) -> ProviderSnapshot: ...

    def create_node(self, node_config: Mapping[str, Any], tags: Mapping[str, str], count: int) -> Sequence[str]: ...

    def terminate_nodes(self, node_ids: Sequence[str]) -> None: ...

    def set_node_tags(self, node_id: str, tags: Mapping[str, str]) -> None: ...
