"""The benchmark harness: deterministic scenarios, a lower bound that is a bound, sound decisions.

No timing is asserted here; the benchmark itself measures speed.
"""

from __future__ import annotations

import importlib.util

import attrs
import pytest

from benchmarks.lower_bound import lower_bound, placed_from_result
from benchmarks.scenarios import FAMILIES, QUICK_GRID, generate
from rayk8s.autoscaler import (
    Node,
    NodeType,
    PlacementGroup,
    ResourceDemand,
    SchedulingRequest,
    schedule,
    verify,
)

SMALLEST = sorted({family: (size, existing) for family, size, existing in reversed(QUICK_GRID)}.items())


@pytest.mark.parametrize(("family", "sizes"), SMALLEST)
def test_scenarios_are_deterministic(family: str, sizes: tuple[int, int]) -> None:
    """The same family, sizes and seed give an equal request."""
    size, existing = sizes
    first = generate(family, size, existing, seed=0)
    again = generate(family, size, existing, seed=0)
    assert first.request == again.request
    assert first.units >= size
    assert len(first.request.nodes) == existing


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_seed_matters(family: str) -> None:
    """Another seed gives another request (the generators do draw from the seeded Random)."""
    assert generate(family, 1_000, 100, seed=0).request != generate(family, 1_000, 100, seed=1).request


def test_every_family_is_in_the_quick_grid() -> None:
    assert {family for family, _, _ in QUICK_GRID} == set(FAMILIES)


@pytest.mark.parametrize(("family", "size", "existing"), QUICK_GRID)
def test_the_scheduler_is_sound_on_the_quick_suite(family: str, size: int, existing: int) -> None:
    """The independent checker finds nothing wrong with the scheduler's decisions."""
    request = generate(family, size, existing).request
    assert verify(request, schedule(request)) == []


# --- the lower bound -------------------------------------------------------------------------

needs_scipy = pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="the bound needs scipy (.[bench])")
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs ray (.[bench])")
SMALL = NodeType("small", {"CPU": 4}, cost=1.0)
BIG = NodeType("big", {"CPU": 16}, cost=3.0)


@needs_scipy
def test_bound_on_a_hand_computed_case() -> None:
    """10 one-CPU tasks: the LP buys 10/16 of a big node (1.875); with whole nodes, 3.0."""
    request = SchedulingRequest(node_types=[SMALL, BIG], demands=[ResourceDemand({"CPU": 1}, 10)])
    bound = lower_bound(request)
    assert bound.lp == pytest.approx(1.875)
    assert bound.integral == pytest.approx(3.0)
    assert bound.value == pytest.approx(3.0)


@needs_scipy
def test_free_capacity_counts_only_where_a_unit_fits() -> None:
    """Four nodes with 1.5 CPUs free hold 6 CPUs, but no 2-CPU task fits any of them."""
    nodes = [Node(f"n{i}", "small", available={"CPU": 1.5}) for i in range(4)]
    fits = SchedulingRequest(node_types=[SMALL], nodes=nodes, demands=[ResourceDemand({"CPU": 1}, 4)])
    assert lower_bound(fits).value == pytest.approx(0.0)
    does_not = SchedulingRequest(node_types=[SMALL], nodes=nodes, demands=[ResourceDemand({"CPU": 2}, 3)])
    assert lower_bound(does_not).value == pytest.approx(2.0)


@needs_scipy
def test_strict_spread_needs_a_node_per_bundle() -> None:
    """Four one-CPU bundles spread strictly need four small nodes, not one."""
    request = SchedulingRequest(
        node_types=[SMALL],
        placement_groups=[PlacementGroup([{"CPU": 1}] * 4, strategy="STRICT_SPREAD")],
    )
    assert lower_bound(request).value == pytest.approx(4.0)
    packed = SchedulingRequest(node_types=[SMALL], placement_groups=[PlacementGroup([{"CPU": 1}] * 4)])
    assert lower_bound(packed).value == pytest.approx(1.0)


@needs_scipy
def test_accelerator_rule() -> None:
    """With isolate_accelerators, CPU work stays off a new GPU node while a CPU type holds it."""
    gpu = NodeType("gpu", {"CPU": 8, "GPU": 1}, cost=2.0)
    request = SchedulingRequest(
        node_types=[SMALL, gpu],
        demands=[ResourceDemand({"CPU": 1, "GPU": 1}, 1), ResourceDemand({"CPU": 4}, 1)],
    )
    assert lower_bound(request).value == pytest.approx(2.0)  # the default: CPU work may fill the GPU node
    assert lower_bound(request, accelerator_rule=True).value == pytest.approx(3.0)
    isolated = attrs.evolve(request, isolate_accelerators=True)
    assert lower_bound(isolated).value == pytest.approx(3.0)


@needs_scipy
@pytest.mark.parametrize(("family", "size", "existing"), QUICK_GRID)
def test_the_bound_never_exceeds_a_real_plan(family: str, size: int, existing: int) -> None:
    """The scheduler's plan is a real plan placing what it placed, so the bound is at most its cost."""
    request = generate(family, size, existing).request
    result = schedule(request)
    bound = lower_bound(request, placed_from_result(request, result))
    assert bound.value <= result.cost + 1e-6


# --- the Ray v1 adapter ----------------------------------------------------------------------


@needs_ray
def test_ray_v1_plans_for_the_whole_demand_untruncated_and_for_1000_entries_capped() -> None:
    """Untruncated, Ray v1 sees every task and its plan holds them; capped, it sees 1000 entries."""
    from benchmarks.ray_v1 import coverage, run_ray_v1

    request = generate("uniform-cpu", 1_000, 0).request
    small = generate("priced", 100, 0).request
    full = run_ray_v1(small)
    assert full.entries == 100
    assert full.unfulfilled_entries == 0
    assert full.nodes > 0
    assert coverage(small, full.launch) == pytest.approx(1.0)

    big = generate("uniform-cpu", 10_000, 0).request
    capped = run_ray_v1(big, cap=1000)
    assert capped.entries == 1000
    assert coverage(big, capped.launch) < 0.5
    assert coverage(request, {}) == pytest.approx(0.0)
