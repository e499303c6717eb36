"""Bins, shapes and the two packing moves the scheduler is built from.

Everything here works on integer vectors over one resource index (see
:class:`_Universe`), so a fit test is a handful of integer divisions.

* A :class:`_Pool` holds bins (nodes: existing, launching or planned), grouped into
  classes of identical bins — same rank, node type and free capacity. Work is done per
  class, not per node, so a cluster of 5,000 nodes with 50 distinct free-capacity
  shapes costs 50 steps, not 5,000.
* :func:`greedy_fill` fills one empty-or-partly-used bin from the pending demand, shapes
  in decreasing order, as many of each as fit (First-Fit Decreasing for one bin).
* :meth:`_Pool.fill` fills the pool class by class in a fixed, canonical order, and
  replicates each one-bin pattern over every bin of the class that can take it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from rayk8s.autoscaler._resources import Resources

#: A resource vector: one integer amount per resource in the universe's index.
Vector = tuple[int, ...]
#: A sparse shape: ``(resource index, amount)`` pairs with non-zero amounts.
Sparse = tuple[tuple[int, int], ...]

#: Accelerator resources. Work that does not ask for one of these is kept off new or
#: launching accelerator nodes while a node type without accelerators could hold it.
ACCELERATORS = frozenset({"GPU", "TPU", "NPU", "HPU", "neuron_cores"})

RUNNING = 0
"""Rank of a running existing node: its free capacity is used first."""
LAUNCHING = 1
"""Rank of a pending (launching) node or a new node planned in this decision."""

_UNLIMITED = 1 << 62


class _Universe:
    """The resource index shared by every vector of one decision."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: tuple[str, ...] = tuple(sorted(set(names)))
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.accelerator_indexes = frozenset(i for name, i in self.index.items() if name in ACCELERATORS)

    def vector(self, resources: Resources) -> Vector:
        out = [0] * len(self.names)
        for name, amount in resources.units.items():
            out[self.index[name]] = amount
        return tuple(out)

    def resources(self, vector: Vector) -> Resources:
        return Resources.from_units({self.names[i]: amount for i, amount in enumerate(vector) if amount})

    @staticmethod
    def sparse(vector: Vector) -> Sparse:
        return tuple((i, amount) for i, amount in enumerate(vector) if amount)

    def uses_accelerator(self, vector: Vector) -> bool:
        return any(vector[i] for i in self.accelerator_indexes)


def fits(available: Vector | list[int], need: Sparse) -> int:
    """How many copies of ``need`` fit in ``available`` (unbounded for an empty shape)."""
    most = _UNLIMITED
    for i, amount in need:
        copies = available[i] // amount
        if copies < most:
            if copies == 0:
                return 0
            most = copies
    return most


def subtract(available: Vector, need: Vector, copies: int = 1) -> Vector:
    return tuple(a - n * copies for a, n in zip(available, need))


class Shape(NamedTuple):
    """A demand shape in the decision's universe, with its position in the fill order.

    ``accelerated``: it asks for an accelerator. ``special``: it asks for a resource that
    not every launchable node type offers (an accelerator, a licence, local SSD, ...), so
    the nodes that can hold it should take it before work any node could hold.
    """

    order: int
    vector: Vector
    sparse: Sparse
    accelerated: bool
    special: bool


Pattern = tuple[tuple[int, int], ...]
"""What one bin takes: ``(shape order, copies)`` pairs."""

#: Decides whether a shape may go on a bin: ``allowed(shape, node_type, rank)``.
Allowed = Callable[[Shape, str, int], bool]


