"""The Kubernetes launcher's config (no cluster): the seed's example, Ray's defaults, errors, pod templates."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from rayk8s.cli import main
from rayk8s.errors import ConfigError
from rayk8s.launcher import ClusterConfig, kubernetes_node_configs
from rayk8s.launcher._config import AUTOSCALER_RULES, COMMAND_DEFAULTS
from rayk8s.launcher._kubernetes import bootstrap_config
from rayk8s.providers.kubernetes._exec import exit_code_of
from rayk8s.providers.kubernetes._services import service_manifests

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "kubernetes" / "example-full.yaml"


def example() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return raw


def test_the_seed_example_describes_the_seed_cluster() -> None:
    """example-full.yaml: a head and a worker type of 1 CPU / 0.5Gi pods, up to 2 workers, the head Service."""
    config = ClusterConfig.from_file(EXAMPLE)
    assert config.provider_type == "kubernetes"
    assert config.max_workers == 2
    assert set(config.node_types) == {"head_node", "worker_node"}
    assert config.head_node_type == "head_node"
    for spec in config.node_types.values():
        assert spec.resources["CPU"] == 1
        assert spec.resources["memory"] == 512 * 2**20
    assert config.node_types["worker_node"].max_workers == 2
    assert config.node_types["worker_node"].resources["foo"] == 1  # stated resources are added
    assert config.kubernetes is not None and config.kubernetes.namespace == "ray"
    (service,) = config.kubernetes.services
    assert {p["port"] for p in service["spec"]["ports"]} == {10001, 8265}
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in config.commands.head_start_ray_commands[-1]
    assert ClusterConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()


def test_the_head_service_of_the_example_also_exposes_the_gcs_port() -> None:
    """The example's head Service lists 10001 and 8265; the workers join on 6379, so it is added."""
    config = ClusterConfig.from_file(EXAMPLE)
    assert config.kubernetes is not None
    (head,) = service_manifests(config.cluster_name, config.kubernetes.services)
    assert [p["port"] for p in head["spec"]["ports"]] == [10001, 8265, 6379]
    assert head["spec"]["selector"] == {"component": "example-cluster-ray-head"}


def test_rays_defaults_fill_what_the_config_leaves_out() -> None:
    """Without commands, RBAC manifests or use_internal_ips: Ray's defaults (RBAC named autoscaler)."""
    raw = example()
    for key in [*COMMAND_DEFAULTS, "file_mounts"]:
        raw.pop(key, None)
    for key in ("autoscaler_service_account", "autoscaler_role", "autoscaler_role_binding", "use_internal_ips"):
        raw["provider"].pop(key)
    config = ClusterConfig.from_dict(raw)
    assert config.commands.head_start_ray_commands == COMMAND_DEFAULTS["head_start_ray_commands"]
    assert config.commands.setup_commands == ()
    assert dict(config.commands.file_mounts) == {}
    fields = config.kubernetes
    assert fields is not None and fields.use_internal_ips
    assert fields.service_account_name == "autoscaler"
    assert fields.role["rules"] == [dict(rule) for rule in AUTOSCALER_RULES]
    assert fields.role_binding["roleRef"]["name"] == "autoscaler"


def test_the_default_role_is_the_documented_minimal_role() -> None:
    """The launcher's default Role grants what examples/kubernetes/autoscaler-rbac.yaml grants."""
    documents = list(yaml.safe_load_all((ROOT / "examples" / "kubernetes" / "autoscaler-rbac.yaml").read_text()))
    role = next(d for d in documents if d["kind"] == "Role")
    assert role["rules"] == [dict(rule) for rule in AUTOSCALER_RULES]
    assert example()["provider"]["autoscaler_role"]["rules"] == role["rules"]


def test_resources_come_from_the_pod_template_only_for_kubernetes() -> None:
    """A node type without resources is fine on Kubernetes (limits say it), an error elsewhere."""
    raw = example()
    raw["available_node_types"]["worker_node"].pop("resources")
    resources = ClusterConfig.from_dict(raw).node_types["worker_node"].resources
    assert dict(resources) == {"CPU": 1, "memory": 512 * 2**20}
    raw["provider"] = {"type": "local"}
    with pytest.raises(ConfigError) as raised:
        ClusterConfig.from_dict(raw)
    assert raised.value.path == "available_node_types.worker_node.resources"


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = raw
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "error_path", "words"),
    [
        ("provider.namespace", _DELETE, "provider.namespace", "expected a string"),
        ("provider.use_internal_ips", False, "provider.use_internal_ips", "internal IPs only"),
        ("provider.use_internal_ips", "yes", "provider.use_internal_ips", "true or false"),
        ("provider.autoscaler_role.kind", "ClusterRole", "provider.autoscaler_role.kind", "expected Role"),
        ("provider.autoscaler_service_account.metadata", {}, "provider.autoscaler_service_account.metadata.name", ""),
        ("provider.services", "svc", "provider.services", "list of Service manifests"),
        ("provider.namespaces", "ray", "provider.namespaces", "did you mean 'namespace'"),
        ("head_start_ray_commands", "ray start --head", "head_start_ray_commands", "list of shell commands"),
        ("setup_commands", ["ok", 3], "setup_commands[1]", "expected a string"),
        ("file_mounts", {"~/a": 1}, 'file_mounts["~/a"]', "expected a string"),
        ("head_setup_command", [], "head_setup_command", "head_setup_commands"),
        (
            "available_node_types.worker_node.node_config.spec.containers",
            [{"name": "c", "resources": {"limits": {"cpu": "lots"}}}],
            "available_node_types.worker_node.node_config.spec.containers[0].resources.limits.cpu",
            "",
        ),
    ],
)
def test_errors_name_the_field_path(path: str, value: Any, error_path: str, words: str) -> None:
    """Each bad field is refused with its path (and what was expected, or a did-you-mean)."""
    raw = copy.deepcopy(example())
    _set(raw, path, value)
    with pytest.raises(ConfigError) as raised:
        ClusterConfig.from_dict(raw)
    assert raised.value.path == error_path, str(raised.value)
    assert words in raised.value.message


