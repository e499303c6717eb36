"""The pure core of rayk8s: the resource model, the scheduler and the autoscaler's decisions.

Nothing in this package touches the network, the clock or threads: every input comes in
as a value and every decision goes out as one.
"""

from rayk8s.autoscaler._autoscaler import Autoscaler, LaunchOutcome, UpdateError, UpdateResult
from rayk8s.autoscaler._config import AutoscalerConfig, NodeTypeConfig
from rayk8s.autoscaler._decide import (
    AutoscalerMemory,
    Decision,
    FailureRecord,
    NodeView,
    PlannedLaunch,
    PlannedTermination,
    Scheduler,
    decide,
)
from rayk8s.autoscaler._lifecycle import TRANSITIONS, IllegalTransition, NodeState, check_transition, derive_state
from rayk8s.autoscaler._load import LoadSnapshot, LoadSource, NodeUsage, StaticLoadSource
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
from rayk8s.autoscaler._policy import Backoff, TerminationReason
from rayk8s.autoscaler._ports import ProviderNode, ProviderNodeStatus, ProviderPort, ProviderSnapshot
from rayk8s.autoscaler._render import render_result_text
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
from rayk8s.autoscaler._scenario import Scenario
from rayk8s.autoscaler._scheduler import schedule
from rayk8s.autoscaler._status import Stat, StatusSummary
from rayk8s.autoscaler._verify import verify

__all__ = [
    # the autoscaler step
    "TRANSITIONS",
    "Autoscaler",
    "AutoscalerConfig",
    "AutoscalerMemory",
    "Backoff",
    "BundlePlacement",
    "Decision",
    "DemandKind",
    "ExistingNodeAssignment",
    "FailureRecord",
    "IllegalTransition",
    "LaunchOutcome",
    "LaunchReason",
    "LoadSnapshot",
    "LoadSource",
    "NewNodeGroup",
    "Node",
    "NodeState",
    "NodeStatus",
    "NodeType",
    "NodeTypeConfig",
    "NodeUsage",
    "NodeView",
    "PlacementGroup",
    "PlacementStrategy",
    "PlannedLaunch",
    "PlannedTermination",
    "ProviderNode",
    "ProviderNodeStatus",
    "ProviderPort",
    "ProviderSnapshot",
    "Quantity",
    "ResourceDemand",
    "ResourceRequest",
    "Resources",
    "Scenario",
    "Scheduler",
    "SchedulingRequest",
    "SchedulingResult",
    "ShapeCount",
    "Stat",
    "StaticLoadSource",
    "StatusSummary",
    "TerminationReason",
    "Unfulfilled",
    "UnfulfilledReason",
    "UpdateError",
    "UpdateResult",
    "check_transition",
    "decide",
    "derive_state",
    "format_resources",
    "parse_quantity",
    "render_result_text",
    "schedule",
    "verify",
]
