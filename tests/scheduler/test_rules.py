"""Each scheduling rule, pinned by a small table-driven case."""

from __future__ import annotations

import pytest

from rayk8s.autoscaler import (
    LaunchReason,
    Node,
    NodeType,
    PlacementGroup,
    ResourceDemand,
    ResourceRequest,
    Resources,
    SchedulingRequest,
    SchedulingResult,
    UnfulfilledReason,
    schedule,
    verify,
)

# -- builders ---------------------------------------------------------------------------


def cpu_type(name: str = "cpu", cpus: float = 4, **kw: object) -> NodeType:
    return NodeType(name, {"CPU": cpus}, **kw)  # type: ignore[arg-type]


def gpu_type(name: str = "gpu", cpus: float = 8, gpus: int = 1, **kw: object) -> NodeType:
    return NodeType(name, {"CPU": cpus, "GPU": gpus}, **kw)  # type: ignore[arg-type]


def running(node_id: str, node_type: str = "cpu", **free: float) -> Node:
    return Node(node_id, node_type, "running", free)


def pending(node_id: str, node_type: str = "cpu") -> Node:
    return Node(node_id, node_type, "pending")


def tasks(count: int, **shape: float) -> ResourceDemand:
    return ResourceDemand(shape, count)


def pg(strategy: str, *bundles: dict[str, float], count: int = 1, name: str | None = None) -> PlacementGroup:
    return PlacementGroup(bundles, strategy, count, name)


def decide(types: list[NodeType], **kw: object) -> SchedulingResult:
    request = SchedulingRequest(types, **kw)  # type: ignore[arg-type]
    result = schedule(request)
    assert verify(request, result) == []
    return result


def launched_again(types: list[NodeType], nodes: list[Node], **kw: object) -> dict[str, int]:
    """Decide, launch what was asked (as pending nodes), decide again: what that launches."""
    first = decide(types, nodes=nodes, **kw)
    launched = [pending(f"l-{g.id}-{i}", g.node_type) for g in first.new_nodes for i in range(g.count)]
    return dict(decide(types, nodes=[*nodes, *launched], **kw).launch)


def placed_on(result: SchedulingResult, pg_name: str, instance: int = 0) -> list[str]:
    """The node (existing id or new group id) each bundle of one instance landed on, by bundle."""
    where = {}
    for node_id, given in result.existing.items():
        for bundle in given.bundles:
            if (bundle.pg, bundle.instance) == (pg_name, instance):
                where[bundle.bundle] = node_id
    for group in result.new_nodes:
        for bundle in group.bundles:
            if (bundle.pg, bundle.instance) == (pg_name, instance):
                where[bundle.bundle] = group.id
    return [where[b] for b in sorted(where)]


# -- existing capacity first ------------------------------------------------------------


def test_free_capacity_of_running_nodes_is_used_before_launching() -> None:
    """Demand that fits the free capacity of running nodes launches nothing."""
    result = decide([cpu_type()], nodes=[running("a", CPU=2), running("b", CPU=1)], demands=[tasks(3, CPU=1)])
    assert dict(result.launch) == {}
    assert {node: sum(s.count for s in given.assigned) for node, given in result.existing.items()} == {"a": 2, "b": 1}


def test_pending_nodes_count_with_full_capacity() -> None:
    """A launching node is never requested twice: its whole capacity is counted as free."""
    result = decide([cpu_type()], nodes=[pending("p")], demands=[tasks(4, CPU=1)])
    assert dict(result.launch) == {}
    assert result.existing["p"].assigned[0].count == 4


