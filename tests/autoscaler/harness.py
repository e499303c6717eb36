"""A small harness for autoscaler tests: fake provider, static load, manual clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from rayk8s.autoscaler import (
    Autoscaler,
    AutoscalerConfig,
    LoadSnapshot,
    NodeType,
    NodeTypeConfig,
    NodeUsage,
    ProviderNodeStatus,
    Resources,
    Scheduler,
    StaticLoadSource,
    UpdateResult,
    schedule,
)
from rayk8s.providers._tags import (
    NODE_KIND_HEAD,
    TAG_CLUSTER_NAME,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)
from rayk8s.providers.fake import FakeNodeProvider, ManualClock

CLUSTER = "demo"
START = 1_000_000.0


def cpu(max_workers: int | None = 50, min_workers: int = 0, **kw: Any) -> NodeType:
    return NodeType("cpu", {"CPU": 4}, min_workers=min_workers, max_workers=max_workers, **kw)


def gpu(max_workers: int | None = 10, cost: float = 3.0) -> NodeType:
    return NodeType("gpu", {"CPU": 8, "GPU": 1}, max_workers=max_workers, cost=cost)


class Harness:
    """One cluster: ``config``, ``provider``, ``load``, ``clock`` and the ``autoscaler``."""

    def __init__(
        self,
        node_types: Iterable[NodeType | NodeTypeConfig],
        *,
        provider_config: Mapping[str, Any] | None = None,
        head: bool = False,
        scheduler: Scheduler = schedule,
        **settings: Any,
    ) -> None:
        types = list(node_types)
        self.scheduler = scheduler
        if head:
            types.append(NodeType("head", {"CPU": 2}))
            settings.setdefault("head_node_type", "head")
        self.config = AutoscalerConfig(CLUSTER, types, **settings)
        self.clock = ManualClock(START)
        self.provider = FakeNodeProvider(
            {"type": "fake", "launch_delay_s": 60, **(provider_config or {})}, CLUSTER, clock=self.clock
        )
        self.load = StaticLoadSource()
        self.usage: dict[str, NodeUsage] = {}
        self.head_id: str | None = None
        if head:
            (self.head_id,) = self.provider.create_node(
                {},
                {TAG_CLUSTER_NAME: CLUSTER, TAG_NODE_KIND: NODE_KIND_HEAD, TAG_USER_NODE_TYPE: "head"},
                1,
            )
            self.provider.set_running(self.head_id)
            self.usage[self.head_id] = NodeUsage(self.head_id, {"CPU": 2}, idle_since=START - 10_000)
        self.autoscaler = self.new_autoscaler()

    def new_autoscaler(self) -> Autoscaler:
        """A fresh autoscaler process on the same provider and load (a restart)."""
        return Autoscaler(
            self.config, provider=self.provider, load_source=self.load, clock=self.clock, scheduler=self.scheduler
        )

    # -- load ---------------------------------------------------------------------------

    def demand(self, **load: Any) -> None:
        """Set the pending demand (demands, placement_groups, resource_requests)."""
        self.load.snapshot = attrs.evolve(self.load.snapshot, **load)

    def join(self, node_ids: Iterable[str], *, idle_since: float | None = None, available: Any = None) -> None:
        """Ray reports these nodes (idle since ``idle_since``, or busy) with a fresh heartbeat."""
        for node_id in node_ids:
            total = self._total(node_id)
            self.usage[node_id] = NodeUsage(
                node_id,
                available if available is not None else (total if idle_since is not None else Resources()),
                idle_since=idle_since,
                last_heartbeat=self.clock(),
            )
        self._publish()

    def heartbeat(self) -> None:
        """Every node Ray reports sends a heartbeat now."""
        for node_id, usage in list(self.usage.items()):
            if usage.last_heartbeat is not None:
                self.usage[node_id] = attrs.evolve(usage, last_heartbeat=self.clock())
        self._publish()

    def forget(self, node_id: str) -> None:
        self.usage.pop(node_id, None)
        self._publish()

    def set_usage(self, usage: NodeUsage) -> None:
        self.usage[usage.node_id] = usage
        self._publish()

    def _publish(self) -> None:
        self.load.snapshot = attrs.evolve(self.load.snapshot, nodes=dict(self.usage))

    def _total(self, node_id: str) -> Resources:
        node_type = self.provider.node_tags(node_id)[TAG_USER_NODE_TYPE]
        return self.config.node_types[node_type].node_type.resources

    # -- running ------------------------------------------------------------------------

    def update(self, advance: float = 0.0) -> UpdateResult:
        if advance:
            self.clock.advance(advance)
        self.heartbeat()
        return self.autoscaler.update()

    def workers(self, status: ProviderNodeStatus | None = None, node_type: str | None = None) -> list[str]:
        return sorted(
            n.id
            for n in self.provider.nodes().nodes
            if not n.is_head
            and (status is None or n.status is status)
            and (node_type is None or n.node_type == node_type)
        )

    def run_all(self) -> list[str]:
        """Make every pending worker running and joined to Ray, idle since now."""
        ids = self.workers()
        for node_id in ids:
            self.provider.set_running(node_id)
        self.join([i for i in ids if i not in self.usage], idle_since=self.clock())
        return ids

    def tags(self, node_id: str) -> dict[str, str]:
        return self.provider.node_tags(node_id)

    def status_tag(self, node_id: str) -> str | None:
        return self.tags(node_id).get(TAG_NODE_STATUS)


def launched(result: UpdateResult) -> dict[str, int]:
    return result.launched


def terminated(result: UpdateResult) -> dict[str, str]:
    return {t.node_id: t.reason.value for t in result.terminations}


def snapshot(**kw: Any) -> LoadSnapshot:
    return LoadSnapshot(**kw)
