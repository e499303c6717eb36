"""The node-provider interface: how the autoscaler creates, lists, tags and removes nodes.

Method names follow Ray's ``NodeProvider`` so Ray users recognise it. A provider
implements four methods (:meth:`NodeProvider.nodes`, :meth:`~NodeProvider.create_node`,
:meth:`~NodeProvider.terminate_nodes`, :meth:`~NodeProvider.set_node_tags`); the rest of
Ray's surface is derived from those here and may be overridden for speed.

The contract, for every provider:

- **Eventually consistent.** A node ``create_node`` returned may be missing from
  ``nodes()`` for a while; a terminated node may still be listed (as ``terminating`` or
  even ``running``) for a while. The autoscaler copes with both; a provider must never
  list a node that does not exist or never existed.
- **Unique ids.** A node id names one node for ever; it is never reused.
- **Idempotent removal.** Terminating a node that is already gone (or never existed) is
  success, not an error (Karpenter: NotFound on delete means done).
- **Failures as data.** ``create_node`` reports a failed launch by raising
  :class:`~rayk8s.errors.LaunchError` (:class:`~rayk8s.errors.QuotaError` for quota)
  carrying node type, count and reason; other calls raise
  :class:`~rayk8s.errors.ProviderError` subclasses. Never return ``None`` for a failure.
- **One bulk read.** ``nodes()`` answers everything an update needs in one call
  (status, type, tags, IPs, creation time), so an update reads the provider once.
- **Blocking calls.** Methods may block on I/O; callers in an event loop run them in an
  executor. A provider instance is used by one autoscaler loop at a time.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from rayk8s.autoscaler._ports import ProviderNode, ProviderNodeStatus, ProviderSnapshot
from rayk8s.errors import NodeNotFoundError

__all__ = ["NodeProvider", "ProviderNode", "ProviderNodeStatus", "ProviderSnapshot"]


class NodeProvider(abc.ABC):
    """Base class of every node provider; see the module docstring for the contract.

    Providers are built as ``cls(provider_config, cluster_name)`` (as in Ray), where
    ``provider_config`` is the cluster config's ``provider`` mapping. Implementations may
    add keyword-only arguments for injected collaborators (a client, a clock).
    """

    def __init__(self, provider_config: Mapping[str, Any], cluster_name: str) -> None:
        self.provider_config = dict(provider_config)
        self.cluster_name = cluster_name

    # -- required ----------------------------------------------------------------------

    @abc.abstractmethod
    def nodes(self, tag_filters: Mapping[str, str] | None = None) -> ProviderSnapshot:
        """Every non-terminated node whose tags include all of ``tag_filters``. Required.

        Each :class:`ProviderNode` carries id, status, all tags, creation time and IPs.
        Nodes being deleted may be listed with status ``terminating``. If the provider
        could read only part of its nodes, it returns what it read with ``partial=True``
        (or raises :class:`~rayk8s.errors.ProviderError`); it never silently returns a
        short list as if it were complete.
        """

    @abc.abstractmethod
    def create_node(self, node_config: Mapping[str, Any], tags: Mapping[str, str], count: int) -> list[str]:
        """Create ``count`` nodes from ``node_config``, each tagged with ``tags``. Required.

        Returns the ids of the nodes created. Not idempotent: each call creates new nodes
        (the autoscaler tags each call with a unique ``ray-launch-request`` and never
        repeats one). ``count`` of 0 creates nothing. If some or all of the nodes cannot be
        created, raises :class:`~rayk8s.errors.LaunchError` whose ``count`` is the number
        not created; the ones created before the failure exist and are listed by
        ``nodes()`` (eventually).
        """

    @abc.abstractmethod
    def terminate_nodes(self, node_ids: Sequence[str]) -> None:
        """Terminate the nodes with these ids. Required. Idempotent.

        Ids of nodes already gone, being deleted, or never known are success. Returns
        once deletion is requested; it may complete later (eventually consistent).
        """

    @abc.abstractmethod
    def set_node_tags(self, node_id: str, tags: Mapping[str, str]) -> None:
        """Merge ``tags`` into the node's tags (other tags are kept). Required. Idempotent.

        Raises :class:`~rayk8s.errors.NodeNotFoundError` if the node does not exist.
        """

    # -- derived (optional to override) -------------------------------------------------

    def node(self, node_id: str) -> ProviderNode | None:
        """The node with this id, or ``None`` if it is not listed. Optional (default: a bulk read)."""
        for item in self.nodes().nodes:
            if item.id == node_id:
                return item
        return None

    def non_terminated_nodes(self, tag_filters: Mapping[str, str] | None = None) -> list[str]:
        """Ids of the nodes ``nodes(tag_filters)`` lists, except those terminating (Ray's name)."""
        return [n.id for n in self.nodes(tag_filters).nodes if n.status is not ProviderNodeStatus.TERMINATING]

    def terminate_node(self, node_id: str) -> None:
        """Terminate one node (idempotent; a missing node is success)."""
        self.terminate_nodes([node_id])

    def node_tags(self, node_id: str) -> dict[str, str]:
        """The node's tags. Raises :class:`~rayk8s.errors.NodeNotFoundError` if it is not listed."""
        return dict(self._require(node_id).tags)

    def is_running(self, node_id: str) -> bool:
        """True when the node's machine runs (status ``running``)."""
        item = self.node(node_id)
        return item is not None and item.status is ProviderNodeStatus.RUNNING

    def is_terminated(self, node_id: str) -> bool:
        """True when the node is gone or being deleted (a never-known id is terminated)."""
        item = self.node(node_id)
        return item is None or item.status is ProviderNodeStatus.TERMINATING

    def internal_ip(self, node_id: str) -> str | None:
        """The node's cluster-internal IP, once it has one."""
        return self._require(node_id).internal_ip

    def external_ip(self, node_id: str) -> str | None:
        """The node's external IP, if it has one (pods usually do not)."""
        return self._require(node_id).external_ip

    def _require(self, node_id: str) -> ProviderNode:
        item = self.node(node_id)
        if item is None:
            raise NodeNotFoundError(node_id)
        return item
