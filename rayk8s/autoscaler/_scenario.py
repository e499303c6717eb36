"""Scenarios: one scheduling decision's input, as a document (YAML or JSON, already parsed).

The format (see ``docs/scenarios.md``)::

    description: what the scenario shows            # optional
    node_types:                                     # name -> node type
      cpu-small: {resources: {CPU: 4, memory: 16Gi}, min_workers: 0, max_workers: 100, cost: 0.19}
    max_workers: 200                                # cluster-wide cap on worker nodes (optional)
    unavailable_node_types: [gpu]                   # types that must not be launched now (optional)
    isolate_accelerators: false                     # keep CPU-only work off new GPU nodes entirely (optional)
    nodes:                                          # nodes that exist now (optional)
      - {id: w-1, type: cpu-small, status: running, available: {CPU: 1}, total: {CPU: 4}, head: false}
    demands:                                        # pending tasks and actors
      - {shape: {CPU: 1}, count: 1000}
    placement_groups:                               # pending placement groups
      - {strategy: STRICT_SPREAD, bundles: [{CPU: 1}, {CPU: 1}], count: 10, name: trainers}
    resource_requests:                              # request_resources() bundles
      - {shape: {CPU: 1}, count: 64}

:meth:`Scenario.from_dict` checks every field and raises :class:`~rayk8s.errors.ConfigError`
naming the field path (``nodes[3].available.CPU``) for the first thing that is wrong.
Reading files is not done here (see :func:`rayk8s._documents.load_document`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from rayk8s.autoscaler._model import (
    Node,
    NodeStatus,
    NodeType,
    PlacementGroup,
    PlacementStrategy,
    ResourceDemand,
    ResourceRequest,
    SchedulingRequest,
)
from rayk8s.autoscaler._resources import _BINARY_UNITS, _BYTE_RESOURCES, Resources
from rayk8s.autoscaler._validate import (
    check_fields,
    describe,
    expect_bool,
    expect_choice,
    expect_int,
    expect_list,
    expect_mapping,
    expect_number,
    expect_resources,
    expect_shape_count,
    expect_str,
    expect_worker_limits,
    field_path,
    index_path,
    suggest,
)
from rayk8s.errors import ConfigError

__all__ = ["Scenario"]

_TOP_FIELDS = (
    "description",
    "node_types",
    "max_workers",
    "unavailable_node_types",
    "isolate_accelerators",
    "nodes",
    "demands",
    "placement_groups",
    "resource_requests",
)
_STATUSES = tuple(status.value for status in NodeStatus)
_STRATEGIES = tuple(strategy.value for strategy in PlacementStrategy)


@attrs.frozen
class Scenario:
    """The input of one scheduling decision, as read from a scenario document.

    The fields mirror :class:`~rayk8s.autoscaler.SchedulingRequest`, plus an optional
    ``description``. Build one with :meth:`from_dict` (validating) or :meth:`from_request`.
    """

    node_types: Mapping[str, NodeType]
    nodes: tuple[Node, ...] = ()
    demands: tuple[ResourceDemand, ...] = ()
    placement_groups: tuple[PlacementGroup, ...] = ()
    resource_requests: tuple[ResourceRequest, ...] = ()
    max_workers: int | None = None
    unavailable_node_types: frozenset[str] = frozenset()
    isolate_accelerators: bool = False
    description: str | None = None

    @classmethod
    def from_dict(cls, data: object) -> Scenario:
        """Validate a parsed scenario document and build the scenario.

        Raises :class:`ConfigError` for the first problem found: unknown fields (with a
        did-you-mean suggestion), wrong types, negative or zero counts, bad quantities or
        strategies, references to unknown node types, duplicate node ids or placement-group
        names, ``min_workers`` above ``max_workers``, a node's ``available`` above its total.
        """
        if data is None:
            raise ConfigError("", "the scenario is empty; expected a mapping with node_types, nodes, demands, ...")
        root = expect_mapping(data, "", "a scenario mapping (node_types, nodes, demands, ...)")
        check_fields(root, "", required=("node_types",), optional=_TOP_FIELDS)

        # An optional field that is absent or null takes its default.
        description = root.get("description")
        node_types = _node_types(root["node_types"])
        max_workers = root.get("max_workers")
        unavailable = _list(root, "unavailable_node_types")
        return cls(
            node_types=node_types,
            nodes=_nodes(_list(root, "nodes"), node_types),
            demands=tuple(
                ResourceDemand(*expect_shape_count(item, index_path("demands", i)))
                for i, item in enumerate(_list(root, "demands"))
            ),
            placement_groups=_placement_groups(_list(root, "placement_groups")),
            resource_requests=tuple(
                ResourceRequest(*expect_shape_count(item, index_path("resource_requests", i)))
                for i, item in enumerate(_list(root, "resource_requests"))
            ),
            max_workers=None if max_workers is None else expect_int(max_workers, "max_workers"),
            unavailable_node_types=frozenset(
                _type_reference(name, index_path("unavailable_node_types", i), node_types)
                for i, name in enumerate(unavailable)
            ),
            isolate_accelerators=expect_bool(root.get("isolate_accelerators", False), "isolate_accelerators"),
            description=None if description is None else expect_str(description, "description", non_empty=False),
        )

    @classmethod
    def from_request(cls, request: SchedulingRequest, *, description: str | None = None) -> Scenario:
        """The scenario of an existing request (to save a decision's input as a file)."""
        return cls(
            node_types=dict(request.node_types),
            nodes=request.nodes,
            demands=request.demands,
            placement_groups=request.placement_groups,
            resource_requests=request.resource_requests,
            max_workers=request.max_workers,
            unavailable_node_types=request.unavailable_node_types,
            isolate_accelerators=request.isolate_accelerators,
            description=description,
        )

    def to_request(self) -> SchedulingRequest:
        """The scheduler's input."""
        return SchedulingRequest(
            node_types=self.node_types,
            nodes=self.nodes,
            demands=self.demands,
            placement_groups=self.placement_groups,
            resource_requests=self.resource_requests,
            max_workers=self.max_workers,
            unavailable_node_types=self.unavailable_node_types,
            isolate_accelerators=self.isolate_accelerators,
        )

    def to_dict(self) -> dict[str, Any]:
        """The scenario as a plain document; ``Scenario.from_dict(s.to_dict()) == s``.

        Amounts are plain numbers, except byte amounts that are a whole number of
        Ki/Mi/Gi/Ti (``16Gi``); optional fields at their default are left out.
        """
        out: dict[str, Any] = {}
        if self.description is not None:
            out["description"] = self.description
        out["node_types"] = {name: _node_type_dict(node_type) for name, node_type in self.node_types.items()}
        if self.max_workers is not None:
            out["max_workers"] = self.max_workers
        if self.unavailable_node_types:
            out["unavailable_node_types"] = sorted(self.unavailable_node_types)
        if self.isolate_accelerators:
            out["isolate_accelerators"] = True
        if self.nodes:
            out["nodes"] = [_node_dict(node) for node in self.nodes]
        if self.demands:
            out["demands"] = [{"shape": _amounts(d.shape), "count": d.count} for d in self.demands]
        if self.placement_groups:
            out["placement_groups"] = [_placement_group_dict(pg) for pg in self.placement_groups]
        if self.resource_requests:
            out["resource_requests"] = [{"shape": _amounts(r.shape), "count": r.count} for r in self.resource_requests]
        return out


# -- parsing ---------------------------------------------------------------------------


def _list(root: Mapping[str, Any], key: str) -> list[Any]:
    """An optional top-level list; absent or ``null`` (all items commented out) is empty."""
    value = root.get(key)
    return [] if value is None else list(expect_list(value, key))


def _node_types(value: object) -> dict[str, NodeType]:
    types = expect_mapping(value, "node_types", "a mapping of node type name to node type")
    return {name: _node_type(name, spec, field_path("node_types", name)) for name, spec in types.items()}


def _node_type(name: str, value: object, path: str) -> NodeType:
    if not name.strip():
        raise ConfigError(path, "node type names must be non-empty")
    spec = expect_mapping(value, path, "a node type mapping (resources, min_workers, max_workers, cost)")
    check_fields(spec, path, required=("resources",), optional=("min_workers", "max_workers", "cost"))
    resources = expect_resources(spec["resources"], field_path(path, "resources"), non_empty=True)
    min_workers, max_workers = expect_worker_limits(spec, path)
    cost = expect_number(spec.get("cost", 1.0), field_path(path, "cost"))
    return NodeType(name=name, resources=resources, min_workers=min_workers, max_workers=max_workers, cost=cost)


def _type_reference(value: object, path: str, node_types: Mapping[str, NodeType]) -> str:
    name = expect_str(value, path)
    if name not in node_types:
        raise ConfigError(path, f"unknown node type {describe(name)}{suggest(name, node_types)}{_known(node_types)}")
    return name


def _known(node_types: Mapping[str, NodeType]) -> str:
    return f"; known types: {', '.join(node_types) or 'none'}"


def _nodes(items: list[Any], node_types: Mapping[str, NodeType]) -> tuple[Node, ...]:
    nodes: list[Node] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        path = index_path("nodes", index)
        node = _node(item, path, node_types)
        if node.id in seen:
            raise ConfigError(
                field_path(path, "id"), f"duplicate node id {describe(node.id)} (also nodes[{seen[node.id]}])"
            )
        seen[node.id] = index
        nodes.append(node)
    return tuple(nodes)


def _node(value: object, path: str, node_types: Mapping[str, NodeType]) -> Node:
    spec = expect_mapping(value, path, "a node mapping (id, type, status, available, total, head)")
    check_fields(spec, path, required=("id", "type"), optional=("status", "available", "total", "head"))
    node_id = expect_str(spec["id"], field_path(path, "id"))
    type_name = expect_str(spec["type"], field_path(path, "type"))
    status = expect_choice(spec.get("status", "running"), field_path(path, "status"), _STATUSES)
    total = None if spec.get("total") is None else expect_resources(spec["total"], field_path(path, "total"))
    if total is None and type_name not in node_types:
        raise ConfigError(
            field_path(path, "type"),
            f"unknown node type {describe(type_name)}{suggest(type_name, node_types)}{_known(node_types)};"
            " give the node's `total` to use a type the scheduler does not launch",
        )
    capacity = total if total is not None else node_types[type_name].resources
    available = None
    if spec.get("available") is not None:
        available = expect_resources(spec["available"], field_path(path, "available"))
        _check_within(available, capacity, field_path(path, "available"))
    head = expect_bool(spec.get("head", False), field_path(path, "head"))
    return Node(
        id=node_id, node_type=type_name, status=NodeStatus(status), available=available, total=total, is_head=head
    )


def _check_within(available: Resources, capacity: Resources, path: str) -> None:
    for name, amount in available.items():
        limit = capacity.get(name, 0)
        if amount > limit:
            raise ConfigError(
                field_path(path, name),
                f"{amount:g} available exceeds the node's total of {limit:g}"
                " (the total is the node type's resources unless the node gives `total`)",
            )


def _placement_groups(items: list[Any]) -> tuple[PlacementGroup, ...]:
    groups: list[PlacementGroup] = []
    names: dict[str, int] = {}
    for index, item in enumerate(items):
        path = index_path("placement_groups", index)
        group = _placement_group(item, path)
        name = group.name if group.name is not None else f"pg{index}"
        if name in names:
            raise ConfigError(
                field_path(path, "name"),
                f"duplicate placement group name {describe(name)} (also placement_groups[{names[name]}];"
                " unnamed groups are called pg<index>)",
            )
        names[name] = index
        groups.append(group)
    return tuple(groups)


def _placement_group(value: object, path: str) -> PlacementGroup:
    spec = expect_mapping(value, path, "a placement group mapping (strategy, bundles, count, name)")
    check_fields(spec, path, required=("bundles",), optional=("strategy", "count", "name"))
    bundles_path = field_path(path, "bundles")
    bundle_items = expect_list(spec["bundles"], bundles_path, "a list of bundles")
    if not bundle_items:
        raise ConfigError(bundles_path, "expected at least one bundle")
    bundles = tuple(
        expect_resources(bundle, index_path(bundles_path, i), non_empty=True) for i, bundle in enumerate(bundle_items)
    )
    strategy = expect_choice(spec.get("strategy", "PACK"), field_path(path, "strategy"), _STRATEGIES)
    count = expect_int(spec.get("count", 1), field_path(path, "count"), minimum=1)
    name = None if spec.get("name") is None else expect_str(spec["name"], field_path(path, "name"))
    return PlacementGroup(bundles=bundles, strategy=PlacementStrategy(strategy), count=count, name=name)


# -- writing ---------------------------------------------------------------------------


def _amounts(resources: Resources) -> dict[str, int | float | str]:
    """Plain numbers, with byte amounts that are whole Ki/Mi/Gi/Ti written that way (``16Gi``)."""
    out: dict[str, int | float | str] = dict(resources.to_dict())
    for name, amount in out.items():
        if name in _BYTE_RESOURCES and isinstance(amount, int):
            for suffix, size in _BINARY_UNITS:
                if amount >= size and amount % size == 0:
                    out[name] = f"{amount // size}{suffix}"
                    break
    return out


def _node_type_dict(node_type: NodeType) -> dict[str, Any]:
    out: dict[str, Any] = {"resources": _amounts(node_type.resources), "min_workers": node_type.min_workers}
    if node_type.max_workers is not None:
        out["max_workers"] = node_type.max_workers
    out["cost"] = node_type.cost
    return out


def _node_dict(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node.id, "type": node.node_type, "status": node.status.value}
    if node.available is not None:
        out["available"] = _amounts(node.available)
    if node.total is not None:
        out["total"] = _amounts(node.total)
    if node.is_head:
        out["head"] = True
    return out


def _placement_group_dict(group: PlacementGroup) -> dict[str, Any]:
    out: dict[str, Any] = {
        "strategy": group.strategy.value,
        "bundles": [_amounts(bundle) for bundle in group.bundles],
        "count": group.count,
    }
    if group.name is not None:
        out["name"] = group.name
    return out
