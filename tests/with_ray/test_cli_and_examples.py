"""The README's sequence on a real cluster: `rayk8s up`, the examples, `rayk8s status`, `rayk8s down`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import FAST_AUTOSCALER, ray  # noqa: F401  (importing conftest skips without Ray)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "local"


def rayk8s(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rayk8s", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def group_members(pgid: int) -> list[str]:
    out = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    return out.stdout.split()


def test_up_examples_status_down_leave_no_ray_process(tmp_path: Path) -> None:
    """`rayk8s up` on the example config starts a head and the monitor; the three examples print
    Success! (workers started for them); `rayk8s status` shows the nodes; `rayk8s down --yes`
    stops everything: no process of any node's group, nor the monitor, is left."""
    config = yaml.safe_load((EXAMPLES / "cluster.yaml").read_text())
    config["cluster_name"] = f"ex-{os.getpid()}"
    config["provider"]["state_dir"] = str(tmp_path / "state")
    config["provider"]["terminate_grace_s"] = 5
    config["idle_timeout_minutes"] = 0.1
    config["autoscaler"] = FAST_AUTOSCALER
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    state_file = tmp_path / "state" / "nodes.json"
    pgids: set[int] = set()

    def remember() -> None:
        if state_file.exists():
            pgids.update(int(r["pgid"]) for r in json.loads(state_file.read_text())["nodes"].values())

    up = rayk8s("up", str(path), "--yes")
    try:
        assert up.returncode == 0, up.stderr
        assert "is up" in up.stdout
        assert "waiting for" in up.stderr or "The Ray head is up" in up.stderr
        address = json.loads(state_file.read_text())["head_address"]
        env = {**os.environ, "RAY_ADDRESS": address}
        for example in ("job_example.py", "placement_group_example.py", "request_resources_example.py"):
            run = subprocess.run(
                [sys.executable, str(EXAMPLES / example)], env=env, capture_output=True, text=True, timeout=400
            )
            remember()
            assert run.returncode == 0, f"{example}:\n{run.stdout}\n{run.stderr[-3000:]}"
            assert "Success!" in run.stdout, run.stdout
        job_output = subprocess.run(  # the job example prints ten iterations
            [sys.executable, str(EXAMPLES / "job_example.py")], env=env, capture_output=True, text=True, timeout=400
        )
        assert job_output.stdout.count("Iteration ") == 10
        status = rayk8s("status", str(path))
        assert status.returncode == 0, status.stderr
        assert "Autoscaler: running" in status.stdout
        assert "Autoscaler status" in status.stdout
        remember()
    finally:
        monitor_pid = (tmp_path / "state" / "monitor.pid").read_text().strip() if up.returncode == 0 else ""
        down = rayk8s("down", str(path), "--yes")
    assert down.returncode == 0, down.stderr
    left = {pgid: group_members(pgid) for pgid in pgids}
    assert not any(left.values()), f"processes left: {left}"
    if monitor_pid:
        assert not Path(f"/proc/{monitor_pid}").exists() or "Z" in Path(f"/proc/{monitor_pid}/stat").read_text()
    assert "Head: not running" in rayk8s("status", str(path)).stdout
