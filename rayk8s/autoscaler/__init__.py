"""The pure core of rayk8s: the resource model, the scheduler and the autoscaler's decisions.

Nothing in this package touches the network, the clock or threads: every input comes in
as a value and every decision goes out as one.
"""

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
from rayk8s.autoscaler._resources import Quantity, Resources, format_resources, parse_quantity
from rayk8s.autoscaler._result import (
    BundlePlacement,
    DemandKind,
    ExistingNodeAssignment,
    LaunchReason,
    NewNodeGroup,
    SchedulingResult,
    ShapeCount,
    Unfulfilled,
    UnfulfilledReason,
)
from rayk8s.autoscaler._scheduler import schedule
from rayk8s.autoscaler._verify import verify

__all__ = [
    "BundlePlacement",
    "DemandKind",
    "ExistingNodeAssignment",
    "LaunchReason",
    "NewNodeGroup",
    "Node",
    "NodeStatus",
    "NodeType",
    "PlacementGroup",
    "PlacementStrategy",
    "Quantity",
    "ResourceDemand",
    "ResourceRequest",
    "Resources",
    "SchedulingRequest",
    "SchedulingResult",
    "ShapeCount",
    "Unfulfilled",
    "UnfulfilledReason",
    "format_resources",
    "parse_quantity",
    "schedule",
    "verify",
]
