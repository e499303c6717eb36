"""The life of a node, as an explicit state machine rebuilt from what the provider stores.

A node's state is never remembered between updates: :func:`derive_state` recomputes it
from the provider's view of the node (its status and tags) and the load source's view
(whether Ray reports it, and its last heartbeat), so a restarted autoscaler continues
where the last one stopped. The one exception is :attr:`NodeState.REQUESTED` (a node the
provider created but does not list yet, which only the process that asked for it knows);
losing it on a restart is safe because by then the provider lists the node.

:data:`TRANSITIONS` is the table of legal moves, with the reason for each edge;
:func:`check_transition` refuses anything else.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from rayk8s.autoscaler._load import NodeUsage
from rayk8s.autoscaler._ports import ProviderNode, ProviderNodeStatus
from rayk8s.autoscaler._tags import STATUS_UP_TO_DATE, TAG_NODE_STATUS

__all__ = ["TRANSITIONS", "IllegalTransition", "NodeState", "check_transition", "derive_state"]


class NodeState(str, enum.Enum):
    """Where a node stands in the autoscaler's eyes."""

    #: ``create_node`` returned its id, the provider does not list it yet (eventual consistency).
    REQUESTED = "requested"
    #: Listed by the provider, machine not running yet (pod Pending).
    LAUNCHING = "launching"
    #: Machine running, Ray has not reported the node yet.
    STARTING = "starting"
    #: Ray reports the node with a fresh heartbeat.
    RUNNING = "running"
    #: The node had joined Ray, but its heartbeat is older than the timeout or Ray forgot it.
    LOST = "lost"
    #: The provider says the node will never run.
    FAILED = "failed"
    #: Termination was requested (by us, or the provider reports it under way).
    TERMINATING = "terminating"
    #: Gone from the provider.
    TERMINATED = "terminated"

    @property
    def pending(self) -> bool:
        """Launched but not yet usable: counted by the scheduler with its full capacity."""
        return self in (NodeState.REQUESTED, NodeState.LAUNCHING, NodeState.STARTING)

    @property
    def live(self) -> bool:
        """Counts as a node of the cluster (towards min/max workers and the scheduler)."""
        return self in (NodeState.REQUESTED, NodeState.LAUNCHING, NodeState.STARTING, NodeState.RUNNING)


_S = NodeState

#: Legal moves: from -> {to: why}. Anything else is refused by :func:`check_transition`.
TRANSITIONS: Mapping[NodeState, Mapping[NodeState, str]] = {
    _S.REQUESTED: {
        _S.LAUNCHING: "the provider lists the node, not yet running",
        _S.STARTING: "the provider lists the node already running",
        _S.RUNNING: "the provider lists it running and Ray reports it in the same update",
        _S.LOST: "listed running and reported by Ray with a heartbeat already too old",
        _S.FAILED: "the provider lists it as failed",
        _S.TERMINATING: "the provider lists it as terminating (deleted outside the autoscaler)",
        _S.TERMINATED: "never listed within the stuck timeout: the launch is given up",
    },
    _S.LAUNCHING: {
        _S.STARTING: "the machine runs; Ray has not joined yet",
        _S.RUNNING: "the machine runs and Ray reports the node",
        _S.LOST: "started and reported by Ray between two updates, with a heartbeat already too old",
        _S.FAILED: "the provider gave up on the node (pod Failed, instance error)",
        _S.TERMINATING: "stuck pending beyond the timeout, or deleted outside the autoscaler",
        _S.TERMINATED: "removed outside the autoscaler",
    },
    _S.STARTING: {
        _S.RUNNING: "Ray reports the node: it joined the cluster (tag ray-node-status=up-to-date)",
        _S.LOST: "Ray reported the node once, with a heartbeat already older than the timeout",
        _S.FAILED: "the machine failed before Ray joined",
        _S.TERMINATING: "Ray never joined within the stuck timeout, or deleted outside the autoscaler",
        _S.TERMINATED: "removed outside the autoscaler",
    },
    _S.RUNNING: {
        _S.LOST: "heartbeat older than the timeout, or Ray no longer reports the node",
        _S.FAILED: "the machine failed",
        _S.TERMINATING: "idle beyond the timeout, outdated and idle, over max_workers, or deleted outside",
        _S.TERMINATED: "removed outside the autoscaler",
    },
    _S.LOST: {
        _S.RUNNING: "the heartbeat came back before the node was terminated (termination held back)",
        _S.FAILED: "the machine failed",
        _S.TERMINATING: "terminated to be replaced",
        _S.TERMINATED: "removed outside the autoscaler",
    },
    _S.FAILED: {
        _S.TERMINATING: "cleaned up so its type can be retried after back-off",
        _S.TERMINATED: "removed",
    },
    _S.TERMINATING: {
        _S.TERMINATED: "the provider no longer lists it",
    },
    _S.TERMINATED: {},
}


class IllegalTransition(ValueError):
    """A move that :data:`TRANSITIONS` does not allow."""


def check_transition(old: NodeState, new: NodeState) -> str:
    """Return why ``old -> new`` is allowed (staying put is always allowed); raise otherwise."""
    if old is new:
        return "unchanged"
    try:
        return TRANSITIONS[old][new]
    except KeyError:
        raise IllegalTransition(f"a node cannot move from {old.value} to {new.value}") from None


def derive_state(
    node: ProviderNode,
    usage: NodeUsage | None,
    *,
    load_known: bool,
    now: float,
    heartbeat_timeout_s: float,
) -> NodeState:
    """The node's state now, from the provider's view and the load source's view.

    ``usage`` is what the load source reports for this node (``None``: not reported).
    ``load_known`` is false when the load read failed or was partial: a node Ray does not
    report is then not taken as lost; its tag decides whether it had joined.
    """
    if node.status is ProviderNodeStatus.TERMINATING:
        return NodeState.TERMINATING
    if node.status is ProviderNodeStatus.FAILED:
        return NodeState.FAILED
    if node.status is ProviderNodeStatus.PENDING:
        return NodeState.LAUNCHING
    joined_before = node.tags.get(TAG_NODE_STATUS) == STATUS_UP_TO_DATE
    if usage is None:
        if not load_known:
            return NodeState.RUNNING if joined_before else NodeState.STARTING
        return NodeState.LOST if joined_before else NodeState.STARTING
    if usage.last_heartbeat is not None and now - usage.last_heartbeat > heartbeat_timeout_s:
        return NodeState.LOST
    return NodeState.RUNNING
