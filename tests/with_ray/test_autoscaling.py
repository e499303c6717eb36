"""rayk8s autoscaling a real Ray cluster: real head, real workers, rayk8s's monitor; no mocks."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from .conftest import RunningCluster, ray, wait_until

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _watch_peak(cluster: RunningCluster, stop: threading.Event, seen: dict[str, Any]) -> None:
    while not stop.is_set():
        seen["peak"] = max(seen.get("peak", 0), len(cluster.workers()))
        time.sleep(0.2)


def test_a_burst_of_tasks_scales_up_to_max_workers_then_idle_workers_go(start_cluster, driver) -> None:  # type: ignore[no-untyped-def]
    """From 0 workers, 8 tasks of {CPU: 1} on 2-CPU workers (max 4) start 4 workers, never more;
    every task finishes; after the idle timeout every worker is removed."""
    cluster = start_cluster(worker_cpus=2, max_workers=4, idle_timeout_minutes=0.1)
    assert cluster.workers() == []
    driver(cluster.address)
    stop, seen = threading.Event(), {}
    watcher = threading.Thread(target=_watch_peak, args=(cluster, stop, seen), daemon=True)
    watcher.start()

    @ray.remote(num_cpus=1, max_retries=0)
    def task(i: int) -> str:
        time.sleep(4)
        return str(ray.get_runtime_context().get_node_id())

    try:
        nodes = ray.get([task.remote(i) for i in range(8)], timeout=240)
    finally:
        stop.set()
        watcher.join()
    assert len(nodes) == 8
    assert seen["peak"] == 4
    assert len(set(nodes)) == 4, "the 8 tasks ran on the 4 workers"
    wait_until(lambda: cluster.workers() == [], 90, "the idle workers to be removed")
    wait_until(lambda: cluster.ray_nodes_alive() == 1, 30, "Ray to see only the head")


def test_a_strict_spread_group_of_three_bundles_gets_three_nodes(start_cluster, driver) -> None:  # type: ignore[no-untyped-def]
    """A STRICT_SPREAD placement group of 3 {CPU: 1} bundles launches 3 workers and is placed on 3 nodes."""
    from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group

    cluster = start_cluster(worker_cpus=2, max_workers=5, idle_timeout_minutes=0.1)
    driver(cluster.address)
    group = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
    assert group.wait(timeout_seconds=240), "the placement group was not placed"
    placed_on = set(placement_group_table(group)["bundles_to_node_id"].values())
    assert len(placed_on) == 3
    assert len(cluster.workers()) == 3
    remove_placement_group(group)
    wait_until(lambda: cluster.workers() == [], 90, "the workers to be removed once the group is gone")


def test_request_resources_brings_capacity_with_no_task_running(start_cluster, driver) -> None:  # type: ignore[no-untyped-def]
    """request_resources(num_cpus=4) starts 2 workers of 2 CPUs with nothing submitted; they stay
    while the request stands (past the idle timeout) and go once it is withdrawn."""
    from ray.autoscaler.sdk import request_resources

    cluster = start_cluster(worker_cpus=2, max_workers=4, idle_timeout_minutes=0.05)
    driver(cluster.address)
    request_resources(num_cpus=4)
    wait_until(lambda: ray.cluster_resources().get("CPU", 0) >= 4, 180, "4 CPUs in the cluster")
    assert len(cluster.workers()) == 2
    time.sleep(8)  # > the 3 s idle timeout: the request keeps them
    assert len(cluster.workers()) == 2
    request_resources(num_cpus=0)
    wait_until(lambda: cluster.workers() == [], 90, "the workers to go once the request is withdrawn")


def test_a_worker_running_a_task_is_not_terminated_before_the_task_ends(start_cluster, driver) -> None:  # type: ignore[no-untyped-def]
    """With a 3 s idle timeout, the workers of finished short tasks are removed while the worker of
    a long task (no retries: a killed node would fail it) keeps running until the task returns."""
    cluster = start_cluster(worker_cpus=1, max_workers=3, idle_timeout_minutes=0.05)
    driver(cluster.address)

    @ray.remote(num_cpus=1, max_retries=0)
    def sleeper(seconds: float) -> str:
        time.sleep(seconds)
        return str(ray.get_runtime_context().get_node_id())

    long_ref = sleeper.remote(30)
    ray.get([sleeper.remote(1) for _ in range(2)], timeout=240)
    wait_until(lambda: len(cluster.workers()) == 1, 60, "the idle workers of the short tasks to go")
    # Had its node been terminated, the task (max_retries=0) would raise here.
    long_node = ray.get(long_ref, timeout=120)
    assert long_node
    wait_until(lambda: cluster.workers() == [], 90, "the last worker to go once its task ended")
