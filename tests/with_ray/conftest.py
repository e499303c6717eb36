"""Real Ray clusters on this machine for the ``ray`` tests: a head, rayk8s's monitor, real workers.

Every cluster lives in the test's temporary directory (state file, logs, status) and is
stopped at teardown even when the test fails; a last sweep SIGKILLs any process group the
cluster started that is still alive, and the test fails if one was.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ray = pytest.importorskip("ray", reason="the ray tests need the rayk8s[ray] extra (pip install -e '.[ray]')")

from rayk8s.launcher import ClusterConfig, LocalCluster  # noqa: E402
from rayk8s.providers.local import LocalNodeProvider  # noqa: E402

#: Small and fast: workers idle 6 s are removed, the monitor updates twice a second.
FAST_AUTOSCALER = {"update_interval_s": 0.5, "stuck_timeout_s": 120, "launch_backoff_initial_s": 5}


def wait_until(check: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test naming ``what`` after ``timeout_s``."""
    limit = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > limit:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def cluster_config(
    tmp_path: Path,
    *,
    worker_cpus: int = 2,
    max_workers: int = 4,
    idle_timeout_minutes: float = 0.1,
    name: str | None = None,
) -> dict[str, Any]:
    """A local cluster config: a head with no CPU and one worker type of ``worker_cpus`` CPUs."""
    return {
        "cluster_name": name or f"t-{uuid.uuid4().hex[:6]}",
        "max_workers": max_workers,
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {"type": "local", "state_dir": str(tmp_path / "state"), "terminate_grace_s": 5},
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 0}},
            "cpu": {"resources": {"CPU": worker_cpus}, "min_workers": 0, "max_workers": max_workers},
        },
        "autoscaler": FAST_AUTOSCALER,
    }


class RunningCluster:
    """A started local cluster, with what the tests look at."""

    def __init__(self, cluster: LocalCluster, config_path: Path) -> None:
        self.cluster = cluster
        self.config_path = config_path
        self.address = ""

    @property
    def provider(self) -> LocalNodeProvider:
        return self.cluster.provider

    def workers(self) -> list[Any]:
        """Worker nodes the provider lists (not terminating)."""
        return [n for n in self.provider.nodes().nodes if not n.is_head and n.status.value != "terminating"]

    def status(self) -> dict[str, Any]:
        path = self.cluster.state_dir / "status.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}

    def ray_nodes_alive(self) -> int:
        return sum(1 for n in ray.nodes() if n["Alive"])

    def pgids(self) -> list[int]:
        state = json.loads(self.provider.state_file.read_text()) if self.provider.state_file.exists() else {}
        return [int(r["pgid"]) for r in state.get("nodes", {}).values()]


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def start_cluster(tmp_path: Path) -> Iterator[Callable[..., RunningCluster]]:
    """Start a local cluster (``**cluster_config`` options); stopped, and checked stopped, at teardown."""
    started: list[RunningCluster] = []
    seen_pgids: set[int] = set()

    def start(**options: Any) -> RunningCluster:
        raw = cluster_config(tmp_path, **options)
        path = tmp_path / f"{raw['cluster_name']}.yaml"
        path.write_text(yaml.safe_dump(raw))
        cluster = LocalCluster(ClusterConfig.from_file(path), echo=lambda text: None)
        running = RunningCluster(cluster, path)
        started.append(running)
        running.address = cluster.up(restart=False)
        return running

    yield start

    leftovers: list[int] = []
    for running in started:
        seen_pgids.update(running.pgids())
        with contextlib.suppress(Exception):
            running.cluster.down()
        seen_pgids.update(running.pgids())
    for pgid in seen_pgids:
        if _alive(pgid):
            leftovers.append(pgid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    assert not leftovers, f"process groups left running after down(): {leftovers}"


@pytest.fixture
def driver() -> Iterator[Callable[[str], Any]]:
    """``connect(address)``: ``ray.init`` this test process as a driver; shut down at teardown."""

    def connect(address: str) -> Any:
        return ray.init(address=address, logging_level="WARNING", log_to_driver=False)

    yield connect
    ray.shutdown()
