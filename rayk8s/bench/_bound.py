"""A lower bound on the cost of new nodes for a scheduling request (LP relaxation).

For ``rayk8s bench`` and the benchmarks: needs scipy (``pip install 'rayk8s[bench]'``), solved with HiGHS.

Formulation
-----------

*Commodities* ``k`` are what must be placed, each with a shape ``a_k`` (a resource vector)
and a count ``d_k``:

* pending tasks, merged by shape;
* placement-group bundles: a PACK or SPREAD group's bundles as shapes of their own (merged
  with equal shapes), a STRICT_PACK group as one unit of its summed shape, a STRICT_SPREAD
  group's bundles as commodities *of that group* (not merged), so its spread rule can be
  stated;
* ``request_resources`` bundles, which are placed against *total* capacity (used or not),
  in a second, separate set of capacity rows that shares only the node counts.

``d_k`` is what must be placed: by default everything that fits some launchable node type
or some existing node; the benchmark passes what the scheduler under test placed
(:func:`placed_from_result`), so the bound is *the least any plan placing the same demand
could cost* and stays valid when ``max_workers`` leaves work unplaced.

Variables, all continuous and non-negative:

* ``x_t`` — new nodes of type ``t`` (only types that may be launched: not unavailable);
* ``y_kt`` — units of ``k`` on new nodes of type ``t``; only where one unit of ``k`` fits an
  empty ``t`` (and see the accelerator rule below);
* ``z_kG`` — units of ``k`` on the existing nodes of group ``G``. Existing nodes are grouped
  by the set of commodities a single node can hold one unit of (running nodes by their free
  capacity, pending nodes by their full capacity); a group's capacity is the sum of its
  members'. Existing nodes cost nothing: they are bins already paid for.

Minimise ``sum_t cost_t x_t`` subject to

1. ``sum_t y_kt + sum_G z_kG = d_k`` for every commodity;
2. ``sum_k a_kr y_kt <= cap_tr x_t`` for every type and resource;
3. ``y_kt <= fit_kt x_t`` where ``fit_kt`` is how many units of ``k`` one empty ``t`` holds
   (an integer: this adds the rounding down that the resource rows miss);
4. ``sum_k a_kr z_kG <= C_Gr`` and ``z_kG <= F_kG`` (the sum of per-node fits) for each
   existing group;
5. STRICT_SPREAD group ``p`` with ``c_p`` placed instances: ``sum_{k in p} y_kt <= c_p x_t``
   and ``sum_{k in p} z_kG <= c_p |G|`` (a node holds at most one bundle of an instance),
   and, when ``c_p >= 1``, the new nodes that can hold one of its bundles number at least
   ``len(bundles) - E_p``, where ``E_p`` counts the existing nodes that can;
6. ``lo_t <= x_t <= hi_t``: ``lo_t = min_workers - existing workers of t`` (at least 0),
   ``hi_t = max_workers - existing workers of t``; and ``sum_t x_t`` at most the cluster's
   ``max_workers`` minus its existing workers (head nodes never count);
7. the ``request_resources`` rows, as 1 to 4 with each existing node's total capacity.

Every real plan that places ``d`` gives a feasible point of this program with the same cost
(count its nodes per type, sum its placements per type and per group), so the optimum is a
lower bound. Rows 3 and 5 only cut off fractional points no real plan reaches.

**The accelerator rule.** rayk8s keeps work that asks for no accelerator (GPU, TPU, ...)
off new and launching accelerator nodes while a node type without accelerators could hold
it. The bound follows the same rule, so it bounds *plans that obey it*: ``y_kt = 0`` (and
``z_kG = 0`` for launching accelerator nodes) for a non-accelerator commodity ``k`` on an
accelerator type ``t``, when a non-accelerator type that may be launched without limit (no
per-type ``max_workers``, no cluster ``max_workers``) holds ``k``. Where that type has a
limit the rule is not applied (the scheduler might then fall back to an accelerator type),
which keeps the bound valid.

Two numbers come out: the pure LP optimum, and a stronger bound with ``x_t`` integer (the
rest still continuous) — still a relaxation of the real problem, so still a lower bound;
when HiGHS stops at its time limit, its proven dual bound is used. :attr:`LowerBound.value`
is the larger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import attrs

from rayk8s.autoscaler import (
    DemandKind,
    NodeStatus,
    PlacementStrategy,
    Resources,
    SchedulingRequest,
    SchedulingResult,
)

__all__ = ["ACCELERATORS", "LowerBound", "Placed", "lower_bound", "placed_from_result"]

#: Resources that make a node an accelerator node (the same set as the scheduler's).
ACCELERATORS = frozenset({"GPU", "TPU", "NPU", "HPU", "neuron_cores"})


@attrs.frozen
class Placed:
    """How much must be placed: task units per shape, instances per placement group (by
    name), ``request_resources`` bundles per shape. ``None`` in a field: all of it."""

    demands: Mapping[Resources, int] | None = None
    placement_groups: Mapping[str, int] | None = None
    resource_requests: Mapping[Resources, int] | None = None


@attrs.frozen
class LowerBound:
    """``lp``: the LP optimum; ``integral``: the bound with integer node counts (``None``
    when not computed); ``value``: the larger; ``status``: a word on how it went."""

    lp: float
    integral: float | None
    status: str

    @property
    def value(self) -> float:
        return max(self.lp, self.integral or 0.0)


def pg_name(index: int, name: str | None) -> str:
    """A placement group's name in the result: its own, or ``pg<index>``."""
    return name if name is not None else f"pg{index}"


