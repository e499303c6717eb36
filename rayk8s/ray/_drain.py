"""Drain through Ray before terminating: a node is only terminated once its raylet agrees.

Between the load read that found a node idle and the termination, Ray may have scheduled
work on it. :class:`DrainingProvider` wraps any provider: before terminating a node Ray
knows alive, it asks the GCS to drain it for idle termination (``DrainNode``, as Ray's
autoscaler v2 does); the raylet refuses a node that runs anything, and such a node is
not terminated. Nodes Ray does not know alive (never joined, dead) are terminated
directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from rayk8s.autoscaler import ProviderPort, ProviderSnapshot
from rayk8s.errors import ProviderError
from rayk8s.ray._load_source import RayLoadSource

__all__ = ["DrainingProvider"]

log = structlog.get_logger()


class DrainingProvider:
    """``provider`` with :meth:`terminate_nodes` draining each node through ``load_source`` first.

    Every other call goes to ``provider`` unchanged. If Ray refuses to drain some nodes,
    the others are terminated and :class:`ProviderError` names the refused ones (the
    autoscaler records it and decides again from a fresh read).
    """

    def __init__(self, provider: ProviderPort, load_source: RayLoadSource) -> None:
        self.provider = provider
        self.load_source = load_source
        self.refused = 0

    def nodes(self, tag_filters: Mapping[str, str] | None = None) -> ProviderSnapshot:
        return self.provider.nodes(tag_filters)

    def create_node(self, node_config: Mapping[str, Any], tags: Mapping[str, str], count: int) -> Sequence[str]:
        return self.provider.create_node(node_config, tags, count)

    def set_node_tags(self, node_id: str, tags: Mapping[str, str]) -> None:
        self.provider.set_node_tags(node_id, tags)

    def terminate_nodes(self, node_ids: Sequence[str]) -> None:
        accepted, rejected = self.load_source.drain(node_ids)
        if accepted:
            self.provider.terminate_nodes(accepted)
        if rejected:
            self.refused += len(rejected)
            for node_id, why in rejected.items():
                log.info("drain_refused", node_id=node_id, why=why)
            detail = "; ".join(f"{node_id}: {why}" for node_id, why in sorted(rejected.items()))
            raise ProviderError(f"Ray refused to drain {len(rejected)} node(s), kept: {detail}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)
