"""An in-memory node provider: simulated launch delay and failures, and a record of calls.

:class:`FakeNodeProvider` is a product feature, not a test double: ``rayk8s simulate`` and
the benchmarks run the real autoscaler against it, and it is the first provider the
provider contract suite runs against. Time comes from an injected clock (a
:class:`ManualClock` by default), randomness from an injected seeded ``random.Random``.

``provider_config`` keys (all optional):

- ``launch_delay_s``: seconds from creation to running; a number, or a mapping of node
  type (tag ``ray-user-node-type``) to seconds (key ``default`` for the rest).
- ``launch_failure_rate``: the chance each node of a ``create_node`` call fails to launch
  (a number or a per-type mapping); failures raise :class:`~rayk8s.errors.LaunchError`.
- ``quota``: node type -> the most nodes of it that may exist; beyond it ``create_node``
  raises :class:`~rayk8s.errors.QuotaError`.
- ``terminate_delay_s``: seconds a terminated node stays listed as ``terminating``.
- ``list_delay_s``: seconds before a created node is listed by ``nodes()`` (an eventually
  consistent provider, as a watch-fed cache lags its writes).
- ``seed``: seeds the random generator when none is injected.

Failure injection for tests: :meth:`~FakeNodeProvider.fail_next_launch` (launch or quota
error), :meth:`~FakeNodeProvider.stick_next_launch` (nodes stay pending for ever),
:meth:`~FakeNodeProvider.fail_next_reads` (a read raises, or returns a partial list),
:meth:`~FakeNodeProvider.fail_node`. Every call is appended to :attr:`~FakeNodeProvider.calls`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from rayk8s.autoscaler._ports import ProviderNode, ProviderNodeStatus, ProviderSnapshot
from rayk8s.autoscaler._tags import NODE_KIND_HEAD, TAG_NODE_KIND, TAG_USER_NODE_TYPE
from rayk8s.errors import ConfigError, LaunchError, NodeNotFoundError, ProviderError, QuotaError
from rayk8s.providers._base import NodeProvider

__all__ = ["FakeCall", "FakeNodeProvider", "ManualClock"]

_FOREVER = float("inf")


class ManualClock:
    """A clock that moves only when told: ``clock()`` is now, ``advance(s)`` moves it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def set(self, now: float) -> None:
        self.now = float(now)


@attrs.frozen
class FakeCall:
    """One call made on the provider: its method name and arguments."""

    method: str
    args: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.define
class _Injected:
    kind: str  # "launch", "quota" or "stuck"
    node_type: str | None
    times: int
    reason: str


@attrs.define
class _FakeNode:
    id: str
    node_config: Mapping[str, Any]
    tags: dict[str, str]
    created_at: float
    ready_at: float
    internal_ip: str
    status: ProviderNodeStatus = ProviderNodeStatus.PENDING
    gone_at: float = _FOREVER
    view: ProviderNode | None = None


