"""Autoscaler.update(): every rule, on the fake provider with a static load and a manual clock."""

from __future__ import annotations

import attrs

from rayk8s.autoscaler import (
    NodeType,
    NodeTypeConfig,
    NodeUsage,
    PlacementGroup,
    ProviderNodeStatus,
    ResourceDemand,
    ResourceRequest,
    SchedulingRequest,
    SchedulingResult,
    TerminationReason,
    schedule,
)
from rayk8s.providers._tags import (
    STATUS_UP_TO_DATE,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_CONFIG,
    TAG_LAUNCH_REQUEST,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)

from .harness import START, Harness, cpu, gpu, launched, terminated

CPU1 = ResourceDemand({"CPU": 1}, 1)


def cpus(count: int) -> list[ResourceDemand]:
    return [ResourceDemand({"CPU": 1}, count)]


# -- launching ---------------------------------------------------------------------------


def test_min_workers_are_launched_without_demand_and_bypass_the_rate_limit() -> None:
    """min_workers nodes are launched at once, even more than the 5 the upscaling speed allows."""
    h = Harness([cpu(min_workers=12)])
    result = h.update()
    assert launched(result) == {"cpu": 12}
    assert {o.reason.value for o in result.launches} == {"min_workers"}


def test_launched_nodes_carry_every_tag_the_autoscaler_rebuilds_from() -> None:
    """Each launched node is tagged with cluster, kind, type, status, launch config and launch request."""
    h = Harness([cpu(min_workers=1)])
    h.update()
    (node_id,) = h.workers()
    tags = h.tags(node_id)
    assert tags[TAG_CLUSTER_NAME] == "demo"
    assert tags[TAG_NODE_KIND] == "worker"
    assert tags[TAG_USER_NODE_TYPE] == "cpu"
    assert tags[TAG_NODE_STATUS] == "uninitialized"
    assert tags[TAG_LAUNCH_CONFIG] == h.config.launch_config_hash("cpu")
    assert tags[TAG_LAUNCH_REQUEST]


def test_demand_launches_are_capped_by_upscaling_speed_and_the_rest_is_deferred() -> None:
    """With nothing running, at most max(5, speed x 0) = 5 nodes of a type are pending; the rest waits."""
    h = Harness([cpu()])
    h.demand(demands=cpus(4 * 20))
    result = h.update()
    assert launched(result) == {"cpu": 5}
    assert result.decision is not None and result.decision.deferred == {"cpu": 15}
    # Still 5 pending: nothing more until they run.
    assert launched(h.update(advance=10)) == {}


def test_upscaling_speed_scales_with_running_nodes() -> None:
    """With 10 running nodes and upscaling_speed 2, up to 20 nodes of the type may be pending."""
    h = Harness([cpu(max_workers=None)], upscaling_speed=2.0)
    h.demand(resource_requests=[ResourceRequest({"CPU": 4}, 10)])
    h.update()
    h.clock.advance(61)
    h.run_all()
    assert len(h.workers(ProviderNodeStatus.RUNNING)) == 10
    h.join(h.workers(), idle_since=None)  # all busy
    h.demand(demands=cpus(4 * 100), resource_requests=[])
    assert launched(h.update(advance=1)) == {"cpu": 20}


def test_placement_groups_bypass_the_rate_limit() -> None:
    """Eight STRICT_SPREAD bundles launch eight nodes in one update, over the rate limit of five."""
    h = Harness([cpu()])
    h.demand(placement_groups=[PlacementGroup([{"CPU": 4}] * 8, "STRICT_SPREAD")])
    result = h.update()
    assert launched(result) == {"cpu": 8}
    assert {o.reason.value for o in result.launches} == {"placement_group"}


def test_request_resources_bypasses_the_rate_limit() -> None:
    """request_resources for 40 CPUs launches ten 4-CPU nodes at once."""
    h = Harness([cpu()])
    h.demand(resource_requests=[ResourceRequest({"CPU": 1}, 40)])
    assert launched(h.update()) == {"cpu": 10}


def test_per_type_and_cluster_max_workers_are_never_exceeded() -> None:
    """Launches stop at the type's max_workers and at the cluster's max_workers.

    CPU work beyond the CPU type's cap overflows to GPU nodes, until the cluster cap.
    """
    h = Harness([cpu(max_workers=3), gpu(max_workers=10)], max_workers=5)
    h.demand(resource_requests=[ResourceRequest({"CPU": 4}, 10)])
    for _ in range(5):
        h.update(advance=61)
        h.run_all()
    assert len(h.workers(node_type="cpu")) == 3
    assert len(h.workers()) == 5


