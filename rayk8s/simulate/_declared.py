"""A simulated Ray over a real provider: the work is declared, the nodes are the provider's.

For testing and demonstrations where no Ray runs in the pods (KWOK's pretend pods, a
dry run of the operator): :class:`DeclaredLoadSource` plays Ray's part of the autoscaler
loop. Real clusters use :class:`rayk8s.ray.RayLoadSource`.

Each :meth:`~DeclaredLoadSource.load`:

1. reads the cluster's nodes from the provider; every *running* node is taken as a Ray
   node that joined (pending ones are still launching);
2. packs the declared work -- tasks by shape and count, "what the cluster should be
   running now" -- onto the running nodes with :func:`rayk8s.autoscaler.schedule`,
   launching nothing (first the head, then the workers, as the scheduler orders them);
3. reports what fits as running there (those nodes are busy, their free resources
   reduced) and what does not fit as pending demand, which the autoscaler scales up for;
4. reports a node that holds no work as idle since the first load that found it so
   (soft state: a new source starts every node's idle time afresh).

So declaring work scales the cluster up until it fits; declaring less lets the emptied
nodes go idle and scale down after the idle timeout. Heartbeats are not modelled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import attrs

from rayk8s.autoscaler import (
    AutoscalerConfig,
    LoadSnapshot,
    Node,
    NodeUsage,
    ProviderNodeStatus,
    ProviderPort,
    ResourceDemand,
    Resources,
    SchedulingRequest,
    schedule,
)
from rayk8s.autoscaler._tags import TAG_CLUSTER_NAME
from rayk8s.autoscaler._validate import describe, expect_list, expect_shape_count, index_path
from rayk8s.errors import ConfigError

__all__ = ["DeclaredLoadSource", "parse_work"]


def parse_work(value: object, path: str = "work") -> tuple[ResourceDemand, ...]:
    """Declared work: a list (or its JSON text) of ``{shape: {CPU: 1}, count: 4}``.

    ``None`` and the empty string are no work. Raises :class:`ConfigError` naming
    ``path[i].shape.CPU`` and the like.
    """
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise ConfigError(path, f"expected a JSON list of {{shape, count}}, got {describe(value)}") from error
    items = expect_list(value, path, "a list of {shape, count}")
    out = []
    for index, item in enumerate(items):
        shape, count = expect_shape_count(item, index_path(path, index))
        out.append(ResourceDemand(shape, count))
    return tuple(out)


class DeclaredLoadSource:
    """A :class:`~rayk8s.autoscaler.LoadSource` simulating Ray from declared work (see the module).

    ``provider``: the cluster's provider (one extra ``nodes()`` read per load; the
    Kubernetes provider answers it from its cache). ``config``: returns the current
    :class:`AutoscalerConfig` (node types give each node's resources). ``work``: returns
    the declared work now (it may raise :class:`ConfigError`; the autoscaler then records
    a ``load_read`` error). ``clock``: the autoscaler's clock.
    """

    def __init__(
        self,
        *,
        provider: ProviderPort,
        config: Callable[[], AutoscalerConfig],
        work: Callable[[], Sequence[ResourceDemand]],
        clock: Callable[[], float],
    ) -> None:
        self.provider = provider
        self.config = config
        self.work = work
        self.clock = clock
        self._idle_since: dict[str, float] = {}

    def load(self) -> LoadSnapshot:
        now = self.clock()
        config = self.config()
        work = tuple(self.work())
        snapshot = self.provider.nodes({TAG_CLUSTER_NAME: config.cluster_name})
        types = {name: c.node_type for name, c in config.node_types.items()}
        running = [n for n in snapshot.nodes if n.status is ProviderNodeStatus.RUNNING and n.node_type in types]
        totals = {n.id: types[str(n.node_type)].resources for n in running}
        nodes = [
            Node(n.id, str(n.node_type), "running", available=totals[n.id], total=totals[n.id], is_head=n.is_head)
            for n in running
        ]
        # Launch nothing: only the nodes that run now can hold the work.
        no_launch = {name: attrs.evolve(t, min_workers=0, max_workers=0) for name, t in types.items()}
        result = schedule(SchedulingRequest(node_types=no_launch, nodes=nodes, demands=work, max_workers=0))
        used: dict[str, Resources] = {}
        for node_id, assignment in result.existing.items():
            taken = Resources()
            for item in assignment.assigned:
                taken = taken + item.shape * item.count
            if taken:
                used[node_id] = taken
        pending = tuple(ResourceDemand(u.shape, u.count) for u in result.unfulfilled if u.shape is not None)
        usage = []
        alive = set(totals)
        self._idle_since = {k: v for k, v in self._idle_since.items() if k in alive}
        for node_id, total in totals.items():
            busy = used.get(node_id)
            if busy is None:
                idle_since = self._idle_since.setdefault(node_id, now)
                usage.append(NodeUsage(node_id, available=total, total=total, idle_since=idle_since))
            else:
                self._idle_since.pop(node_id, None)
                usage.append(NodeUsage(node_id, available=total - busy, total=total, idle_since=None))
        return LoadSnapshot(demands=pending, nodes=usage, partial=snapshot.partial, detail=snapshot.detail)
