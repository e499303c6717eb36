"""Hypothesis properties of ``schedule``: the invariants that hold for every input."""

from __future__ import annotations

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rayk8s.autoscaler import (
    DemandKind,
    Node,
    NodeType,
    PlacementGroup,
    ResourceDemand,
    ResourceRequest,
    Resources,
    SchedulingRequest,
    schedule,
    verify,
)

GiB = 2**30
PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def resources(draw: st.DrawFn, *, gpu: bool, small: bool) -> dict[str, float]:
    cpu = draw(st.sampled_from([0.5, 1, 2, 3, 4] if small else [2, 4, 8, 16]))
    out: dict[str, float] = {"CPU": cpu}
    if draw(st.booleans()):
        out["memory"] = draw(st.integers(1, 8 if small else 64)) * GiB
    if gpu and draw(st.booleans()):
        out["GPU"] = draw(st.integers(1, 2))
    if draw(st.integers(0, 5)) == 0:
        out["custom"] = draw(st.integers(1, 3))
    return out


@st.composite
def requests(draw: st.DrawFn) -> SchedulingRequest:
    type_count = draw(st.integers(1, 4))
    node_types = []
    for index in range(type_count):
        min_workers = draw(st.integers(0, 2))
        max_workers = draw(st.one_of(st.none(), st.integers(min_workers, 8)))
        cost = draw(st.sampled_from([0.5, 1.0, 1.0, 2.5, 7.0]))
        node_types.append(NodeType(f"t{index}", draw(resources(gpu=True, small=False)), min_workers, max_workers, cost))
    nodes = []
    for index in range(draw(st.integers(0, 6))):
        node_type = draw(st.sampled_from(node_types))
        status = draw(st.sampled_from(["running", "running", "pending"]))
        total = node_type.resources
        available = {name: draw(st.sampled_from([0, amount / 2, amount])) for name, amount in total.items()}
        nodes.append(Node(f"n{index}", node_type.name, status, available, is_head=index == 0 and draw(st.booleans())))
    demands = [
        ResourceDemand(draw(resources(gpu=True, small=True)), draw(st.integers(1, 40)))
        for _ in range(draw(st.integers(0, 4)))
    ]
    groups = [
        PlacementGroup(
            [draw(resources(gpu=False, small=True)) for _ in range(draw(st.integers(1, 4)))],
            draw(st.sampled_from(["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"])),
            draw(st.integers(1, 3)),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    asks = [
        ResourceRequest(draw(resources(gpu=False, small=True)), draw(st.integers(1, 10)))
        for _ in range(draw(st.integers(0, 2)))
    ]
    max_workers = draw(st.one_of(st.none(), st.integers(0, 20)))
    unavailable = draw(st.sets(st.sampled_from([t.name for t in node_types]), max_size=1))
    return SchedulingRequest(node_types, nodes, demands, groups, asks, max_workers, unavailable)


def headroom(request: SchedulingRequest, launch: dict[str, int], node_type: NodeType) -> int:
    workers = [n for n in request.nodes if not n.is_head]
    room = 1 << 30
    if node_type.max_workers is not None:
        room = (
            node_type.max_workers
            - sum(1 for n in workers if n.node_type == node_type.name)
            - launch.get(node_type.name, 0)
        )
    if request.max_workers is not None:
        room = min(room, request.max_workers - len(workers) - sum(launch.values()))
    return room


@PROFILE
@given(requests())
def test_decisions_respect_capacity_limits_strategies_and_counts(request: SchedulingRequest) -> None:
    """Every decision passes the independent checker: capacities, limits, strategies, counts."""
    assert verify(request, schedule(request)) == []


@PROFILE
@given(requests())
def test_same_input_same_output(request: SchedulingRequest) -> None:
    """schedule() is a pure function: the same request gives an equal result."""
    assert schedule(request) == schedule(request)


@PROFILE
@given(requests())
def test_no_feasible_demand_left_while_a_type_with_headroom_could_hold_it(request: SchedulingRequest) -> None:
    """Unfulfilled tasks and requests: no launchable type with headroom left could hold them."""
    result = schedule(request)
    for missing in result.unfulfilled:
        if missing.kind is DemandKind.PLACEMENT_GROUP or missing.shape is None:
            continue
        for node_type in request.node_types.values():
            if node_type.name in request.unavailable_node_types:
                continue
            if missing.shape.fits_in(node_type.resources) and headroom(request, dict(result.launch), node_type) > 0:
                raise AssertionError(f"{missing} left unfulfilled though {node_type.name} has headroom")


@PROFILE
@given(requests())
def test_replanning_with_the_chosen_nodes_pending_launches_nothing(request: SchedulingRequest) -> None:
    """Launching what a decision asked for, then deciding again, asks for nothing more."""
    first = schedule(request)
    launched = [
        Node(f"launched-{group.id}-{i}", group.node_type, "pending")
        for group in first.new_nodes
        for i in range(group.count)
    ]
    again = SchedulingRequest(
        request.node_types,
        (*request.nodes, *launched),
        request.demands,
        request.placement_groups,
        request.resource_requests,
        request.max_workers,
        request.unavailable_node_types,
    )
    second = schedule(again)
    assert dict(second.launch) == {}, (dict(first.launch), dict(second.launch))


def plain_room(request: SchedulingRequest, launch: dict[str, int], shape: Resources) -> str | None:
    """A plain (GPU-less) launchable type with headroom left that could hold ``shape``."""
    for other in request.node_types.values():
        plain = "GPU" not in other.resources and other.name not in request.unavailable_node_types
        if plain and shape.fits_in(other.resources) and headroom(request, launch, other) > 0:
            return other.name
    return None


@PROFILE
@given(requests())
def test_isolated_accelerators_hold_no_plain_work(request: SchedulingRequest) -> None:
    """With isolate_accelerators, CPU work lands on a new GPU node only if no plain type with room holds it."""
    request = attrs.evolve(request, isolate_accelerators=True)
    result = schedule(request)
    assert verify(request, result) == []
    launch = dict(result.launch)
    for group in result.new_nodes:
        if "GPU" not in request.node_types[group.node_type].resources:
            continue
        for item in group.assigned:
            if "GPU" not in item.shape:
                other = plain_room(request, launch, item.shape)
                assert other is None, f"{item.shape} on new {group.node_type} though {other} has room"


def test_resources_sum_exactly() -> None:
    """Ten tenths of a CPU are exactly one CPU (fixed-point amounts never drift)."""
    total = Resources()
    for _ in range(10):
        total = total + Resources({"CPU": 0.1})
    assert total == Resources({"CPU": 1})
