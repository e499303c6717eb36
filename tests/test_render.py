"""The text form of a decision: compact tables that say what launches, why, and where work lands."""

from __future__ import annotations

import re

from rayk8s.autoscaler import (
    BundlePlacement,
    DemandKind,
    ExistingNodeAssignment,
    LaunchReason,
    NewNodeGroup,
    Node,
    NodeType,
    PlacementGroup,
    PlacementStrategy,
    ResourceDemand,
    Resources,
    SchedulingRequest,
    SchedulingResult,
    ShapeCount,
    Unfulfilled,
    UnfulfilledReason,
    render_result_text,
)

CPU1 = Resources({"CPU": 1})
GPU1 = Resources({"CPU": 2, "GPU": 1})


def _request(nodes: int = 2) -> SchedulingRequest:
    return SchedulingRequest(
        node_types=[
            NodeType("cpu", {"CPU": 4, "memory": "16Gi"}, max_workers=100, cost=0.25),
            NodeType("gpu", {"CPU": 8, "GPU": 1}, max_workers=2, cost=2.5),
        ],
        nodes=[Node(f"w-{i}", "cpu", available={"CPU": 2}) for i in range(nodes)],
        demands=[ResourceDemand(CPU1, 20), ResourceDemand(GPU1, 3), ResourceDemand({"GPU": 16}, 1)],
        placement_groups=[
            PlacementGroup([{"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}], PlacementStrategy.PACK, name="t")
        ],
    )


def _result(existing: int = 2, kinds: int = 1) -> SchedulingResult:
    """A decision; existing node ``w-i`` is given ``i % kinds + 2`` one-CPU tasks."""
    groups = (
        NewNodeGroup("new-1", "cpu", 4, LaunchReason.DEMAND, assigned=(ShapeCount(CPU1, 4),), cost_per_node=0.25),
        NewNodeGroup(
            "new-2",
            "gpu",
            1,
            LaunchReason.PLACEMENT_GROUP,
            bundles=(
                BundlePlacement("t", 0, 0, Resources({"CPU": 1, "GPU": 1})),
                BundlePlacement("t", 0, 1, Resources({"CPU": 1, "GPU": 1})),
            ),
            cost_per_node=2.5,
        ),
        NewNodeGroup("new-3", "gpu", 1, LaunchReason.DEMAND, assigned=(ShapeCount(GPU1, 1),), cost_per_node=2.5),
        NewNodeGroup("new-4", "cpu", 1, LaunchReason.MIN_WORKERS, cost_per_node=0.25),
    )
    return SchedulingResult(
        launch={"cpu": 5, "gpu": 2},
        new_nodes=groups,
        existing={
            f"w-{i}": ExistingNodeAssignment(f"w-{i}", "cpu", assigned=(ShapeCount(CPU1, i % kinds + 2),))
            for i in range(existing)
        },
        unfulfilled=(
            Unfulfilled(DemandKind.DEMAND, 2, UnfulfilledReason.MAX_WORKERS, "gpu max_workers 2 reached", shape=GPU1),
            Unfulfilled(
                DemandKind.DEMAND,
                1,
                UnfulfilledReason.INFEASIBLE,
                "no node type has 16 GPU",
                shape=Resources({"GPU": 16}),
            ),
        ),
        cost=6.25,
    )


def test_launch_table_has_count_cost_and_reasons_per_type() -> None:
    """Each launched type is one row: node count, its cost and the reasons with node counts."""
    text = render_result_text(_result(), _request())
    assert "Launch: 7 new nodes, cost 6.25/h" in text
    lines = text.splitlines()
    cpu_row = next(line for line in lines if line.split()[:1] == ["cpu"])
    gpu_row = next(line for line in lines if line.split()[:1] == ["gpu"])
    assert cpu_row.split() == ["cpu", "5", "1.25", "demand", "(4),", "min_workers", "(1)"]
    assert gpu_row.split() == ["gpu", "2", "5.00", "placement_group", "(1),", "demand", "(1)"]


def test_new_node_groups_say_what_each_node_holds() -> None:
    """Every new node group lists what each of its nodes holds, bundles summarised per placement-group instance."""
    text = render_result_text(_result(), _request())
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip().startswith("new-")}
    assert rows["new-1"].endswith("4 x {CPU: 1}")
    assert rows["new-2"].endswith("t#0 bundles 0-1 {CPU: 1, GPU: 1}")
    assert rows["new-3"].endswith("1 x {CPU: 2, GPU: 1}")
    assert rows["new-4"].endswith("nothing yet (min_workers)")


def test_unfulfilled_lists_reason_and_detail() -> None:
    """Unfulfilled work shows what, how many, the reason and the readable detail."""
    text = render_result_text(_result(), _request())
    assert "Unfulfilled: 3" in text
    row = next(line for line in text.splitlines() if "{GPU: 16}" in line)
    assert row.split()[:4] == ["demand", "{GPU:", "16}", "1"]
    assert "infeasible" in row and row.endswith("no node type has 16 GPU")


def test_summary_adds_up() -> None:
    """The summary counts where demand went: existing nodes, new nodes, unfulfilled."""
    text = render_result_text(_result(), _request(), elapsed_ms=12.345)
    assert "24 pending: 4 on existing nodes, 17 on new nodes, 3 unfulfilled" in text
    assert "1 of 1 placed whole" in text
    assert re.search(r"decided in +12\.3 ms", text)


def test_existing_nodes_given_the_same_are_one_row() -> None:
    """5,000 existing nodes given the same work read as one row with their count and a few ids."""
    text = render_result_text(_result(existing=5000), _request(nodes=5000))
    assert "Existing nodes: 5,000 of 5,000 used: 10,000 x {CPU: 1}" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("w-0"))
    assert row.split() == ["w-0,", "w-1,", "w-2", "+4,997", "5,000", "cpu", "running", "2", "x", "{CPU:", "1}"]


def test_thousands_of_distinct_existing_nodes_print_a_screenful() -> None:
    """With 5,000 existing nodes given 50 different things, the text stays short and says what was left out."""
    text = render_result_text(_result(existing=5000, kinds=50), _request(nodes=5000))
    assert len(text.splitlines()) < 60
    assert "... 40 more rows not shown" in text


def test_max_rows_zero_shows_everything() -> None:
    """max_rows=0 lists every row."""
    text = render_result_text(_result(existing=50, kinds=50), _request(nodes=50), max_rows=0)
    assert all(f"w-{i} " in text for i in range(50))
    assert "not shown" not in text


def test_an_empty_decision_says_so() -> None:
    """Nothing to launch and nothing pending reads as such, without empty tables."""
    request = SchedulingRequest(node_types=[NodeType("cpu", {"CPU": 4})])
    result = SchedulingResult(launch={}, new_nodes=(), existing={}, unfulfilled=(), cost=0.0)
    text = render_result_text(result, request)
    assert text.splitlines()[0] == "Launch: nothing."
    assert "Existing nodes: no existing nodes used." in text
    assert "Unfulfilled: nothing." in text
    assert "TYPE" not in text


def test_unfulfilled_placement_group_names_group_and_strategy() -> None:
    """An unplaced placement group shows its name, strategy and bundle shapes."""
    request = SchedulingRequest(
        node_types=[NodeType("cpu", {"CPU": 4})],
        placement_groups=[PlacementGroup([CPU1] * 3, PlacementStrategy.STRICT_SPREAD, count=2, name="spread")],
    )
    result = SchedulingResult(
        launch={},
        new_nodes=(),
        existing={},
        unfulfilled=(
            Unfulfilled(
                DemandKind.PLACEMENT_GROUP,
                2,
                UnfulfilledReason.STRATEGY,
                "needs 3 distinct nodes",
                pg="spread",
                bundles=(CPU1, CPU1, CPU1),
                strategy="STRICT_SPREAD",
            ),
        ),
        cost=0.0,
    )
    text = render_result_text(result, request)
    assert "placement group spread STRICT_SPREAD: 3 x {CPU: 1}" in text
    assert "0 of 2 placed whole" in text


def test_bundles_from_many_instances_are_one_phrase() -> None:
    """Bundles of several instances of one placement group on a node read as a count and instance ranges."""
    bundles = tuple(BundlePlacement("pg0", instance, instance % 2, CPU1) for instance in (0, 1, 2, 3, 7))
    group = NewNodeGroup("new-1", "cpu", 1, LaunchReason.PLACEMENT_GROUP, bundles=bundles, cost_per_node=0.25)
    result = SchedulingResult(launch={"cpu": 1}, new_nodes=(group,), existing={}, unfulfilled=(), cost=0.25)
    text = render_result_text(result, _request(nodes=0))
    assert "pg0: 5 bundles {CPU: 1} (instances 0-3, 7)" in text