def test_a_restarted_autoscaler_launches_no_duplicates() -> None:
    """A new process after the old one launched (nodes still pending) launches nothing more."""
    h = Harness([cpu()])
    h.demand(demands=cpus(12))  # three 4-CPU nodes
    assert launched(h.update()) == {"cpu": 3}
    h.autoscaler = h.new_autoscaler()  # the old process is gone
    assert launched(h.update(advance=5)) == {}
    h.autoscaler = h.new_autoscaler()
    assert launched(h.update(advance=100)) == {}  # running, not joined yet: still counted
    assert len(h.workers()) == 3


def test_a_restart_after_a_partial_launch_launches_only_the_missing_nodes() -> None:
    """Killed mid-scale-up with 2 of 3 nodes created, the next process launches exactly 1."""
    h = Harness([cpu()])
    h.demand(demands=cpus(12))
    tags = {
        TAG_CLUSTER_NAME: "demo",
        TAG_NODE_KIND: "worker",
        TAG_USER_NODE_TYPE: "cpu",
        TAG_NODE_STATUS: "uninitialized",
        TAG_LAUNCH_CONFIG: h.config.launch_config_hash("cpu"),
        TAG_LAUNCH_REQUEST: "old-process-1",
    }
    h.provider.create_node({}, tags, 2)
    assert launched(h.update()) == {"cpu": 1}


def test_nodes_not_yet_listed_by_an_eventually_consistent_provider_are_not_launched_twice() -> None:
    """A provider that lists created nodes only later: the next update counts them as in flight."""
    h = Harness([cpu()], provider_config={"list_delay_s": 20})
    h.demand(demands=cpus(8))
    assert launched(h.update()) == {"cpu": 2}
    assert h.provider.nodes().nodes == ()  # not listed yet
    assert launched(h.update(advance=5)) == {}
    assert launched(h.update(advance=30)) == {}
    assert len(h.workers()) == 2


def test_nodes_of_other_clusters_are_ignored() -> None:
    """Nodes tagged with another cluster name are neither counted nor terminated."""
    h = Harness([cpu(min_workers=1)])
    other = {TAG_CLUSTER_NAME: "other", TAG_NODE_KIND: "worker", TAG_USER_NODE_TYPE: "cpu"}
    (foreign,) = h.provider.create_node({}, other, 1)
    assert launched(h.update()) == {"cpu": 1}
    h.update(advance=10_000)
    assert foreign in {n.id for n in h.provider.nodes().nodes}


# -- joining, tags, lifecycle -------------------------------------------------------------


def test_a_node_that_joins_ray_is_tagged_up_to_date() -> None:
    """When Ray first reports a node, its ray-node-status tag becomes up-to-date."""
    h = Harness([cpu(min_workers=1)])
    h.update()
    (node_id,) = h.workers()
    h.clock.advance(61)
    h.join([node_id])
    h.update()
    assert h.status_tag(node_id) == STATUS_UP_TO_DATE


# -- idle termination -----------------------------------------------------------------------


def running_idle(h: Harness, count: int, idle_for: float) -> list[str]:
    h.demand(resource_requests=[ResourceRequest({"CPU": 4}, count)])
    h.update()
    h.clock.advance(61)
    ids = h.run_all()
    h.update()
    h.demand(resource_requests=[])
    h.join(ids, idle_since=h.clock() - idle_for)
    return ids


def test_idle_nodes_are_terminated_after_the_idle_timeout_and_not_before() -> None:
    """A worker idle for less than idle_timeout_minutes stays; past it, it is terminated as idle."""
    h = Harness([cpu()], idle_timeout_minutes=5)
    ids = running_idle(h, 2, idle_for=200)
    assert terminated(h.update()) == {}
    result = h.update(advance=101)
    assert terminated(result) == {node_id: "idle" for node_id in ids}
    assert h.workers() == []


def test_a_per_type_idle_timeout_overrides_the_clusters() -> None:
    """A type's own idle_timeout_minutes applies to its nodes."""
    h = Harness([NodeTypeConfig(cpu(), idle_timeout_minutes=1)], idle_timeout_minutes=60)
    ids = running_idle(h, 1, idle_for=61)
    assert terminated(h.update()) == {ids[0]: "idle"}


