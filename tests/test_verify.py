"""verify(), the independent decision checker: it passes sound decisions and catches broken ones.

The results here are built by hand, so these tests do not depend on the scheduler.
"""

from __future__ import annotations

import attrs
import pytest

from rayk8s.autoscaler import (
    BundlePlacement,
    DemandKind,
    ExistingNodeAssignment,
    LaunchReason,
    NewNodeGroup,
    Node,
    NodeStatus,
    NodeType,
    PlacementGroup,
    ResourceDemand,
    Resources,
    SchedulingRequest,
    SchedulingResult,
    ShapeCount,
    Unfulfilled,
    UnfulfilledReason,
    verify,
)

CPU1 = Resources({"CPU": 1})
CPU2 = Resources({"CPU": 2})
TYPES = (
    NodeType("small", {"CPU": 4}, max_workers=3, cost=1.0),
    NodeType("big", {"CPU": 16}, cost=3.0),
)


def request(**changes: object) -> SchedulingRequest:
    base = SchedulingRequest(
        node_types=TYPES,
        nodes=[Node("w-1", "small", available={"CPU": 1})],
        demands=[ResourceDemand(CPU1, 5)],
    )
    return attrs.evolve(base, **changes)


def new(
    group_id: str,
    node_type: str,
    count: int,
    *items: ShapeCount,
    cost: float = 1.0,
    bundles: tuple[BundlePlacement, ...] = (),
    reason: LaunchReason = LaunchReason.DEMAND,
) -> NewNodeGroup:
    return NewNodeGroup(group_id, node_type, count, reason, assigned=items, bundles=bundles, cost_per_node=cost)


def result(
    groups: tuple[NewNodeGroup, ...],
    existing: dict[str, ExistingNodeAssignment] | None = None,
    unfulfilled: tuple[Unfulfilled, ...] = (),
    cost: float | None = None,
) -> SchedulingResult:
    launch: dict[str, int] = {}
    total = 0.0
    for g in groups:
        launch[g.node_type] = launch.get(g.node_type, 0) + g.count
        total += g.cost_per_node * g.count
    return SchedulingResult(launch, groups, existing or {}, unfulfilled, total if cost is None else cost)


def good() -> SchedulingResult:
    """Five CPU:1 tasks: one in the free CPU of w-1, four on one new small node."""
    return result(
        (new("new-1", "small", 1, ShapeCount(CPU1, 4)),),
        {"w-1": ExistingNodeAssignment("w-1", "small", assigned=(ShapeCount(CPU1, 1),))},
    )


def test_a_sound_decision_has_no_violations() -> None:
    """Placed + unfulfilled add up, capacities hold, launch and cost match: nothing reported."""
    assert verify(request(), good()) == []


def test_unfulfilled_work_counts_towards_the_demand() -> None:
    """Work reported unfulfilled instead of placed still adds up."""
    decision = result(
        (new("new-1", "small", 1, ShapeCount(CPU1, 3)),),
        {"w-1": ExistingNodeAssignment("w-1", "small", assigned=(ShapeCount(CPU1, 1),))},
        (Unfulfilled(DemandKind.DEMAND, 1, UnfulfilledReason.MAX_WORKERS, "cap", shape=CPU1),),
    )
    assert verify(request(), decision) == []


def test_a_pending_node_counts_with_its_full_capacity() -> None:
    """A launching node's 'available' is ignored: it can take its type's full resources."""
    req = request(
        nodes=[Node("w-1", "small", status=NodeStatus.PENDING, available={})], demands=[ResourceDemand(CPU1, 4)]
    )
    decision = result((), {"w-1": ExistingNodeAssignment("w-1", "small", assigned=(ShapeCount(CPU1, 4),))})
    assert verify(req, decision) == []


def test_more_work_than_a_new_node_holds_is_caught() -> None:
    decision = result(
        (new("new-1", "small", 1, ShapeCount(CPU1, 5)),),
    )
    problems = verify(request(), decision)
    assert any("type small has" in p for p in problems), problems


def test_more_work_than_an_existing_nodes_free_capacity_is_caught() -> None:
    decision = result(
        (new("new-1", "small", 1, ShapeCount(CPU1, 3)),),
        {"w-1": ExistingNodeAssignment("w-1", "small", assigned=(ShapeCount(CPU1, 2),))},
    )
    problems = verify(request(), decision)
    assert any(" free" in p for p in problems), problems


def test_lost_work_is_caught() -> None:
    """A task neither placed nor reported unfulfilled breaks the count."""
    decision = result(
        (new("new-1", "small", 1, ShapeCount(CPU1, 3)),),
        {"w-1": ExistingNodeAssignment("w-1", "small", assigned=(ShapeCount(CPU1, 1),))},
    )
    problems = verify(request(), decision)
    assert any("5 wanted, 4 placed" in p for p in problems), problems


