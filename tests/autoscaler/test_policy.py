"""The pure policies, table-driven."""

from __future__ import annotations

import pytest

from rayk8s.autoscaler._lifecycle import NodeState
from rayk8s.autoscaler._policy import (
    Backoff,
    IdleNode,
    TerminationReason,
    backoff_delay,
    is_outdated,
    is_stuck,
    max_pending,
    rate_limit,
    record_failure,
    record_success,
    select_idle,
    unavailable_types,
)
from rayk8s.autoscaler._tags import TAG_LAUNCH_CONFIG


@pytest.mark.parametrize(
    ("running", "speed", "expected"),
    [(0, 1.0, 5), (4, 1.0, 5), (10, 1.0, 10), (10, 0.5, 5), (10, 2.0, 20), (100, 0.0, 5), (7, 1.5, 10)],
)
def test_max_pending_is_max_of_five_and_speed_times_running(running: int, speed: float, expected: int) -> None:
    """Pending launches allowed = max(5, floor(upscaling_speed x running))."""
    assert max_pending(running, speed) == expected


def test_rate_limit_caps_demand_and_lets_exempt_launches_through() -> None:
    """Demand launches fill the headroom left by pending and exempt launches; exempt ones are never cut."""
    launch, deferred = rate_limit(
        {"cpu": 10, "gpu": 3},
        {"cpu": 2, "tpu": 9},
        running={"cpu": 0, "gpu": 20},
        pending={"cpu": 1, "gpu": 18},
        upscaling_speed=1.0,
    )
    assert launch == {"cpu": 2 + 2, "gpu": 2, "tpu": 9}
    assert deferred == {"cpu": 8, "gpu": 1}


def idle(node_id: str, since: float, node_type: str = "cpu") -> IdleNode:
    return IdleNode(node_id, node_type, since)


def choose(nodes: list[IdleNode], **kw: object) -> list[tuple[str, TerminationReason]]:
    args: dict[str, object] = {
        "now": 1000.0,
        "timeouts_s": {"cpu": 300.0, "gpu": 60.0},
        "keep": frozenset(),
        "live": {"cpu": len([n for n in nodes if n.node_type == "cpu"])},
        "min_workers": {},
        "max_workers": {},
        "cluster_max_workers": None,
    }
    args.update(kw)
    return select_idle(nodes, **args)  # type: ignore[arg-type]


def test_idle_selection_orders_longest_idle_first_with_ties_by_id() -> None:
    """Terminations come longest idle first; equal idle times order by node id."""
    nodes = [idle("b", 100), idle("a", 100), idle("c", 0), idle("d", 900)]
    assert [n for n, _ in choose(nodes)] == ["c", "a", "b"]


def test_idle_selection_keeps_min_workers_and_kept_nodes() -> None:
    """Never below min_workers of a type; never a node in keep."""
    nodes = [idle("a", 0), idle("b", 10), idle("c", 20)]
    assert choose(nodes, min_workers={"cpu": 2}) == [("a", TerminationReason.IDLE)]
    assert choose(nodes, keep=frozenset({"a"}), min_workers={"cpu": 1}) == [
        ("b", TerminationReason.IDLE),
        ("c", TerminationReason.IDLE),
    ]


def test_idle_selection_counts_busy_live_nodes_towards_min_workers() -> None:
    """Busy nodes (not in the idle list) count as live: with 3 live and min 1, two idle ones can go."""
    nodes = [idle("a", 0), idle("b", 0)]
    assert len(choose(nodes, live={"cpu": 3}, min_workers={"cpu": 1})) == 2
    assert len(choose(nodes, live={"cpu": 2}, min_workers={"cpu": 1})) == 1


def test_over_max_workers_idle_nodes_go_whatever_their_idle_time() -> None:
    """Above a type's max (or the cluster's), idle nodes are chosen at once with reason max_workers."""
    nodes = [idle("a", 990), idle("b", 995), idle("c", 999)]
    assert choose(nodes, max_workers={"cpu": 1}) == [
        ("a", TerminationReason.MAX_WORKERS),
        ("b", TerminationReason.MAX_WORKERS),
    ]
    assert choose(nodes, cluster_max_workers=2) == [("a", TerminationReason.MAX_WORKERS)]


def test_per_type_timeouts_apply() -> None:
    """Each type's own timeout decides (gpu 60 s, cpu 300 s)."""
    nodes = [idle("c", 900), idle("g", 900, "gpu")]
    assert choose(nodes, live={"cpu": 1, "gpu": 1}) == [("g", TerminationReason.IDLE)]


@pytest.mark.parametrize(("failures", "expected"), [(0, 0), (1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (500, 100)])
def test_backoff_doubles_and_is_capped(failures: int, expected: float) -> None:
    """initial x 2^(failures-1), capped at the maximum; no overflow for huge counts."""
    assert backoff_delay(failures, 10, 100) == expected


def test_backoff_table_records_failures_and_forgives_on_success() -> None:
    """Failures accumulate per type and set 'until'; a success removes the type; expiry makes it available."""
    table: dict[str, Backoff] = {}
    table = record_failure(table, "gpu", now=0, reason="x", initial_s=10, max_s=100)
    table = record_failure(table, "gpu", now=5, reason="y", initial_s=10, max_s=100)
    assert table["gpu"] == Backoff(2, 25, "y")
    assert unavailable_types(table, 24) == {"gpu"}
    assert unavailable_types(table, 25) == frozenset()
    assert record_success(table, "gpu") == {}


def test_stuck_only_counts_nodes_that_have_not_joined() -> None:
    """Launching or starting beyond the timeout is stuck; running nodes never are."""
    assert is_stuck(NodeState.LAUNCHING, 0, 601, 600)
    assert is_stuck(NodeState.STARTING, 0, 601, 600)
    assert not is_stuck(NodeState.LAUNCHING, 0, 600, 600)
    assert not is_stuck(NodeState.RUNNING, 0, 10_000, 600)


def test_outdated_compares_the_launch_config_tag() -> None:
    """A node is outdated when its launch-config tag differs, is missing, or its type is gone."""
    assert not is_outdated({TAG_LAUNCH_CONFIG: "h1"}, "h1")
    assert is_outdated({TAG_LAUNCH_CONFIG: "h0"}, "h1")
    assert is_outdated({}, "h1")
    assert is_outdated({TAG_LAUNCH_CONFIG: "h1"}, None)