def test_pending_nodes_share_mixed_demand_so_little_more_is_bought() -> None:
    """206 CPUs of mixed tasks over four pending nodes (96 CPUs): the pending nodes of a
    type may share the demand evenly, so about 110 more CPUs are bought (5.34; filled one
    node at a time, as a purchase is, they left 6.80 to buy), and re-planning buys nothing."""
    GiB = 2**30
    types = [
        NodeType("cpu-4", {"CPU": 4, "memory": 16 * GiB}, cost=0.2),
        NodeType("cpu-16", {"CPU": 16, "memory": 64 * GiB}, cost=0.77),
        NodeType("cpu-64", {"CPU": 64, "memory": 256 * GiB}, cost=3.0),
        NodeType("gpu-4", {"CPU": 32, "GPU": 4, "memory": 240 * GiB}, cost=4.5),
    ]
    nodes = [pending("p0", "gpu-4"), pending("p1", "gpu-4"), pending("p2", "cpu-16"), pending("p3", "cpu-16")]
    demands = [
        tasks(55, CPU=1, memory=GiB),
        tasks(29, CPU=1, memory=2 * GiB),
        tasks(3, CPU=2, GPU=1, memory=16 * GiB),
        tasks(58, CPU=2, memory=8 * GiB),
    ]
    result = decide(types, nodes=nodes, demands=demands)
    assert result.unfulfilled == ()
    assert result.cost <= 5.34 + 1e-9
    assert launched_again(types, nodes, demands=demands) == {}


def test_only_the_shortfall_is_launched() -> None:
    """Ten one-CPU tasks, three CPUs free: seven more CPUs, two four-CPU nodes."""
    result = decide([cpu_type()], nodes=[running("a", CPU=3)], demands=[tasks(10, CPU=1)])
    assert dict(result.launch) == {"cpu": 2}


# -- choosing node types ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("types", "demand", "launch"),
    [
        pytest.param(
            [cpu_type("small", 2, cost=1), cpu_type("big", 16, cost=6)],
            tasks(32, CPU=1),
            {"big": 2},
            id="big-node-cheaper-per-cpu",
        ),
        pytest.param(
            [cpu_type("small", 2, cost=1), cpu_type("big", 16, cost=10)],
            tasks(32, CPU=1),
            {"small": 16},
            id="small-node-cheaper-per-cpu",
        ),
        pytest.param(
            [cpu_type("small", 2), cpu_type("big", 16)],
            tasks(32, CPU=1),
            {"big": 2},
            id="default-costs-minimise-node-count",
        ),
        pytest.param(
            [cpu_type("small", 2, cost=1), cpu_type("big", 16, cost=6)],
            tasks(3, CPU=1),
            {"small": 2},
            id="small-demand-does-not-buy-a-big-node",
        ),
    ],
)
def test_node_types_are_chosen_to_minimise_cost(
    types: list[NodeType], demand: ResourceDemand, launch: dict[str, int]
) -> None:
    """The cheapest set of new nodes that holds the demand is launched."""
    assert dict(decide(types, demands=[demand]).launch) == launch


def test_gpu_nodes_are_not_launched_for_cpu_only_work() -> None:
    """A GPU node holds more CPUs for the same default cost, but CPU-only work launches CPU nodes."""
    result = decide([cpu_type("cpu", 4), gpu_type("gpu", 8)], demands=[tasks(8, CPU=1)])
    assert dict(result.launch) == {"cpu": 2}


def test_cpu_only_work_fills_gpu_nodes_launched_for_gpu_work() -> None:
    """The spare CPUs of a GPU node launched for a GPU task take CPU work (as Ray's scheduler would)."""
    result = decide([cpu_type("cpu", 4), gpu_type("gpu", 8)], demands=[tasks(8, CPU=1), tasks(1, CPU=1, GPU=1)])
    assert dict(result.launch) == {"cpu": 1, "gpu": 1}
    [gpu_group] = [g for g in result.new_nodes if g.node_type == "gpu"]
    held = {item.shape: item.count for item in gpu_group.assigned}
    assert held[Resources({"CPU": 1, "GPU": 1})] == 1
    assert held[Resources({"CPU": 1})] >= 4  # the GPU node's spare CPUs take CPU work


