"""The status summary: the seed's monitor block, and the ray-status rendering."""

from __future__ import annotations

import re

from rayk8s.autoscaler import NodeType, NodeUsage, PlacementGroup, ResourceDemand
from tests.autoscaler.harness import START, Harness, cpu

SEED_ORDER = [
    r"Cluster status: \d+ nodes",
    r" - MostDelayedHeartbeats: \{.*\}",
    r" - NodeIdleSeconds: Min=\d+ Mean=\d+ Max=\d+",
    r" - ResourceUsage: .*",
    r" - TimeSinceLastHeartbeat: Min=\d+ Mean=\d+ Max=\d+",
    r"Worker node types:",
    r" - worker-nodes: 1",
    r"Cluster resources: \[.*\]",
    r"Node counts: \{.*\}",
    r"Placement group demands: \[.*\]",
    r"Resource demands: \[.*\]",
    r"Unfulfilled demands: \[.*\]",
    r"Node requests: \{.*\}",
]


def seed_like_cluster() -> Harness:
    """The seed's example-cluster2: a head node and one idle worker of type worker-nodes."""
    worker = NodeType("worker-nodes", {"CPU": 1, "Custom1": 1, "is_spot": 1, "memory": "512Mi"}, min_workers=1)
    h = Harness([worker], head=True, idle_timeout_minutes=60)
    h.update()
    h.clock.advance(61)
    h.run_all()
    (worker_id,) = h.workers()
    h.join([worker_id], idle_since=h.clock() - 41)
    assert h.head_id is not None
    h.set_usage(NodeUsage(h.head_id, {"CPU": 1}, idle_since=h.clock() - 36, last_heartbeat=h.clock()))
    return h


def test_the_monitor_block_has_the_seeds_lines_in_the_seeds_order() -> None:
    """Every line of the seed's monitor block is present, in order, with the seed's wording."""
    h = seed_like_cluster()
    lines = h.update().status.monitor_lines()
    assert len(lines) == len(SEED_ORDER)
    for line, pattern in zip(lines, SEED_ORDER):
        assert re.fullmatch(pattern, line), (line, pattern)


def test_the_monitor_block_reports_counts_idle_time_and_usage_like_the_seed() -> None:
    """Workers counted in 'Cluster status', idle seconds Min/Mean/Max, usage as used/total, GiB for memory."""
    h = seed_like_cluster()
    text = h.update().status.render_monitor()
    assert "Cluster status: 1 nodes" in text
    assert "NodeIdleSeconds: Min=36 Mean=38 Max=41" in text
    assert "1.0/3.0 CPU" in text  # the head uses 1 of its 2 CPUs; the 1-CPU worker is idle
    assert "0.0/1.0 Custom1" in text and "0.0/1.0 is_spot" in text
    assert "0.0 GiB/0.5 GiB memory" in text
    assert "Node counts: {'head': 1, 'worker-nodes': 1}" in text


def test_the_monitor_block_can_carry_the_operators_cluster_prefix() -> None:
    """render_monitor(prefix) starts every line with the prefix, as the operator logs it."""
    h = seed_like_cluster()
    text = h.update().status.render_monitor(prefix="example-cluster2:")
    assert all(line.startswith("example-cluster2:") for line in text.splitlines())


def test_demands_unfulfilled_and_node_requests_are_listed() -> None:
    """Pending demand, placement groups, what cannot be placed, and the launches of this update appear."""
    h = Harness([cpu(max_workers=1)])
    h.demand(
        demands=[ResourceDemand({"CPU": 1}, 10), ResourceDemand({"GPU": 1}, 2)],
        placement_groups=[PlacementGroup([{"CPU": 2}, {"CPU": 2}], "STRICT_SPREAD")],
    )
    status = h.update().status
    text = status.render_monitor()
    assert "Resource demands: [{'CPU': 1.0} * 10, {'GPU': 1.0} * 2]" in text
    assert "Placement group demands: [{'CPU': 2.0} * 2 (STRICT_SPREAD) * 1]" in text
    assert "{'GPU': 1.0} * 2" in text.split("Unfulfilled demands:")[1]
    assert "Node requests: {'cpu': 1}" in text
    ray = status.render_status()
    assert "{'CPU': 1.0}: 10+ pending tasks/actors" in ray
    assert "(STRICT_SPREAD): 1+ pending placement groups" in ray
    assert "infeasible" in ray


def test_ray_status_shows_healthy_pending_failures_and_usage() -> None:
    """The ray-status rendering has the healthy and pending nodes, recent failures and resource usage."""
    h = Harness([cpu(min_workers=2)], head=True)
    h.provider.fail_next_launch("quota", node_type="cpu", reason="quota exceeded: 0 CPUs left")
    h.update()
    h.clock.advance(31)
    h.update()
    status = h.update(advance=61).status
    text = status.render_status()
    assert "Healthy:\n 1 head" in text
    assert "cpu, 2 starting" in text
    assert "quota exceeded: 0 CPUs left" in text
    assert "Usage:" in text and "/2.0 CPU" in text
    assert status.to_dict()["recent_failures"][0]["kind"] == "quota"


def test_a_pending_launch_shows_as_requested_in_the_same_update() -> None:
    """Nodes launched in this update already count in the summary (as requested)."""
    h = Harness([cpu(min_workers=3)])
    status = h.update().status
    assert status.worker_nodes == 3
    assert ("cpu", "requested", 3) in status.pending


def test_heartbeats_are_reported_by_ip_most_delayed_first() -> None:
    """MostDelayedHeartbeats lists node IPs with seconds since their heartbeat, most delayed first."""
    h = seed_like_cluster()
    (worker_id,) = h.workers()
    h.autoscaler.update()
    h.clock.advance(5)
    h.set_usage(NodeUsage(worker_id, {"CPU": 1}, idle_since=START, last_heartbeat=h.clock() - 4))
    assert h.head_id is not None
    h.set_usage(NodeUsage(h.head_id, {"CPU": 1}, idle_since=START, last_heartbeat=h.clock() - 1))
    status = h.autoscaler.update().status
    ips = [ip for ip, _ in status.most_delayed_heartbeats]
    assert ips == [h.provider.internal_ip(worker_id), h.provider.internal_ip(h.head_id)]
    assert status.time_since_last_heartbeat is not None and status.time_since_last_heartbeat.max == 4