def test_a_busy_node_is_never_terminated() -> None:
    """A node the load source reports busy stays, however long it has existed or been busy."""
    h = Harness([cpu()], idle_timeout_minutes=1)
    ids = running_idle(h, 2, idle_for=600)
    h.join([ids[0]], idle_since=None)  # busy
    result = h.update(advance=3600)
    assert terminated(result) == {ids[1]: "idle"}
    for _ in range(5):
        assert ids[0] not in terminated(h.update(advance=3600))
    assert h.workers() == [ids[0]]


def test_idle_termination_keeps_min_workers_and_takes_the_longest_idle_first() -> None:
    """With min_workers=2 and four idle nodes, the two idle longest go; the order is deterministic."""
    h = Harness([cpu(min_workers=2)], idle_timeout_minutes=1)
    h.demand(resource_requests=[ResourceRequest({"CPU": 4}, 4)])
    h.update()
    h.clock.advance(61)
    ids = h.run_all()
    h.update()
    h.demand(resource_requests=[])
    for age, node_id in zip([500, 900, 300, 700], ids):
        h.join([node_id], idle_since=h.clock() - age)
    result = h.update()
    assert [t.node_id for t in result.terminations] == [ids[1], ids[3]]
    assert h.workers() == sorted([ids[0], ids[2]])


def test_the_head_is_never_terminated() -> None:
    """The head node, idle for hours, is neither terminated nor counted as a worker."""
    h = Harness([cpu()], head=True, idle_timeout_minutes=1)
    result = h.update(advance=7200)
    assert terminated(result) == {}
    assert h.head_id in {n.id for n in h.provider.nodes().nodes}
    assert result.status.worker_nodes == 0


def test_nodes_held_by_request_resources_are_kept_when_idle() -> None:
    """request_resources capacity stays even when idle beyond the timeout."""
    h = Harness([cpu()], idle_timeout_minutes=1)
    h.demand(resource_requests=[ResourceRequest({"CPU": 4}, 2)])
    h.update()
    h.clock.advance(61)
    ids = h.run_all()
    h.join(ids, idle_since=h.clock() - 600)
    assert terminated(h.update(advance=600)) == {}
    assert h.workers() == ids


def test_idle_nodes_that_pending_demand_will_use_are_kept() -> None:
    """An idle node the scheduler places pending demand on is not terminated."""
    h = Harness([cpu()], idle_timeout_minutes=1)
    ids = running_idle(h, 1, idle_for=600)
    h.demand(demands=cpus(2))
    assert terminated(h.update()) == {}
    assert h.workers() == ids


def test_nodes_over_max_workers_go_when_idle_whatever_their_idle_time() -> None:
    """After max_workers is lowered, idle nodes above it are terminated at once (busy ones stay)."""
    h = Harness([cpu(max_workers=10)], idle_timeout_minutes=60)
    ids = running_idle(h, 4, idle_for=1)
    h.join([ids[0]], idle_since=None)
    h.autoscaler.config = attrs.evolve(h.config, node_types=[cpu(max_workers=2)])
    result = h.update()
    assert sorted(terminated(result).values()) == ["max_workers", "max_workers"]
    assert ids[0] not in terminated(result)


# -- holding back on failed reads -------------------------------------------------------------


def test_no_termination_and_no_launch_when_the_provider_read_fails() -> None:
    """A provider read that raises: nothing launched, nothing terminated, the error reported; next update recovers."""
    h = Harness([cpu()], idle_timeout_minutes=1)
    running_idle(h, 2, idle_for=600)
    h.provider.fail_next_reads()
    result = h.update()
    assert terminated(result) == {} and launched(result) == {}
    assert [e.stage for e in result.errors] == ["provider_read"]
    assert result.held_back and "provider read failed" in result.held_back
    assert len(terminated(h.update())) == 2


def test_no_termination_when_the_provider_read_is_partial() -> None:
    """A partial node list (ray-project/ray#58933): nothing terminated or launched, and the status says why."""
    h = Harness([cpu(min_workers=1)], idle_timeout_minutes=1)
    running_idle(h, 4, idle_for=600)
    h.provider.fail_next_reads(partial=True)
    result = h.update()
    assert terminated(result) == {} and launched(result) == {}
    assert result.held_back is not None and "partial" in result.held_back
    assert "held back" in result.status.render_status()
    assert result.decision is not None and result.decision.held