def test_a_bad_config_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """`rayk8s up` on a config with a typo prints one line naming the field, before any API call."""
    raw = example()
    raw["worker_start_ray_command"] = []
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(main, ["up", str(path), "--yes"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "worker_start_ray_command" in result.output and "worker_start_ray_commands" in result.output


def test_worker_pods_start_ray_with_a_post_start_hook() -> None:
    """Worker templates get RAY_HEAD_IP (the head Service) and a postStart hook with the commands."""
    raw = example()
    raw["setup_commands"] = ["echo everywhere"]
    raw["worker_setup_commands"] = ["echo worker"]
    config = ClusterConfig.from_dict(raw)
    templates = kubernetes_node_configs(config)
    container = templates["worker_node"]["spec"]["containers"][0]
    assert {"name": "RAY_HEAD_IP", "value": "example-cluster-ray-head"} in container["env"]
    script = container["lifecycle"]["postStart"]["exec"]["command"]
    assert script[:2] == ["/bin/sh", "-c"]
    assert script[2].splitlines() == [
        "set -e",
        "echo everywhere",
        "echo worker",
        *COMMAND_DEFAULTS["worker_start_ray_commands"],
    ]
    head = templates["head_node"]
    assert head["spec"]["serviceAccountName"] == "autoscaler"
    assert "lifecycle" not in head["spec"]["containers"][0]
    # The config itself is untouched: the templates are derived, every time the same.
    assert "lifecycle" not in config.node_types["worker_node"].node_config["spec"]["containers"][0]
    assert kubernetes_node_configs(config) == templates


def test_a_worker_template_with_its_own_post_start_hook_is_refused() -> None:
    raw = example()
    container = raw["available_node_types"]["worker_node"]["node_config"]["spec"]["containers"][0]
    container["lifecycle"] = {"postStart": {"exec": {"command": ["true"]}}}
    with pytest.raises(ConfigError) as raised:
        kubernetes_node_configs(ClusterConfig.from_dict(raw))
    assert raised.value.path == "available_node_types.worker_node.node_config.spec.containers[0].lifecycle.postStart"


def test_the_bootstrap_config_uses_in_cluster_credentials() -> None:
    """The config written to the head drops kubeconfig/context and otherwise loads as the same cluster."""
    raw = example()
    raw["provider"]["kubeconfig"] = "/home/me/.kube/config"
    raw["provider"]["context"] = "laptop"
    config = ClusterConfig.from_dict(raw)
    written = bootstrap_config(config)
    assert "kubeconfig" not in written["provider"] and "context" not in written["provider"]
    again = ClusterConfig.from_dict(yaml.safe_load(yaml.safe_dump(written)))
    assert again.node_types == config.node_types
    assert kubernetes_node_configs(again) == kubernetes_node_configs(config)


@pytest.mark.parametrize(
    ("status", "code", "has_message"),
    [
        ('{"metadata":{},"status":"Success"}', 0, False),
        (
            '{"status":"Failure","reason":"NonZeroExitCode",'
            '"details":{"causes":[{"reason":"ExitCode","message":"42"}]},"message":"command terminated"}',
            42,
            False,
        ),
        ('{"status":"Failure","message":"error executing command: cmd wait: sh -c x: exit status 3"}', 3, False),
        ('{"status":"Failure","message":"container not found (\\"ray\\")"}', 1, True),
        ("", 1, True),
    ],
)
def test_exit_codes_come_from_the_final_exec_status(status: str, code: int, has_message: bool) -> None:
    """The kubelet's NonZeroExitCode cause, a runtime's `exit status N`, success, or a failure to run."""
    assert exit_code_of(status)[0] == code
    assert bool(exit_code_of(status.encode())[1]) == has_message


def test_no_kubeconfig_is_one_line(tmp_path: Path) -> None:
    """A kubeconfig that does not exist: one line naming provider.kubeconfig, exit 2."""
    raw = example()
    raw["provider"]["kubeconfig"] = str(tmp_path / "missing")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    for command in (["up", str(path), "--yes"], ["exec", str(path), "true"], ["get-head-ip", str(path)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("rayk8s: error: provider.kubeconfig: cannot load")
        assert result.output.count("\n") == 1


def test_an_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    """A kubeconfig whose server does not answer: `cannot reach the Kubernetes API server at ...`, exit 1."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    raw = example()
    raw["provider"]["kubeconfig"] = str(kubeconfig)
    raw["provider"]["retry"] = {"max_attempts": 1}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    for command in (["up", str(path), "--yes"], ["down", str(path), "--yes"], ["status", str(path)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("rayk8s: error: cannot reach the Kubernetes API server at https://127.0.0.1:9")
        assert result.output.count("\n") == 1


def test_head_commands_need_the_kubernetes_provider(tmp_path: Path) -> None:
    """exec/attach/monitor/get-head-ip on a local config: one line naming provider.type."""
    path = ROOT / "examples" / "local" / "cluster.yaml"
    for command in ("exec", "attach", "monitor", "get-head-ip"):
        args = [command, str(path), "true"] if command == "exec" else [command, str(path)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2
        assert f"`rayk8s {command}` needs provider.type kubernetes" in result.output