def _per_type(value: Any, key: str) -> Callable[[str | None], float]:
    if value is None:
        return lambda node_type: 0.0
    if isinstance(value, bool):
        raise ConfigError(f"provider.{key}", f"expected a number or a mapping of node type to number, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
        return lambda node_type: number
    if isinstance(value, Mapping):
        table: dict[str, float] = {}
        for name, item in value.items():
            if isinstance(item, bool) or not isinstance(item, int | float) or item < 0:
                raise ConfigError(f"provider.{key}.{name}", f"expected a non-negative number, got {item!r}")
            table[str(name)] = float(item)
        default = table.get("default", 0.0)
        return lambda node_type: table.get(node_type or "", default)
    raise ConfigError(f"provider.{key}", f"expected a number or a mapping of node type to number, got {value!r}")


class FakeNodeProvider(NodeProvider):
    """Nodes in memory, with launch delays and failures (see the module docstring).

    ``clock`` returns now in seconds (default: a fresh :class:`ManualClock`, exposed as
    :attr:`clock`). ``rng`` decides random launch failures (default: seeded from
    ``provider_config['seed']``, else 0).
    """

    def __init__(
        self,
        provider_config: Mapping[str, Any] | None = None,
        cluster_name: str = "default",
        *,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        config = dict(provider_config or {"type": "fake"})
        super().__init__(config, cluster_name)
        self.clock: Callable[[], float] = clock if clock is not None else ManualClock()
        seed = config.get("seed", 0)
        self.rng = rng if rng is not None else random.Random(seed)
        self._launch_delay = _per_type(config.get("launch_delay_s"), "launch_delay_s")
        self._failure_rate = _per_type(config.get("launch_failure_rate"), "launch_failure_rate")
        self._terminate_delay = _per_type(config.get("terminate_delay_s"), "terminate_delay_s")("")
        self._list_delay = _per_type(config.get("list_delay_s"), "list_delay_s")("")
        quota = config.get("quota") or {}
        if not isinstance(quota, Mapping):
            raise ConfigError("provider.quota", f"expected a mapping of node type to count, got {quota!r}")
        self.quota: dict[str, int] = {str(k): int(v) for k, v in quota.items()}
        self.calls: list[FakeCall] = []
        self._nodes: dict[str, _FakeNode] = {}
        self._waiting: list[_FakeNode] = []  # pending nodes with a finite ready time
        self._gone: list[_FakeNode] = []  # terminating nodes with a finite removal time
        self._injected: list[_Injected] = []
        self._read_failures: list[bool] = []  # True: partial read, False: raise
        self._sequence = 0
        self.created_total = 0
        self.terminated_total = 0

    # -- failure injection ---------------------------------------------------------------

    def fail_next_launch(
        self, kind: str = "launch", *, node_type: str | None = None, times: int = 1, reason: str | None = None
    ) -> None:
        """Make the next ``times`` launches (of ``node_type``, or any) fail.

        ``kind``: ``launch`` (:class:`LaunchError`), ``quota`` (:class:`QuotaError`) or
        ``stuck`` (the nodes are created but never leave ``pending``).
        """
        if kind not in ("launch", "quota", "stuck"):
            raise ValueError(f"kind must be 'launch', 'quota' or 'stuck', not {kind!r}")
        default = {"launch": "injected launch failure", "quota": "injected quota exhausted", "stuck": "stuck"}[kind]
        self._injected.append(_Injected(kind, node_type, times, reason or default))

    def stick_next_launch(self, *, node_type: str | None = None, times: int = 1) -> None:
        """The next ``times`` launches create nodes that stay pending for ever."""
        self.fail_next_launch("stuck", node_type=node_type, times=times)

    def fail_next_reads(self, times: int = 1, *, partial: bool = False) -> None:
        """The next ``times`` calls of :meth:`nodes` raise :class:`ProviderError`, or with
        ``partial`` return only the first half of the nodes, marked partial."""
        self._read_failures.extend([partial] * times)

    def fail_node(self, node_id: str) -> None:
        """The provider gives up on this node: it is listed as ``failed``."""
        node = self._nodes.get(node_id)
        if node is None:
            raise NodeNotFoundError(node_id)
        node.status = ProviderNodeStatus.FAILED
        node.view = None

    def set_running(self, node_id: str) -> None:
        """Make a pending node running now (whatever its launch delay)."""
        node = self._nodes.get(node_id)
        if node is None:
            raise NodeNotFoundError(node_id)
        node.ready_at = min(node.ready_at, self.clock())
        self._waiting.append(node)
        self._advance(self.clock())

    def calls_to(self, method: str) -> list[FakeCall]:
        """The recorded calls of one method."""
        return [call for call in self.calls if call.method == method]

    # -- the NodeProvider interface -----------------------------------------------------

    def nodes(self, tag_filters: Mapping[str, str] | None = None) -> ProviderSnapshot:
        self.calls.append(FakeCall("nodes", {"tag_filters": dict(tag_filters or {})}))
        now = self.clock()
        self._advance(now)
        partial = False
        if self._read_failures:
            partial = self._read_failures.pop(0)
            if not partial:
                raise ProviderError("injected read failure: listing nodes timed out")
        filters = tuple((tag_filters or {}).items())
        out: list[ProviderNode] = []
        listed_before = now - self._list_delay
        for node in self._nodes.values():
            tags = node.tags
            if filters and any(tags.get(key) != value for key, value in filters):
                continue
            if node.created_at > listed_before:
                continue
            view = node.view
            if view is None:
                view = node.view = self._make_view(node)
            out.append(view)
        if partial:
            return ProviderSnapshot(tuple(out[: len(out) // 2]), partial=True, detail="injected: read cut short")
        return ProviderSnapshot(tuple(out))

    def node(self, node_id: str) -> ProviderNode | None:
        self._advance(self.clock())
        node = self._nodes.get(node_id)
        if node is None:
            return None
        if node.view is None:
            node.view = self._make_view(node)
        return node.view

    def create_node(self, node_config: Mapping[str, Any], tags: Mapping[str, str], count: int) -> list[str]:
        self.calls.append(
            FakeCall("create_node", {"node_config": dict(node_config), "tags": dict(tags), "count": count})
        )
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if count == 0:
            return []
        now = self.clock()
        self._advance(now)
        node_type = tags.get(TAG_USER_NODE_TYPE)
        label = node_type or "node"
        stuck = False
        injected = self._take_injection(node_type)
        if injected is not None:
            if injected.kind == "quota":
                raise QuotaError(label, count, injected.reason)
            if injected.kind == "launch":
                raise LaunchError(label, count, injected.reason)
            stuck = True
        limit = self.quota.get(node_type or "")
        allowed = count
        if limit is not None:
            existing = sum(
                1
                for n in self._nodes.values()
                if n.tags.get(TAG_USER_NODE_TYPE) == node_type and n.status is not ProviderNodeStatus.TERMINATING
            )
            allowed = max(0, min(count, limit - existing))
        rate = self._failure_rate(node_type)
        successes = allowed if rate <= 0 else sum(1 for _ in range(allowed) if self.rng.random() >= rate)
        delay = _FOREVER if stuck else self._launch_delay(node_type)
        created = [self._add(node_config, tags, now, delay) for _ in range(successes)]
        if allowed < count:
            raise QuotaError(label, count - successes, f"quota of {limit} {label} node(s) reached")
        if successes < count:
            raise LaunchError(label, count - successes, f"{count - successes} of {count} launch(es) failed (simulated)")
        return created

    def terminate_nodes(self, node_ids: Sequence[str]) -> None:
        self.calls.append(FakeCall("terminate_nodes", {"node_ids": list(node_ids)}))
        now = self.clock()
        for node_id in node_ids:
            node = self._nodes.get(node_id)
            if node is None or node.status is ProviderNodeStatus.TERMINATING:
                continue  # already gone or going: success
            self.terminated_total += 1
            if self._terminate_delay <= 0:
                del self._nodes[node_id]
                continue
            node.status = ProviderNodeStatus.TERMINATING
            node.gone_at = now + self._terminate_delay
            node.view = None
            self._gone.append(node)

    def terminate_node(self, node_id: str) -> None:
        self.terminate_nodes([node_id])

    def set_node_tags(self, node_id: str, tags: Mapping[str, str]) -> None:
        self.calls.append(FakeCall("set_node_tags", {"node_id": node_id, "tags": dict(tags)}))
        node = self._nodes.get(node_id)
        if node is None:
            raise NodeNotFoundError(node_id)
        node.tags.update(tags)
        node.view = None

    # -- machinery -------------------------------------------------------------------------

    def _take_injection(self, node_type: str | None) -> _Injected | None:
        for item in self._injected:
            if item.node_type is None or item.node_type == node_type:
                item.times -= 1
                if item.times <= 0:
                    self._injected.remove(item)
                return item
        return None

    def _add(self, node_config: Mapping[str, Any], tags: Mapping[str, str], now: float, delay: float) -> str:
        self._sequence += 1
        self.created_total += 1
        kind = "head" if tags.get(TAG_NODE_KIND) == NODE_KIND_HEAD else "worker"
        node_id = f"{self.cluster_name}-ray-{kind}-{self._sequence:05d}"
        ip = f"10.{(self._sequence >> 16) & 255}.{(self._sequence >> 8) & 255}.{self._sequence & 255}"
        node = _FakeNode(node_id, dict(node_config), dict(tags), now, now + delay, ip)
        self._nodes[node_id] = node
        if delay <= 0:
            node.status = ProviderNodeStatus.RUNNING
        elif delay != _FOREVER:
            self._waiting.append(node)
        return node_id

    def _advance(self, now: float) -> None:
        if self._waiting:
            still: list[_FakeNode] = []
            for node in self._waiting:
                if node.status is not ProviderNodeStatus.PENDING or node.id not in self._nodes:
                    continue
                if node.ready_at <= now:
                    node.status = ProviderNodeStatus.RUNNING
                    node.view = None
                else:
                    still.append(node)
            self._waiting = still
        if self._gone:
            kept = []
            for node in self._gone:
                if node.gone_at <= now:
                    self._nodes.pop(node.id, None)
                else:
                    kept.append(node)
            self._gone = kept

    @staticmethod
    def _make_view(node: _FakeNode) -> ProviderNode:
        running = node.status in (ProviderNodeStatus.RUNNING, ProviderNodeStatus.TERMINATING)
        return ProviderNode(
            id=node.id,
            status=node.status,
            tags=node.tags,
            created_at=node.created_at,
            internal_ip=node.internal_ip if running else None,
            external_ip=None,
        )
