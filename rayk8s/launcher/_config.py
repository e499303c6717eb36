"""The cluster config: Ray's cluster-launcher YAML, parsed once and checked field by field.

The fields are Ray's (``cluster_name``, ``max_workers``, ``upscaling_speed``,
``idle_timeout_minutes``, ``provider``, ``head_node_type``, ``available_node_types``
with ``node_config``, ``resources``, ``min_workers``, ``max_workers``), plus rayk8s's own:
``cost`` and ``idle_timeout_minutes`` per node type, and an ``autoscaler`` block with the
loop's timings. Ray's node set-up fields (``setup_commands``, ``file_mounts``, ``auth``,
``docker``, ...) are accepted so a Ray config loads unchanged; a provider that does not use
them (``local`` runs Ray from this Python) reports them in :attr:`ClusterConfig.ignored`.
The commands and ``file_mounts`` are checked and parsed, with Ray's defaults, into
:attr:`ClusterConfig.commands` (:class:`NodeCommands`); with ``provider.type: kubernetes``
the launcher's provider fields (``namespace``, ``use_internal_ips``, the autoscaler's
ServiceAccount, Role and RoleBinding, ``services``) are checked into
:attr:`ClusterConfig.kubernetes` (:class:`KubernetesFields`), and a node type may leave
``resources`` out: they are derived from its pod template (CPU, memory, GPU limits).
Unknown fields are refused with a did-you-mean; every error names its field path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from rayk8s._documents import load_document
from rayk8s.autoscaler import AutoscalerConfig, NodeType, NodeTypeConfig, Resources
from rayk8s.autoscaler._validate import (
    check_fields,
    describe,
    expect_bool,
    expect_int,
    expect_list,
    expect_mapping,
    expect_number,
    expect_resources,
    expect_str,
    expect_worker_limits,
    field_path,
    suggest,
)
from rayk8s.errors import ConfigError
from rayk8s.launcher._schema import AUTOSCALER_FIELDS, CLUSTER_FIELDS, NODE_TYPE_FIELDS, field_names

__all__ = ["AutoscalerSettings", "ClusterConfig", "KubernetesFields", "NodeCommands", "NodeTypeSpec"]

#: Ray cluster-launcher fields about setting nodes up; accepted, used by providers that need them.
SETUP_FIELDS = field_names(CLUSTER_FIELDS, setup=True)
_TOP_FIELDS = field_names(CLUSTER_FIELDS)
_NODE_TYPE_FIELDS = field_names(NODE_TYPE_FIELDS)
_NODE_TYPE_SETUP_FIELDS = field_names(NODE_TYPE_FIELDS, setup=True)
_AUTOSCALER_FIELDS = field_names(AUTOSCALER_FIELDS)


@attrs.frozen
class AutoscalerSettings:
    """The ``autoscaler`` block: the loop's timings, in seconds.

    ``update_interval_s``: time between two updates (Ray's monitor: 5 s).
    The rest are :class:`~rayk8s.autoscaler.AutoscalerConfig`'s fields of the same names.
    """

    update_interval_s: float = 5.0
    stuck_timeout_s: float = 600.0
    heartbeat_timeout_s: float = 30.0
    launch_backoff_initial_s: float = 30.0
    launch_backoff_max_s: float = 600.0
    terminate_retry_s: float = 60.0

    @classmethod
    def from_dict(cls, value: object, path: str = "autoscaler") -> AutoscalerSettings:
        spec = expect_mapping(value, path)
        check_fields(spec, path, optional=_AUTOSCALER_FIELDS)
        numbers = {name: expect_number(spec[name], field_path(path, name)) for name in spec}
        if numbers.get("update_interval_s", 1.0) <= 0:
            raise ConfigError(field_path(path, "update_interval_s"), "expected a number > 0")
        return cls(**numbers)


#: Ray's command fields: name -> default. The start commands are Ray's Kubernetes defaults,
#: plus ``--no-monitor`` on the head: rayk8s runs its own autoscaler there, not Ray's.
COMMAND_DEFAULTS: dict[str, tuple[str, ...]] = {
    "initialization_commands": (),
    "setup_commands": (),
    "head_setup_commands": (),
    "worker_setup_commands": (),
    "head_start_ray_commands": (
        "ray stop",
        "ulimit -n 65536; ray start --head --port=6379 --no-monitor --dashboard-host 0.0.0.0"
        " --autoscaling-config=~/ray_bootstrap_config.yaml",
    ),
    "worker_start_ray_commands": (
        "ray stop",
        "ulimit -n 65536; ray start --address=$RAY_HEAD_IP:6379",
    ),
}


@attrs.frozen
class NodeCommands:
    """How nodes are set up and Ray is started on them (Ray's fields, Ray's defaults).

    ``setup_commands`` run on every node before its own ``head_setup_commands`` /
    ``worker_setup_commands``; then ``head_start_ray_commands`` /
    ``worker_start_ray_commands`` start Ray. ``initialization_commands`` (Ray runs them on
    the host, outside the container) are accepted and not used by the Kubernetes launcher.
    ``file_mounts`` maps a path on the node to a local path copied there (``~`` is the
    node's home directory).
    """

    initialization_commands: tuple[str, ...] = COMMAND_DEFAULTS["initialization_commands"]
    setup_commands: tuple[str, ...] = COMMAND_DEFAULTS["setup_commands"]
    head_setup_commands: tuple[str, ...] = COMMAND_DEFAULTS["head_setup_commands"]
    worker_setup_commands: tuple[str, ...] = COMMAND_DEFAULTS["worker_setup_commands"]
    head_start_ray_commands: tuple[str, ...] = COMMAND_DEFAULTS["head_start_ray_commands"]
    worker_start_ray_commands: tuple[str, ...] = COMMAND_DEFAULTS["worker_start_ray_commands"]
    file_mounts: Mapping[str, str] = attrs.field(factory=dict, hash=False)

    @classmethod
    def from_dict(cls, root: Mapping[str, Any]) -> NodeCommands:
        """The command fields of a config's top level (absent or null: Ray's default)."""
        fields: dict[str, Any] = {}
        for name, default in COMMAND_DEFAULTS.items():
            value = root.get(name)
            if value is None:
                fields[name] = default
                continue
            items = expect_list(value, name, "a list of shell commands")
            fields[name] = tuple(expect_str(item, f"{name}[{index}]") for index, item in enumerate(items))
        mounts = expect_mapping(root.get("file_mounts") or {}, "file_mounts", "a mapping of remote path to local path")
        fields["file_mounts"] = {
            remote: expect_str(local, field_path("file_mounts", remote)) for remote, local in mounts.items()
        }
        return cls(**fields)

    def setup_for(self, head: bool) -> tuple[str, ...]:
        """The set-up commands of the head (``head``) or of a worker, in the order they run."""
        return self.setup_commands + (self.head_setup_commands if head else self.worker_setup_commands)

    def start_for(self, head: bool) -> tuple[str, ...]:
        return self.head_start_ray_commands if head else self.worker_start_ray_commands


#: ``provider`` fields for ``type: kubernetes`` that the launcher uses (Ray's names).
KUBERNETES_LAUNCHER_FIELDS = (
    "namespace",
    "use_internal_ips",
    "autoscaler_service_account",
    "autoscaler_role",
    "autoscaler_role_binding",
    "services",
)
#: The autoscaler's default permissions: what the Kubernetes provider calls, no more
#: (the same rules as ``examples/kubernetes/autoscaler-rbac.yaml``).
AUTOSCALER_RULES: tuple[Mapping[str, Any], ...] = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete", "patch"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
)
#: The name of the default ServiceAccount, Role and RoleBinding (Ray's).
AUTOSCALER_RBAC_NAME = "autoscaler"


def _default_rbac() -> dict[str, dict[str, Any]]:
    name = AUTOSCALER_RBAC_NAME
    return {
        "autoscaler_service_account": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        "autoscaler_role": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name},
            "rules": [dict(rule) for rule in AUTOSCALER_RULES],
        },
        "autoscaler_role_binding": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name}],
            "roleRef": {"kind": "Role", "name": name, "apiGroup": "rbac.authorization.k8s.io"},
        },
    }


_RBAC_KINDS = {
    "autoscaler_service_account": "ServiceAccount",
    "autoscaler_role": "Role",
    "autoscaler_role_binding": "RoleBinding",
}


@attrs.frozen
class KubernetesFields:
    """The ``provider`` fields the Kubernetes launcher uses (Ray's cluster-launcher names).

    - ``namespace`` (required): where every object of the cluster lives.
    - ``use_internal_ips`` (default true): pods have only internal IPs; false is refused,
      as in Ray (exposing external IPs of pods is not supported).
    - ``autoscaler_service_account``, ``autoscaler_role``, ``autoscaler_role_binding``:
      the manifests ``rayk8s up`` creates for the autoscaler on the head (its in-cluster
      credentials). Absent: Ray's defaults, all named ``autoscaler``, with the permissions
      of :data:`AUTOSCALER_RULES`.
    - ``services``: Service manifests; the head Service ``<cluster>-ray-head`` (client
      10001, dashboard 8265, GCS 6379) is always made, and one of the same name here
      replaces it.
    """

    namespace: str
    use_internal_ips: bool = True
    service_account: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    role: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    role_binding: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    services: tuple[Mapping[str, Any], ...] = attrs.field(default=(), hash=False)

    @classmethod
    def from_provider(cls, provider: Mapping[str, Any]) -> KubernetesFields:
        """Check the launcher's fields of a ``provider`` mapping; errors name ``provider.<field>``.

        The provider's own fields are checked too (:class:`KubernetesProviderConfig`), so
        a typo is refused before anything is created.
        """
        from rayk8s.providers.kubernetes import KubernetesProviderConfig

        namespace = expect_str(provider.get("namespace"), "provider.namespace")
        use_internal = expect_bool(provider.get("use_internal_ips", True), "provider.use_internal_ips")
        if not use_internal:
            raise ConfigError(
                "provider.use_internal_ips", "expected true: pods have internal IPs only (as in Ray's launcher)"
            )
        defaults = _default_rbac()
        manifests: dict[str, Mapping[str, Any]] = {}
        for field, kind in _RBAC_KINDS.items():
            path = f"provider.{field}"
            value = provider.get(field)
            manifest = defaults[field] if value is None else expect_mapping(value, path, f"a {kind} manifest")
            if manifest.get("kind", kind) != kind:
                raise ConfigError(f"{path}.kind", f"expected {kind}, got {describe(manifest.get('kind'))}")
            metadata = expect_mapping(manifest.get("metadata"), f"{path}.metadata", "a mapping with a name")
            expect_str(metadata.get("name"), f"{path}.metadata.name")
            manifests[field] = dict(manifest)
        binding = manifests["autoscaler_role_binding"]
        for index, subject in enumerate(
            expect_list(binding.get("subjects"), "provider.autoscaler_role_binding.subjects")
        ):
            expect_mapping(subject, f"provider.autoscaler_role_binding.subjects[{index}]")
        expect_mapping(binding.get("roleRef"), "provider.autoscaler_role_binding.roleRef")
        services = provider.get("services") or []
        for index, service in enumerate(expect_list(services, "provider.services", "a list of Service manifests")):
            expect_mapping(service, f"provider.services[{index}]", "a Service manifest")
        KubernetesProviderConfig.from_dict(provider)
        return cls(
            namespace=namespace,
            use_internal_ips=use_internal,
            service_account=manifests["autoscaler_service_account"],
            role=manifests["autoscaler_role"],
            role_binding=manifests["autoscaler_role_binding"],
            services=tuple(services),
        )

    @property
    def service_account_name(self) -> str:
        return str(self.service_account["metadata"]["name"])


@attrs.frozen
class NodeTypeSpec:
    """One entry of ``available_node_types``."""

    name: str
    resources: Resources
    node_config: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    min_workers: int = 0
    max_workers: int | None = None
    cost: float = 1.0
    idle_timeout_minutes: float | None = None
    #: Ray set-up fields of this type (``worker_setup_commands``), by name.
    setup: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class ClusterConfig:
    """A parsed cluster config; build it with :meth:`from_file` or :meth:`from_dict`."""

    cluster_name: str
    provider: Mapping[str, Any] = attrs.field(hash=False)
    head_node_type: str
    node_types: Mapping[str, NodeTypeSpec] = attrs.field(hash=False)
    max_workers: int | None = None
    upscaling_speed: float = 1.0
    idle_timeout_minutes: float = 5.0
    autoscaler: AutoscalerSettings = AutoscalerSettings()
    #: Ray set-up fields present in the file (``setup_commands``, ...), by name.
    setup: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    #: The commands and file mounts, checked, with Ray's defaults for those absent.
    commands: NodeCommands = NodeCommands()
    #: The Kubernetes launcher's provider fields (``provider.type: kubernetes`` only).
    kubernetes: KubernetesFields | None = attrs.field(default=None, hash=False)
    #: Where the config was read from, if from a file.
    source: Path | None = None

    @property
    def provider_type(self) -> str:
        return str(self.provider["type"])

    @property
    def head(self) -> NodeTypeSpec:
        return self.node_types[self.head_node_type]

    @property
    def ignored(self) -> list[str]:
        """Set-up fields present in the file that a provider running Ray locally does not use."""
        return sorted(self.setup)

    @classmethod
    def from_file(cls, path: str | Path) -> ClusterConfig:
        """Read and check a cluster config (YAML or JSON); raises :class:`ConfigError`."""
        config = cls.from_dict(load_document(path))
        return attrs.evolve(config, source=Path(path))

    @classmethod
    def from_dict(cls, data: object) -> ClusterConfig:
        """Check a parsed config; raises :class:`ConfigError` naming the field path."""
        root = expect_mapping(data, "", "a cluster config mapping")
        check_fields(
            root,
            "",
            required=("cluster_name", "provider", "head_node_type", "available_node_types"),
            optional=_TOP_FIELDS,
        )
        name = expect_str(root["cluster_name"], "cluster_name")
        provider = expect_mapping(root["provider"], "provider")
        if "type" not in provider and "module" not in provider:
            raise ConfigError("provider.type", "required field is missing (local, or a registered provider)")
        if "type" in provider:
            expect_str(provider["type"], "provider.type")
        types_value = expect_mapping(root["available_node_types"], "available_node_types")
        if not types_value:
            raise ConfigError("available_node_types", "expected at least one node type")
        kubernetes = KubernetesFields.from_provider(provider) if provider.get("type") == "kubernetes" else None
        if kubernetes is not None:
            types_value = _fill_kubernetes_resources(types_value)
        node_types = {
            type_name: _node_type(type_name, spec, field_path("available_node_types", type_name))
            for type_name, spec in types_value.items()
        }
        head = expect_str(root["head_node_type"], "head_node_type")
        if head not in node_types:
            raise ConfigError(
                "head_node_type",
                f"unknown node type {describe(head)}{suggest(head, node_types)}; known types: {', '.join(node_types)}",
            )
        max_value = root.get("max_workers")
        config = cls(
            cluster_name=name,
            provider=dict(provider),
            head_node_type=head,
            node_types=node_types,
            max_workers=None if max_value is None else expect_int(max_value, "max_workers"),
            upscaling_speed=expect_number(root.get("upscaling_speed", 1.0), "upscaling_speed"),
            idle_timeout_minutes=expect_number(root.get("idle_timeout_minutes", 5.0), "idle_timeout_minutes"),
            autoscaler=AutoscalerSettings.from_dict(root.get("autoscaler", {})),
            setup={key: root[key] for key in SETUP_FIELDS if key in root},
            commands=NodeCommands.from_dict(root),
            kubernetes=kubernetes,
        )
        config.to_autoscaler_config()  # cross-field checks (min vs max workers, ...)
        return config

    def to_dict(self) -> dict[str, Any]:
        """The config as Ray's YAML fields; ``from_dict(to_dict())`` gives an equal config."""
        types: dict[str, Any] = {}
        for spec in self.node_types.values():
            entry: dict[str, Any] = {"resources": spec.resources.to_dict(), "node_config": dict(spec.node_config)}
            entry["min_workers"] = spec.min_workers
            if spec.max_workers is not None:
                entry["max_workers"] = spec.max_workers
            if spec.cost != 1.0:
                entry["cost"] = spec.cost
            if spec.idle_timeout_minutes is not None:
                entry["idle_timeout_minutes"] = spec.idle_timeout_minutes
            entry.update(spec.setup)
            types[spec.name] = entry
        out: dict[str, Any] = {"cluster_name": self.cluster_name}
        if self.max_workers is not None:
            out["max_workers"] = self.max_workers
        out.update(
            {
                "upscaling_speed": self.upscaling_speed,
                "idle_timeout_minutes": self.idle_timeout_minutes,
                "provider": dict(self.provider),
                "head_node_type": self.head_node_type,
                "available_node_types": types,
                "autoscaler": attrs.asdict(self.autoscaler),
                **dict(self.setup),
            }
        )
        return out

    def to_autoscaler_config(self, node_configs: Mapping[str, Mapping[str, Any]] | None = None) -> AutoscalerConfig:
        """The :class:`AutoscalerConfig` this cluster runs with.

        ``node_configs`` replaces node types' ``node_config`` (a launcher fills in what its
        provider needs, such as the local provider's resources); default: as written.
        """
        settings = self.autoscaler
        types = []
        for spec in self.node_types.values():
            node_type = NodeType(
                spec.name,
                spec.resources,
                min_workers=spec.min_workers,
                max_workers=spec.max_workers,
                cost=spec.cost,
            )
            node_config = (node_configs or {}).get(spec.name, spec.node_config)
            types.append(NodeTypeConfig(node_type, node_config, spec.idle_timeout_minutes))
        return AutoscalerConfig(
            cluster_name=self.cluster_name,
            node_types=types,
            head_node_type=self.head_node_type,
            max_workers=self.max_workers,
            upscaling_speed=self.upscaling_speed,
            idle_timeout_minutes=self.idle_timeout_minutes,
            launch_backoff_initial_s=settings.launch_backoff_initial_s,
            launch_backoff_max_s=settings.launch_backoff_max_s,
            stuck_timeout_s=settings.stuck_timeout_s,
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
            terminate_retry_s=settings.terminate_retry_s,
        )


def _fill_kubernetes_resources(types: Mapping[str, Any]) -> dict[str, Any]:
    """Node types with ``resources`` derived from their pod templates where not stated (Ray's rule)."""
    from rayk8s.providers.kubernetes import KubernetesNodeProvider

    for name, spec in types.items():
        path = field_path("available_node_types", name)
        entry = expect_mapping(spec, path, "a node type mapping (node_config, resources, min_workers, max_workers)")
        check_fields(entry, path, optional=_NODE_TYPE_FIELDS)
        if entry.get("node_config") is not None:
            expect_mapping(entry["node_config"], field_path(path, "node_config"), "a pod template")
        if entry.get("resources") is not None:
            expect_mapping(entry["resources"], field_path(path, "resources"))
    filled = KubernetesNodeProvider.fillout_available_node_types_resources(
        {name: {key: value for key, value in spec.items() if value is not None} for name, spec in types.items()}
    )
    return filled


def _node_type(name: str, value: object, path: str) -> NodeTypeSpec:
    if not name.strip():
        raise ConfigError(path, "node type names must be non-empty")
    spec = expect_mapping(value, path, "a node type mapping (node_config, resources, min_workers, max_workers)")
    check_fields(spec, path, required=("resources",), optional=_NODE_TYPE_FIELDS)
    resources = expect_resources(spec["resources"], field_path(path, "resources"))
    node_config = expect_mapping(spec.get("node_config", {}) or {}, field_path(path, "node_config"))
    min_workers, max_workers = expect_worker_limits(spec, path)
    idle = spec.get("idle_timeout_minutes")
    return NodeTypeSpec(
        name=name,
        resources=resources,
        node_config=dict(node_config),
        min_workers=min_workers,
        max_workers=max_workers,
        cost=expect_number(spec.get("cost", 1.0), field_path(path, "cost")),
        idle_timeout_minutes=None if idle is None else expect_number(idle, field_path(path, "idle_timeout_minutes")),
        setup={key: spec[key] for key in _NODE_TYPE_SETUP_FIELDS if key in spec},
    )
