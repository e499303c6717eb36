"""The node lifecycle: the transition table and the state rebuilt from provider and load."""

from __future__ import annotations

import pytest

from rayk8s.autoscaler import (
    TRANSITIONS,
    IllegalTransition,
    NodeState,
    NodeUsage,
    ProviderNode,
    ProviderNodeStatus,
    check_transition,
    derive_state,
)
from rayk8s.autoscaler._tags import STATUS_UP_TO_DATE, TAG_NODE_STATUS


def test_every_state_has_a_row_and_every_edge_a_reason() -> None:
    """The table covers every state; each edge says why; terminated is final."""
    assert set(TRANSITIONS) == set(NodeState)
    for old, edges in TRANSITIONS.items():
        for new, why in edges.items():
            assert why.strip(), (old, new)
            assert new is not old
    assert TRANSITIONS[NodeState.TERMINATED] == {}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (NodeState.TERMINATED, NodeState.RUNNING),
        (NodeState.TERMINATING, NodeState.RUNNING),
        (NodeState.RUNNING, NodeState.LAUNCHING),
        (NodeState.FAILED, NodeState.RUNNING),
        (NodeState.RUNNING, NodeState.STARTING),
    ],
)
def test_illegal_moves_are_refused(old: NodeState, new: NodeState) -> None:
    """Moves not in the table raise IllegalTransition."""
    with pytest.raises(IllegalTransition):
        check_transition(old, new)


def test_legal_moves_return_their_reason() -> None:
    """A legal move returns the table's reason; staying put is allowed."""
    assert "joined" in check_transition(NodeState.STARTING, NodeState.RUNNING)
    assert check_transition(NodeState.RUNNING, NodeState.RUNNING) == "unchanged"


def node(status: ProviderNodeStatus, joined: bool = False) -> ProviderNode:
    return ProviderNode("n", status, {TAG_NODE_STATUS: STATUS_UP_TO_DATE} if joined else {}, created_at=0)


def usage(heartbeat: float | None) -> NodeUsage:
    return NodeUsage("n", {}, last_heartbeat=heartbeat)


@pytest.mark.parametrize(
    ("provider_node", "node_usage", "load_known", "expected"),
    [
        (node(ProviderNodeStatus.PENDING), None, True, NodeState.LAUNCHING),
        (node(ProviderNodeStatus.TERMINATING), usage(100), True, NodeState.TERMINATING),
        (node(ProviderNodeStatus.FAILED), None, True, NodeState.FAILED),
        (node(ProviderNodeStatus.RUNNING), None, True, NodeState.STARTING),
        (node(ProviderNodeStatus.RUNNING), usage(95), True, NodeState.RUNNING),
        (node(ProviderNodeStatus.RUNNING), usage(None), True, NodeState.RUNNING),
        (node(ProviderNodeStatus.RUNNING), usage(50), True, NodeState.LOST),
        (node(ProviderNodeStatus.RUNNING, joined=True), None, True, NodeState.LOST),
        # The load read failed: a joined node is not taken as lost, a new one is still starting.
        (node(ProviderNodeStatus.RUNNING, joined=True), None, False, NodeState.RUNNING),
        (node(ProviderNodeStatus.RUNNING), None, False, NodeState.STARTING),
    ],
)
def test_state_is_rebuilt_from_provider_status_tags_and_load(
    provider_node: ProviderNode, node_usage: NodeUsage | None, load_known: bool, expected: NodeState
) -> None:
    """derive_state: provider status first, then whether Ray reports the node and how fresh its heartbeat is."""
    assert derive_state(provider_node, node_usage, load_known=load_known, now=100, heartbeat_timeout_s=30) is expected
