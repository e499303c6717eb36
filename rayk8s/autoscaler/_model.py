"""The scheduler's inputs: node types, existing nodes and pending demand.

All values are frozen attrs classes. Build them directly in Python, or from a scenario
file with :meth:`rayk8s.autoscaler.Scenario.from_dict`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from rayk8s.autoscaler._resources import Resources
from rayk8s.errors import ConfigError

__all__ = [
    "Node",
    "NodeStatus",
    "NodeType",
    "PlacementGroup",
    "PlacementStrategy",
    "ResourceDemand",
    "ResourceRequest",
    "SchedulingRequest",
]


def _resources(value: Any) -> Resources:
    return value if isinstance(value, Resources) else Resources(value)


def _optional_resources(value: Any) -> Resources | None:
    return None if value is None else _resources(value)


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value < 0:
        raise ConfigError(attribute.name, f"expected a non-negative number, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ConfigError(attribute.name, f"expected a positive count, got {value!r}")


@attrs.frozen
class NodeType:
    """A kind of worker node the autoscaler can launch.

    ``resources`` is what one node of the type offers to Ray. ``max_workers`` of ``None``
    means the type has no limit of its own (the cluster's ``max_workers`` still applies).
    ``cost`` is the price of one node per hour in any unit, the same for every type;
    with the default of 1 everywhere, minimising cost means minimising the node count.
    """

    name: str
    resources: Resources = attrs.field(converter=_resources)
    min_workers: int = attrs.field(default=0, validator=_non_negative)
    max_workers: int | None = attrs.field(default=None, validator=_non_negative)
    cost: float = attrs.field(default=1.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.max_workers is not None and self.min_workers > self.max_workers:
            raise ConfigError(
                f"node_types.{self.name}.min_workers",
                f"min_workers ({self.min_workers}) exceeds max_workers ({self.max_workers})",
            )


class NodeStatus(str, enum.Enum):
    """Where a node stands: ``running`` (part of the Ray cluster) or ``pending`` (launching)."""

    RUNNING = "running"
    PENDING = "pending"


@attrs.frozen
class Node:
    """A node that exists now.

    ``available`` is its free capacity; for a ``pending`` node (still launching) it is
    ignored and the node counts with its full capacity, so a launching node is never
    requested twice. ``total`` defaults to the node type's resources; give it for a node
    whose type is not among the scheduler's node types (a head node, say). Head nodes do
    not count towards ``max_workers``.
    """

    id: str
    node_type: str
    status: NodeStatus = attrs.field(default=NodeStatus.RUNNING, converter=NodeStatus)
    available: Resources | None = attrs.field(default=None, converter=_optional_resources)
    total: Resources | None = attrs.field(default=None, converter=_optional_resources)
    is_head: bool = False


@attrs.frozen
class ResourceDemand:
    """``count`` pending tasks or actors that each need ``shape``."""

    shape: Resources = attrs.field(converter=_resources)
    count: int = attrs.field(default=1, validator=_positive)


class PlacementStrategy(str, enum.Enum):
    """Ray's placement-group strategies."""

    PACK = "PACK"
    SPREAD = "SPREAD"
    STRICT_PACK = "STRICT_PACK"
    STRICT_SPREAD = "STRICT_SPREAD"


def _bundles(value: Iterable[Any]) -> tuple[Resources, ...]:
    return tuple(_resources(bundle) for bundle in value)


@attrs.frozen
class PlacementGroup:
    """``count`` identical pending placement groups, each placed whole or not at all.

    ``name`` identifies the group in the result; it defaults to ``pg<index>`` by its
    position in the request.
    """

    bundles: tuple[Resources, ...] = attrs.field(converter=_bundles)
    strategy: PlacementStrategy = attrs.field(default=PlacementStrategy.PACK, converter=PlacementStrategy)
    count: int = attrs.field(default=1, validator=_positive)
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.bundles:
            raise ConfigError("bundles", "a placement group needs at least one bundle")


@attrs.frozen
class ResourceRequest:
    """``request_resources()``: room for ``count`` bundles of ``shape`` must exist, used or not."""

    shape: Resources = attrs.field(converter=_resources)
    count: int = attrs.field(default=1, validator=_positive)


def _node_types(value: Mapping[str, NodeType] | Iterable[NodeType]) -> Mapping[str, NodeType]:
    types = value.values() if isinstance(value, Mapping) else value
    by_name: dict[str, NodeType] = {}
    for node_type in types:
        if node_type.name in by_name:
            raise ConfigError(f"node_types.{node_type.name}", "duplicate node type name")
        by_name[node_type.name] = node_type
    return by_name


# Typed converters: with a bare ``converter=tuple`` the attrs mypy plugin types the argument
# as ``Iterable[_T_co]`` with the type variable unsolved, so no call type-checks.
def _node_tuple(value: Iterable[Node]) -> tuple[Node, ...]:
    return tuple(value)


def _demand_tuple(value: Iterable[ResourceDemand]) -> tuple[ResourceDemand, ...]:
    return tuple(value)


def _group_tuple(value: Iterable[PlacementGroup]) -> tuple[PlacementGroup, ...]:
    return tuple(value)


def _request_tuple(value: Iterable[ResourceRequest]) -> tuple[ResourceRequest, ...]:
    return tuple(value)


def _name_set(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen
class SchedulingRequest:
    """Everything one scheduling decision depends on.

    ``max_workers`` caps the number of worker nodes (existing plus new; ``None``: no cap).
    ``unavailable_node_types`` are types that must not be launched now (backing off after
    a launch failure, say); demand falls back to the next-best type.

    Accelerator nodes (GPU, TPU, ...) are never launched for work that asks for no
    accelerator while a plain type could hold it; such work may use the spare room of
    accelerator nodes launched for accelerator work. ``isolate_accelerators`` keeps plain
    work off new and launching accelerator nodes altogether (unless no plain type can
    take it).
    """

    node_types: Mapping[str, NodeType] = attrs.field(converter=_node_types)
    nodes: tuple[Node, ...] = attrs.field(default=(), converter=_node_tuple)
    demands: tuple[ResourceDemand, ...] = attrs.field(default=(), converter=_demand_tuple)
    placement_groups: tuple[PlacementGroup, ...] = attrs.field(default=(), converter=_group_tuple)
    resource_requests: tuple[ResourceRequest, ...] = attrs.field(default=(), converter=_request_tuple)
    max_workers: int | None = attrs.field(default=None, validator=_non_negative)
    unavailable_node_types: frozenset[str] = attrs.field(default=frozenset(), converter=_name_set)
    isolate_accelerators: bool = False

    def __attrs_post_init__(self) -> None:
        seen: set[str] = set()
        for index, node in enumerate(self.nodes):
            if node.id in seen:
                raise ConfigError(f"nodes[{index}].id", f"duplicate node id {node.id!r}")
            seen.add(node.id)
            if node.node_type not in self.node_types and node.total is None and node.available is None:
                raise ConfigError(
                    f"nodes[{index}].type",
                    f"unknown node type {node.node_type!r} (known: {', '.join(sorted(self.node_types)) or 'none'});"
                    " give the node's total resources to use a type the scheduler does not launch",
                )
