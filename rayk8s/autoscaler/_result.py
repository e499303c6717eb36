"""The scheduler's output: what to launch, where everything lands, what cannot be placed and why."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from rayk8s.autoscaler._resources import Resources

__all__ = [
    "BundlePlacement",
    "DemandKind",
    "ExistingNodeAssignment",
    "LaunchReason",
    "NewNodeGroup",
    "SchedulingResult",
    "ShapeCount",
    "Unfulfilled",
    "UnfulfilledReason",
]


class LaunchReason(str, enum.Enum):
    """Why a group of new nodes is launched (the first need it serves)."""

    MIN_WORKERS = "min_workers"
    REQUEST_RESOURCES = "request_resources"
    PLACEMENT_GROUP = "placement_group"
    DEMAND = "demand"


class UnfulfilledReason(str, enum.Enum):
    """Why something cannot be placed.

    ``infeasible``: no node type (and no existing node) could ever hold it.
    ``busy``: no node type can hold it, but an existing node can once its work finishes.
    ``max_workers``: a node type could hold it, but the per-type or cluster ``max_workers``
    is reached. ``unavailable``: only node types that are backing off could hold it.
    ``strategy``: the placement strategy cannot be met (a STRICT_SPREAD group with more
    bundles than the nodes that could exist, say).
    """

    INFEASIBLE = "infeasible"
    BUSY = "busy"
    MAX_WORKERS = "max_workers"
    UNAVAILABLE = "unavailable"
    STRATEGY = "strategy"


class DemandKind(str, enum.Enum):
    DEMAND = "demand"
    PLACEMENT_GROUP = "placement_group"
    RESOURCE_REQUEST = "resource_request"


@attrs.frozen
class ShapeCount:
    """``count`` units of demand of one ``shape``."""

    shape: Resources
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape.to_dict(), "count": self.count}


@attrs.frozen
class BundlePlacement:
    """Bundle ``bundle`` of instance ``instance`` of placement group ``pg``."""

    pg: str
    instance: int
    bundle: int
    shape: Resources

    def to_dict(self) -> dict[str, Any]:
        return {"pg": self.pg, "instance": self.instance, "bundle": self.bundle, "shape": self.shape.to_dict()}


@attrs.frozen
class NewNodeGroup:
    """``count`` identical new nodes of ``node_type``, each holding ``assigned`` (and ``bundles``).

    ``id`` names the group in the result (``new-1``, ``new-2``, ...). A group that holds
    placement-group bundles has count 1. ``resource_requests`` lists the
    ``request_resources`` bundles each node is counted on to hold (capacity, not work).
    """

    id: str
    node_type: str
    count: int
    reason: LaunchReason
    assigned: tuple[ShapeCount, ...] = ()
    bundles: tuple[BundlePlacement, ...] = ()
    resource_requests: tuple[ShapeCount, ...] = ()
    cost_per_node: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.node_type,
            "count": self.count,
            "reason": self.reason.value,
            "assigned": [item.to_dict() for item in self.assigned] + [b.to_dict() for b in self.bundles],
            "resource_requests": [item.to_dict() for item in self.resource_requests],
            "cost": self.cost_per_node * self.count,
        }


@attrs.frozen
class ExistingNodeAssignment:
    """What an existing node (running or pending) is given."""

    node_id: str
    node_type: str
    assigned: tuple[ShapeCount, ...] = ()
    bundles: tuple[BundlePlacement, ...] = ()
    resource_requests: tuple[ShapeCount, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.node_type,
            "assigned": [item.to_dict() for item in self.assigned] + [b.to_dict() for b in self.bundles],
            "resource_requests": [item.to_dict() for item in self.resource_requests],
        }


@attrs.frozen
class Unfulfilled:
    """Demand that cannot be placed, with a reason and a sentence a person can read.

    For ``kind`` ``placement_group``, ``pg`` names the group, ``bundles`` its bundles and
    ``count`` how many of its instances are unplaced; otherwise ``shape`` and ``count``.
    """

    kind: DemandKind
    count: int
    reason: UnfulfilledReason
    detail: str
    shape: Resources | None = None
    pg: str | None = None
    bundles: tuple[Resources, ...] = ()
    strategy: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.kind is DemandKind.PLACEMENT_GROUP:
            out.update(pg=self.pg, strategy=self.strategy, bundles=[b.to_dict() for b in self.bundles])
        else:
            out["shape"] = self.shape.to_dict() if self.shape is not None else {}
        out.update(count=self.count, reason=self.reason.value, detail=self.detail)
        return out


@attrs.frozen
class SchedulingResult:
    """One scheduling decision.

    ``launch`` is how many nodes of each type to launch (types with zero omitted).
    ``new_nodes`` groups identical new nodes with what each holds; ``existing`` maps
    existing node ids to what they were given (nodes given nothing are omitted);
    ``unfulfilled`` lists what cannot be placed and why; ``cost`` is the hourly cost of
    the new nodes.
    """

    launch: Mapping[str, int]
    new_nodes: tuple[NewNodeGroup, ...]
    existing: Mapping[str, ExistingNodeAssignment]
    unfulfilled: tuple[Unfulfilled, ...]
    cost: float

    @property
    def new_node_count(self) -> int:
        return sum(self.launch.values())

    def to_dict(self, *, elapsed_ms: float | None = None) -> dict[str, Any]:
        """The JSON form promised by ``rayk8s schedule --output json``.

        ``elapsed_ms`` is measured by the caller (the decision itself reads no clock).
        """
        stats: dict[str, Any] = {"cost": self.cost, "new_nodes": self.new_node_count}
        if elapsed_ms is not None:
            stats["elapsed_ms"] = elapsed_ms
        stats["unfulfilled"] = sum(item.count for item in self.unfulfilled)
        return {
            "launch": dict(self.launch),
            "new_nodes": [group.to_dict() for group in self.new_nodes],
            "existing": {node_id: item.to_dict() for node_id, item in self.existing.items()},
            "unfulfilled": [item.to_dict() for item in self.unfulfilled],
            "stats": stats,
        }