def greedy_fill(
    available: Vector,
    shapes: list[Shape],
    counts: Mapping[int, int],
    allowed: Callable[[Shape], bool] | None,
    first: Callable[[Shape], bool] | None = None,
) -> Pattern:
    """Fill one bin: shapes in order (largest first), as many of each as fit and remain.

    With ``first``, the shapes it selects go in before all others (the work that
    justifies an accelerator node, say, before the work that merely fills it); their
    entries lead the pattern. After the fill no remaining shape fits the bin, so a bin is
    filled once per stage.
    """
    if first is not None:
        shapes = [shape for shape in shapes if first(shape)] + [shape for shape in shapes if not first(shape)]
    free = list(available)
    pattern: list[tuple[int, int]] = []
    for shape in shapes:
        left = counts.get(shape.order, 0)
        if not left or (allowed is not None and not allowed(shape)):
            continue
        copies = fits(free, shape.sparse)
        if not copies:
            continue
        if copies > left:
            copies = left
        for i, amount in shape.sparse:
            free[i] -= amount * copies
        pattern.append((shape.order, copies))
    return tuple(pattern)


def mixed_fill(
    available: Vector,
    shapes: list[Shape],
    counts: Mapping[int, int],
    allowed: Callable[[Shape], bool] | None,
    first: Callable[[Shape], bool] | None = None,
    bins: int | None = None,
) -> Pattern:
    """Fill one bin with a *mix* of the remaining shapes, in proportion to their counts.

    The base takes ``floor(f · count)`` copies of every shape that fits, with ``f`` the
    largest share of the remaining demand (summed per resource) the bin holds — at most
    ``1 / bins`` when the bin is one of ``bins`` identical ones, so they share the demand
    evenly. The bin then uses its resources in the demand's own ratio: shapes heavy on
    one resource share it with shapes heavy on another, where :func:`greedy_fill` alone
    stacks one shape until a resource runs out and strands the rest. With ``first``, the
    shapes it selects get their base first (and lead the pattern), the others share what
    room is left. :func:`greedy_fill` tops the bin up. Exact integer arithmetic.
    """
    free = list(available)
    left = dict(counts)
    base: dict[int, int] = {}
    tiers = [shapes] if first is None else [[s for s in shapes if first(s)], [s for s in shapes if not first(s)]]
    for tier in tiers:
        eligible = [
            shape
            for shape in tier
            if left.get(shape.order, 0) > 0 and (allowed is None or allowed(shape)) and fits(free, shape.sparse)
        ]
        if not eligible:
            continue
        total = [0] * len(free)
        for shape in eligible:
            for i, amount in shape.sparse:
                total[i] += amount * left[shape.order]
        num, den = 1, 1 if bins is None else bins  # the share f = num / den, at most 1 / bins
        for i, need in enumerate(total):
            if need and free[i] * den < num * need:
                num, den = free[i], need
        for shape in eligible:
            copies = left[shape.order] * num // den
            if copies:
                base[shape.order] = base.get(shape.order, 0) + copies
                left[shape.order] -= copies
                for i, amount in shape.sparse:
                    free[i] -= amount * copies
    for order, copies in greedy_fill(tuple(free), shapes, left, allowed, first):
        base[order] = base.get(order, 0) + copies
    ordered = [shape for shape in shapes if shape.order in base]
    if first is not None:
        ordered = [s for s in ordered if first(s)] + [s for s in ordered if not first(s)]
    return tuple((shape.order, base[shape.order]) for shape in ordered)


def is_special(shape: Shape) -> bool:
    """Whether ``shape`` asks for a resource not every launchable type offers."""
    return shape.special