def test_isolated_accelerators_take_no_cpu_only_work() -> None:
    """With isolate_accelerators, CPU work goes to CPU nodes even when a GPU node has room."""
    result = decide(
        [cpu_type("cpu", 4), gpu_type("gpu", 8)],
        demands=[tasks(8, CPU=1), tasks(1, CPU=1, GPU=1)],
        isolate_accelerators=True,
    )
    assert dict(result.launch) == {"cpu": 2, "gpu": 1}
    gpu_groups = [g for g in result.new_nodes if g.node_type == "gpu"]
    assert all("GPU" in item.shape for group in gpu_groups for item in group.assigned)


def test_cpu_only_work_falls_back_to_gpu_nodes_when_cpu_types_are_exhausted() -> None:
    """With the CPU type at its max_workers, GPU nodes take CPU work rather than leaving it."""
    result = decide([cpu_type("cpu", 4, max_workers=1), gpu_type("gpu", 8)], demands=[tasks(8, CPU=1)])
    assert dict(result.launch) == {"cpu": 1, "gpu": 1}
    assert result.unfulfilled == ()


def test_unavailable_node_types_fall_back_to_the_next_best_type() -> None:
    """A type backing off after a launch failure is skipped; the next-best type is used."""
    result = decide(
        [cpu_type("cheap", 4, cost=1), cpu_type("dear", 4, cost=3)],
        demands=[tasks(4, CPU=1)],
        unavailable_node_types={"cheap"},
    )
    assert dict(result.launch) == {"dear": 1}


# -- limits -----------------------------------------------------------------------------


def test_min_workers_are_launched_without_demand() -> None:
    """min_workers nodes are launched even when nothing is pending, with that reason."""
    result = decide([cpu_type(min_workers=2)], nodes=[running("a", CPU=4)])
    assert dict(result.launch) == {"cpu": 1}
    assert result.new_nodes[0].reason is LaunchReason.MIN_WORKERS


def test_min_workers_nodes_hold_demand_before_more_are_launched() -> None:
    """Nodes launched for min_workers take demand, so no extra node is launched for it."""
    result = decide([cpu_type(min_workers=2)], demands=[tasks(8, CPU=1)])
    assert dict(result.launch) == {"cpu": 2}


def test_per_type_max_workers_is_never_exceeded() -> None:
    """Demand beyond a type's max_workers is reported, not launched."""
    result = decide([cpu_type(max_workers=3)], nodes=[running("a", CPU=0)], demands=[tasks(100, CPU=1)])
    assert dict(result.launch) == {"cpu": 2}
    [missing] = result.unfulfilled
    assert (missing.count, missing.reason) == (92, UnfulfilledReason.MAX_WORKERS)


def test_cluster_max_workers_is_never_exceeded_and_the_head_does_not_count() -> None:
    """The cluster cap counts worker nodes only."""
    head = Node("head", "head", "running", {}, total={"CPU": 2}, is_head=True)
    result = decide([cpu_type()], nodes=[head, running("w", CPU=0)], demands=[tasks(100, CPU=1)], max_workers=3)
    assert dict(result.launch) == {"cpu": 2}


