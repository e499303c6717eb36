"""The cluster-config schema as one declarative table: every field, its type and its meaning.

Two readers, one source of truth:

- :class:`~rayk8s.launcher.ClusterConfig` takes the allowed and required field names from
  here (its checks of each value stay beside the parsing);
- the operator generates the ``RayCluster`` CRD's OpenAPI schema from it, and converts a
  RayCluster ``spec`` (camelCase) to a cluster config (snake_case) and back with
  :func:`spec_to_config` / :func:`config_to_spec`, one renaming walk over this table.

The spec spelling is the camelCase of the config's field name, except where Ray's
operator renamed a field: ``available_node_types`` is ``podTypes`` (a list of pod types,
each with a ``name``), ``resources`` is ``rayResources``, ``node_config`` is
``podConfig``, ``head_node_type`` is ``headPodType``, a node type's
``worker_setup_commands`` is ``setupCommands``. ``cluster_name`` is the RayCluster's
name and ``provider`` is filled by the operator, so neither is in the spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "AUTOSCALER_FIELDS",
    "CLUSTER_FIELDS",
    "NODE_TYPE_FIELDS",
    "Field",
    "camel_case",
    "config_to_spec",
    "field_names",
    "spec_path",
    "spec_to_config",
]

#: JSON types a field may have; ``open`` is a free-form mapping (a pod template, Docker
#: settings), ``resources`` a mapping of resource name to a number or a quantity string.
TYPES = ("string", "integer", "number", "boolean", "object", "array", "open", "resources")


@attrs.frozen
class Field:
    """One config field.

    ``name``: the config's (snake_case) key. ``type``: one of :data:`TYPES`.
    ``description``: what it means, with units and default, for people and the CRD.
    ``required``: must be present. ``spec_name``: the RayCluster spec key when it is not
    ``camel_case(name)``; ``in_spec`` False for fields the operator fills itself.
    ``items``: the element type of an ``array``. ``fields``: the fields of an ``object``
    (or of each element when ``keyed_by`` is set). ``keyed_by``: the config holds a
    mapping of name -> object, the spec a list of objects carrying the name in this key.
    ``minimum``: the least number allowed. ``setup``: one of Ray's node set-up fields,
    used only by providers that set nodes up themselves.
    """

    name: str
    type: str
    description: str
    required: bool = False
    spec_name: str | None = None
    in_spec: bool = True
    items: str | None = None
    fields: tuple[Field, ...] = ()
    keyed_by: str | None = None
    minimum: float | None = None
    setup: bool = False

    def __attrs_post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")

    @property
    def spec_key(self) -> str:
        return self.spec_name or camel_case(self.name)


def camel_case(name: str) -> str:
    """``idle_timeout_minutes`` -> ``idleTimeoutMinutes``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def field_names(fields: Iterable[Field], *, required: bool | None = None, setup: bool | None = None) -> tuple[str, ...]:
    """The config names of ``fields``, optionally only the (non-)required or (non-)set-up ones."""
    return tuple(
        f.name for f in fields if (required is None or f.required == required) and (setup is None or f.setup == setup)
    )


def _commands(name: str, what: str, spec_name: str | None = None) -> Field:
    return Field(name, "array", what, items="string", setup=True, spec_name=spec_name)


AUTOSCALER_FIELDS: tuple[Field, ...] = (
    Field("update_interval_s", "number", "Seconds between two autoscaler updates. Default 5.", minimum=0),
    Field(
        "stuck_timeout_s",
        "number",
        "Seconds a node may take to join Ray after it was created before it is replaced. Default 600.",
        minimum=0,
    ),
    Field(
        "heartbeat_timeout_s",
        "number",
        "Seconds without a heartbeat after which a node is lost and replaced. Default 30.",
        minimum=0,
    ),
    Field(
        "launch_backoff_initial_s",
        "number",
        "Seconds a node type is not launched after its first launch failure (doubling). Default 30.",
        minimum=0,
    ),
    Field("launch_backoff_max_s", "number", "The longest launch back-off, in seconds. Default 600.", minimum=0),
    Field(
        "terminate_retry_s",
        "number",
        "Seconds after which a node still listed is asked to terminate again. Default 60.",
        minimum=0,
    ),
)