def replicas(pattern: Pattern, counts: Mapping[int, int]) -> int:
    """How many bins can take ``pattern`` before a shape in it runs out."""
    return min(counts[order] // copies for order, copies in pattern)


ClassKey = tuple[int, float, str, Vector]
"""``(rank, normalised free size, node type, free vector)``: the canonical order of classes."""


class _Pool:
    """Bins grouped into classes of identical bins, kept in canonical order.

    The canonical order is: running nodes before launching ones, then smallest free
    capacity first (best fit), then node type name, then the free vector. Within a class
    bins are taken in id order. The order depends only on values, never on ids, so two
    pools holding the same bins under other ids are filled the same way.
    """

    def __init__(self, weights: tuple[float, ...]) -> None:
        self._weights = weights
        self.free: dict[str, Vector] = {}
        self.node_type: dict[str, str] = {}
        self.rank: dict[str, int] = {}
        self._classes: dict[ClassKey, list[str]] = {}
        self._order: list[ClassKey] = []

    def copy(self) -> _Pool:
        other = _Pool(self._weights)
        other.free = dict(self.free)
        other.node_type = dict(self.node_type)
        other.rank = dict(self.rank)
        other._classes = {key: list(ids) for key, ids in self._classes.items()}
        other._order = list(self._order)
        return other

    def _size(self, vector: Vector) -> float:
        return sum(amount * weight for amount, weight in zip(vector, self._weights))

    def _key(self, rank: int, node_type: str, free: Vector) -> ClassKey:
        return (rank, self._size(free), node_type, free)

    def add(self, bin_ids: list[str], node_type: str, rank: int, free: Vector) -> None:
        """Add identical bins."""
        for bin_id in bin_ids:
            self.free[bin_id] = free
            self.node_type[bin_id] = node_type
            self.rank[bin_id] = rank
        self._insert(self._key(rank, node_type, free), bin_ids)

    def _insert(self, key: ClassKey, ids: list[str]) -> None:
        members = self._classes.get(key)
        if members is None:
            self._classes[key] = sorted(ids)
            bisect.insort(self._order, key)
        elif len(ids) == 1:
            bisect.insort(members, ids[0])
        else:
            members.extend(ids)
            members.sort()

    def _remove(self, key: ClassKey, ids: list[str]) -> None:
        members = self._classes[key]
        if len(ids) == len(members):
            del self._classes[key]
            del self._order[bisect.bisect_left(self._order, key)]
            return
        drop = set(ids)
        members[:] = [bin_id for bin_id in members if bin_id not in drop]

    def live_classes(self, need: Vector) -> Iterable[tuple[ClassKey, list[str]]]:
        """The classes that may hold ``need``, in canonical order, without copying.

        Classes too small to hold it are skipped: a bin that holds ``need`` has at least
        its normalised size, and classes are sorted by size within a rank. Do not change
        the pool while iterating.
        """
        size = sum(amount * weight for amount, weight in zip(need, self._weights)) * (1 - 1e-9)
        for rank in (RUNNING, LAUNCHING):
            start = bisect.bisect_left(self._order, (rank, size))
            for key in self._order[start:]:
                if key[0] != rank:
                    break
                yield key, self._classes[key]

    def take(self, bin_ids: list[str], used: Vector) -> None:
        """Take ``used`` from each of ``bin_ids`` (all of one class)."""
        first = bin_ids[0]
        rank, node_type, free = self.rank[first], self.node_type[first], self.free[first]
        self._remove(self._key(rank, node_type, free), bin_ids)
        left = subtract(free, used)
        for bin_id in bin_ids:
            self.free[bin_id] = left
        self._insert(self._key(rank, node_type, left), bin_ids)

    def give_back(self, bin_id: str, used: Vector) -> None:
        """Undo :meth:`take` for one bin."""
        rank, node_type, free = self.rank[bin_id], self.node_type[bin_id], self.free[bin_id]
        self._remove(self._key(rank, node_type, free), [bin_id])
        restored = tuple(f + u for f, u in zip(free, used))
        self.free[bin_id] = restored
        self._insert(self._key(rank, node_type, restored), [bin_id])

    def members(self, rank: int, node_type: str, free: Vector) -> list[str]:
        """The bins of one class, in order (a copy)."""
        return list(self._classes.get(self._key(rank, node_type, free), ()))

    def holders(self, shape: Shape, rank: int | None = None, cap: int | None = None) -> int:
        """How many bins of the pool (of ``rank``, if given) could hold one ``shape`` now.

        With ``cap``, counting stops once it is reached (the answer is then ``cap``).
        """
        count = 0
        for key, members in self.live_classes(shape.vector):
            if (rank is None or key[0] == rank) and fits(key[3], shape.sparse):
                count += len(members)
                if cap is not None and count >= cap:
                    return cap
        return count

    def discard(self, bin_id: str) -> None:
        rank, node_type, free = self.rank.pop(bin_id), self.node_type.pop(bin_id), self.free.pop(bin_id)
        self._remove(self._key(rank, node_type, free), [bin_id])

    def fill(
        self,
        shapes: list[Shape],
        counts: dict[int, int],
        allowed: Allowed | None,
        placed: dict[str, dict[int, int]],
        scarcity: Callable[[Shape], int] | None = None,
        defer: Callable[[int, str, Vector], bool] | None = None,
    ) -> None:
        """Fill every bin in canonical order from ``counts`` (which is decremented).

        Classes ``defer(rank, node_type, free)`` selects are left for the caller.

        ``allowed`` of ``None`` allows every shape on every bin (the common case, fastest).

        Each class is filled with one greedy pattern replicated over as many of its bins as
        the demand allows, then again for the rest, until the class is used up or nothing
        more fits. ``placed[bin_id][shape order]`` accumulates what each bin took.

        Into every bin, the *scarcest* shapes go first — those the fewest bins of the pool
        can hold (work needing an accelerator, a licence, a big node) — so a bin that is
        the only home of some work does not fill up with work that could go anywhere.
        """
        shapes_by_order = shapes
        if scarcity is None:
            scarcity = self.holders
        scarce = {shape.order: scarcity(shape) for shape in shapes if counts.get(shape.order)}
        shapes = sorted((shape for shape in shapes if shape.order in scarce), key=lambda s: (scarce[s.order], s.order))
        # A shape fits a bin only if its normalised size is no larger than the bin's free
        # size: shapes are screened by size before the exact test (same result, faster).
        sizes = {shape.order: self._size(shape.vector) * (1 - 1e-9) for shape in shapes}
        live = [shape for shape in shapes if counts.get(shape.order)]
        for key in list(self._order):
            if not live:
                return
            rank, size, node_type, free = key
            if defer is not None and defer(rank, node_type, free):
                continue
            candidates = [shape for shape in live if sizes[shape.order] <= size]
            if not candidates:
                continue
            members = list(self._classes.get(key, ()))

            allowed_here: Callable[[Shape], bool] | None = None
            if allowed is not None:
                rule = allowed

                def allowed_here(
                    shape: Shape, node_type: str = node_type, rank: int = rank, rule: Allowed = rule
                ) -> bool:
                    return rule(shape, node_type, rank)

            while members:
                if len(members) > 1:
                    pattern = mixed_fill(free, candidates, counts, allowed_here, is_special, len(members))
                else:  # one bin: nothing to share evenly, the plain fill is as good and faster
                    pattern = greedy_fill(free, candidates, counts, allowed_here)
                if not pattern:
                    break
                copies_of_pattern = min(len(members), replicas(pattern, counts))
                chosen, members = members[:copies_of_pattern], members[copies_of_pattern:]
                used = [0] * len(free)
                for order, copies in pattern:
                    counts[order] -= copies * copies_of_pattern
                    for i, amount in shapes_by_order[order].sparse:
                        used[i] += amount * copies
                self.take(chosen, tuple(used))
                for bin_id in chosen:
                    into = placed.setdefault(bin_id, {})
                    for order, copies in pattern:
                        into[order] = into.get(order, 0) + copies
                if any(not counts[order] for order, _ in pattern):
                    live = [shape for shape in live if counts[shape.order]]
                    candidates = [shape for shape in candidates if counts[shape.order]]
                    if not live:
                        return