def placed_from_result(request: SchedulingRequest, result: SchedulingResult) -> Placed:
    """What ``result`` placed: everything demanded less what it reports unfulfilled."""
    demands: dict[Resources, int] = defaultdict(int)
    for demand in request.demands:
        demands[demand.shape] += demand.count
    requests: dict[Resources, int] = defaultdict(int)
    for rr in request.resource_requests:
        requests[rr.shape] += rr.count
    groups = {pg_name(i, pg.name): pg.count for i, pg in enumerate(request.placement_groups)}
    for item in result.unfulfilled:
        if item.kind is DemandKind.DEMAND and item.shape is not None:
            demands[item.shape] -= item.count
        elif item.kind is DemandKind.RESOURCE_REQUEST and item.shape is not None:
            requests[item.shape] -= item.count
        elif item.kind is DemandKind.PLACEMENT_GROUP and item.pg is not None:
            groups[item.pg] = groups.get(item.pg, 0) - item.count
    return Placed(
        demands={s: max(0, c) for s, c in demands.items()},
        placement_groups={n: max(0, c) for n, c in groups.items()},
        resource_requests={s: max(0, c) for s, c in requests.items()},
    )


@attrs.define
class _Commodity:
    shape: Resources
    count: int
    total_capacity: bool = False  # a request_resources bundle
    spread_group: int | None = None  # index of its STRICT_SPREAD group


@attrs.define
class _Group:
    """Existing nodes that can each hold one unit of the same commodities, summed."""

    nodes: int = 0
    capacity: defaultdict[str, int] = attrs.field(factory=lambda: defaultdict(int))
    fits: defaultdict[int, int] = attrs.field(factory=lambda: defaultdict(int))


def _fit(shape: Mapping[str, int], capacity: Mapping[str, int]) -> int:
    best: int | None = None
    for name, amount in shape.items():
        n = capacity.get(name, 0) // amount
        if best is None or n < best:
            best = n
        if best == 0:
            return 0
    return best if best is not None else 0


def _uses_accelerator(resources: Resources) -> bool:
    return any(name in ACCELERATORS for name in resources)