def test_no_termination_when_the_load_read_fails_but_min_workers_are_kept() -> None:
    """A load read that raises: idle nodes stay; min_workers are still launched."""
    h = Harness([cpu(min_workers=1)], idle_timeout_minutes=1)

    class Broken:
        def load(self) -> object:
            raise TimeoutError("GCS did not answer")

    h.autoscaler.load_source = Broken()  # type: ignore[assignment]
    result = h.update()
    assert launched(result) == {"cpu": 1}
    assert [e.stage for e in result.errors] == ["load_read"]
    h.autoscaler.load_source = h.load
    h.clock.advance(61)
    ids = h.run_all()
    h.join(ids, idle_since=h.clock() - 600)
    h.autoscaler.load_source = Broken()  # type: ignore[assignment]
    assert terminated(h.update(advance=600)) == {}


def test_no_termination_when_the_load_read_is_partial() -> None:
    """A partial load snapshot holds back terminations."""
    h = Harness([cpu()], idle_timeout_minutes=1)
    running_idle(h, 2, idle_for=600)
    h.demand(partial=True, detail="2 of 3 raylets answered")
    result = h.update()
    assert terminated(result) == {}
    assert result.held_back is not None and "2 of 3 raylets" in result.held_back


# -- outdated nodes ---------------------------------------------------------------------------


def test_outdated_nodes_are_replaced_once_idle_and_kept_while_busy() -> None:
    """After the node config changes, a busy old node stays; an idle one is terminated and replaced."""
    h = Harness([NodeTypeConfig(cpu(min_workers=2), {"image": "ray:1"})])
    h.update()
    h.clock.advance(61)
    old = h.run_all()
    h.update()
    h.join([old[0]], idle_since=None)
    h.join([old[1]], idle_since=h.clock())
    h.autoscaler.config = attrs.evolve(h.config, node_types=[NodeTypeConfig(cpu(min_workers=2), {"image": "ray:2"})])
    result = h.update()
    assert terminated(result) == {old[1]: "outdated"}
    assert launched(result) == {"cpu": 1}
    new = set(h.workers()) - set(old)
    assert {h.tags(n)[TAG_LAUNCH_CONFIG] for n in new} == {h.autoscaler.config.launch_config_hash("cpu")}
    h.join([old[0]], idle_since=h.clock())
    assert terminated(h.update()) == {old[0]: "outdated"}


def test_changing_min_or_max_workers_does_not_outdate_nodes() -> None:
    """The launch-config hash covers resources and node_config, not the scaling limits."""
    h = Harness([cpu(min_workers=1)])
    before = h.config.launch_config_hash("cpu")
    after = attrs.evolve(h.config, node_types=[cpu(min_workers=3, max_workers=9)]).launch_config_hash("cpu")
    assert before == after


# -- failures, back-off, fallback ----------------------------------------------------------


def test_a_launch_failure_backs_off_the_type_and_falls_back_to_the_next_best() -> None:
    """A failed GPU launch backs 'gpu' off; the next update launches the fallback type; the status shows it."""
    big = NodeType("gpu-big", {"CPU": 16, "GPU": 2}, max_workers=10, cost=6.0)
    h = Harness([gpu(), big], launch_backoff_initial_s=30, launch_backoff_max_s=120)
    h.demand(demands=[ResourceDemand({"GPU": 1}, 1)])
    h.provider.fail_next_launch("quota", node_type="gpu", reason="GPU quota exhausted")
    first = h.update()
    assert launched(first) == {}
    assert [(o.node_type, o.error is not None) for o in first.launches] == [("gpu", True)]
    assert [e.stage for e in first.errors] == ["launch"]
    second = h.update(advance=1)
    assert launched(second) == {"gpu-big": 1}
    text = second.status.render_status()
    assert "GPU quota exhausted" in text and "backing off" in text
    assert second.status.recent_failures[0].kind == "quota"


def test_back_off_grows_exponentially_is_capped_and_expires() -> None:
    """Repeated failures back off 30, 60, 120, 120 seconds; after the back-off the type is retried."""
    h = Harness([gpu()], launch_backoff_initial_s=30, launch_backoff_max_s=120)
    h.demand(demands=[ResourceDemand({"GPU": 1}, 1)])
    h.provider.fail_next_launch("launch", node_type="gpu", times=4)
    delays = []
    for _ in range(4):
        result = h.update()
        assert result.errors
        backoff = h.autoscaler.memory.backoff["gpu"]
        delays.append(backoff.until - h.clock())
        assert launched(h.update(advance=backoff.until - h.clock() - 1)) == {}  # still backing off
        h.clock.set(backoff.until)
    assert delays == [30, 60, 120, 120]
    assert launched(h.update()) == {"gpu": 1}