# -- unfulfilled, with reasons ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        pytest.param({"demands": [tasks(1, CPU=64)]}, UnfulfilledReason.INFEASIBLE, id="too-big"),
        pytest.param({"demands": [tasks(1, CPU=1, TPU=1)]}, UnfulfilledReason.INFEASIBLE, id="unknown-resource"),
        pytest.param(
            {"demands": [tasks(1, CPU=1)], "unavailable_node_types": {"cpu"}},
            UnfulfilledReason.UNAVAILABLE,
            id="only-type-backing-off",
        ),
        pytest.param({"demands": [tasks(1, CPU=1)], "max_workers": 0}, UnfulfilledReason.MAX_WORKERS, id="cluster-cap"),
        pytest.param(
            {"demands": [tasks(1, CPU=6)], "nodes": [Node("h", "head", "running", {}, {"CPU": 8}, is_head=True)]},
            UnfulfilledReason.BUSY,
            id="only-a-busy-existing-node-holds-it",
        ),
        pytest.param(
            {"placement_groups": [pg("STRICT_SPREAD", {"CPU": 1}, {"CPU": 1}, {"CPU": 1})], "max_workers": 2},
            UnfulfilledReason.MAX_WORKERS,
            id="strict-spread-over-the-cap",
        ),
        pytest.param(
            {"placement_groups": [pg("STRICT_PACK", {"CPU": 3}, {"CPU": 3})]},
            UnfulfilledReason.INFEASIBLE,
            id="strict-pack-bigger-than-any-node",
        ),
    ],
)
def test_what_cannot_be_placed_is_reported_with_a_reason(kw: dict[str, object], reason: UnfulfilledReason) -> None:
    """Nothing raises: every unplaceable demand comes back in unfulfilled, with why."""
    result = decide([cpu_type()], **kw)
    assert [item.reason for item in result.unfulfilled] == [reason]
    assert all(item.detail for item in result.unfulfilled)


def test_demand_lists_are_never_truncated() -> None:
    """A hundred thousand tasks are all planned for (Ray v1 caps the list at 1000)."""
    result = decide([cpu_type(cpus=10)], demands=[tasks(1, CPU=1)] * 50_000 + [tasks(50_000, CPU=1)])
    assert dict(result.launch) == {"cpu": 10_000}
    assert len(result.new_nodes) == 1


# -- placement groups -------------------------------------------------------------------


def test_strict_pack_puts_every_bundle_on_one_node() -> None:
    result = decide([cpu_type(cpus=8)], placement_groups=[pg("STRICT_PACK", {"CPU": 2}, {"CPU": 3}, {"CPU": 3})])
    assert len(set(placed_on(result, "pg0"))) == 1


def test_pack_uses_one_existing_node_when_one_holds_the_group() -> None:
    result = decide(
        [cpu_type()],
        nodes=[running("a", CPU=1), running("b", CPU=4)],
        placement_groups=[pg("PACK", {"CPU": 2}, {"CPU": 2})],
    )
    assert placed_on(result, "pg0") == ["b", "b"]
    assert dict(result.launch) == {}


def test_pack_spills_to_several_nodes_when_no_node_holds_the_group() -> None:
    result = decide([cpu_type()], placement_groups=[pg("PACK", {"CPU": 3}, {"CPU": 3}, {"CPU": 3})])
    assert dict(result.launch) == {"cpu": 3}
    assert result.unfulfilled == ()


def test_pack_splits_instances_when_whole_ones_would_cost_more() -> None:
    """PACK is a soft strategy: four instances of 3 CPUs need four 4-CPU nodes whole, but
    three when bundles may share nodes; the cheaper plan is kept, every instance whole (all
    of its bundles placed) and on at most two nodes."""
    result = decide([cpu_type(cpus=4)], placement_groups=[pg("PACK", {"CPU": 1}, {"CPU": 2}, count=4)])
    assert dict(result.launch) == {"cpu": 3}
    assert result.unfulfilled == ()
    assert all(1 <= len(set(placed_on(result, "pg0", i))) <= 2 for i in range(4))


def test_pack_keeps_instances_whole_when_splitting_saves_nothing() -> None:
    """Splitting three instances of 2 + 2 CPUs over 4-CPU nodes needs as many nodes as
    keeping them whole, so ties go to whole instances: each on one node."""
    result = decide([cpu_type(cpus=4)], placement_groups=[pg("PACK", {"CPU": 2}, {"CPU": 2}, count=3)])
    assert dict(result.launch) == {"cpu": 3}
    assert all(len(set(placed_on(result, "pg0", i))) == 1 for i in range(3))