def lower_bound(
    request: SchedulingRequest,
    placed: Placed | None = None,
    *,
    integral: bool = True,
    accelerator_rule: bool | None = None,
    time_limit_s: float = 20.0,
) -> LowerBound:
    """The LP (and integer-node-count) lower bound on the cost of new nodes; see the module.

    ``accelerator_rule`` (default: the request's ``isolate_accelerators``) applies the
    strict rule; without it the bound holds for every plan, including ones that put CPU
    work on spare room of new GPU nodes (as Ray v1 and rayk8s's default do).
    """
    if accelerator_rule is None:
        accelerator_rule = request.isolate_accelerators
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp
    from scipy.sparse import coo_matrix, vstack

    placed = placed or Placed()
    types = [t for name, t in request.node_types.items() if name not in request.unavailable_node_types]
    workers = [n for n in request.nodes if not n.is_head]
    existing_of: dict[str, int] = defaultdict(int)
    for node in workers:
        existing_of[node.node_type] += 1
    room: dict[str, int | None] = {}
    for t in types:
        room[t.name] = None if t.max_workers is None else max(0, t.max_workers - existing_of[t.name])
    cluster_room = None if request.max_workers is None else max(0, request.max_workers - len(workers))

    # --- commodities
    commodities: list[_Commodity] = []
    by_shape: dict[tuple[Resources, bool], int] = {}

    def add(shape: Resources, count: int, total_capacity: bool = False) -> None:
        if count <= 0 or not shape:
            return
        key = (shape, total_capacity)
        if key in by_shape:
            commodities[by_shape[key]].count += count
        else:
            by_shape[key] = len(commodities)
            commodities.append(_Commodity(shape, count, total_capacity))

    task_counts: dict[Resources, int] = defaultdict(int)
    for demand in request.demands:
        task_counts[demand.shape] += demand.count
    for shape, count in task_counts.items():
        add(shape, count if placed.demands is None else min(count, placed.demands.get(shape, 0)))
    request_counts: dict[Resources, int] = defaultdict(int)
    for rr in request.resource_requests:
        request_counts[rr.shape] += rr.count
    for shape, count in request_counts.items():
        wanted = count if placed.resource_requests is None else min(count, placed.resource_requests.get(shape, 0))
        add(shape, wanted, total_capacity=True)
    spreads: list[tuple[int, int, list[int]]] = []  # (placed instances, bundles, commodity ids)
    for index, pg in enumerate(request.placement_groups):
        instances = pg.count
        if placed.placement_groups is not None:
            instances = min(pg.count, placed.placement_groups.get(pg_name(index, pg.name), 0))
        if instances <= 0:
            continue
        if pg.strategy is PlacementStrategy.STRICT_PACK:
            total = Resources()
            for bundle in pg.bundles:
                total = total + bundle
            add(total, instances)
        elif pg.strategy is PlacementStrategy.STRICT_SPREAD:
            per_shape: dict[Resources, int] = defaultdict(int)
            for bundle in pg.bundles:
                if bundle:
                    per_shape[bundle] += 1
            ids = []
            for shape, n in per_shape.items():
                ids.append(len(commodities))
                commodities.append(_Commodity(shape, n * instances, spread_group=len(spreads)))
            spreads.append((instances, len(pg.bundles), ids))
        else:
            for bundle in pg.bundles:
                add(bundle, instances)

    # --- which new types may hold which commodity (the accelerator rule included)
    type_units = [t.resources.units for t in types]
    unlimited_plain = [
        i
        for i, t in enumerate(types)
        if not _uses_accelerator(t.resources) and room[t.name] is None and cluster_room is None
    ]

    def keep_off_accelerators(c: _Commodity) -> bool:
        if not accelerator_rule or c.total_capacity or _uses_accelerator(c.shape):
            return False
        units = c.shape.units
        return any(_fit(units, type_units[i]) > 0 for i in unlimited_plain)

    # --- existing nodes, grouped by the commodities one node can hold
    groups: dict[tuple[bool, tuple[int, ...]], _Group] = {}
    for node in request.nodes:
        node_type = request.node_types.get(node.node_type)
        total = node.total if node.total is not None else (node_type.resources if node_type else Resources())
        launching = node.status is NodeStatus.PENDING
        free = total if launching or node.available is None else node.available
        accelerator_node = launching and _uses_accelerator(total)
        for total_capacity, capacity in ((False, free), (True, total)):
            units = capacity.units
            fits = []
            for k, c in enumerate(commodities):
                if c.total_capacity != total_capacity:
                    continue
                if accelerator_node and keep_off_accelerators(c):
                    continue
                f = _fit(c.shape.units, units)
                if f:
                    fits.append((k, f))
            if not fits:
                continue
            key = (total_capacity, tuple(k for k, _ in fits))
            group = groups.setdefault(key, _Group())
            group.nodes += 1
            for name, amount in units.items():
                group.capacity[name] += amount
            for k, f in fits:
                group.fits[k] += f

    # --- variables
    n_types = len(types)
    columns: list[tuple[str, int, int]] = [("x", i, -1) for i in range(n_types)]
    lower: list[float] = []
    upper: list[float] = []
    for t in types:
        hi = room[t.name]
        lo = max(0, t.min_workers - existing_of[t.name])
        if hi is not None:
            lo = min(lo, hi)
        lower.append(float(lo))
        upper.append(np.inf if hi is None else float(hi))
    y_index: dict[tuple[int, int], int] = {}
    for k, c in enumerate(commodities):
        for i, t in enumerate(types):
            if _fit(c.shape.units, type_units[i]) == 0:
                continue
            if _uses_accelerator(t.resources) and keep_off_accelerators(c):
                continue
            y_index[(k, i)] = len(columns)
            columns.append(("y", k, i))
            lower.append(0.0)
            upper.append(np.inf)
    group_list = list(groups.items())
    z_index: dict[tuple[int, int], int] = {}
    for g, ((_, members), group) in enumerate(group_list):
        for k in members:
            z_index[(k, g)] = len(columns)
            columns.append(("z", k, g))
            lower.append(0.0)
            upper.append(float(group.fits[k]))

    # Anything that fits nowhere cannot be placed by any plan: drop it (as "infeasible").
    reachable = {k for k, _ in y_index} | {k for k, _ in z_index}
    dropped = sum(c.count for k, c in enumerate(commodities) if k not in reachable)

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    row_lo: list[float] = []
    row_hi: list[float] = []

    def row(entries: list[tuple[int, float]], lo: float, hi: float) -> None:
        r = len(row_lo)
        for col, val in entries:
            if val:
                rows.append(r)
                cols.append(col)
                vals.append(val)
        row_lo.append(lo)
        row_hi.append(hi)

    # 1. demand
    for k, c in enumerate(commodities):
        if k not in reachable:
            continue
        entries = [(col, 1.0) for (kk, _), col in y_index.items() if kk == k]
        entries += [(col, 1.0) for (kk, _), col in z_index.items() if kk == k]
        row(entries, float(c.count), float(c.count))

    # 2./3. new-node capacity, per type, separately for work and for request_resources
    resource_names = sorted({name for c in commodities for name in c.shape})
    for i in range(n_types):
        cap = type_units[i]
        for total_capacity in (False, True):
            ks = [k for (k, ii) in y_index if ii == i and commodities[k].total_capacity == total_capacity]
            if not ks:
                continue
            for name in resource_names:
                scale = float(cap.get(name, 0)) or 1.0
                entries = [(y_index[(k, i)], commodities[k].shape.units.get(name, 0) / scale) for k in ks]
                if any(v for _, v in entries):
                    row([*entries, (i, -cap.get(name, 0) / scale)], -np.inf, 0.0)
        for (k, ii), col in y_index.items():
            if ii == i:
                row([(col, 1.0), (i, -float(_fit(commodities[k].shape.units, type_units[i])))], -np.inf, 0.0)

    # 4. existing capacity
    for g, ((_, members), group) in enumerate(group_list):
        for name in resource_names:
            cap_units = group.capacity.get(name, 0)
            scale = float(cap_units) or 1.0
            entries = [(z_index[(k, g)], commodities[k].shape.units.get(name, 0) / scale) for k in members]
            if any(v for _, v in entries):
                row(entries, -np.inf, cap_units / scale)

    # 5. STRICT_SPREAD
    for instances, n_bundles, ids in spreads:
        for i in range(n_types):
            entries = [(y_index[(k, i)], 1.0) for k in ids if (k, i) in y_index]
            if entries:
                row([*entries, (i, -float(instances))], -np.inf, 0.0)
        for g, (_, group) in enumerate(group_list):
            entries = [(z_index[(k, g)], 1.0) for k in ids if (k, g) in z_index]
            if entries:
                row(entries, -np.inf, float(instances * group.nodes))
        holders = [i for i in range(n_types) if any((k, i) in y_index for k in ids)]
        existing_holders = sum(group.nodes for (_, members), group in group_list if any(k in members for k in ids))
        need = n_bundles - existing_holders
        if need > 0 and holders:
            row([(i, 1.0) for i in holders], float(need), np.inf)

    # 6. cluster max_workers
    if cluster_room is not None and n_types:
        row([(i, 1.0) for i in range(n_types)], -np.inf, float(cluster_room))

    cost = np.zeros(len(columns))
    for i, t in enumerate(types):
        cost[i] = t.cost
    if not row_lo:
        lp = float(sum(t.cost * lower[i] for i, t in enumerate(types)))
        return LowerBound(lp=lp, integral=lp, status="trivial")
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(row_lo), len(columns))).tocsr()
    lo_arr, hi_arr = np.array(row_lo), np.array(row_hi)
    bounds = list(zip(lower, [None if u == np.inf else u for u in upper], strict=True))
    eq = lo_arr == hi_arr
    ub_rows = ~eq & np.isfinite(hi_arr)
    lb_rows = ~eq & np.isfinite(lo_arr)
    a_ub = vstack([matrix[ub_rows], -matrix[lb_rows]]).tocsr()
    b_ub = np.concatenate([hi_arr[ub_rows], -lo_arr[lb_rows]])
    lp_result = linprog(
        cost,
        A_ub=a_ub if a_ub.shape[0] else None,
        b_ub=b_ub if a_ub.shape[0] else None,
        A_eq=matrix[eq] if eq.any() else None,
        b_eq=hi_arr[eq] if eq.any() else None,
        bounds=bounds,
        method="highs",
    )
    if lp_result.status != 0:
        return LowerBound(lp=0.0, integral=None, status=f"LP failed: {lp_result.message}")
    lp_value = float(lp_result.fun)
    status = "optimal" if not dropped else f"optimal ({dropped} units fit nowhere, left out)"
    if not integral:
        return LowerBound(lp=lp_value, integral=None, status=status)
    integrality = np.zeros(len(columns))
    integrality[:n_types] = 1
    mip = milp(
        cost,
        integrality=integrality,
        bounds=Bounds(np.array(lower), np.array(upper)),
        constraints=LinearConstraint(matrix, lo_arr, hi_arr),
        options={"time_limit": time_limit_s, "presolve": True},
    )
    integral_value: float | None = None
    if mip.status == 0 and mip.fun is not None:
        integral_value = float(mip.fun)
        gap = getattr(mip, "mip_dual_bound", None)
        if gap is not None and np.isfinite(gap):
            integral_value = min(integral_value, float(gap))  # the proven bound, not the incumbent
    elif getattr(mip, "mip_dual_bound", None) is not None and np.isfinite(mip.mip_dual_bound):
        integral_value = float(mip.mip_dual_bound)
        status += "; integer bound stopped at the time limit (dual bound used)"
    return LowerBound(lp=lp_value, integral=integral_value, status=status)
