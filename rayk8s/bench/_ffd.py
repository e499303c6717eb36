"""A first-fit-decreasing baseline scheduler: the textbook heuristic, as a yardstick.

Algorithm (First-Fit Decreasing, in the spirit of Cluster Autoscaler's binpacking
estimator, whose bound is ``11/9 * optimal + 6/9`` bins for one bin size):

1. *Bins* are the existing nodes in request order (a running node with its free capacity,
   a pending node with all of it), followed by new nodes in the order they are opened.
2. ``min_workers``: open nodes for every type below it.
3. ``request_resources`` bundles, largest first, first fit against the *total* capacity of
   the bins; a bundle that fits nowhere opens a new node.
4. Placement groups, largest instance first, each instance whole or not at all: PACK and
   STRICT_PACK try one bin for the whole instance; PACK and SPREAD then place bundle by
   bundle (SPREAD on distinct bins while it can); STRICT_SPREAD on distinct bins.
5. Tasks, shape by shape, largest first: fill the bins in order, then open new nodes.

"Largest" is the dominant share: a shape's largest fraction of the biggest amount of that
resource any node type has. A new node is always of the *cheapest* type (per node, then
by name) that holds the item and has ``max_workers`` headroom — the naive choice, with no
look-ahead to what else the node could hold. Work is done per shape (``take`` as many as
fit), so 100,000 tasks of a few shapes cost what a few shapes cost, and everything is
deterministic.

The result is a full :class:`~rayk8s.autoscaler.SchedulingResult` (placements, reasons),
so :func:`~rayk8s.autoscaler.verify` checks the baseline as it checks rayk8s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from rayk8s.autoscaler import (
    BundlePlacement,
    DemandKind,
    ExistingNodeAssignment,
    LaunchReason,
    NewNodeGroup,
    NodeStatus,
    PlacementGroup,
    PlacementStrategy,
    Resources,
    SchedulingRequest,
    SchedulingResult,
    ShapeCount,
    Unfulfilled,
    UnfulfilledReason,
)

__all__ = ["first_fit_decreasing"]

Units = tuple[tuple[str, int], ...]


def _units(resources: Resources) -> Units:
    return tuple(sorted(resources.units.items()))


def _fits(need: Units, free: dict[str, int]) -> int:
    """How many copies of ``need`` fit in ``free`` (a large number for an empty shape)."""
    best = 1 << 62
    for name, amount in need:
        have = free.get(name, 0) // amount
        if have < best:
            best = have
            if best == 0:
                return 0
    return best


class _Bin:
    __slots__ = ("assigned", "bundles", "existing", "free", "id", "node_type", "reason", "requests", "room")

    def __init__(self, bin_id: str, node_type: str, free: Mapping[str, int], total: Mapping[str, int]) -> None:
        self.id = bin_id
        self.node_type = node_type
        self.free = dict(free)  # for work
        self.room = dict(total)  # for request_resources (total capacity, used or not)
        self.existing = False
        self.reason: LaunchReason | None = None
        self.assigned: Counter[Resources] = Counter()
        self.requests: Counter[Resources] = Counter()
        self.bundles: list[BundlePlacement] = []

    def take(self, need: Units, times: int) -> None:
        for name, amount in need:
            self.free[name] -= amount * times


class _FFD:
    def __init__(self, request: SchedulingRequest) -> None:
        self.request = request
        self.types = request.node_types
        self.bins: list[_Bin] = []
        self.unfulfilled: list[Unfulfilled] = []
        self.workers: Counter[str] = Counter(n.node_type for n in request.nodes if not n.is_head)
        self.cluster_workers = sum(self.workers.values())
        self.opened = 0
        # first-fit pointers: shape -> index of the first bin it may still fit, for free capacity
        # (tasks, bundles) and for total capacity (request_resources); bins only ever shrink
        self.first: dict[Units, int] = {}
        self.first_room: dict[Units, int] = {}
        biggest: dict[str, int] = {}
        for node_type in self.types.values():
            for name, amount in node_type.resources.units.items():
                biggest[name] = max(biggest.get(name, 0), amount)
        self.biggest = biggest
        # launchable types, cheapest first
        self.by_price = sorted(
            (t for t in self.types.values() if t.name not in request.unavailable_node_types),
            key=lambda t: (t.cost, t.name),
        )
        for node in request.nodes:
            known = self.types[node.node_type].resources if node.node_type in self.types else None
            total = node.total or known or node.available or Resources()
            free = total if node.status is NodeStatus.PENDING or node.available is None else node.available
            item = _Bin(node.id, node.node_type, free.units, total.units)
            item.existing = True
            self.bins.append(item)

    # -- sizes and headroom ---------------------------------------------------------------

    def size(self, need: Units) -> float:
        return max((amount / self.biggest.get(name, amount) for name, amount in need), default=0.0)

    def headroom(self, node_type: str) -> bool:
        limit = self.types[node_type].max_workers
        if limit is not None and self.workers[node_type] >= limit:
            return False
        cap = self.request.max_workers
        return cap is None or self.cluster_workers < cap

    def open(self, node_type: str, reason: LaunchReason) -> _Bin:
        resources = self.types[node_type].resources.units
        self.opened += 1
        item = _Bin(f"new-{self.opened}", node_type, resources, resources)
        item.reason = reason
        self.bins.append(item)
        self.workers[node_type] += 1
        self.cluster_workers += 1
        return item

    def close(self, item: _Bin) -> None:
        """Drop a new bin opened for an instance that did not fit after all (it is the last)."""
        assert self.bins[-1] is item
        self.bins.pop()
        self.workers[item.node_type] -= 1
        self.cluster_workers -= 1

    def cheapest(self, need: Units) -> str | None:
        for node_type in self.by_price:
            if _fits(need, dict(node_type.resources.units)) and self.headroom(node_type.name):
                return node_type.name
        return None

    def reason(self, shape: Resources) -> tuple[UnfulfilledReason, str]:
        """Why ``shape`` (or a bundle of it) found no room."""
        holders = [t.name for t in self.types.values() if shape.fits_in(t.resources)]
        if not holders:
            if any(_fits(_units(shape), b.room) for b in self.bins if b.existing):
                return UnfulfilledReason.BUSY, f"no node type holds {shape}; an existing node will once free"
            return UnfulfilledReason.INFEASIBLE, f"no node type holds {shape}"
        if all(name in self.request.unavailable_node_types for name in holders):
            return UnfulfilledReason.UNAVAILABLE, f"only unavailable types hold {shape}: {', '.join(holders)}"
        return UnfulfilledReason.MAX_WORKERS, f"max_workers reached for every type that holds {shape}"

    # -- the pipeline ---------------------------------------------------------------------

    def run(self) -> SchedulingResult:
        self.min_workers()
        self.resource_requests()
        self.placement_groups()
        self.tasks()
        return self.result()

    def min_workers(self) -> None:
        for node_type in self.types.values():
            if node_type.name in self.request.unavailable_node_types:
                continue
            while self.workers[node_type.name] < node_type.min_workers and self.headroom(node_type.name):
                self.open(node_type.name, LaunchReason.MIN_WORKERS)

    def resource_requests(self) -> None:
        wanted: Counter[Resources] = Counter()
        for asked in self.request.resource_requests:
            wanted[asked.shape] += asked.count
        for shape in sorted(wanted, key=lambda s: (-self.size(_units(s)), _units(s))):
            self.pack(shape, wanted[shape], requests=True)

    def placement_groups(self) -> None:
        groups = list(enumerate(self.request.placement_groups))

        def key(entry: tuple[int, PlacementGroup]) -> tuple[float, int]:
            total = Resources()
            for bundle in entry[1].bundles:
                total = total + bundle
            return (-self.size(_units(total)), entry[0])

        for index, group in sorted(groups, key=key):
            name = group.name if group.name is not None else f"pg{index}"
            placed = 0
            for instance in range(group.count):
                if not self.instance(name, instance, group):
                    break
                placed += 1
            if placed < group.count:
                reason, detail = self.pg_reason(group)
                self.unfulfilled.append(
                    Unfulfilled(
                        DemandKind.PLACEMENT_GROUP,
                        group.count - placed,
                        reason,
                        detail,
                        pg=name,
                        bundles=group.bundles,
                        strategy=group.strategy.value,
                    )
                )

    def pg_reason(self, group: PlacementGroup) -> tuple[UnfulfilledReason, str]:
        for bundle in group.bundles:
            if not any(bundle.fits_in(t.resources) for t in self.types.values()):
                return self.reason(bundle)
        if group.strategy is PlacementStrategy.STRICT_PACK:
            total = Resources()
            for bundle in group.bundles:
                total = total + bundle
            if not any(total.fits_in(t.resources) for t in self.types.values()):
                return UnfulfilledReason.STRATEGY, f"no node type holds a whole STRICT_PACK group ({total})"
        return UnfulfilledReason.MAX_WORKERS, "max_workers reached before the group could be placed whole"

    def instance(self, name: str, instance: int, group: PlacementGroup) -> bool:
        """Place one instance whole (and return True), or change nothing (and return False)."""
        needs = [_units(b) for b in group.bundles]
        strategy = group.strategy
        if strategy in (PlacementStrategy.PACK, PlacementStrategy.STRICT_PACK):
            summed: dict[str, int] = {}
            for need in needs:
                for res, amount in need:
                    summed[res] = summed.get(res, 0) + amount
            whole = tuple(sorted(summed.items()))
            target = self.first_bin(whole)
            if target is None:
                node_type = self.cheapest(whole)
                if node_type is not None:
                    target = self.open(node_type, LaunchReason.PLACEMENT_GROUP)
            if target is not None:
                for b, need in enumerate(needs):
                    target.take(need, 1)
                    target.bundles.append(BundlePlacement(name, instance, b, group.bundles[b]))
                return True
            if strategy is PlacementStrategy.STRICT_PACK:
                return False
        distinct = strategy in (PlacementStrategy.SPREAD, PlacementStrategy.STRICT_SPREAD)
        plan = self.bundle_by_bundle(needs, distinct=distinct)
        if plan is None and strategy is PlacementStrategy.SPREAD:
            plan = self.bundle_by_bundle(needs, distinct=False)
        if plan is None:
            return False
        for b, (target, need) in enumerate(zip(plan, needs)):
            target.take(need, 1)
            target.bundles.append(BundlePlacement(name, instance, b, group.bundles[b]))
        return True

    def bundle_by_bundle(self, needs: list[Units], *, distinct: bool) -> list[_Bin] | None:
        """Where each bundle goes (first fit, opening nodes as needed), or None (nothing changed)."""
        shadow: dict[str, dict[str, int]] = {}
        used: set[str] = set()
        opened: list[_Bin] = []
        plan: list[_Bin] = []
        for need in needs:
            target = None
            index = self.first.get(need, 0)
            pointer = None  # the first bin ``need`` fits at all: no bin before it ever will again
            while index < len(self.bins):
                item = self.bins[index]
                if pointer is None and _fits(need, item.free):
                    pointer = index
                if not (distinct and item.id in used) and _fits(need, shadow.get(item.id, item.free)):
                    target = item
                    break
                index += 1
            self.first[need] = len(self.bins) if pointer is None else pointer
            if target is None:
                node_type = self.cheapest(need)
                if node_type is None:
                    for item in reversed(opened):
                        self.close(item)
                    return None
                target = self.open(node_type, LaunchReason.PLACEMENT_GROUP)
                opened.append(target)
            free = shadow.setdefault(target.id, dict(target.free))
            for res, amount in need:
                free[res] -= amount
            used.add(target.id)
            plan.append(target)
        return plan

    def first_bin(self, need: Units) -> _Bin | None:
        start = self.first.get(need, 0)
        for index in range(start, len(self.bins)):
            if _fits(need, self.bins[index].free):
                self.first[need] = index
                return self.bins[index]
        self.first[need] = len(self.bins)
        return None

    def tasks(self) -> None:
        wanted: Counter[Resources] = Counter()
        for demand in self.request.demands:
            wanted[demand.shape] += demand.count
        for shape in sorted(wanted, key=lambda s: (-self.size(_units(s)), _units(s))):
            self.pack(shape, wanted[shape], requests=False)

    def pack(self, shape: Resources, count: int, *, requests: bool) -> None:
        """First fit ``count`` of ``shape`` into the bins, then into new nodes; report the rest.

        Tasks take free capacity; ``request_resources`` bundles (``requests``) take total
        capacity, used or not, which each bin tracks apart (``room``).
        """
        need = _units(shape)
        kind, why = (
            (DemandKind.RESOURCE_REQUEST, LaunchReason.REQUEST_RESOURCES)
            if requests
            else (DemandKind.DEMAND, LaunchReason.DEMAND)
        )
        pointers = self.first_room if requests else self.first
        left = count
        index = pointers.get(need, 0)
        while left and index < len(self.bins):
            left -= self.put(self.bins[index], shape, need, left, requests=requests)
            if left:
                index += 1
        while left:
            node_type = self.cheapest(need)
            if node_type is None:
                reason, detail = self.reason(shape)
                self.unfulfilled.append(Unfulfilled(kind, left, reason, detail, shape=shape))
                break
            index = len(self.bins)
            left -= self.put(self.open(node_type, why), shape, need, left, requests=requests)
        pointers[need] = index

    @staticmethod
    def put(item: _Bin, shape: Resources, need: Units, most: int, *, requests: bool) -> int:
        """Give ``item`` as many of ``shape`` as fit, at most ``most``; how many it took."""
        capacity = item.room if requests else item.free
        times = min(_fits(need, capacity), most)
        if times:
            for name, amount in need:
                capacity[name] -= amount * times
            (item.requests if requests else item.assigned)[shape] += times
        return times

    # -- the result -----------------------------------------------------------------------

    def result(self) -> SchedulingResult:
        existing: dict[str, ExistingNodeAssignment] = {}
        groups: dict[tuple[object, ...], list[_Bin]] = {}
        singles: list[_Bin] = []
        for item in self.bins:
            if item.existing:
                if item.assigned or item.bundles or item.requests:
                    existing[item.id] = ExistingNodeAssignment(
                        item.id, item.node_type, _counts(item.assigned), tuple(item.bundles), _counts(item.requests)
                    )
            elif item.bundles:
                singles.append(item)
            else:
                key = (item.node_type, item.reason, _counts(item.assigned), _counts(item.requests))
                groups.setdefault(key, []).append(item)
        new_nodes: list[NewNodeGroup] = []
        for (node_type, reason, assigned, requests), members in groups.items():
            assert isinstance(node_type, str) and isinstance(reason, LaunchReason)
            new_nodes.append(
                NewNodeGroup(
                    f"new-{len(new_nodes) + 1}",
                    node_type,
                    len(members),
                    reason,
                    assigned=assigned,  # type: ignore[arg-type]
                    resource_requests=requests,  # type: ignore[arg-type]
                    cost_per_node=self.types[node_type].cost,
                )
            )
        for item in singles:
            assert item.reason is not None
            new_nodes.append(
                NewNodeGroup(
                    f"new-{len(new_nodes) + 1}",
                    item.node_type,
                    1,
                    item.reason,
                    assigned=_counts(item.assigned),
                    bundles=tuple(item.bundles),
                    resource_requests=_counts(item.requests),
                    cost_per_node=self.types[item.node_type].cost,
                )
            )
        launch: Counter[str] = Counter()
        for group in new_nodes:
            launch[group.node_type] += group.count
        cost = sum(group.cost_per_node * group.count for group in new_nodes)
        return SchedulingResult(
            launch=dict(sorted(launch.items())),
            new_nodes=tuple(new_nodes),
            existing=existing,
            unfulfilled=tuple(self.unfulfilled),
            cost=cost,
        )


def _counts(counter: Counter[Resources]) -> tuple[ShapeCount, ...]:
    return tuple(ShapeCount(shape, count) for shape, count in sorted(counter.items()) if count)


def first_fit_decreasing(request: SchedulingRequest) -> SchedulingResult:
    """Decide ``request`` with first-fit decreasing and cheapest-type-that-fits new nodes."""
    return _FFD(request).run()