def test_pack_split_by_cost_is_stable_when_replanned() -> None:
    """The split plan's nodes, once pending, hold every instance again: nothing more is launched."""
    assert launched_again([cpu_type(cpus=4)], [], placement_groups=[pg("PACK", {"CPU": 1}, {"CPU": 2}, count=4)]) == {}


def test_spread_uses_distinct_nodes_where_possible() -> None:
    """Two existing nodes with room: the two bundles go to different ones."""
    result = decide(
        [cpu_type()],
        nodes=[running("a", CPU=4), running("b", CPU=4)],
        placement_groups=[pg("SPREAD", {"CPU": 1}, {"CPU": 1})],
    )
    assert sorted(placed_on(result, "pg0")) == ["a", "b"]


def test_spread_does_not_launch_nodes_only_to_spread() -> None:
    """SPREAD is a preference: with one node that holds both bundles, nothing is launched."""
    result = decide([cpu_type()], nodes=[running("a", CPU=4)], placement_groups=[pg("SPREAD", {"CPU": 1}, {"CPU": 1})])
    assert placed_on(result, "pg0") == ["a", "a"]
    assert dict(result.launch) == {}


def test_spread_instances_are_spread_over_the_new_nodes_they_need() -> None:
    """Bundles launched for are dealt round-robin, so an instance's bundles land on different nodes."""
    result = decide([cpu_type()], placement_groups=[pg("SPREAD", {"CPU": 2}, {"CPU": 2}, count=2)])
    assert dict(result.launch) == {"cpu": 2}
    for instance in (0, 1):
        assert len(set(placed_on(result, "pg0", instance))) == 2


def test_spread_shares_nodes_when_limits_allow_no_more() -> None:
    result = decide(
        [cpu_type(max_workers=0)],
        nodes=[running("a", CPU=4)],
        placement_groups=[pg("SPREAD", {"CPU": 1}, {"CPU": 1})],
    )
    assert placed_on(result, "pg0") == ["a", "a"]


def test_strict_spread_uses_distinct_nodes_or_none() -> None:
    result = decide(
        [cpu_type()],
        nodes=[running("a", CPU=4), running("b", CPU=4)],
        placement_groups=[pg("STRICT_SPREAD", {"CPU": 1}, {"CPU": 1}, {"CPU": 1})],
    )
    assert len(set(placed_on(result, "pg0"))) == 3
    assert dict(result.launch) == {"cpu": 1}


def test_a_group_is_placed_whole_or_not_at_all() -> None:
    """A STRICT_SPREAD group that cannot be completed leaves no bundle behind."""
    result = decide(
        [cpu_type(max_workers=1)],
        nodes=[running("a", CPU=4)],
        placement_groups=[pg("STRICT_SPREAD", {"CPU": 1}, {"CPU": 1}, {"CPU": 1})],
    )
    assert result.existing == {}
    assert dict(result.launch) == {}
    assert result.unfulfilled[0].count == 1


def test_identical_groups_are_each_placed() -> None:
    result = decide([cpu_type()], placement_groups=[pg("STRICT_PACK", {"CPU": 2}, {"CPU": 2}, count=3, name="g")])
    assert dict(result.launch) == {"cpu": 3}
    assert [group.count for group in result.new_nodes] == [1, 1, 1]
    assert {b.instance for group in result.new_nodes for b in group.bundles} == {0, 1, 2}


def test_groups_are_placed_before_tasks() -> None:
    """Gangs get capacity first, as in Ray's autoscaler; tasks take what is left."""
    result = decide(
        [cpu_type(max_workers=0)],
        nodes=[running("a", CPU=4)],
        demands=[tasks(4, CPU=1)],
        placement_groups=[pg("STRICT_PACK", {"CPU": 2}, {"CPU": 2})],
    )
    assert placed_on(result, "pg0") == ["a", "a"]
    assert result.unfulfilled[0].count == 4


# -- request_resources ------------------------------------------------------------------