NODE_TYPE_FIELDS: tuple[Field, ...] = (
    Field(
        "node_config",
        "open",
        "How to make a node of this type: for Kubernetes, a Pod manifest (metadata, spec).",
        spec_name="podConfig",
    ),
    Field(
        "resources",
        "resources",
        "Ray resources of one node (CPU, GPU, memory, custom): numbers or quantities such as 500m or 16Gi."
        " On Kubernetes, what is not stated comes from the container's limits.",
        required=True,
        spec_name="rayResources",
    ),
    Field("min_workers", "integer", "Workers of this type always kept. Default 0.", minimum=0),
    Field("max_workers", "integer", "Most workers of this type. Default: no limit but the cluster's.", minimum=0),
    Field("cost", "number", "Price of one node per hour; the scheduler buys the cheapest fit. Default 1.", minimum=0),
    Field(
        "idle_timeout_minutes",
        "number",
        "Minutes a worker of this type may be idle before it is removed. Default: the cluster's.",
        minimum=0,
    ),
    _commands(
        "worker_setup_commands",
        "Commands run on a new worker of this type (instead of the cluster's workerSetupCommands).",
        spec_name="setupCommands",
    ),
)

CLUSTER_FIELDS: tuple[Field, ...] = (
    Field(
        "cluster_name",
        "string",
        "The cluster's name; it names pods and Services.",
        required=True,
        in_spec=False,
    ),
    Field("max_workers", "integer", "Most worker nodes in the cluster, over all types. Default: no limit.", minimum=0),
    Field(
        "upscaling_speed",
        "number",
        "Pending launches of a type are capped at max(5, upscalingSpeed x its running nodes). Default 1.",
        minimum=0,
    ),
    Field(
        "idle_timeout_minutes",
        "number",
        "Minutes a worker may be idle before it is removed. Default 5.",
        minimum=0,
    ),
    Field(
        "provider",
        "open",
        "The node provider: type (kubernetes, local, ...) and its settings.",
        required=True,
        in_spec=False,
    ),
    Field(
        "head_node_type",
        "string",
        "The node type of the head (one of the node types).",
        required=True,
        spec_name="headPodType",
    ),
    Field(
        "available_node_types",
        "object",
        "The node types the cluster is made of.",
        required=True,
        spec_name="podTypes",
        fields=NODE_TYPE_FIELDS,
        keyed_by="name",
    ),
    Field(
        "autoscaler",
        "object",
        "The autoscaler loop's timings, in seconds.",
        fields=AUTOSCALER_FIELDS,
    ),
    Field("auth", "open", "SSH settings (Ray's cluster launcher; unused on Kubernetes).", setup=True),
    Field("docker", "open", "Docker settings (Ray's cluster launcher).", setup=True),
    Field("file_mounts", "open", "Remote path -> local path of files copied to every node.", setup=True),
    Field("cluster_synced_files", "array", "Files synced from the head to the workers.", items="string", setup=True),
    Field(
        "file_mounts_sync_continuously",
        "boolean",
        "Keep file mounts in sync after start-up (Ray's cluster launcher).",
        setup=True,
    ),
    Field("rsync_exclude", "array", "Patterns rsync leaves out of file mounts.", items="string", setup=True),
    Field("rsync_filter", "array", "Files whose patterns rsync leaves out.", items="string", setup=True),
    _commands("initialization_commands", "Commands run on every node before anything else."),
    _commands("setup_commands", "Commands run on every node when it is set up."),
    _commands("head_setup_commands", "Commands run on the head after setupCommands."),
    _commands("worker_setup_commands", "Commands run on the workers after setupCommands."),
    _commands("head_start_ray_commands", "Commands that start Ray on the head."),
    _commands("worker_start_ray_commands", "Commands that start Ray on a worker."),
    Field("no_restart", "boolean", "Do not restart Ray when a node is set up again.", setup=True),
)


# -- the renaming walk ---------------------------------------------------------------------


def _rename(value: Any, fields: Sequence[Field], *, to_spec: bool) -> dict[str, Any]:
    """``value``'s keys renamed config -> spec (``to_spec``) or spec -> config, by ``fields``.

    Keys the table does not know are kept as they are, so the config's checks can name
    them. Fields not in the spec are dropped on the way to the spec.
    """
    if not isinstance(value, Mapping):
        return value  # type: ignore[no-any-return]  # the config's checks report the type
    by_key = {(f.name if to_spec else f.spec_key): f for f in fields if f.in_spec}
    dropped = {f.name for f in fields if not f.in_spec} if to_spec else set()
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in dropped:
            continue
        field = by_key.get(key)
        if field is None:
            out[key] = item
            continue
        out[field.spec_key if to_spec else field.name] = _convert_value(item, field, to_spec=to_spec)
    return out


