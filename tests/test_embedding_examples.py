"""examples/embedding/schedule_in_memory.py runs as a plain script and prints a checked decision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_in_memory_schedule_example_prints_its_decision() -> None:
    """The script exits 0, prints the decision tables and, last, the launch as JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embedding" / "schedule_in_memory.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("Launch: ")
    assert "trainers" in result.stdout  # the placement group is placed, bundle by bundle
    summary = json.loads(lines[-1])
    assert summary["launch"]["gpu"] == 2  # one GPU each for the two GPU tasks
    assert summary["cost"] > 0
