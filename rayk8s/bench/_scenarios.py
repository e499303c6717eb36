"""Seeded scenario families for the scheduler benchmark.

Every generator takes a :class:`random.Random` (seeded from the scenario's family, sizes and
the suite seed, so a scenario is the same on every machine and in every run), the number of
pending demand units (tasks, or placement-group bundles) and the number of existing nodes,
and returns a :class:`~rayk8s.autoscaler.SchedulingRequest`. Demands are drawn one unit at a
time and then aggregated by shape, as the GCS aggregates Ray's pending tasks.

Families:

``uniform-cpu``
    Every task asks for ``{CPU: 1}``; general-purpose node types of three sizes.
``mixed``
    CPU/memory shapes of realistic sizes, one task in ten asks for GPUs.
``custom``
    Custom resources (local SSD slots, software licences, TPUs) next to plain CPU work.
``heavy-tailed``
    Pareto-distributed CPU and memory per task, rounded up to amounts people ask for
    (0.5, 1, 2, 4, ... CPUs; powers of two of GiB).
``pg-pack``, ``pg-spread``, ``pg-strict-pack``, ``pg-strict-spread``
    Placement groups of one strategy, 2 to 8 bundles each; the demand count is the
    number of bundles.
``fragmented``
    An existing cluster whose nodes have scattered free capacity (any CPU, memory and GPU
    amount free, some nodes still launching), and mixed demand that may or may not fit
    the holes.
``priced``
    Node types whose prices make the choice matter: a cheap small type, a middle type
    with the worst price per CPU, a big type with the best price per CPU, and a GPU type.

In the families other than ``fragmented``, existing nodes are a busy cluster: most nodes are
full, the rest have a little free room.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from rayk8s.autoscaler import (
    Node,
    NodeStatus,
    NodeType,
    PlacementGroup,
    PlacementStrategy,
    ResourceDemand,
    Resources,
    SchedulingRequest,
)

__all__ = [
    "FAMILIES",
    "FULL_GRID",
    "QUICK_GRID",
    "RSS_CASE",
    "BenchScenario",
    "generate",
    "suite",
]

GI = 2**30

#: One task's shape while generating: sorted ``(resource, amount)`` pairs (cheap to hash).
ShapeKey = tuple[tuple[str, float], ...]


@attrs.frozen
class BenchScenario:
    """One benchmark input: a scheduling request and how it was made.

    ``size`` is the nominal number of demand units asked for, ``units`` the number the
    request holds (tasks plus placement-group bundles; equal to ``size`` except for
    placement groups, whose last group may overshoot by a few bundles).
    """

    family: str
    size: int
    existing: int
    seed: int
    request: SchedulingRequest

    @property
    def name(self) -> str:
        return f"{self.family}/{self.size}/{self.existing}"

    @property
    def units(self) -> int:
        tasks = sum(d.count for d in self.request.demands)
        bundles = sum(len(pg.bundles) * pg.count for pg in self.request.placement_groups)
        return tasks + bundles

    @property
    def distinct_shapes(self) -> int:
        """Distinct task shapes plus distinct placement-group bundle shapes."""
        shapes = {d.shape for d in self.request.demands}
        shapes.update(b for pg in self.request.placement_groups for b in pg.bundles)
        return len(shapes)


# --- node type catalogues -------------------------------------------------------------


def _gi(n: float) -> int:
    return int(n * GI)


CPU_TYPES = (
    NodeType("cpu-4", {"CPU": 4, "memory": _gi(16)}, cost=0.20),
    NodeType("cpu-16", {"CPU": 16, "memory": _gi(64)}, cost=0.77),
    NodeType("cpu-64", {"CPU": 64, "memory": _gi(256)}, cost=3.00),
    NodeType("highmem-16", {"CPU": 16, "memory": _gi(128)}, cost=1.01),
)
GPU_TYPES = (
    NodeType("gpu-1", {"CPU": 8, "GPU": 1, "memory": _gi(60)}, cost=1.20),
    NodeType("gpu-4", {"CPU": 32, "GPU": 4, "memory": _gi(240)}, cost=4.50),
)
HEAVY_TYPES = (
    *CPU_TYPES,
    NodeType("highmem-64", {"CPU": 64, "memory": _gi(512)}, cost=4.00),
)
CUSTOM_TYPES = (
    NodeType("cpu-16", {"CPU": 16, "memory": _gi(64)}, cost=0.77),
    NodeType("ssd-16", {"CPU": 16, "memory": _gi(64), "local_ssd": 4}, cost=0.95),
    NodeType("licensed-8", {"CPU": 8, "memory": _gi(32), "matlab_license": 8}, cost=0.60),
    NodeType("tpu-host", {"CPU": 96, "memory": _gi(384), "TPU": 4}, cost=6.00),
)
PRICED_TYPES = (
    NodeType("small-2", {"CPU": 2, "memory": _gi(8)}, cost=0.10),  # cheap; 0.050 per CPU
    NodeType("std-8", {"CPU": 8, "memory": _gi(32)}, cost=0.48),  # worst: 0.060 per CPU
    NodeType("big-32", {"CPU": 32, "memory": _gi(128)}, cost=1.28),  # best: 0.040 per CPU
    NodeType("gpu-8", {"CPU": 8, "GPU": 1, "memory": _gi(32)}, cost=2.00),
)


# --- helpers --------------------------------------------------------------------------


def _key(shape: Mapping[str, float]) -> ShapeKey:
    return tuple(sorted((k, v) for k, v in shape.items() if v))


def _demands(keys: Iterable[ShapeKey]) -> list[ResourceDemand]:
    """Aggregate drawn task shapes into ``(shape, count)`` demands, in order of first draw."""
    return [ResourceDemand(Resources(dict(key)), count) for key, count in Counter(keys).items()]


def _busy_cluster(rng: random.Random, types: Sequence[NodeType], n: int) -> list[Node]:
    """``n`` running nodes of ``types``: 70% full, the rest with a little room (one quarter or less)."""
    nodes: list[Node] = []
    for i in range(n):
        node_type = types[rng.randrange(len(types))]
        free: dict[str, float] = {}
        if rng.random() >= 0.7:
            for name, amount in node_type.resources.items():
                if name == "memory":
                    free[name] = rng.randint(0, int(amount / GI) // 4) * GI
                elif amount >= 4:
                    free[name] = rng.randint(0, int(amount) // 4)
        nodes.append(Node(f"node-{i}", node_type.name, available=Resources(free)))
    return nodes


def _weighted(rng: random.Random, choices: Sequence[tuple[float, ShapeKey]]) -> ShapeKey:
    return rng.choices([c for _, c in choices], weights=[w for w, _ in choices])[0]


# --- families -------------------------------------------------------------------------


def uniform_cpu(rng: random.Random, size: int, existing: int) -> SchedulingRequest:
    shape = _key({"CPU": 1})
    types = (attrs.evolve(CPU_TYPES[0], min_workers=2), *CPU_TYPES[1:3])
    return SchedulingRequest(
        node_types=types,
        nodes=_busy_cluster(rng, types, existing),
        demands=_demands(shape for _ in range(size)),
    )


_MIXED_CPU = ((1.0, 0.5), (4.0, 1), (3.0, 2), (2.0, 4), (1.0, 8))
_MIXED_MEM_PER_CPU = ((1.0, 1), (3.0, 2), (3.0, 4), (1.0, 8))
_MIXED_GPU = (
    (4.0, _key({"CPU": 4, "GPU": 1, "memory": 16 * GI})),
    (2.0, _key({"CPU": 1, "GPU": 1, "memory": 8 * GI})),
    (1.0, _key({"CPU": 16, "GPU": 2, "memory": 100 * GI})),
    (1.0, _key({"CPU": 8, "GPU": 4, "memory": 200 * GI})),
)


def _mixed_shape(rng: random.Random, gpu_share: float) -> ShapeKey:
    if rng.random() < gpu_share:
        return _weighted(rng, _MIXED_GPU)
    cpu = rng.choices([c for _, c in _MIXED_CPU], weights=[w for w, _ in _MIXED_CPU])[0]
    per_cpu = rng.choices([m for _, m in _MIXED_MEM_PER_CPU], weights=[w for w, _ in _MIXED_MEM_PER_CPU])[0]
    return _key({"CPU": cpu, "memory": max(1, int(cpu * per_cpu)) * GI})


def mixed(rng: random.Random, size: int, existing: int) -> SchedulingRequest:
    types = (*CPU_TYPES, *GPU_TYPES)
    return SchedulingRequest(
        node_types=types,
        nodes=_busy_cluster(rng, types, existing),
        demands=_demands(_mixed_shape(rng, 0.1) for _ in range(size)),
    )


_CUSTOM = (
    (40.0, _key({"CPU": 1, "memory": 2 * GI})),
    (20.0, _key({"CPU": 4, "memory": 8 * GI})),
    (15.0, _key({"CPU": 2, "memory": 8 * GI, "local_ssd": 1})),
    (10.0, _key({"CPU": 1, "memory": 4 * GI, "matlab_license": 1})),
    (5.0, _key({"CPU": 0.5, "matlab_license": 2})),
    (6.0, _key({"CPU": 8, "memory": 32 * GI, "TPU": 1})),
    (4.0, _key({"CPU": 32, "memory": 128 * GI, "TPU": 4})),
)


def custom(rng: random.Random, size: int, existing: int) -> SchedulingRequest:
    return SchedulingRequest(
        node_types=CUSTOM_TYPES,
        nodes=_busy_cluster(rng, CUSTOM_TYPES, existing),
        demands=_demands(_weighted(rng, _CUSTOM) for _ in range(size)),
    )


_CPU_STEPS = (0.5, 1, 2, 4, 8, 16, 32, 48, 64)


def _round_up(value: float, steps: Sequence[float]) -> float:
    for step in steps:
        if value <= step:
            return step
    return steps[-1]


def _heavy_shape(rng: random.Random) -> ShapeKey:
    cpu = _round_up(0.5 * rng.paretovariate(1.3), _CPU_STEPS)
    gib_per_cpu = min(8.0, 1.5 * rng.paretovariate(1.5))
    memory_gib = min(512, 2 ** math.ceil(math.log2(max(1.0, cpu * gib_per_cpu))))
    return _key({"CPU": cpu, "memory": memory_gib * GI})


def heavy_tailed(rng: random.Random, size: int, existing: int) -> SchedulingRequest:
    return SchedulingRequest(
        node_types=HEAVY_TYPES,
        nodes=_busy_cluster(rng, HEAVY_TYPES, existing),
        demands=_demands(_heavy_shape(rng) for _ in range(size)),
    )


_BUNDLES: tuple[tuple[float, Mapping[str, float]], ...] = (
    (5.0, {"CPU": 1}),
    (3.0, {"CPU": 2, "memory": 4 * GI}),
    (2.0, {"CPU": 4, "memory": 16 * GI}),
    (1.0, {"CPU": 8, "memory": 32 * GI}),
    (1.0, {"CPU": 4, "GPU": 1, "memory": 16 * GI}),
)


def _placement_groups(strategy: PlacementStrategy) -> Callable[[random.Random, int, int], SchedulingRequest]:
    def generate(rng: random.Random, size: int, existing: int) -> SchedulingRequest:
        types = (*CPU_TYPES, *GPU_TYPES)
        groups: Counter[tuple[ShapeKey, ...]] = Counter()
        bundles = 0
        while bundles < size:
            n = rng.choice((2, 2, 4, 4, 4, 8))
            if strategy is PlacementStrategy.STRICT_PACK:
                n = min(n, 4)  # the summed group must fit one node
            shape = _weighted(rng, [(w, _key(b)) for w, b in _BUNDLES])
            if strategy is PlacementStrategy.STRICT_PACK and n * dict(shape)["CPU"] > 32:
                n = max(1, int(32 // dict(shape)["CPU"]))
            group = tuple(shape for _ in range(n))
            if rng.random() < 0.5:  # half the groups lead with a small driver bundle
                group = (_key({"CPU": 1, "memory": 2 * GI}), *group[1:])
            groups[group] += 1
            bundles += n
        pgs = [
            PlacementGroup(
                bundles=[Resources(dict(b)) for b in group],
                strategy=strategy,
                count=count,
                name=f"{strategy.value.lower().replace('_', '-')}-{i}",
            )
            for i, (group, count) in enumerate(groups.items())
        ]
        return SchedulingRequest(
            node_types=types,
            nodes=_busy_cluster(rng, types, existing),
            placement_groups=pgs,
        )

    return generate


def _fragmented_cluster(rng: random.Random, types: Sequence[NodeType], n: int) -> list[Node]:
    """``n`` nodes with scattered free capacity; one in fifty is still launching.

    Each resource's free share is drawn on its own, skewed low (``u**3``, a fifth free on
    average): a node may have CPUs but no memory free, or the other way round.
    """
    nodes: list[Node] = []
    for i in range(n):
        node_type = types[rng.randrange(len(types))]
        if rng.random() < 0.02:
            nodes.append(Node(f"node-{i}", node_type.name, status=NodeStatus.PENDING))
            continue
        free: dict[str, float] = {}
        for name, amount in node_type.resources.items():
            share = rng.random() ** 3
            if name == "memory":
                free[name] = int(share * amount / GI) * GI
            elif name == "CPU":
                free[name] = int(share * amount * 2) / 2
            else:
                free[name] = int(share * (amount + 1))
        nodes.append(Node(f"node-{i}", node_type.name, available=Resources(free)))
    return nodes


def fragmented(rng: random.Random, size: int, existing: int) -> SchedulingRequest:
    types = (*CPU_TYPES, *GPU_TYPES)
    return SchedulingRequest(
        node_types=types,
        nodes=_fragmented_cluster(rng, types, existing),
        demands=_demands(_mixed_shape(rng, 0.05) for _ in range(size)),
    )


_PRICED = (
    (45.0, _key({"CPU": 1, "memory": 2 * GI})),
    (30.0, _key({"CPU": 2, "memory": 4 * GI})),
    (15.0, _key({"CPU": 4, "memory": 16 * GI})),
    (5.0, _key({"CPU": 0.5, "memory": 1 * GI})),
    (5.0, _key({"CPU": 2, "GPU": 1, "memory": 8 * GI})),
)


def priced(rng: random.Random, size: int, existing: int) -> SchedulingRequest:
    return SchedulingRequest(
        node_types=PRICED_TYPES,
        nodes=_busy_cluster(rng, PRICED_TYPES, existing),
        demands=_demands(_weighted(rng, _PRICED) for _ in range(size)),
    )


#: Family name -> generator ``(rng, size, existing) -> SchedulingRequest``.
FAMILIES: dict[str, Callable[[random.Random, int, int], SchedulingRequest]] = {
    "uniform-cpu": uniform_cpu,
    "mixed": mixed,
    "custom": custom,
    "heavy-tailed": heavy_tailed,
    "pg-pack": _placement_groups(PlacementStrategy.PACK),
    "pg-spread": _placement_groups(PlacementStrategy.SPREAD),
    "pg-strict-pack": _placement_groups(PlacementStrategy.STRICT_PACK),
    "pg-strict-spread": _placement_groups(PlacementStrategy.STRICT_SPREAD),
    "fragmented": fragmented,
    "priced": priced,
}

#: ``(family, demand units, existing nodes)`` of the full run. Every family at 100, 1k and
#: 10k demands; 100k demands for the families where size matters most, including the
#: headline case of 100k demands over 5,000 existing nodes.
FULL_GRID: tuple[tuple[str, int, int], ...] = (
    ("uniform-cpu", 100, 0),
    ("uniform-cpu", 1_000, 100),
    ("uniform-cpu", 10_000, 1_000),
    ("uniform-cpu", 100_000, 5_000),
    ("mixed", 100, 0),
    ("mixed", 1_000, 100),
    ("mixed", 10_000, 1_000),
    ("mixed", 100_000, 5_000),
    ("custom", 100, 0),
    ("custom", 1_000, 100),
    ("custom", 10_000, 0),
    ("heavy-tailed", 100, 0),
    ("heavy-tailed", 1_000, 100),
    ("heavy-tailed", 10_000, 1_000),
    ("heavy-tailed", 100_000, 0),
    ("pg-pack", 100, 0),
    ("pg-pack", 1_000, 100),
    ("pg-pack", 10_000, 0),
    ("pg-spread", 100, 0),
    ("pg-spread", 1_000, 100),
    ("pg-spread", 10_000, 0),
    ("pg-strict-pack", 100, 0),
    ("pg-strict-pack", 1_000, 100),
    ("pg-strict-pack", 10_000, 0),
    ("pg-strict-spread", 100, 0),
    ("pg-strict-spread", 1_000, 100),
    ("pg-strict-spread", 10_000, 0),
    ("fragmented", 100, 100),
    ("fragmented", 1_000, 1_000),
    ("fragmented", 10_000, 5_000),
    ("fragmented", 100_000, 5_000),
    ("priced", 100, 0),
    ("priced", 1_000, 100),
    ("priced", 10_000, 1_000),
    ("priced", 100_000, 1_000),
)

#: The quick run (CI-ish, under a minute): every family at 100 and 1k demands.
QUICK_GRID: tuple[tuple[str, int, int], ...] = tuple(
    (family, size, existing) for family, size, existing in FULL_GRID if size <= 1_000
)

#: The case whose time and peak RSS are checked against the target, in a fresh process.
RSS_CASE: tuple[str, int, int] = ("mixed", 100_000, 5_000)


def generate(family: str, size: int, existing: int, seed: int = 0) -> BenchScenario:
    """Generate one scenario; the same arguments always give an equal request."""
    if family not in FAMILIES:
        raise KeyError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    rng = random.Random(f"{seed}:{family}:{size}:{existing}")
    request = FAMILIES[family](rng, size, existing)
    return BenchScenario(family=family, size=size, existing=existing, seed=seed, request=request)


def suite(*, quick: bool = False, families: Iterable[str] | None = None, seed: int = 0) -> list[BenchScenario]:
    """The scenarios of the full (or quick) grid, optionally only some families."""
    wanted = set(families) if families is not None else None
    grid = QUICK_GRID if quick else FULL_GRID
    return [generate(f, s, e, seed) for f, s, e in grid if wanted is None or f in wanted]
