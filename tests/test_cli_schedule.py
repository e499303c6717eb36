"""`rayk8s schedule SCENARIO`: decisions on stdout, one-line errors on stderr, the promised exit codes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

import rayk8s
from rayk8s.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "scenarios").iterdir())
JSON_KEYS = {"launch", "new_nodes", "existing", "unfulfilled", "stats"}

SMALL = """
node_types:
  cpu: {resources: {CPU: 4, memory: 16Gi}, max_workers: 10, cost: 0.5}
nodes:
  - {id: w-1, type: cpu, available: {CPU: 1, memory: 4Gi}}
demands:
  - {shape: {CPU: 1}, count: 9}
"""


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures structlog and the root logger for the process; undo that after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def _write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_json_output_has_the_promised_keys(tmp_path: Path) -> None:
    """--output json prints one JSON object with launch, new_nodes, existing, unfulfilled and stats."""
    result = CliRunner().invoke(main, ["schedule", _write(tmp_path, SMALL), "--output", "json"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert set(decision) >= JSON_KEYS
    assert {"elapsed_ms", "cost"} <= set(decision["stats"])
    assert decision["stats"]["elapsed_ms"] >= 0
    assert result.stderr == ""


def test_json_decision_adds_up(tmp_path: Path) -> None:
    """Nine one-CPU tasks with one CPU free: one on w-1, eight on two new 4-CPU nodes, cost 2 x 0.5."""
    result = CliRunner().invoke(main, ["schedule", _write(tmp_path, SMALL), "-o", "json"])
    decision = json.loads(result.stdout)
    assert decision["launch"] == {"cpu": 2}
    assert decision["stats"]["cost"] == pytest.approx(1.0)
    assert decision["existing"]["w-1"]["assigned"] == [{"shape": {"CPU": 1}, "count": 1}]
    placed_on_new = sum(group["count"] * item["count"] for group in decision["new_nodes"] for item in group["assigned"])
    assert placed_on_new == 8
    assert decision["unfulfilled"] == []


def test_text_output_is_the_default(tmp_path: Path) -> None:
    """Without --output, the decision is printed as text tables with a summary."""
    result = CliRunner().invoke(main, ["schedule", _write(tmp_path, SMALL)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Launch: 2 new nodes, cost 1.00/h")
    assert "Summary" in result.stdout
    assert "decided in" in result.stdout


def test_stdin(tmp_path: Path) -> None:
    """SCENARIO `-` reads the scenario from standard input."""
    result = CliRunner().invoke(main, ["schedule", "-", "-o", "json"], input=SMALL)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["launch"] == {"cpu": 2}


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        pytest.param(
            SMALL.replace("count: 9", "count: -9"),
            "s.yaml",
            "rayk8s: error: demands[0].count: expected an integer >= 1, got -9",
            id="bad-field",
        ),
        pytest.param(
            SMALL.replace("available", "availble"),
            "s.yaml",
            "rayk8s: error: nodes[0].availble: unknown field (did you mean 'available'?)",
            id="typo",
        ),
        pytest.param("", "s.yaml", "the scenario is empty", id="empty-file-names-the-file"),
        pytest.param("node_types: {cpu: [}\n", "s.yaml", "line 1, column 20: invalid YAML", id="yaml-syntax"),
        pytest.param('{"node_types": {}', "s.json", "invalid JSON", id="json-syntax"),
    ],
)
def test_bad_scenario_is_one_line_and_exit_code_2(tmp_path: Path, text: str, name: str, expected: str) -> None:
    """A scenario that does not validate or parse exits 2 with exactly one error line on stderr."""
    path = _write(tmp_path, text, name)
    result = CliRunner().invoke(main, ["schedule", path])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rayk8s: error: ")
    assert expected in lines[0]


def test_empty_scenario_error_names_the_file(tmp_path: Path) -> None:
    """An error about the whole document (no field path) names the file instead."""
    path = _write(tmp_path, "# nothing yet\n")
    result = CliRunner().invoke(main, ["schedule", path])
    assert result.stderr.startswith(f"rayk8s: error: {path}: the scenario is empty")


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    """A scenario file that does not exist exits 2 with one line naming it (not click's usage text)."""
    result = CliRunner().invoke(main, ["schedule", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"rayk8s: error: {tmp_path / 'nope.yaml'}: no such file\n"


def test_version() -> None:
    """--version prints the package version."""
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"rayk8s {rayk8s.__version__}"


def test_verbose_logs_go_to_stderr_and_keep_stdout_parseable(tmp_path: Path) -> None:
    """With -v the decision's log line goes to stderr; stdout is still exactly one JSON object."""
    result = CliRunner().invoke(main, ["-v", "schedule", _write(tmp_path, SMALL), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) >= JSON_KEYS
    assert "scheduled" in result.stderr
    assert "new_nodes=2" in result.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_parses_and_schedules(path: Path) -> None:
    """Every file in examples/scenarios/ validates, schedules, and prints both text and JSON."""
    runner = CliRunner()
    as_json = runner.invoke(main, ["schedule", str(path), "--output", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert set(json.loads(as_json.stdout)) >= JSON_KEYS
    as_text = runner.invoke(main, ["schedule", str(path)])
    assert as_text.exit_code == 0, as_text.output
    assert "Summary" in as_text.stdout


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rayk8s", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_subprocess_good_scenario_exits_0_with_json() -> None:
    """`python -m rayk8s schedule` in a real process: exit 0 and a JSON object with the promised keys."""
    process = _run("schedule", "examples/scenarios/mixed-cpu-gpu.yaml", "--output", "json")
    assert process.returncode == 0, process.stderr
    decision = json.loads(process.stdout)
    assert set(decision) >= JSON_KEYS
    assert {"elapsed_ms", "cost"} <= set(decision["stats"])


def test_subprocess_bad_scenario_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    """In a real process, a bad scenario exits 2 and stderr is one line, without a traceback."""
    path = _write(tmp_path, SMALL.replace("{CPU: 1}, count", "{CPU: lots}, count"))
    process = _run("schedule", path)
    assert process.returncode == 2
    assert process.stdout == ""
    assert "Traceback" not in process.stderr
    assert process.stderr.count("\n") == 1
    assert process.stderr.startswith("rayk8s: error: demands[0].shape.CPU: expected a number or a Kubernetes quantity")