def test_launch_and_cost_must_match_the_groups() -> None:
    decision = attrs.evolve(good(), launch={"small": 2}, cost=7.0)
    problems = verify(request(), decision)
    assert any(p.startswith("launch ") for p in problems), problems
    assert any(p.startswith("cost ") for p in problems), problems


def test_max_workers_and_unavailable_types_are_enforced() -> None:
    """Three new small nodes next to one existing exceed max_workers 3; an unavailable type is never launched."""
    decision = result((new("new-1", "small", 3, ShapeCount(CPU1, 2)),), cost=3.0)
    decision = attrs.evolve(decision, unfulfilled=())
    problems = verify(request(demands=[ResourceDemand(CPU1, 6)]), decision)
    assert any("exceeds max_workers 3" in p for p in problems), problems
    unavailable = verify(request(unavailable_node_types={"small"}), good())
    assert any("unavailable" in p for p in unavailable), unavailable


def test_min_workers_must_be_launched() -> None:
    types = (attrs.evolve(TYPES[0], min_workers=3), TYPES[1])
    problems = verify(request(node_types=types), good())
    assert any("below min_workers 3" in p for p in problems), problems


def test_a_feasible_shape_called_infeasible_is_caught() -> None:
    decision = result(
        (new("new-1", "small", 1, ShapeCount(CPU1, 3)),),
        {"w-1": ExistingNodeAssignment("w-1", "small", assigned=(ShapeCount(CPU1, 1),))},
        (Unfulfilled(DemandKind.DEMAND, 1, UnfulfilledReason.INFEASIBLE, "no", shape=CPU1),),
    )
    problems = verify(request(), decision)
    assert any("called infeasible" in p for p in problems), problems


def pg_request(strategy: str, count: int = 1) -> SchedulingRequest:
    return request(
        nodes=[],
        demands=[],
        placement_groups=[PlacementGroup([CPU2, CPU2], strategy=strategy, count=count, name="g")],
    )


def bundle(instance: int, index: int) -> BundlePlacement:
    return BundlePlacement("g", instance, index, CPU2)


@pytest.mark.parametrize(
    ("strategy", "together", "ok"),
    [
        ("STRICT_PACK", True, True),
        ("STRICT_PACK", False, False),
        ("STRICT_SPREAD", False, True),
        ("STRICT_SPREAD", True, False),
        ("PACK", False, True),
        ("SPREAD", True, True),
    ],
)
def test_placement_strategies(strategy: str, together: bool, ok: bool) -> None:
    """STRICT_PACK needs one node per instance, STRICT_SPREAD distinct nodes; PACK and SPREAD are soft."""
    if together:
        groups: tuple[NewNodeGroup, ...] = (
            new("new-1", "small", 1, bundles=(bundle(0, 0), bundle(0, 1)), reason=LaunchReason.PLACEMENT_GROUP),
        )
    else:
        groups = (
            new("new-1", "small", 1, bundles=(bundle(0, 0),), reason=LaunchReason.PLACEMENT_GROUP),
            new("new-2", "small", 1, bundles=(bundle(0, 1),), reason=LaunchReason.PLACEMENT_GROUP),
        )
    problems = verify(pg_request(strategy), result(groups))
    assert (problems == []) is ok, problems


def test_a_placement_group_is_placed_whole_or_not_at_all() -> None:
    """Half an instance placed, or an instance both placed and reported, is caught."""
    half = result((new("new-1", "small", 1, bundles=(bundle(0, 0),), reason=LaunchReason.PLACEMENT_GROUP),))
    problems = verify(pg_request("PACK"), half)
    assert any("not all 2" in p for p in problems), problems

    whole = (new("new-1", "small", 1, bundles=(bundle(0, 0), bundle(0, 1)), reason=LaunchReason.PLACEMENT_GROUP),)
    reported = (
        Unfulfilled(DemandKind.PLACEMENT_GROUP, 1, UnfulfilledReason.MAX_WORKERS, "cap", pg="g", bundles=(CPU2, CPU2)),
    )
    assert verify(pg_request("PACK", count=2), result(whole, unfulfilled=reported)) == []
    problems = verify(pg_request("PACK", count=1), result(whole, unfulfilled=reported))
    assert any("1 placed + 1 unfulfilled != 1" in p for p in problems), problems


def test_a_group_holding_bundles_has_count_one() -> None:
    groups = (new("new-1", "small", 2, bundles=(bundle(0, 0), bundle(0, 1)), reason=LaunchReason.PLACEMENT_GROUP),)
    problems = verify(pg_request("PACK"), result(groups))
    assert any("has count 2" in p for p in problems), problems


def test_an_empty_node_launched_for_demand_is_waste() -> None:
    groups = (new("new-1", "small", 1, ShapeCount(CPU1, 4)), new("new-2", "big", 1, cost=3.0))
    decision = result(groups, {"w-1": ExistingNodeAssignment("w-1", "small", assigned=(ShapeCount(CPU1, 1),))})
    problems = verify(request(), decision)
    assert any("hold nothing" in p for p in problems), problems