def _convert_value(value: Any, field: Field, *, to_spec: bool) -> Any:
    if field.keyed_by is not None:
        return _keyed(value, field, to_spec=to_spec)
    if field.type == "object" and field.fields:
        return _rename(value, field.fields, to_spec=to_spec)
    return value


def _keyed(value: Any, field: Field, *, to_spec: bool) -> Any:
    key = field.keyed_by
    assert key is not None
    if to_spec:
        if not isinstance(value, Mapping):
            return value
        return [{key: name, **_rename(item, field.fields, to_spec=True)} for name, item in value.items()]
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {}
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            out[f"[{index}]"] = item  # the config's checks report "expected a mapping"
            continue
        body = {k: v for k, v in item.items() if k != key}
        out[str(item.get(key, f"[{index}]"))] = _rename(body, field.fields, to_spec=False)
    return out


def spec_to_config(spec: Mapping[str, Any], *, cluster_name: str, provider: Mapping[str, Any]) -> dict[str, Any]:
    """A RayCluster ``spec`` as a cluster config (Ray's launcher fields), for :class:`ClusterConfig`.

    ``cluster_name`` and ``provider`` are the fields the spec does not hold.
    ``config_to_spec(spec_to_config(spec, ...)) == spec``.
    """
    config = _rename(spec, CLUSTER_FIELDS, to_spec=False)
    return {"cluster_name": cluster_name, **config, "provider": dict(provider)}


def config_to_spec(config: Mapping[str, Any]) -> dict[str, Any]:
    """A cluster config as a RayCluster ``spec`` (drops ``cluster_name`` and ``provider``)."""
    return _rename(config, CLUSTER_FIELDS, to_spec=True)


_PATH_TOKEN = re.compile(r'\.([A-Za-z0-9_][A-Za-z0-9_/-]*)|\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]')


def _path_tokens(path: str) -> list[str | int]:
    """``a.b["c d"][2]`` -> ``["a", "b", "c d", 2]`` (the spelling of ``field_path``/``index_path``)."""
    first = re.match(r"[A-Za-z0-9_][A-Za-z0-9_/-]*", path)
    tokens: list[str | int] = []
    rest = path
    if first is not None:
        tokens.append(first.group(0))
        rest = path[first.end() :]
    for match in _PATH_TOKEN.finditer(rest):
        plain, quoted, index = match.groups()
        if index is not None:
            tokens.append(int(index))
        else:
            tokens.append(plain if plain is not None else quoted.replace('\\"', '"').replace("\\\\", "\\"))
    return tokens


def spec_path(config_path: str, spec: Mapping[str, Any]) -> str:
    """A config field path as the RayCluster spec spells it, to report errors to its author.

    ``available_node_types.worker.min_workers`` -> ``spec.podTypes[1].minWorkers`` (the
    index of the pod type named ``worker`` in ``spec``). Parts the table does not know
    (resource names, pod template fields) are kept as they are.
    """
    out = "spec"
    fields: Sequence[Field] = CLUSTER_FIELDS
    node: Any = spec
    tokens = _path_tokens(config_path)
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        field = next((f for f in fields if f.name == token), None)
        if field is None:
            out += f"[{token}]" if isinstance(token, int) else f".{token}"
            node = node.get(token) if isinstance(node, Mapping) and isinstance(token, str) else None
            fields = ()
            continue
        out += f".{field.spec_key}"
        node = node.get(field.spec_key) if isinstance(node, Mapping) else None
        fields = field.fields
        if field.keyed_by is not None and position < len(tokens):
            name = tokens[position]
            position += 1
            items = node if isinstance(node, list) else []
            index = next(
                (i for i, item in enumerate(items) if isinstance(item, Mapping) and item.get(field.keyed_by) == name),
                None,
            )
            out += f"[{index}]" if index is not None else f"[{name}]"
            node = items[index] if index is not None else None
    return out
