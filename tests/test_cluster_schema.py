"""The cluster-config schema table: one source for the config's fields and the RayCluster spec."""

from __future__ import annotations

from typing import Any

import pytest

from rayk8s.errors import ConfigError
from rayk8s.launcher import ClusterConfig
from rayk8s.launcher._schema import (
    CLUSTER_FIELDS,
    camel_case,
    config_to_spec,
    field_names,
    spec_path,
    spec_to_config,
)

PROVIDER = {"type": "kubernetes", "namespace": "ray"}


def spec() -> dict[str, Any]:
    return {
        "maxWorkers": 3,
        "upscalingSpeed": 1.0,
        "idleTimeoutMinutes": 5,
        "headPodType": "head-node",
        "podTypes": [
            {"name": "head-node", "minWorkers": 0, "maxWorkers": 0, "rayResources": {"CPU": 1}, "podConfig": {}},
            {
                "name": "worker-node",
                "minWorkers": 2,
                "maxWorkers": 3,
                "rayResources": {"CPU": 1, "Custom1": 1},
                "podConfig": {"spec": {"containers": [{"name": "ray"}]}},
                "setupCommands": ["pip install foo"],
                "idleTimeoutMinutes": 1,
            },
        ],
        "autoscaler": {"updateIntervalS": 2},
        "headStartRayCommands": ["ray start --head --no-monitor"],
        "workerStartRayCommands": ["ray start --address=$RAY_HEAD_IP:6379"],
        "fileMounts": {"/a": "/b"},
    }


def test_camel_case_is_the_spec_spelling_of_a_config_field() -> None:
    """The mechanical rename, and the renames Ray's operator made, come from the one table."""
    assert camel_case("idle_timeout_minutes") == "idleTimeoutMinutes"
    keys = {f.name: f.spec_key for f in CLUSTER_FIELDS if f.in_spec}
    assert keys["available_node_types"] == "podTypes"
    assert keys["head_node_type"] == "headPodType"
    assert keys["head_start_ray_commands"] == "headStartRayCommands"
    assert "cluster_name" not in keys and "provider" not in keys


def test_a_spec_round_trips_through_the_cluster_config() -> None:
    """spec -> config -> ClusterConfig -> config -> spec keeps every field the spec set."""
    original = spec()
    config_dict = spec_to_config(original, cluster_name="example", provider=PROVIDER)
    assert config_dict["available_node_types"]["worker-node"]["resources"] == {"CPU": 1, "Custom1": 1}
    assert config_dict["available_node_types"]["worker-node"]["worker_setup_commands"] == ["pip install foo"]
    assert config_dict["head_start_ray_commands"] == ["ray start --head --no-monitor"]
    assert config_to_spec(config_dict) == original
    parsed = ClusterConfig.from_dict(config_dict)
    back = config_to_spec(parsed.to_dict())
    # to_dict fills defaults; every field the spec set comes back as it was.
    for key, value in original.items():
        if key == "podTypes":
            for written, read in zip(value, back["podTypes"], strict=True):
                assert {k: read[k] for k in written} == written
        elif key == "autoscaler":
            assert back["autoscaler"]["updateIntervalS"] == 2
        else:
            assert back[key] == value


def test_a_config_round_trips_through_the_spec() -> None:
    """config -> spec -> config is the identity for the fields the spec holds."""
    config_dict = ClusterConfig.from_dict(spec_to_config(spec(), cluster_name="c", provider=PROVIDER)).to_dict()
    assert spec_to_config(config_to_spec(config_dict), cluster_name="c", provider=PROVIDER) == config_dict


def test_the_config_accepts_exactly_the_fields_of_the_table() -> None:
    """A field the table lists is accepted by ClusterConfig; one it does not is refused."""
    config_dict = spec_to_config(spec(), cluster_name="c", provider=PROVIDER)
    for name in field_names(CLUSTER_FIELDS, setup=True):
        assert name in ClusterConfig.from_dict({**config_dict, name: config_dict.get(name)}).setup
    with pytest.raises(ConfigError) as error:
        ClusterConfig.from_dict({**config_dict, "not_a_field": 1})
    assert error.value.path == "not_a_field"


@pytest.mark.parametrize(
    ("config_path", "expected"),
    [
        ("available_node_types.worker-node.min_workers", "spec.podTypes[1].minWorkers"),
        ("available_node_types.worker-node.resources.CPU", "spec.podTypes[1].rayResources.CPU"),
        ("available_node_types.head-node.node_config", "spec.podTypes[0].podConfig"),
        ('available_node_types["odd name"]', "spec.podTypes[odd name]"),
        ("head_node_type", "spec.headPodType"),
        ("autoscaler.update_interval_s", "spec.autoscaler.updateIntervalS"),
        ("idle_timeout_minutes", "spec.idleTimeoutMinutes"),
    ],
)
def test_an_error_path_is_reported_in_the_spec_spelling(config_path: str, expected: str) -> None:
    """A ConfigError's path (snake_case config) names the field the RayCluster's author wrote."""
    assert spec_path(config_path, spec()) == expected


def test_an_invalid_spec_fails_with_a_path_the_spec_author_recognises() -> None:
    """min_workers above max_workers in the second pod type is reported at spec.podTypes[1].minWorkers."""
    bad = spec()
    bad["podTypes"][1]["minWorkers"] = 9
    with pytest.raises(ConfigError) as error:
        ClusterConfig.from_dict(spec_to_config(bad, cluster_name="c", provider=PROVIDER))
    assert spec_path(error.value.path, bad) == "spec.podTypes[1].minWorkers"
