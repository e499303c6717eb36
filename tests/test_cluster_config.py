"""The cluster config (Ray's cluster-launcher YAML) and what `rayk8s up/down/status` say without Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from rayk8s.cli import main
from rayk8s.errors import ConfigError
from rayk8s.launcher import ClusterConfig
from rayk8s.launcher._local import check_local, local_node_configs

EXAMPLE = Path(__file__).parent.parent / "examples" / "local" / "cluster.yaml"


def base() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def test_the_example_config_parses_into_the_autoscaler_config() -> None:
    """Ray's fields map to the autoscaler's: types, limits, idle timeout, upscaling speed, interval."""
    config = ClusterConfig.from_file(EXAMPLE)
    check_local(config)
    autoscaler = config.to_autoscaler_config()
    assert config.provider_type == "local"
    assert set(autoscaler.worker_node_types) == {"cpu-2"}
    assert autoscaler.worker_node_types["cpu-2"].max_workers == 4
    assert autoscaler.max_workers == 4
    assert autoscaler.idle_timeout_s("cpu-2") == 30
    assert config.autoscaler.update_interval_s == 1
    assert local_node_configs(config)["cpu-2"]["resources"] == {"CPU": 2}


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda c: c.update(idle_timeout_minute=1), "idle_timeout_minute", "did you mean 'idle_timeout_minutes'"),
        (
            lambda c: c["available_node_types"]["cpu-2"].update(max_worker=1),
            "available_node_types.cpu-2.max_worker",
            "did you mean",
        ),
        (lambda c: c.update(head_node_type="haed"), "head_node_type", "did you mean 'head'"),
        (
            lambda c: c["available_node_types"]["cpu-2"]["resources"].update(CPU="two"),
            "available_node_types.cpu-2.resources.CPU",
            "",
        ),
        (
            lambda c: c["available_node_types"]["cpu-2"].update(min_workers=9),
            "available_node_types.cpu-2.min_workers",
            "exceeds",
        ),
        (lambda c: c["autoscaler"].update(update_interval_s=0), "autoscaler.update_interval_s", "> 0"),
        (lambda c: c.pop("provider"), "provider", "required"),
    ],
)
def test_config_errors_name_the_field(change: Any, path: str, message: str) -> None:
    """A wrong field is a ConfigError naming its path (with a suggestion for a misspelling)."""
    raw = base()
    change(raw)
    with pytest.raises(ConfigError) as caught:
        ClusterConfig.from_dict(raw)
    assert caught.value.path == path
    assert message in caught.value.message


def test_local_fields_are_checked_before_anything_starts() -> None:
    """The local provider's own fields and node_config are checked, with the field path."""
    raw = base()
    raw["provider"]["state_dri"] = "/tmp/x"
    with pytest.raises(ConfigError, match=r"provider\.state_dri: unknown field \(did you mean 'state_dir'"):
        check_local(ClusterConfig.from_dict(raw))
    raw = base()
    raw["available_node_types"]["cpu-2"]["node_config"] = {"image": "rayproject/ray"}
    with pytest.raises(ConfigError, match=r"available_node_types\.cpu-2\.node_config\.image"):
        check_local(ClusterConfig.from_dict(raw))


def test_ray_setup_fields_are_accepted_and_reported_as_ignored() -> None:
    """A Ray config with setup_commands and file_mounts loads; the fields are listed as ignored."""
    raw = base()
    raw["setup_commands"] = ["pip install foo"]
    raw["file_mounts"] = {}
    assert ClusterConfig.from_dict(raw).ignored == ["file_mounts", "setup_commands"]


@pytest.mark.parametrize("command", [["up", "--yes"], ["down", "--yes"], ["status"]])
def test_launcher_commands_name_the_provider_types_they_run(tmp_path: Path, command: list[str]) -> None:
    """up/down/status on a provider the launcher does not run exit 2 with one line naming provider.type."""
    raw = base()
    raw["provider"] = {"type": "fake"}
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(main, [command[0], str(path), *command[1:]])
    assert result.exit_code == 2
    assert "provider.type" in result.output
    assert "local or kubernetes" in result.output


def test_status_of_a_cluster_never_started(tmp_path: Path) -> None:
    """`rayk8s status` of a local cluster that is not running says so (no Ray needed)."""
    raw = base()
    raw["provider"]["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(main, ["status", str(path)])
    assert result.exit_code == 0, result.output
    assert "Head: not running" in result.output
    assert "Autoscaler: not running" in result.output


def test_to_dict_round_trips() -> None:
    """to_dict() writes Ray's fields back; parsing them gives the same config (the monitor reads this copy)."""
    raw = base()
    raw["setup_commands"] = ["echo hi"]
    raw["available_node_types"]["cpu-2"].update(cost=0.5, idle_timeout_minutes=2)
    config = ClusterConfig.from_dict(raw)
    again = ClusterConfig.from_dict(config.to_dict())
    assert again == config
    assert again.to_autoscaler_config() == config.to_autoscaler_config()