def test_request_resources_counts_capacity_whether_used_or_not() -> None:
    """Busy nodes still count: 8 CPUs exist, so asking for 8 launches nothing."""
    result = decide(
        [cpu_type()],
        nodes=[running("a", CPU=0), running("b", CPU=0)],
        resource_requests=[ResourceRequest({"CPU": 1}, 8)],
    )
    assert dict(result.launch) == {}


def test_request_resources_launches_what_total_capacity_lacks() -> None:
    result = decide([cpu_type()], nodes=[running("a", CPU=4)], resource_requests=[ResourceRequest({"CPU": 1}, 10)])
    assert dict(result.launch) == {"cpu": 2}
    assert {g.reason for g in result.new_nodes} == {LaunchReason.REQUEST_RESOURCES}


def test_nodes_launched_for_request_resources_take_pending_tasks() -> None:
    result = decide(
        [cpu_type()],
        resource_requests=[ResourceRequest({"CPU": 1}, 8)],
        demands=[tasks(8, CPU=1)],
    )
    assert dict(result.launch) == {"cpu": 2}


# -- values -----------------------------------------------------------------------------


def test_the_result_says_where_each_demand_lands() -> None:
    result = decide([cpu_type()], nodes=[running("a", CPU=2)], demands=[tasks(6, CPU=1)])
    assert result.existing["a"].assigned[0].count == 2
    [group] = result.new_nodes
    assert (group.node_type, group.count, group.assigned[0].count) == ("cpu", 1, 4)
    assert group.assigned[0].shape == Resources({"CPU": 1})
    assert result.to_dict()["launch"] == {"cpu": 1}


GiB = 2**30


@pytest.mark.parametrize("pack_first", [True, False])
def test_a_spread_group_cut_short_by_max_workers_is_replanned_without_launching_more(pack_first: bool) -> None:
    """A SPREAD group that max_workers cuts short, after or before a PACK group, on plain
    and accelerator types: deciding again with the chosen nodes pending launches nothing.

    Its rounds used to cycle — each bought one accelerator node while dropping an empty
    one — so the next decision launched one more (found by Hypothesis)."""
    types = [
        NodeType("t0", {"CPU": 2, "custom": 1}, cost=0.5),
        NodeType("t1", {"CPU": 4, "GPU": 1, "memory": GiB}, cost=0.5),
    ]
    groups = [
        pg("PACK", {"CPU": 0.5}, {"CPU": 0.5}, {"CPU": 0.5}),
        pg("SPREAD", {"CPU": 0.5}, {"CPU": 0.5, "memory": GiB}, {"CPU": 4}, count=3),
    ]
    full = [running("n0", "t0"), running("n1", "t0")]
    ordered = groups if pack_first else groups[::-1]
    assert launched_again(types, full, placement_groups=ordered, max_workers=8) == {}


def test_a_pack_group_no_node_holds_whole_is_replanned_without_launching_more() -> None:
    """PACK instances that no node holds whole, cut short by a type's max_workers: the
    bundles given back must not depend on node ids, or the next decision, seeing the
    planned nodes as pending under other ids, keeps other ones and launches more."""
    types = [
        NodeType("t0", {"CPU": 2, "custom": 1}, cost=0.5),
        NodeType("t1", {"CPU": 2, "memory": GiB}, min_workers=1, cost=0.5),
        NodeType("t2", {"CPU": 2}, cost=0.5),
        NodeType("t3", {"CPU": 2, "custom": 1, "memory": GiB}, max_workers=2, cost=0.5),
    ]
    groups = [
        pg("PACK", {"CPU": 0.5, "custom": 1, "memory": GiB}, {"CPU": 2}, count=3),
        pg("PACK", {"CPU": 0.5}),
        pg("PACK", {"CPU": 0.5, "custom": 1}, {"CPU": 0.5}, {"CPU": 0.5}, {"CPU": 0.5, "memory": GiB}),
    ]
    assert launched_again(types, [running("n0", "t3")], placement_groups=groups) == {}
