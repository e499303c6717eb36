"""The operator's view of one RayCluster, without Kubernetes: config, pod templates, Events."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from rayk8s.autoscaler import (
    Autoscaler,
    AutoscalerConfig,
    LoadSnapshot,
    NodeType,
    ResourceDemand,
    StaticLoadSource,
)
from rayk8s.errors import ConfigError
from rayk8s.operator import cluster_config, events_of
from rayk8s.operator._cluster import OperatorSettings, owner_reference, pod_templates, update_interval_s
from rayk8s.operator._logging import ClusterPrefixFormatter, prefix_lines
from rayk8s.providers.fake import FakeNodeProvider, ManualClock
from tests.test_operator_crd import CRD_FILE

EXAMPLE = CRD_FILE.parent / "example_cluster.yaml"


def spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())["spec"]
    return spec


def test_the_example_spec_is_a_cluster_config_with_resources_from_the_pod_limits() -> None:
    """rayResources adds to what the container limits give; the provider is filled by the operator."""
    config = cluster_config("example-cluster", "ray", spec(), provider={"owner_reference": owner_reference("x", "u")})
    assert config.provider["type"] == "kubernetes" and config.provider["namespace"] == "ray"
    worker = config.node_types["worker-node"]
    assert worker.resources.to_dict() == {"CPU": 1, "memory": 536870912, "Custom1": 1, "is_spot": 1}
    assert (worker.min_workers, worker.max_workers) == (2, 3)
    assert config.node_types["head-node"].resources.to_dict() == {"CPU": 1, "memory": 536870912}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda s: s["podTypes"][1].update(minWorkers=9), "spec.podTypes[1].minWorkers"),
        (lambda s: s.update(headPodType="nope"), "spec.headPodType"),
        (lambda s: s["podTypes"][1]["rayResources"].update(CPU="lots"), "spec.podTypes[1].rayResources.CPU"),
        (
            lambda s: s["podTypes"][0]["podConfig"]["spec"]["containers"][0]["resources"]["limits"].update(cpu="x"),
            "spec.podTypes[0].podConfig.spec.containers[0].resources.limits.cpu",
        ),
    ],
)
def test_an_invalid_spec_names_its_field_path_in_the_spec(change: Any, path: str) -> None:
    """The error a RayCluster's author sees names the field as they wrote it."""
    bad = spec()
    change(bad)
    with pytest.raises(ConfigError) as error:
        cluster_config("c", "ray", bad)
    assert error.value.path == path


def test_pod_templates_start_ray_in_a_hook_and_name_the_head_and_the_pod() -> None:
    """Head and workers run their role's start commands in a postStart hook; each knows the head and its own name."""
    config = cluster_config("example-cluster", "ray", spec())
    templates = pod_templates(config)
    head = templates["head-node"]["spec"]["containers"][0]
    worker = templates["worker-node"]["spec"]["containers"][0]
    head_hook = head["lifecycle"]["postStart"]["exec"]["command"][-1]
    worker_hook = worker["lifecycle"]["postStart"]["exec"]["command"][-1]
    assert "ray start --head --port=6379 --no-monitor" in head_hook
    assert "ray start --address=$RAY_HEAD_IP:6379" in worker_hook
    assert head["args"] == ["trap : TERM INT; sleep infinity & wait;"]  # the container's own command stays
    env = {e["name"]: e for e in worker["env"]}
    assert env["RAY_HEAD_IP"]["value"] == "example-cluster-ray-head"
    assert env["RAY_CLOUD_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "serviceAccountName" not in templates["head-node"]["spec"]  # the operator runs the autoscaler


def test_a_pod_type_with_its_own_post_start_hook_is_an_error_at_its_spec_path() -> None:
    """The operator owns the postStart hook; one in the podConfig is refused, naming where it is."""
    bad = spec()
    bad["podTypes"][1]["podConfig"]["spec"]["containers"][0]["lifecycle"] = {"postStart": {"exec": {"command": ["x"]}}}
    with pytest.raises(ConfigError) as error:
        cluster_config("c", "ray", bad)
    assert error.value.path == "spec.podTypes[1].podConfig.spec.containers[0].lifecycle.postStart"


def test_events_say_what_an_update_did() -> None:
    """A launch is a ScaledUp Event naming the type, count and reason; an idle termination a ScaledDown."""
    clock = ManualClock()
    config = AutoscalerConfig("c", {"w": NodeType("w", {"CPU": 1}, max_workers=5)}, idle_timeout_minutes=0)
    provider = FakeNodeProvider({"type": "fake", "launch_delay_s": 0}, "c", clock=clock)
    load = StaticLoadSource(LoadSnapshot(demands=[ResourceDemand({"CPU": 1}, 2)]))
    autoscaler = Autoscaler(config, provider=provider, load_source=load, clock=clock)
    events = events_of(autoscaler.update())
    assert [(e.type, e.reason, e.message) for e in events] == [("Normal", "ScaledUp", "launched 2 w (demand)")]


def test_log_lines_about_a_cluster_are_prefixed_line_by_line() -> None:
    """The monitor block keeps the prefix on every line; kopf's per-object records are prefixed by object name."""
    assert prefix_lines("c2", "a\n - b") == "c2:a\nc2: - b"
    assert prefix_lines(None, "a") == "a"
    import logging

    record = logging.LogRecord("kopf.objects", logging.INFO, "", 0, "Handler succeeded.", None, None)
    record.k8s_ref = {"name": "example-cluster", "namespace": "ray"}
    assert ClusterPrefixFormatter("%(message)s").format(record) == "example-cluster:Handler succeeded."


def test_operator_settings_refuse_an_unknown_load_source() -> None:
    with pytest.raises(ConfigError, match="load_source"):
        OperatorSettings(load_source="prometheus")


def test_the_update_interval_is_the_specs_else_the_operators() -> None:
    """autoscaler.updateIntervalS in the spec wins over --update-interval; the default is 5 s."""
    plain = spec()
    config = cluster_config("c", "ray", plain)
    assert update_interval_s(plain, config, OperatorSettings()) == 5.0
    assert update_interval_s(plain, config, OperatorSettings(update_interval_s=0.5)) == 0.5
    stated = {**spec(), "autoscaler": {"updateIntervalS": 2}}
    assert update_interval_s(stated, cluster_config("c", "ray", stated), OperatorSettings(update_interval_s=0.5)) == 2
