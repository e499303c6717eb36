"""The bin-packing scheduler: pending demand in, node requests and placements out.

Algorithm
---------
One decision is a pipeline over a single node model — running nodes, launching nodes
and nodes planned in this decision are all *bins* — in Ray v2's order:

1. **min_workers**: plan nodes for every type below its ``min_workers``.
2. **request_resources**: pack the requested shapes against the *total* capacity of every
   bin (used or not); plan nodes for what does not fit.
3. **placement groups**, each instance whole or not at all: STRICT_PACK (and PACK when a
   type holds a whole instance) packed like tasks of the instance's summed shape — PACK
   being soft, the decision is also made with PACK bundles packed like tasks, and the
   cheaper kept (ties: whole instances; see :func:`_decide`);
   STRICT_SPREAD on distinct nodes, many instances striped round-robin over new nodes;
   SPREAD over distinct running nodes where they fit, the rest packed like tasks and
   dealt round-robin, no node launched only to spread (see
   :meth:`_Run._placement_group`). Consecutive groups packed whole, and consecutive
   SPREAD groups, are packed together so they share nodes.
4. **tasks and actors**, aggregated by shape: fill the bins in canonical order (running
   nodes, best fit first, then launching ones; scarcest shapes first into each), then
   *buy* nodes for the rest.

Filling a class of several bins mixes the shapes in proportion to their counts
(:func:`~rayk8s.autoscaler._packing.mixed_fill`), so nodes use their resources in the
demand's ratio instead of stacking one shape until a resource runs out. Empty launching
bins are filled by the buying plans, with their number as headroom (see
:meth:`_Run._fill_empty`), so a round refills what the previous one bought as it bought it.

Buying weighs three greedy set covers, each with two measures of value (dominant
resource; all resources), and keeps the cheapest: by value per cost (proportional
mix), largest shape first, scarcest shape first (see :meth:`_Run._buy_for`). Each
replicates one-node patterns and each step exhausts a shape or a type's headroom, so the
work grows with the number of distinct shapes and node types, never with the number of
tasks.

Accelerator nodes (GPU, TPU, ...) are launched only for work that needs them (or that no
plain type can hold); plain work may fill their spare room, and overflows onto them only
when plain types are out of headroom. ``isolate_accelerators`` keeps plain work off new
and launching accelerator nodes altogether.

Re-planning adds nothing
------------------------
The nodes a decision plans are launched and show up in the next decision as pending
nodes. To guarantee that the next decision, with the same demand, launches nothing new,
the pipeline is re-run with the planned nodes in place as launching bins (canonical fill
only depends on values, not on ids), until a run buys nothing (usually two or three
rounds, at most twelve; a decision that does not converge reports its best round, and
for it the guarantee is not promised); the reported placement is that of the last run.
Planned nodes that end up holding nothing, and are not needed for ``min_workers``, are
dropped and the round is run again without them (they would hold ``max_workers``
headroom that other demand may need).

Cost: O((S + C) · (S + T) · R) per round for S distinct shapes, C classes of identical
bins, T node types and R resources, plus O(B · C) for B placement-group bundles.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import NamedTuple

from rayk8s.autoscaler._model import Node, NodeStatus, PlacementGroup, PlacementStrategy, SchedulingRequest
from rayk8s.autoscaler._packing import (
    LAUNCHING,
    RUNNING,
    Allowed,
    Pattern,
    Shape,
    Vector,
    _Pool,
    _Universe,
    fits,
    greedy_fill,
    is_special,
    mixed_fill,
    replicas,
    subtract,
)
from rayk8s.autoscaler._resources import Resources, format_resources
from rayk8s.autoscaler._result import (
    BundlePlacement,
    DemandKind,
    ExistingNodeAssignment,
    LaunchReason,
    NewNodeGroup,
    SchedulingResult,
    ShapeCount,
    Unfulfilled,
    UnfulfilledReason,
)

__all__ = ["schedule"]

_MAX_ROUNDS = 12
#: Rounds in which accelerator nodes left holding only plain work are re-planned; after
#: them, a node the rules could not avoid (plain types truly out of room) stays.
_REPAIR_ROUNDS = 3
#: Running nodes that can hold a shape beyond this many make it plentiful: no scarcer
#: than another shape as plentiful (counting stops there).
_PLENTY = 256
#: Up to this many STRICT_SPREAD instances are placed one by one rather than striped.
_ONE_BY_ONE = 16
# Planned bins sort after every real node id, so existing nodes of a class are filled first.
_PLANNED_PREFIX = "\U0010ffffplanned-"

#: Whether a bundle vector may go on a class of bins: ``allowed(vector, node_type, rank)``.
_BundleAllowed = Callable[[Vector, str, int], bool]


def schedule(request: SchedulingRequest) -> SchedulingResult:
    """Decide which nodes to launch and where every demand, bundle and request lands.

    Pure and deterministic: the same request always gives the same result. Never raises
    for demand that cannot be met — it is reported in ``unfulfilled`` with a reason.
    """
    return _decide(_Context(request))


def _decide(context: _Context) -> SchedulingResult:
    """The decision with PACK instances kept whole, or with their bundles packed like
    tasks when that leaves less unplaced or costs less (PACK is a soft strategy).

    Ties go to whole instances. Each variant converges on its own, so deciding again
    with the chosen nodes pending finds the chosen variant launches nothing, and the
    other can only tie it (then whole instances win, launching nothing too) or cost more.
    """
    whole = _converge(context)
    if not context.splittable_packs:
        return whole
    context.pack_bundles = True
    try:
        bundles = _converge(context)
    finally:
        context.pack_bundles = False
    score = (_unplaced_value(context, bundles), bundles.cost)
    return bundles if score < (_unplaced_value(context, whole), whole.cost) else whole


def _converge(context: _Context) -> SchedulingResult:
    """Rounds of the pipeline until they converge."""
    planned: list[str] = []
    rounds: list[_Run] = []
    for round_number in range(_MAX_ROUNDS):
        run = _Run(context, planned)
        run.execute()
        rounds.append(run)
        kept = run.kept_bins(drop_unjustified=round_number < _REPAIR_ROUNDS)
        # Converged: nothing new was needed and every planned node was used (and
        # justified), so a decision with these nodes pending is this very run.
        if not run.bought and len(kept) == len(planned):
            return run.result()
        planned = kept
    # Not converged (rare): report the round that leaves least unplaced, then costs least.
    results = [run.result() for run in rounds]
    return min(results, key=lambda result: (_unplaced_value(context, result), result.cost))


class _Context:
    """What every round of one decision shares: vectors, prices and the static rules."""

    def __init__(self, request: SchedulingRequest) -> None:
        self.request = request
        # Aggregate first: the work below grows with distinct shapes, not with tasks.
        demand_totals = _aggregate((d.shape, d.count) for d in request.demands)
        request_totals = _aggregate((r.shape, r.count) for r in request.resource_requests)
        names: set[str] = set()
        for node_type in request.node_types.values():
            names.update(node_type.resources)
        for node in request.nodes:
            names.update(node.available or {})
            names.update(node.total or {})
        for shape in (*demand_totals, *request_totals):
            names.update(shape)
        for group in request.placement_groups:
            for bundle in group.bundles:
                names.update(bundle)
        self.universe = universe = _Universe(names)
        width = len(universe.names)

        self.capacity: dict[str, Vector] = {
            name: universe.vector(node_type.resources) for name, node_type in request.node_types.items()
        }
        self.cost: dict[str, float] = {name: node_type.cost for name, node_type in request.node_types.items()}
        self.launchable: list[str] = sorted(
            name
            for name, node_type in request.node_types.items()
            if name not in request.unavailable_node_types and node_type.max_workers != 0 and any(self.capacity[name])
        )
        self.accelerated_types = frozenset(
            name for name, vector in self.capacity.items() if universe.uses_accelerator(vector)
        )
        self.isolate = request.isolate_accelerators
        #: Resources every launchable type offers; work asking for others is "special".
        self.common_resources = frozenset(
            i for i in range(width) if self.launchable and all(self.capacity[t][i] for t in self.launchable)
        )
        self._plain_holds: dict[Vector, bool] = {}
        self._loose_shapes: dict[Vector, Shape] = {}
        self._resources: dict[Vector, Resources] = {}
        self._scarcity: dict[Vector, int] = {}
        self._running_fill: tuple[_Pool, dict[int, int], dict[str, dict[int, int]]] | None = None

        # Existing nodes.
        self.running: list[tuple[Node, Vector, Vector]] = []
        self.pending: list[tuple[Node, Vector]] = []
        self.existing_workers: Counter[str] = Counter()
        for node in sorted(request.nodes, key=lambda n: n.id):
            total = self._node_total(node)
            if not node.is_head:
                self.existing_workers[node.node_type] += 1
            if node.status is NodeStatus.PENDING:
                self.pending.append((node, total))
            else:
                available = universe.vector(node.available) if node.available is not None else total
                self.running.append((node, available, total))

        # Scales for best-fit ordering and prices for ordering shapes by value.
        scale = [0] * width
        vectors = [*self.capacity.values(), *(t for _, t in self.pending), *(t for _, _, t in self.running)]
        for vector in vectors:
            for i, amount in enumerate(vector):
                scale[i] = max(scale[i], amount)
        self.size_weights = tuple(1.0 / s if s else 0.0 for s in scale)
        prices = []
        for i in range(width):
            per_unit = [self.cost[t] / self.capacity[t][i] for t in self.launchable if self.capacity[t][i]]
            prices.append(min(per_unit) if per_unit else 0.0)
        self.prices = tuple(prices)

        self.demand_shapes, self.demand_counts = self.shapes(
            (universe.vector(shape), count) for shape, count in demand_totals.items()
        )
        self.request_shapes, self.request_counts = self.shapes(
            (universe.vector(shape), count) for shape, count in request_totals.items()
        )
        self.demand_resources = [universe.resources(shape.vector) for shape in self.demand_shapes]
        self.request_resources = [universe.resources(shape.vector) for shape in self.request_shapes]
        #: Whether some pending task would justify an accelerator node: then placement groups
        #: (placed first) keep plain work off launching accelerator nodes that work needs.
        self.tasks_need_accelerators = any(
            shape.accelerated or not self.plain_type_holds(shape) for shape in self.demand_shapes
        ) and bool(self.accelerated_types)
        # The existing nodes' bins, built once and copied into every round.
        self.pool = _Pool(self.size_weights)
        self.totals = _Pool(self.size_weights)
        for node, available, total in self.running:
            self.pool.add([node.id], node.node_type, RUNNING, available)
            self.totals.add([node.id], node.node_type, RUNNING, total)
        for node, total in self.pending:
            self.pool.add([node.id], node.node_type, LAUNCHING, total)
            self.totals.add([node.id], node.node_type, LAUNCHING, total)
        self.pg_names = [group.name or f"pg{index}" for index, group in enumerate(request.placement_groups)]
        #: Whether some PACK group has several bundles: then the decision is also made
        #: with PACK bundles packed like tasks (:attr:`pack_bundles`), and the cheaper kept.
        self.splittable_packs = any(
            group.strategy is PlacementStrategy.PACK and len(group.bundles) > 1 for group in request.placement_groups
        )
        #: PACK instances have their bundles packed like tasks, even where a node holds one whole.
        self.pack_bundles = False

    def _node_total(self, node: Node) -> Vector:
        if node.total is not None:
            return self.universe.vector(node.total)
        if node.node_type in self.capacity:
            return self.capacity[node.node_type]
        assert node.available is not None  # SchedulingRequest refuses nodes with neither
        return self.universe.vector(node.available)

    def weight(self, vector: Vector) -> float:
        """The value of one unit of a shape: its dominant resource at the cheapest price.

        Ties (and resources no type offers) fall back to the normalised dominant share.
        """
        priced = max((amount * price for amount, price in zip(vector, self.prices)), default=0.0)
        share = max((amount * w for amount, w in zip(vector, self.size_weights)), default=0.0)
        return priced + share * 1e-9

    def additive_weight(self, vector: Vector) -> float:
        """The value of one unit of a shape: every resource it uses at its cheapest price.

        Credits nodes whose shapes use several resources together (CPU and memory in
        proportion), which the dominant-resource :meth:`weight` does not see.
        """
        return sum(amount * price for amount, price in zip(vector, self.prices)) + self.weight(vector) * 1e-9

    def shapes(self, items: Iterable[tuple[Vector, int]]) -> tuple[list[Shape], dict[int, int]]:
        """Aggregate ``(vector, count)`` pairs into shapes in fill order (largest value first)."""
        totals: Counter[Vector] = Counter()
        for vector, count in items:
            totals[vector] += count
        ordered = sorted(totals, key=lambda v: (-self.weight(v), tuple(-a for a in v)))
        shapes = [self._shape(vector, order) for order, vector in enumerate(ordered)]
        return shapes, {shape.order: totals[shape.vector] for shape in shapes}

    def shape(self, vector: Vector) -> Shape:
        """The shape of ``vector`` outside any demand list (memoised)."""
        shape = self._loose_shapes.get(vector)
        if shape is None:
            shape = self._loose_shapes[vector] = self._shape(vector, -1)
        return shape

    def _shape(self, vector: Vector, order: int) -> Shape:
        sparse = _Universe.sparse(vector)
        special = any(i not in self.common_resources for i, _ in sparse)
        return Shape(order, vector, sparse, self.universe.uses_accelerator(vector), special)

    def scarcity(self, shape: Shape) -> int:
        """How scarce a home ``shape`` has (fills put the scarcest first): running nodes
        whose total capacity could hold it (up to ``_PLENTY``), then launchable types that
        could.

        Launching nodes do not count: pending ones would, in the next decision, stand
        where this decision's planned ones stand, and the two must count alike. So the
        order is fixed for the whole decision, and the running nodes are filled the same
        way in every round.
        """
        key = self._scarcity.get(shape.vector)
        if key is None:
            running = self.totals.holders(shape, RUNNING, _PLENTY)
            key = self._scarcity[shape.vector] = running * (len(self.launchable) + 1) + self.holders(shape)
        return key

    def running_fill(self) -> tuple[_Pool, dict[int, int], dict[str, dict[int, int]]] | None:
        """The running nodes filled with tasks: the pool, what is left, what went where.

        Without placement groups nothing before the tasks touches a running node, and
        the fill order is fixed for the decision, so every round fills them alike: once.
        """
        if self.request.placement_groups or not any(self.demand_counts.values()):
            return None
        if self._running_fill is None:
            pool = self.pool.copy()
            counts = dict(self.demand_counts)
            placed: dict[str, dict[int, int]] = {}
            pool.fill(self.demand_shapes, counts, None, placed, self.scarcity, defer=_not_running)
            self._running_fill = (pool, counts, placed)
        return self._running_fill

    def plain_type_holds(self, shape: Shape) -> bool:
        """Whether a launchable type without accelerators could hold ``shape`` when empty."""
        held = self._plain_holds.get(shape.vector)
        if held is None:
            held = any(
                t not in self.accelerated_types and fits(self.capacity[t], shape.sparse) for t in self.launchable
            )
            self._plain_holds[shape.vector] = held
        return held

    def holders(self, shape: Shape) -> int:
        """How many launchable types could hold ``shape`` when empty."""
        return sum(1 for t in self.launchable if fits(self.capacity[t], shape.sparse))

    def justifies(self, shape: Shape, node_type: str) -> bool:
        """Whether ``shape`` is a reason to launch ``node_type``.

        Any work justifies a plain node; only accelerator work, or work no plain type can
        hold, justifies an accelerator node. Plain work may still fill an accelerator node
        launched for accelerator work.
        """
        return node_type not in self.accelerated_types or shape.accelerated or not self.plain_type_holds(shape)

    def keep_off(self, shape: Shape, node_type: str, rank: int) -> bool:
        """Strict isolation (``isolate_accelerators``): plain work stays off launching accelerator nodes."""
        return self.isolate and rank == LAUNCHING and not self.justifies(shape, node_type)

    def resources(self, vector: Vector) -> Resources:
        """``vector`` as :class:`Resources` (memoised: bundles repeat a few shapes many times)."""
        shown = self._resources.get(vector)
        if shown is None:
            shown = self._resources[vector] = self.universe.resources(vector)
        return shown


class _Run:
    """One round of the pipeline over the existing nodes plus ``planned`` new ones."""

    def __init__(self, context: _Context, planned: list[str]) -> None:
        self.context = context
        filled = context.running_fill()
        self.pool = (context.pool if filled is None else filled[0]).copy()
        self.totals = context.totals.copy()
        self.workers = Counter(context.existing_workers)
        self.planned_type: dict[str, str] = {}
        self._next_bin = 0
        self.bought: list[str] = []
        self.tasks: dict[str, dict[int, int]] = {}
        self.requests: dict[str, dict[int, int]] = {}
        #: Bundles per bin, as ``(pg name, instance, bundle index, vector)``.
        self.bundles: dict[str, list[tuple[str, int, int, Vector]]] = {}
        self.unfulfilled: list[Unfulfilled] = []
        for node_type, count in sorted(Counter(planned).items()):
            self._add_bins(node_type, count)

    # -- the pipeline --------------------------------------------------------------------

    def execute(self) -> None:
        self._min_workers()
        self._resource_requests()
        context = self.context
        groups = context.request.placement_groups
        # Consecutive groups packed whole go together, and so do consecutive SPREAD groups'
        # bundles and consecutive PACK groups' bundles packed like tasks (PACK instances no
        # node holds whole, or all of them when the decision splits PACK instances); runs
        # are placed in request order.
        kinds = [
            "whole"
            if self._packs_whole(group)
            else "spread"
            if group.strategy is PlacementStrategy.SPREAD
            else "pack"
            if group.strategy is PlacementStrategy.PACK
            else ""
            for group in groups
        ]
        runs: list[list[int]] = []
        for index, kind in enumerate(kinds):
            if kind and runs and kinds[runs[-1][0]] == kind:
                runs[-1].append(index)
            else:
                runs.append([index])
        for run in runs:
            kind = kinds[run[0]]
            if kind == "whole":
                placed = self._pack_wholes(run)
                for index in run:
                    self._placement_group(index, groups[index], placed[index])
            elif kind == "pack":  # bundles packed like tasks, each instance on as few nodes as they fill
                items = [(context.pg_names[i], [context.universe.vector(b) for b in groups[i].bundles]) for i in run]
                placed_list = self._spread_as_tasks(
                    [(name, bundles, 0, groups[i].count) for i, (name, bundles) in zip(run, items)], spread=False
                )
                for i, n in zip(run, placed_list):
                    self._placement_group(i, groups[i], n)
            elif kind == "spread":
                bundles = {i: [context.universe.vector(b) for b in groups[i].bundles] for i in run}
                first = {i: self._on_existing(i, bundles[i], relaxed=False) for i in run}
                more = self._spread_as_tasks(
                    [(context.pg_names[i], bundles[i], first[i], groups[i].count - first[i]) for i in run]
                )
                for i, n in zip(run, more):
                    self._placement_group(i, groups[i], None, spread_placed=first[i] + n)
            else:
                self._placement_group(run[0], groups[run[0]], None)
        self._tasks()

    def _on_existing(self, index: int, bundles: list[Vector], *, relaxed: bool, placed: int = 0) -> int:
        """Place instances of a SPREAD or STRICT_SPREAD group one by one on distinct nodes
        that exist (STRICT_SPREAD: running ones), buying nothing; returns the new total."""
        group = self.context.request.placement_groups[index]
        name = self.context.pg_names[index]
        while placed < group.count and self._place_instance(
            name,
            placed,
            bundles,
            PlacementStrategy.STRICT_SPREAD,
            group.count - placed,
            relaxed=relaxed,
            may_buy=False,
            running_only=True,
        ):
            placed += 1
        return placed

    def _min_workers(self) -> None:
        for name in sorted(self.context.request.node_types):
            if name not in self.context.launchable:
                continue
            missing = self.context.request.node_types[name].min_workers - self.workers[name]
            self._buy(name, max(0, min(missing, self.headroom(name))))

    def _resource_requests(self) -> None:
        context = self.context
        counts = dict(context.request_counts)
        if not any(counts.values()):
            return
        self._pack(self.totals, context.request_shapes, counts, self.requests, capacity_only=True)
        for shape in context.request_shapes:
            if counts[shape.order]:
                self.unfulfilled.append(self._unfulfilled(DemandKind.RESOURCE_REQUEST, shape, counts[shape.order]))

    def _tasks(self) -> None:
        context = self.context
        counts = dict(context.demand_counts)
        if not any(counts.values()):
            return
        filled = context.running_fill()
        if filled is not None:  # the running nodes took their share already (same in every round)
            counts = dict(filled[1])
            for bin_id, took in filled[2].items():
                self.tasks[bin_id] = dict(took)
        self._pack(
            self.pool, context.demand_shapes, counts, self.tasks, capacity_only=False, skip_running=filled is not None
        )
        for shape in context.demand_shapes:
            if counts[shape.order]:
                self.unfulfilled.append(self._unfulfilled(DemandKind.DEMAND, shape, counts[shape.order]))

    def _pack(
        self,
        pool: _Pool,
        shapes: list[Shape],
        counts: dict[int, int],
        placed: dict[str, dict[int, int]],
        *,
        capacity_only: bool,
        gang: bool = False,
        share_accelerators: bool = False,
        skip_running: bool = False,
    ) -> None:
        """Fill ``pool``, buy nodes for the rest; then again with the accelerator rule relaxed.

        ``gang``: the shapes are placement groups, placed before tasks, so in the first pass
        plain ones also stay off launching accelerator nodes (the tasks that need those
        nodes come later and would otherwise push more of them to be launched).
        ``share_accelerators`` lifts that for whole-packed instances when no pending task
        needs an accelerator node.

        The first buying pass launches accelerator nodes only for work that justifies them;
        the relaxed pass runs only for work no justified node could take (plain types out
        of headroom or backing off), so demand is never left while some type could hold it.
        """
        context = self.context

        def strict(shape: Shape, node_type: str, rank: int) -> bool:
            guarded = gang and rank == LAUNCHING and (context.tasks_need_accelerators or not share_accelerators)
            if guarded and not context.justifies(shape, node_type):
                return False
            return not context.keep_off(shape, node_type, rank)

        def relaxed(shape: Shape, node_type: str, rank: int) -> bool:
            return True

        def empty(rank: int, node_type: str, free: Vector) -> bool:
            if rank == RUNNING:
                return skip_running
            return free == context.capacity.get(node_type)

        scarcity = context.scarcity
        rule = strict if gang or context.isolate else None
        pool.fill(shapes, counts, rule, placed, scarcity, defer=empty)
        self._fill_empty(pool, shapes, counts, placed, strict, justified=True)
        self._buy_for(shapes, counts, placed, strict, justified=True, capacity_only=capacity_only)
        if context.accelerated_types and any(counts[s.order] for s in shapes if not s.accelerated):
            if context.isolate or gang:
                pool.fill(shapes, counts, relaxed, placed, scarcity, defer=empty)
            self._fill_empty(pool, shapes, counts, placed, relaxed, justified=False)
            self._buy_for(shapes, counts, placed, relaxed, justified=False, capacity_only=capacity_only)

    def _fill_empty(
        self,
        pool: _Pool,
        shapes: list[Shape],
        counts: dict[int, int],
        placed: dict[str, dict[int, int]],
        allowed: Allowed,
        *,
        justified: bool,
    ) -> None:
        """Fill the empty launching nodes the way :meth:`_buy_for` buys nodes.

        Empty launching nodes — pending ones, and the nodes planned in earlier rounds —
        are filled by the same greedy plans as a purchase, with the empty nodes of each
        type as its only headroom, plus two value-per-cost plans in which a type's empty
        nodes share the remaining demand evenly (:func:`mixed_fill` with ``bins``); the
        plan that leaves least unplaced (then uses the cheapest nodes) wins. So a round
        refills the nodes the previous round bought with the work it bought them for, and
        the next decision, seeing them pending, does the same.
        """
        context = self.context
        empties = {t: pool.members(LAUNCHING, t, context.capacity[t]) for t in sorted(context.capacity)}
        empties = {t: members for t, members in empties.items() if members}
        if not empties or not any(counts.values()):
            return

        def room(node_type: str, extra: Counter[str] | None) -> int:
            return len(empties[node_type]) - (extra[node_type] if extra else 0)

        plan = self._choose_plan(shapes, counts, allowed, justified=justified, types=sorted(empties), room=room)
        width = len(context.universe.names)
        for node_type, copies_of_pattern, pattern in plan.steps:
            used = [0] * width
            for order, copies in pattern:
                for i, amount in shapes[order].sparse:
                    used[i] += amount * copies
            chosen = pool.members(LAUNCHING, node_type, context.capacity[node_type])[:copies_of_pattern]
            pool.take(chosen, tuple(used))
            for bin_id in chosen:
                into = placed.setdefault(bin_id, {})
                for order, copies in pattern:
                    into[order] = into.get(order, 0) + copies
        counts.update(plan.left)

    def _choose_plan(
        self,
        shapes: list[Shape],
        counts: dict[int, int],
        allowed: Allowed,
        *,
        justified: bool,
        types: list[str] | None = None,
        room: Callable[[str, Counter[str] | None], int] | None = None,
    ) -> _Plan:
        """The cheapest of the greedy plans (see :meth:`_buy_for` and :meth:`_fill_empty`)."""
        by_size = shapes
        by_scarcity = sorted(shapes, key=lambda shape: (self.context.holders(shape), shape.order))
        # Filling empty launching nodes (``room``) also weighs the mix plans with a type's
        # empty nodes sharing the demand evenly.
        plans = [
            self._plan(
                shapes,
                counts,
                allowed,
                justified=justified,
                targets=target_order,
                value=value,
                types=types,
                limit=room,
                share=share,
            )
            for share in ((False, True) if room is not None else (False,))
            for value in (self.context.weight, self.context.additive_weight)
            for target_order in ((None,) if share else (None, by_size, by_scarcity))
        ]
        return min(plans, key=lambda p: (p.unplaced_value, p.cost, p.nodes))

    def _buy_for(
        self,
        shapes: list[Shape],
        counts: dict[int, int],
        placed: dict[str, dict[int, int]],
        allowed: Allowed,
        *,
        justified: bool,
        capacity_only: bool,
    ) -> None:
        """Buy nodes for what is left in ``counts``: the cheapest of six greedy plans.

        Greedy set covers that replicate one-node patterns: one picks the type whose node
        holds the most value per cost; the others first place a *target* shape — the
        largest remaining one (First-Fit Decreasing), or the one the fewest types can hold
        (so nodes that must be bought anyway are bought first and filled) — on the type
        that holds the most value per cost with it, valued by the round's measure. The plan
        that leaves least value unplaced, then costs least, then has fewest nodes, wins.
        """
        if not any(counts.values()):
            return
        plan = self._choose_plan(shapes, counts, allowed, justified=justified)
        width = len(self.context.universe.names)
        for node_type, copies_of_pattern, pattern in plan.steps:
            used = [0] * width
            for order, copies in pattern:
                for i, amount in shapes[order].sparse:
                    used[i] += amount * copies
            bin_ids = self._buy(node_type, copies_of_pattern)
            (self.totals if capacity_only else self.pool).take(bin_ids, tuple(used))
            for bin_id in bin_ids:
                placed[bin_id] = dict(pattern)
        counts.update(plan.left)

    def _plan(
        self,
        shapes: list[Shape],
        counts: dict[int, int],
        allowed: Allowed,
        *,
        justified: bool,
        targets: list[Shape] | None,
        value: Callable[[Vector], float],
        types: list[str] | None = None,
        limit: Callable[[str, Counter[str] | None], int] | None = None,
        share: bool = False,
    ) -> _Plan:
        context = self.context
        left = dict(counts)
        extra: Counter[str] = Counter()
        steps: list[tuple[str, int, Pattern]] = []
        skipped: set[int] = set()
        while True:
            best: tuple[tuple[float, float, float, str], str, Pattern, int] | None = None
            target: Shape | None = None
            if targets is not None:
                target = next((sh for sh in targets if left[sh.order] and sh.order not in skipped), None)
                if target is None:
                    break
            elif not any(left.values()):
                break
            for node_type in context.launchable if types is None else types:
                room = self.headroom(node_type, extra) if limit is None else limit(node_type, extra)
                if room <= 0:
                    continue
                if target is not None:
                    if not fits(context.capacity[node_type], target.sparse) or not allowed(
                        target, node_type, LAUNCHING
                    ):
                        continue
                    if justified and not context.justifies(target, node_type):
                        continue
                    first: Callable[[Shape], bool] | None = _is(target)
                elif justified and node_type in context.accelerated_types:
                    first = _justifying(context, node_type)
                else:
                    first = is_special  # work that needs a special resource before work any node holds

                def allowed_here(shape: Shape, node_type: str = node_type) -> bool:
                    return allowed(shape, node_type, LAUNCHING)

                if target is None:
                    pattern = mixed_fill(
                        context.capacity[node_type], shapes, left, allowed_here, first, room if share else None
                    )
                else:
                    pattern = greedy_fill(context.capacity[node_type], shapes, left, allowed_here, first)
                if not pattern:
                    continue
                if justified and not context.justifies(shapes[pattern[0][0]], node_type):
                    continue
                held = sum(value(shapes[order].vector) * copies for order, copies in pattern)
                cost = context.cost[node_type]
                per_cost = held / cost if cost > 0 else math.inf
                # Highest value per cost; then more value; then cheaper; then by name.
                score = (per_cost, held, -cost, node_type)
                if best is None or _better(score, best[0]):
                    best = (score, node_type, pattern, room)
            if best is None:
                if target is None:
                    break
                skipped.add(target.order)
                continue
            _, node_type, pattern, room = best
            copies_of_pattern = min(replicas(pattern, left), room)
            for order, copies in pattern:
                left[order] -= copies * copies_of_pattern
            extra[node_type] += copies_of_pattern
            steps.append((node_type, copies_of_pattern, pattern))
        unplaced = sum(context.weight(shapes[order].vector) * count for order, count in left.items())
        cost = sum(context.cost[t] * n for t, n, _ in steps)
        return _Plan(steps, left, unplaced, cost, sum(n for _, n, _ in steps))

    # -- placement groups ----------------------------------------------------------------

    def _placement_group(
        self, index: int, group: PlacementGroup, placed_whole: int | None, *, spread_placed: int | None = None
    ) -> None:
        """Place the instances of one group: aggregated where possible, one by one otherwise.

        STRICT_PACK (and PACK, when one node type holds a whole instance and the decision
        keeps PACK instances whole) packs whole instances as one shape through the same
        fill-and-buy as tasks; other PACK instances come with ``placed_whole`` placed
        already, their bundles packed like tasks (:meth:`_spread_as_tasks`). SPREAD and
        STRICT_SPREAD place instances one by one on distinct existing nodes while they fit
        there; STRICT_SPREAD then stripes the rest over new nodes (:meth:`_stripe`), while
        SPREAD — a preference, not worth launching nodes for — packs the rest like tasks
        and spreads each instance over the nodes that took them
        (:meth:`_spread_as_tasks`). Whatever is left — PACK instances the bundle packing
        could not complete, SPREAD instances beyond the limits — goes one by one;
        identical instances fail alike, so the first failure ends the group.
        """
        context = self.context
        name = context.pg_names[index]
        bundles = [context.universe.vector(bundle) for bundle in group.bundles]
        strategy = group.strategy
        placed = 0
        if placed_whole is not None:
            placed = placed_whole
        elif strategy in (PlacementStrategy.SPREAD, PlacementStrategy.STRICT_SPREAD):
            # Existing nodes (on distinct nodes) before new ones; the accelerator rule
            # relaxed only for what neither can take under it.
            # STRICT_SPREAD takes only running nodes one by one: launching ones are striped
            # (:meth:`_stripe` reuses fresh ones), so the next decision rebuilds the same stripes.
            for relaxed in (False, True):
                if spread_placed is not None and not relaxed:
                    placed = spread_placed  # placed with its run (see execute)
                    continue
                placed = self._on_existing(index, bundles, relaxed=relaxed, placed=placed)
                if strategy is PlacementStrategy.STRICT_SPREAD:
                    # A few instances are placed exactly, one by one, below (mixing existing
                    # and new nodes); many are striped.
                    if group.count - placed > _ONE_BY_ONE:
                        placed += self._stripe(name, bundles, placed, group.count - placed, justified=not relaxed)
                elif not relaxed:
                    [more] = self._spread_as_tasks([(name, bundles, placed, group.count - placed)])
                    placed += more
        while placed < group.count and strategy is not PlacementStrategy.STRICT_PACK:
            still_to_come = group.count - placed
            share = strategy is PlacementStrategy.STRICT_SPREAD
            if not (
                self._place_instance(
                    name, placed, bundles, strategy, still_to_come, relaxed=False, share_accelerators=share
                )
                or self._place_instance(name, placed, bundles, strategy, still_to_come, relaxed=True)
            ):
                break
            placed += 1
        if placed < group.count:
            reason, detail = self._pg_reason(bundles, strategy)
            self.unfulfilled.append(
                Unfulfilled(
                    kind=DemandKind.PLACEMENT_GROUP,
                    count=group.count - placed,
                    reason=reason,
                    detail=detail,
                    pg=name,
                    bundles=group.bundles,
                    strategy=strategy.value,
                )
            )

    def _some_node_holds(self, vector: Vector) -> bool:
        need = _Universe.sparse(vector)
        return any(fits(free, need) for free in self.pool.free.values()) or any(
            fits(self.context.capacity[t], need) for t in self.context.launchable
        )

    def _packs_whole(self, group: PlacementGroup) -> bool:
        """Whether the group's instances are packed whole, each on one node, like tasks."""
        if group.strategy is PlacementStrategy.STRICT_PACK:
            return True
        if group.strategy is not PlacementStrategy.PACK or self.context.pack_bundles:
            return False
        return self._some_node_holds(_sum(self.context.universe.vector(bundle) for bundle in group.bundles))

    def _pack_wholes(self, indexes: list[int]) -> dict[int, int]:
        """Pack the instances of the groups ``indexes``, each whole on one node, all at once.

        Every instance is a task of its summed shape; the groups' shapes are packed
        together (fill, then buy), so instances of different groups share nodes — a plain
        group fills the spare room of nodes bought for an accelerator group. The slots a
        shape got go to the groups with that shape in request order. Returns how many
        instances of each group were placed.
        """
        if not indexes:
            return {}
        context = self.context
        groups = context.request.placement_groups
        bundles = {i: [context.universe.vector(bundle) for bundle in groups[i].bundles] for i in indexes}
        sums = {i: _sum(bundles[i]) for i in indexes}
        shapes, counts = context.shapes((sums[i], groups[i].count) for i in indexes)
        took: dict[str, dict[int, int]] = {}
        self._pack(self.pool, shapes, counts, took, capacity_only=False, gang=True, share_accelerators=True)
        slots: dict[Vector, list[str]] = {}
        for shape in shapes:
            slots[shape.vector] = [b for b in self._by_value(took) for _ in range(took[b].get(shape.order, 0))]
        placed: dict[int, int] = {}
        for i in indexes:
            free = slots[sums[i]]
            count = min(groups[i].count, len(free))
            name = context.pg_names[i]
            for instance, bin_id in enumerate(free[:count]):
                for b, vector in enumerate(bundles[i]):
                    self._record_bundle(bin_id, name, instance, b, vector)
            slots[sums[i]] = free[count:]
            placed[i] = count
        return placed

    def _spread_as_tasks(self, items: list[tuple[str, list[Vector], int, int]], *, spread: bool = True) -> list[int]:
        """Place SPREAD (or PACK) instances with their bundles packed like tasks.

        ``items`` are ``(group name, bundle vectors, first instance, instances)`` of one
        or more groups, packed together so their bundles share nodes. Each bundle shape
        is filled and bought for like a task shape; with ``spread`` the slots it gets are
        dealt round-robin over the nodes that took it, so consecutive bundles of one
        instance land on different nodes whenever several took that shape; without,
        node by node, so an instance's bundles share as few nodes as they fill (PACK).
        Groups take their slots in order; instances that cannot be completed give their
        bundles back. Returns how many instances of each item were placed.
        """
        wanted: Counter[Vector] = Counter()
        for _, bundles, _, count in items:
            for vector in bundles:
                wanted[vector] += max(0, count)
        if not wanted:
            return [0 for _ in items]
        shapes, counts = self.context.shapes(wanted.items())
        took: dict[str, dict[int, int]] = {}
        bought_before = len(self.bought)
        self._pack(self.pool, shapes, counts, took, capacity_only=False, gang=True, share_accelerators=True)
        bought_here = self.bought[bought_before:]
        slots: dict[Vector, list[str]] = {}
        for shape in shapes:
            left = {bin_id: took[bin_id].get(shape.order, 0) for bin_id in self._by_value(took)}
            holders = [bin_id for bin_id, n in left.items() if n]
            dealt: list[str] = []
            if not spread:
                holders = []
                dealt = [bin_id for bin_id, n in left.items() for _ in range(n)]
            while holders:  # round-robin over the nodes that took this shape
                for bin_id in holders:
                    dealt.append(bin_id)
                    left[bin_id] -= 1
                holders = [bin_id for bin_id in holders if left[bin_id]]
            slots[shape.vector] = dealt
        used: Counter[Vector] = Counter()
        placed: list[int] = []
        for name, bundles, first, count in items:
            multiplicity = Counter(bundles)
            complete = max(0, min(count, *((len(slots[v]) - used[v]) // n for v, n in multiplicity.items())))
            for i in range(complete):
                for b, vector in enumerate(bundles):
                    self._record_bundle(slots[vector][used[vector]], name, first + i, b, vector)
                    used[vector] += 1
            placed.append(complete)
        kept = set()
        for vector, dealt in slots.items():  # what incomplete instances took goes back
            kept.update(dealt[: used[vector]])
            for bin_id in dealt[used[vector] :]:
                self.pool.give_back(bin_id, vector)
        for bin_id in bought_here:  # and so do nodes launched only for them
            if bin_id not in kept:
                self._unbuy(bin_id)
        self._move_into_empty([bin_id for bin_id in bought_here if bin_id in kept])
        return placed

    def _by_value(self, bin_ids: Iterable[str]) -> list[str]:
        """Bins in an order set by their values (rank, type, free room), ids breaking ties
        only between bins alike in value: a node planned now and the same node pending in
        the next decision must come in the same place."""
        pool = self.pool
        return sorted(bin_ids, key=lambda b: (pool.rank[b], pool.node_type[b], pool.free[b], b))

    def _move_into_empty(self, bought: list[str]) -> None:
        """Move what nodes ``bought`` just now hold onto launching nodes of their type left empty.

        Giving back incomplete instances can empty a launching node while a node bought
        in the same step keeps a bundle; the empty one would be dropped and the new one
        bought again in every round. The bundles move over and the purchase is undone.
        """
        context = self.context
        for bin_id in sorted(bought):
            node_type = self.planned_type[bin_id]
            capacity = context.capacity[node_type]
            empty = [
                b
                for b in self.pool.members(LAUNCHING, node_type, capacity)
                if b not in self.bought and not self._holds_something(b)
            ]
            if not empty or self.tasks.get(bin_id) or self.requests.get(bin_id):
                continue
            used = subtract(capacity, self.pool.free[bin_id])
            self._unbuy(bin_id)
            self.pool.take([empty[0]], used)
            self.bundles[empty[0]] = self.bundles.pop(bin_id, [])

    def _stripe(self, name: str, bundles: list[Vector], first: int, count: int, *, justified: bool) -> int:
        """Place up to ``count`` instances on new nodes, every instance on distinct nodes.

        Bundles of one shape go round-robin over K nodes of one type: bundle ``n`` (in
        instance-major order) on node ``n mod K``. With K at least the number of bundles of
        that shape in an instance, an instance never has two bundles on one node; shapes
        get disjoint nodes. K and the type are chosen for the least cost, within the
        limits; the largest number of instances the limits allow is placed. Returns it.
        ``justified``: only types the bundles justify (the accelerator rule).
        """
        if count <= 0:
            return 0
        context = self.context
        groups: dict[Vector, list[int]] = {}
        for b in sorted(range(len(bundles)), key=lambda b: (not context.shape(bundles[b]).special, b)):
            groups.setdefault(bundles[b], []).append(b)
        low, high = 0, count
        while low < high:  # the largest instance count whose stripes the limits allow
            middle = (low + high + 1) // 2
            if self._stripes(groups, middle, justified) is None:
                high = middle - 1
            else:
                low = middle
        best, best_steps = low, (self._stripes(groups, low, justified) or []) if low else []
        for vector, indexes, node_type, nodes in best_steps:
            capacity = context.capacity[node_type]
            bin_ids = self.pool.members(LAUNCHING, node_type, capacity)[:nodes]
            bin_ids += self._buy(node_type, nodes - len(bin_ids))
            held: Counter[str] = Counter()
            slot = 0
            for i in range(best):
                for b in indexes:
                    bin_id = bin_ids[slot % nodes]
                    slot += 1
                    self._record_bundle(bin_id, name, first + i, b, vector)
                    held[bin_id] += 1
            # Bins that were alike and took as many bundles stay alike: take from them at once.
            alike: dict[tuple[Vector, int], list[str]] = {}
            for bin_id, n in held.items():
                alike.setdefault((self.pool.free[bin_id], n), []).append(bin_id)
            for (_, n), members in alike.items():
                self.pool.take(members, tuple(amount * n for amount in vector))
        return best

    def _stripes(
        self, groups: dict[Vector, list[int]], instances: int, justified: bool
    ) -> list[tuple[Vector, list[int], str, int]] | None:
        """For each bundle shape: the type and node count striping ``instances`` costs least."""
        context = self.context
        extra: Counter[str] = Counter()
        fresh: Counter[str] = Counter(
            {t: len(self.pool.members(LAUNCHING, t, context.capacity[t])) for t in context.launchable}
        )
        steps = []
        for vector, indexes in groups.items():
            need = _Universe.sparse(vector)
            shape = context.shape(vector)
            choice: tuple[float, float, str, int] | None = None
            for node_type in context.launchable:
                held = min(fits(context.capacity[node_type], need), instances)
                if not held or (justified and not context.justifies(shape, node_type)):
                    continue
                nodes = max(len(indexes), -(-instances * len(indexes) // held))
                reused = min(nodes, fresh[node_type])  # empty launching nodes cost nothing more
                if self.headroom(node_type, extra) < nodes - reused:
                    continue
                key = (context.cost[node_type] * (nodes - reused), context.cost[node_type], node_type, nodes)
                if choice is None or key < choice:
                    choice = key
            if choice is None:
                return None
            reused = min(choice[3], fresh[choice[2]])
            fresh[choice[2]] -= reused
            extra[choice[2]] += choice[3] - reused
            steps.append((vector, indexes, choice[2], choice[3]))
        return steps

    def _record_bundle(self, bin_id: str, name: str, instance: int, bundle: int, vector: Vector) -> None:
        """Note that ``bin_id`` holds a bundle (its capacity is taken by the caller)."""
        self.bundles.setdefault(bin_id, []).append((name, instance, bundle, vector))

    def _place_instance(
        self,
        name: str,
        instance: int,
        bundles: list[Vector],
        strategy: PlacementStrategy,
        still_to_come: int,
        *,
        relaxed: bool,
        may_buy: bool = True,
        running_only: bool = False,
        share_accelerators: bool = False,
    ) -> bool:
        """Place one instance whole, or leave everything as it was and return False.

        A new node is sized for the ``still_to_come`` instances of the group (this one
        included) that may share it: the type with the least cost per instance it holds.
        """
        taken: list[tuple[str, int, Vector]] = []
        bought: list[str] = []
        launched: list[str] = []  # nodes bought or empty ones taken for this instance
        context = self.context
        skip_empty = may_buy  # empty launching nodes come through buy() (see there)

        def allowed_on(vector: Vector, node_type: str, rank: int) -> bool:
            if running_only and rank != RUNNING:
                return False
            # Groups are placed before tasks, so a launching accelerator node taken by a
            # plain bundle would push the work that needs it onto yet another node.
            shared = share_accelerators and not context.tasks_need_accelerators
            return relaxed or rank == RUNNING or shared or context.justifies(context.shape(vector), node_type)

        def put(bin_id: str, bundle_index: int) -> None:
            self.pool.take([bin_id], bundles[bundle_index])
            taken.append((bin_id, bundle_index, bundles[bundle_index]))

        def may_launch(vector: Vector, node_type: str) -> bool:
            return relaxed or context.justifies(context.shape(vector), node_type)

        def empty_of(node_type: str) -> str | None:
            members = self.pool.members(LAUNCHING, node_type, context.capacity[node_type])
            return members[0] if members else None

        def buy(vector: Vector, reason: Vector | None = None) -> str | None:
            """A node for ``vector``, of a type the work ``reason`` (default: it) justifies:
            an empty launching one of the type a purchase would choose, else a new one.

            Empty launching nodes are taken only here, never by first fit, so a round
            that finds the nodes the previous round bought takes them where it bought them.
            """
            why = vector if reason is None else reason
            if not may_buy:
                return None
            node_type = self._cheapest_holder(
                vector, lambda t: may_launch(why, t), still_to_come, spare=lambda t: empty_of(t) is not None
            )
            if node_type is None:
                return None
            bin_id = empty_of(node_type)
            if bin_id is None:
                [bin_id] = self._buy(node_type)
                bought.append(bin_id)
            launched.append(bin_id)
            return bin_id

        # Bundles that need special resources first (they have the fewest places to go), then largest.
        order = sorted(
            range(len(bundles)), key=lambda b: (not context.shape(bundles[b]).special, -context.weight(bundles[b]), b)
        )
        ok = True
        if strategy in (PlacementStrategy.STRICT_PACK, PlacementStrategy.PACK):
            whole = _sum(bundles)
            target = self._first_fit(whole, allowed_on, set(), launched, skip_empty=skip_empty)
            if target is None and strategy is PlacementStrategy.STRICT_PACK:
                target = buy(whole)
                ok = target is not None
            if target is not None:
                for b in order:
                    put(target, b)
            elif ok:
                # PACK that no single existing node holds: first fit, bundles that fit
                # nowhere go to a new node sized for all the bundles still unplaced.
                for position, b in enumerate(order):
                    bin_id = self._first_fit(bundles[b], allowed_on, set(), launched, skip_empty=skip_empty)
                    if bin_id is None:
                        rest = _sum(bundles[r] for r in order[position:])
                        bin_id = buy(rest, reason=bundles[b]) or buy(bundles[b])
                    if bin_id is None:
                        ok = False
                        break
                    put(bin_id, b)
        else:
            used: set[str] = set()
            for b in order:
                bin_id = self._first_fit(bundles[b], allowed_on, used, launched, skip_empty=skip_empty)
                if bin_id is None:
                    bin_id = buy(bundles[b])
                if bin_id is None and strategy is PlacementStrategy.SPREAD:
                    bin_id = self._first_fit(bundles[b], allowed_on, set(), launched, skip_empty=skip_empty)
                if bin_id is None:
                    ok = False
                    break
                used.add(bin_id)
                put(bin_id, b)
        if not ok:
            for bin_id, _, vector in reversed(taken):
                self.pool.give_back(bin_id, vector)
            for bin_id in bought:
                self._unbuy(bin_id)
            return False
        for bin_id, b, vector in taken:
            self._record_bundle(bin_id, name, instance, b, vector)
        return True

    def _first_fit(
        self,
        vector: Vector,
        allowed: _BundleAllowed,
        exclude: set[str],
        launched_for_it: list[str],
        *,
        skip_empty: bool = False,
    ) -> str | None:
        """The first bin in canonical order that holds ``vector``, skipping ``exclude``.

        ``allowed(vector, node_type, rank)`` rules on whole classes; bins in
        ``launched_for_it`` (new nodes bought for this very instance) are always allowed.
        ``skip_empty`` skips empty launching bins.
        """
        need = _Universe.sparse(vector)
        capacity = self.context.capacity
        for key, members in self.pool.live_classes(vector):
            rank, _, node_type, free = key
            if not fits(free, need) or (skip_empty and rank == LAUNCHING and free == capacity.get(node_type)):
                continue
            candidates = members if allowed(vector, node_type, rank) else [b for b in launched_for_it if b in members]
            for bin_id in candidates:
                if bin_id not in exclude:
                    return bin_id
        return None

    def _pg_reason(self, bundles: list[Vector], strategy: PlacementStrategy) -> tuple[UnfulfilledReason, str]:
        context = self.context
        needs = [_sum(bundles)] if strategy is PlacementStrategy.STRICT_PACK else bundles
        for need in needs:
            reason = self._shape_reason(context.shape(need))
            if reason[0] is UnfulfilledReason.INFEASIBLE or reason[0] is UnfulfilledReason.UNAVAILABLE:
                return reason
        if strategy is PlacementStrategy.STRICT_SPREAD:
            if self._distinct_bins_possible(bundles) < len(bundles):
                return (
                    UnfulfilledReason.MAX_WORKERS,
                    f"STRICT_SPREAD needs {len(bundles)} distinct nodes; existing nodes and max_workers allow fewer",
                )
            return (UnfulfilledReason.STRATEGY, f"STRICT_SPREAD needs {len(bundles)} distinct nodes that hold a bundle")
        return (UnfulfilledReason.MAX_WORKERS, "no room on existing nodes and max_workers allows no new node for it")

    def _distinct_bins_possible(self, bundles: list[Vector]) -> int:
        """An upper bound on the distinct nodes that could hold the smallest bundle."""
        need = _Universe.sparse(min(bundles, key=self.context.weight))
        existing = sum(1 for bin_id, free in self.pool.free.items() if fits(free, need))
        holders = [t for t in self.context.launchable if fits(self.context.capacity[t], need)]
        return existing + sum(max(0, self.headroom(t)) for t in holders)

    # -- buying, limits and reasons ------------------------------------------------------

    def headroom(self, node_type: str, extra: Counter[str] | None = None) -> int:
        """How many more nodes of ``node_type`` the per-type and cluster limits allow.

        ``extra`` counts nodes a plan being weighed would add.
        """
        request = self.context.request
        limit = request.node_types[node_type].max_workers
        planned = extra[node_type] if extra else 0
        room = math.inf if limit is None else limit - self.workers[node_type] - planned
        if request.max_workers is not None:
            total = sum(self.workers.values()) + (sum(extra.values()) if extra else 0)
            room = min(room, request.max_workers - total)
        return int(room) if room != math.inf else 1 << 62

    def _cheapest_holder(
        self,
        vector: Vector,
        allowed: Callable[[str], bool],
        copies: int = 1,
        spare: Callable[[str], bool] | None = None,
    ) -> str | None:
        """The launchable type with headroom (or, per ``spare``, an empty launching node)
        that holds ``vector`` at the least cost per copy.

        A node holding more copies than will come is not credited for them; ties go to
        the cheaper node, then the smaller, then the name.
        """
        context = self.context
        need = _Universe.sparse(vector)
        best: tuple[float, float, float, str] | None = None
        launchable = set(context.launchable)
        for t in context.launchable if spare is None else sorted(context.capacity):
            held = fits(context.capacity[t], need)
            has_spare = spare is not None and spare(t)
            if not held or not allowed(t) or ((t not in launchable or self.headroom(t) <= 0) and not has_spare):
                continue
            key = (context.cost[t] / min(held, copies), context.cost[t], self._size(context.capacity[t]), t)
            if best is None or key < best:
                best = key
        return None if best is None else best[3]

    def _size(self, vector: Vector) -> float:
        return sum(a * w for a, w in zip(vector, self.context.size_weights))

    def _add_bins(self, node_type: str, count: int) -> list[str]:
        """Plan ``count`` new nodes of ``node_type``: empty bins in both pools."""
        if count <= 0:
            return []
        start = self._next_bin
        self._next_bin += count  # never reused, even after an un-buy
        bin_ids = [f"{_PLANNED_PREFIX}{number:07d}" for number in range(start, start + count)]
        capacity = self.context.capacity[node_type]
        for bin_id in bin_ids:
            self.planned_type[bin_id] = node_type
        self.pool.add(bin_ids, node_type, LAUNCHING, capacity)
        self.totals.add(bin_ids, node_type, LAUNCHING, capacity)
        self.workers[node_type] += count
        return bin_ids

    def _buy(self, node_type: str, count: int = 1) -> list[str]:
        bin_ids = self._add_bins(node_type, count)
        self.bought.extend(bin_ids)
        return bin_ids

    def _unbuy(self, bin_id: str) -> None:
        node_type = self.planned_type.pop(bin_id)
        self.pool.discard(bin_id)
        self.totals.discard(bin_id)
        self.workers[node_type] -= 1
        self.bought.remove(bin_id)

    def _unfulfilled(self, kind: DemandKind, shape: Shape, count: int) -> Unfulfilled:
        reason, detail = self._shape_reason(shape)
        shown = self.context.resources(shape.vector)
        return Unfulfilled(kind=kind, count=count, reason=reason, detail=detail, shape=shown)

    def _shape_reason(self, shape: Shape) -> tuple[UnfulfilledReason, str]:
        context = self.context
        request = context.request
        holders = sorted(t for t, cap in context.capacity.items() if fits(cap, shape.sparse))
        shown = format_resources(context.resources(shape.vector))
        if not holders:
            if any(fits(total, shape.sparse) for _, _, total in context.running):
                return (UnfulfilledReason.BUSY, f"only existing nodes can hold {shown}, and they are busy")
            largest = max(context.capacity, key=lambda t: self._size(context.capacity[t]), default=None)
            hint = f" (largest: {largest} {request.node_types[largest].resources})" if largest else ""
            return (UnfulfilledReason.INFEASIBLE, f"no node type can hold {shown}{hint}")
        open_holders = [t for t in holders if t in context.launchable]
        if not open_holders:
            backing_off = [t for t in holders if t in request.unavailable_node_types]
            if backing_off:
                return (
                    UnfulfilledReason.UNAVAILABLE,
                    f"only unavailable node types can hold {shown}: {', '.join(backing_off)}",
                )
            zero = ", ".join(holders)
            return (UnfulfilledReason.MAX_WORKERS, f"node types that hold {shown} have max_workers 0: {zero}")
        if request.max_workers is not None and sum(self.workers.values()) >= request.max_workers:
            return (UnfulfilledReason.MAX_WORKERS, f"cluster max_workers ({request.max_workers}) reached")
        at_limit = ", ".join(f"{t} ({self.workers[t]}/{request.node_types[t].max_workers})" for t in open_holders)
        return (UnfulfilledReason.MAX_WORKERS, f"max_workers reached for every type that holds {shown}: {at_limit}")

    # -- the result ----------------------------------------------------------------------

    def _holds_something(self, bin_id: str) -> bool:
        return bool(self.tasks.get(bin_id) or self.requests.get(bin_id) or self.bundles.get(bin_id))

    def kept_bins(self, *, drop_unjustified: bool) -> list[str]:
        """Node types of the planned bins worth keeping into the next round.

        Beyond empty nodes (not needed for ``min_workers``), ``drop_unjustified`` drops
        accelerator nodes holding only tasks and requests that would not justify them,
        while a plain type has room: the next round places that work under the rules
        again. (Two plans can each look justified, each special shape with plain filler
        on its own accelerator node, while the refill gathers the special work on one.)
        """
        return [self.planned_type[b] for b in self._kept(drop_unjustified=drop_unjustified)]

    def _kept(self, *, drop_unjustified: bool = False) -> list[str]:
        context = self.context
        by_type: dict[str, list[str]] = {}
        for bin_id in sorted(self.planned_type):
            by_type.setdefault(self.planned_type[bin_id], []).append(bin_id)
        plain_room = any(t not in context.accelerated_types and self.headroom(t) > 0 for t in context.launchable)
        kept: list[str] = []
        for node_type, bins in sorted(by_type.items()):
            minimum = context.request.node_types[node_type].min_workers - context.existing_workers[node_type]
            used = [b for b in bins if self._holds_something(b)]
            spare = [b for b in bins if not self._holds_something(b)]
            if drop_unjustified and plain_room and node_type in context.accelerated_types:
                unjustified = [b for b in used if not self.bundles.get(b) and not self._justified(b)]
                spare = unjustified + spare
                used = [b for b in used if b not in unjustified]
            kept.extend(used + spare[: max(0, minimum - len(used))])
        return sorted(kept)

    def result(self) -> SchedulingResult:
        context = self.context
        request = context.request
        kept = self._kept()

        existing: dict[str, ExistingNodeAssignment] = {}
        for node in sorted(request.nodes, key=lambda n: n.id):
            if self._holds_something(node.id):
                existing[node.id] = ExistingNodeAssignment(
                    node_id=node.id,
                    node_type=node.node_type,
                    assigned=self._shape_counts(context.demand_resources, self.tasks.get(node.id)),
                    bundles=self._bundle_placements(node.id),
                    resource_requests=self._shape_counts(context.request_resources, self.requests.get(node.id)),
                )

        # Which planned nodes are there for min_workers: per type, the ones holding least.
        reasons: dict[str, LaunchReason] = {}
        for node_type in sorted({self.planned_type[b] for b in kept}):
            bins = [b for b in kept if self.planned_type[b] == node_type]
            minimum = max(0, request.node_types[node_type].min_workers - context.existing_workers[node_type])
            # The min_workers label goes first to nodes whose work would not justify their type.
            bins.sort(
                key=lambda b: (
                    self._justified(b),
                    bool(self.bundles.get(b)),
                    bool(self.requests.get(b)),
                    bool(self.tasks.get(b)),
                    b,
                )
            )
            for position, bin_id in enumerate(bins):
                if position < minimum:
                    reasons[bin_id] = LaunchReason.MIN_WORKERS
                elif self.bundles.get(bin_id):
                    reasons[bin_id] = LaunchReason.PLACEMENT_GROUP
                elif self.requests.get(bin_id):
                    reasons[bin_id] = LaunchReason.REQUEST_RESOURCES
                else:
                    reasons[bin_id] = LaunchReason.DEMAND

        groups: dict[tuple[object, ...], list[str]] = {}
        for bin_id in kept:
            assigned = self._shape_counts(context.demand_resources, self.tasks.get(bin_id))
            requested = self._shape_counts(context.request_resources, self.requests.get(bin_id))
            key: tuple[object, ...] = (
                _REASON_ORDER[reasons[bin_id]],
                self.planned_type[bin_id],
                assigned,
                requested,
                bin_id if self.bundles.get(bin_id) else "",
            )
            groups.setdefault(key, []).append(bin_id)

        new_nodes: list[NewNodeGroup] = []
        launch: Counter[str] = Counter()
        for number, key in enumerate(sorted(groups, key=_group_order), start=1):
            bins = groups[key]
            node_type = self.planned_type[bins[0]]
            new_nodes.append(
                NewNodeGroup(
                    id=f"new-{number}",
                    node_type=node_type,
                    count=len(bins),
                    reason=reasons[bins[0]],
                    assigned=key[2],  # type: ignore[arg-type]
                    bundles=self._bundle_placements(bins[0]),
                    resource_requests=key[3],  # type: ignore[arg-type]
                    cost_per_node=context.cost[node_type],
                )
            )
            launch[node_type] += len(bins)
        cost = sum(group.cost_per_node * group.count for group in new_nodes)
        return SchedulingResult(
            launch=dict(sorted(launch.items())),
            new_nodes=tuple(new_nodes),
            existing=existing,
            unfulfilled=tuple(self.unfulfilled),
            cost=cost,
        )

    def _justified(self, bin_id: str) -> bool:
        """Whether some work on a planned node is a reason to launch its type."""
        context = self.context
        node_type = self.planned_type[bin_id]
        if node_type not in context.accelerated_types:
            return True  # any work justifies a plain node
        vectors = [context.demand_shapes[o].vector for o, n in self.tasks.get(bin_id, {}).items() if n]
        vectors += [context.request_shapes[o].vector for o, n in self.requests.get(bin_id, {}).items() if n]
        instances: dict[tuple[str, int], list[Vector]] = {}
        for name, instance, _, vector in self.bundles.get(bin_id, ()):
            instances.setdefault((name, instance), []).append(vector)
        vectors += [_sum(parts) for parts in instances.values()]
        return any(context.justifies(context.shape(vector), node_type) for vector in vectors)

    def _bundle_placements(self, bin_id: str) -> tuple[BundlePlacement, ...]:
        shown = self.context.resources
        return tuple(
            BundlePlacement(pg=name, instance=instance, bundle=bundle, shape=shown(vector))
            for name, instance, bundle, vector in self.bundles.get(bin_id, ())
        )

    def _shape_counts(self, shapes: list[Resources], placed: dict[int, int] | None) -> tuple[ShapeCount, ...]:
        if not placed:
            return ()
        return tuple(ShapeCount(shapes[order], count) for order, count in sorted(placed.items()) if count)


_REASON_ORDER = {
    LaunchReason.MIN_WORKERS: 0,
    LaunchReason.REQUEST_RESOURCES: 1,
    LaunchReason.PLACEMENT_GROUP: 2,
    LaunchReason.DEMAND: 3,
}


class _Plan(NamedTuple):
    """Nodes a buying strategy would launch: ``(type, count, pattern)`` steps and what is left."""

    steps: list[tuple[str, int, Pattern]]
    left: dict[int, int]
    unplaced_value: float
    cost: float
    nodes: int


def _not_running(rank: int, node_type: str, free: Vector) -> bool:
    return rank != RUNNING


def _is(target: Shape) -> Callable[[Shape], bool]:
    return lambda shape: shape.order == target.order


def _justifying(context: _Context, node_type: str) -> Callable[[Shape], bool]:
    return lambda shape: context.justifies(shape, node_type)


def _unplaced_value(context: _Context, result: SchedulingResult) -> float:
    total = 0.0
    for item in result.unfulfilled:
        shapes = [item.shape] if item.shape is not None else list(item.bundles)
        total += item.count * sum(context.weight(context.universe.vector(shape)) for shape in shapes)
    return total


def _sum(vectors: Iterable[Vector]) -> Vector:
    return tuple(map(sum, zip(*vectors)))


def _aggregate(items: Iterable[tuple[Resources, int]]) -> Counter[Resources]:
    totals: Counter[Resources] = Counter()
    for shape, count in items:
        totals[shape] += count
    return totals


def _group_order(key: tuple[object, ...]) -> tuple[object, ...]:
    reason, node_type, assigned, requested, bin_id = key
    return (reason, node_type, bin_id, repr(assigned), repr(requested))


def _better(score: tuple[float, float, float, str], than: tuple[float, float, float, str]) -> bool:
    """Higher value per cost, then more value, then cheaper; ties go to the first name."""
    if score[:3] != than[:3]:
        return score[:3] > than[:3]
    return score[3] < than[3]