def test_a_node_stuck_pending_is_terminated_and_its_type_backs_off_to_a_fallback() -> None:
    """A node pending beyond the stuck timeout is terminated as stuck; demand moves to another type."""
    big = NodeType("gpu-big", {"CPU": 16, "GPU": 2}, max_workers=10, cost=6.0)
    h = Harness([gpu(), big], stuck_timeout_s=300)
    h.demand(demands=[ResourceDemand({"GPU": 1}, 1)])
    h.provider.stick_next_launch(node_type="gpu")
    assert launched(h.update()) == {"gpu": 1}
    (stuck,) = h.workers()
    assert terminated(h.update(advance=200)) == {}
    result = h.update(advance=101)
    assert terminated(result) == {stuck: "stuck"}
    assert launched(result) == {"gpu-big": 1}
    assert "gpu" in result.status.backoff
    assert [f.kind for f in result.status.recent_failures] == ["stuck"]


def test_a_node_that_never_joins_ray_counts_as_stuck() -> None:
    """A node running at the provider but never reported by Ray is stuck after the timeout."""
    h = Harness([cpu(min_workers=1)], stuck_timeout_s=300)
    h.update()
    (node_id,) = h.workers()
    result = h.update(advance=301)
    assert terminated(result) == {node_id: "stuck"}
    assert launched(result) == {}  # 'cpu' backs off; no other type


def test_a_failed_node_is_terminated_and_its_type_backs_off() -> None:
    """A node the provider reports failed before joining is terminated; its type backs off."""
    h = Harness([cpu(min_workers=1)])
    h.update()
    (node_id,) = h.workers()
    h.provider.fail_node(node_id)
    result = h.update(advance=1)
    assert terminated(result) == {node_id: "failed"}
    assert "cpu" in result.status.backoff


def test_a_node_without_heartbeat_is_terminated_and_replaced() -> None:
    """A joined node whose heartbeat is older than the timeout is terminated as lost, and replaced."""
    h = Harness([cpu(min_workers=1)], heartbeat_timeout_s=30)
    h.update()
    h.clock.advance(61)
    (node_id,) = h.run_all()
    h.update()
    h.clock.advance(31)
    h.usage[node_id] = attrs.evolve(h.usage[node_id], last_heartbeat=h.clock() - 31)
    h._publish()
    result = h.autoscaler.update()
    assert terminated(result) == {node_id: "lost"}
    assert launched(result) == {"cpu": 1}


def test_a_joined_node_that_ray_forgets_is_lost_even_after_a_restart() -> None:
    """A node tagged up-to-date that Ray no longer reports is lost (not starting), also for a new process."""
    h = Harness([cpu(min_workers=1)])
    h.update()
    h.clock.advance(61)
    (node_id,) = h.run_all()
    h.update()
    assert h.status_tag(node_id) == STATUS_UP_TO_DATE
    h.forget(node_id)
    h.autoscaler = h.new_autoscaler()
    result = h.update()
    assert terminated(result) == {node_id: "lost"}


def test_a_backed_off_type_recovers_when_one_of_its_nodes_joins() -> None:
    """A node of a backed-off type joining Ray clears the back-off."""
    h = Harness([cpu(min_workers=2)])
    h.provider.fail_next_launch("launch", node_type="cpu")
    h.update()
    assert "cpu" in h.autoscaler.memory.backoff
    h.clock.advance(31)
    h.update()
    h.clock.advance(61)
    h.run_all()
    h.update()
    assert "cpu" not in h.autoscaler.memory.backoff


# -- robustness -----------------------------------------------------------------------------


def test_an_exception_in_one_update_never_prevents_the_next() -> None:
    """A decision that raises is reported and counted; the next update works."""
    calls = {"n": 0}

    def flaky(request: SchedulingRequest) -> SchedulingResult:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("scheduler bug")
        return schedule(request)

    h = Harness([cpu(min_workers=1)], scheduler=flaky)
    first = h.update()
    assert [e.stage for e in first.errors] == ["decide"] and "scheduler bug" in first.errors[0].message
    second = h.update()
    assert launched(second) == {"cpu": 1} and second.ok
    assert h.autoscaler.error_count == 1 and h.autoscaler.failed_updates == 1
    assert h.autoscaler.consecutive_failed_updates == 0


def test_a_provider_exception_on_create_is_reported_and_backs_off() -> None:
    """A create_node that raises something unexpected is an error in the result, not an exception."""
    h = Harness([cpu(min_workers=1)])

    def boom(*args: object, **kwargs: object) -> list[str]:
        raise ConnectionResetError("peer reset")

    h.provider.create_node = boom  # type: ignore[method-assign]
    result = h.update()
    assert [e.stage for e in result.errors] == ["launch"]
    assert "cpu" in h.autoscaler.memory.backoff


def test_a_failing_terminate_call_is_retried_next_update() -> None:
    """If terminate_nodes raises, the nodes are decided again next update."""
    h = Harness([cpu()], idle_timeout_minutes=1)
    ids = running_idle(h, 1, idle_for=600)
    real = h.provider.terminate_nodes

    def boom(node_ids: object) -> None:
        raise TimeoutError("API timeout")

    h.provider.terminate_nodes = boom  # type: ignore[method-assign]
    result = h.update()
    assert terminated(result) == {} and [e.stage for e in result.errors] == ["terminate"]
    h.provider.terminate_nodes = real  # type: ignore[method-assign]
    assert terminated(h.update()) == {ids[0]: "idle"}


def test_terminated_nodes_still_listed_are_not_counted_and_asked_again_later() -> None:
    """A node we asked to terminate but the provider still lists is excluded, and asked again after a while."""
    h = Harness([cpu()], idle_timeout_minutes=1, terminate_retry_s=60)
    ids = running_idle(h, 1, idle_for=600)
    real = h.provider.terminate_nodes
    h.provider.terminate_nodes = lambda node_ids: None  # type: ignore[method-assign]  # ignores the request
    assert terminated(h.update()) == {ids[0]: "idle"}
    assert terminated(h.update(advance=10)) == {}
    again = h.update(advance=60)
    assert terminated(again) == {ids[0]: "idle"}
    h.provider.terminate_nodes = real  # type: ignore[method-assign]


def test_terminations_each_carry_a_reason_and_a_detail() -> None:
    """Every termination says why, in a value and in a sentence."""
    h = Harness([cpu()], idle_timeout_minutes=1)
    running_idle(h, 1, idle_for=600)
    (item,) = h.update().terminations
    assert item.reason is TerminationReason.IDLE
    assert "idle" in item.detail and "timeout" in item.detail


def test_the_log_fields_summarise_the_update() -> None:
    """log_fields gives one canonical line: launched, terminated, held back, errors."""
    h = Harness([cpu(min_workers=2)])
    fields = h.update().log_fields()
    assert fields["launched"] == {"cpu": 2}
    assert fields["errors"] == [] and fields["held_back"] is None


def test_usage_reported_for_the_head_counts_in_the_cluster_resources() -> None:
    """The head's usage appears in the status, and it is not a worker."""
    h = Harness([cpu()], head=True)
    h.set_usage(NodeUsage(h.head_id or "", {"CPU": 1}, idle_since=None, last_heartbeat=START))
    status = h.update().status
    assert status.node_counts == {"head": 1}
    assert ("CPU", 1.0, 2.0) in status.resource_usage


def test_a_stuck_node_the_provider_cannot_place_says_why_in_its_termination() -> None:
    """A pending node the provider reports unschedulable (Kubernetes: PodScheduled=False) is
    terminated as stuck after the timeout, and the reason carries the provider's message."""
    from rayk8s.autoscaler import (
        AutoscalerConfig,
        AutoscalerMemory,
        LoadSnapshot,
        ProviderNode,
        ProviderSnapshot,
        decide,
    )

    config = AutoscalerConfig("demo", [cpu()], stuck_timeout_s=300)
    tags = {TAG_CLUSTER_NAME: "demo", TAG_NODE_KIND: "worker", TAG_USER_NODE_TYPE: "cpu"}
    node = ProviderNode(
        "p-1", ProviderNodeStatus.PENDING, tags, created_at=START, unschedulable="0/3 nodes are available"
    )
    decision = decide(config, ProviderSnapshot((node,)), LoadSnapshot(), AutoscalerMemory(), START + 301)
    (termination,) = decision.terminations
    assert termination.reason is TerminationReason.STUCK
    assert termination.detail.endswith("; unschedulable: 0/3 nodes are available")
