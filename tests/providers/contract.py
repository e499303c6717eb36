"""The provider contract suite: what every :class:`rayk8s.providers.NodeProvider` promises.

Reuse it for any provider by subclassing :class:`ProviderContract` in a test module and
defining two fixtures:

- ``provider``: a fresh provider for cluster :attr:`ProviderContract.cluster_name`, with
  no nodes;
- ``make_running``: a callable ``(provider, node_ids) -> None`` that returns once those
  nodes are running (advance a fake clock; wait for KWOK to run the pods).

Override :meth:`ProviderContract.node_config` for the provider's node config (a pod
template, say) and :meth:`ProviderContract.eventually` for providers whose reads lag
their writes (poll until the check passes, within the provider's own timeout).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from rayk8s.errors import NodeNotFoundError
from rayk8s.providers import NodeProvider, ProviderNodeStatus
from rayk8s.providers._tags import (
    NODE_KIND_WORKER,
    STATUS_UNINITIALIZED,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_REQUEST,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)

MakeRunning = Callable[[NodeProvider, list[str]], None]


class ProviderContract:
    """Tests every provider must pass; see the module docstring for the fixtures."""

    cluster_name = "contract"
    node_type = "cpu"

    def node_config(self) -> Mapping[str, Any]:
        return {}

    def tags(self, request: str = "r1", **extra: str) -> dict[str, str]:
        return {
            TAG_CLUSTER_NAME: self.cluster_name,
            TAG_NODE_KIND: NODE_KIND_WORKER,
            TAG_USER_NODE_TYPE: self.node_type,
            TAG_NODE_STATUS: STATUS_UNINITIALIZED,
            TAG_LAUNCH_REQUEST: request,
            **extra,
        }

    def eventually(self, check: Callable[[], bool]) -> bool:
        """Whether ``check`` holds (a lagging provider polls here until it does)."""
        return check()

    def listed(self, provider: NodeProvider) -> dict[str, Any]:
        return {node.id: node for node in provider.nodes({TAG_CLUSTER_NAME: self.cluster_name}).nodes}

    # -- create and list ---------------------------------------------------------------

    def test_create_returns_ids_that_are_listed_with_their_tags(self, provider: NodeProvider) -> None:
        """create_node returns one id per node, and the bulk read lists each with every tag."""
        ids = provider.create_node(self.node_config(), self.tags(), 3)
        assert len(ids) == 3
        assert len(set(ids)) == 3
        assert self.eventually(lambda: set(ids) <= set(self.listed(provider)))
        for node_id in ids:
            node = self.listed(provider)[node_id]
            assert dict(node.tags).items() >= self.tags().items()
            assert node.node_type == self.node_type
            assert node.kind == NODE_KIND_WORKER
            assert node.status in (ProviderNodeStatus.PENDING, ProviderNodeStatus.RUNNING)

    def test_create_zero_nodes_creates_nothing(self, provider: NodeProvider) -> None:
        """count=0 is a no-op, not an error."""
        assert list(provider.create_node(self.node_config(), self.tags(), 0)) == []
        assert self.listed(provider) == {}

    def test_ids_are_never_reused(self, provider: NodeProvider, make_running: MakeRunning) -> None:
        """A terminated node's id is not given to a later node."""
        first = provider.create_node(self.node_config(), self.tags("r1"), 2)
        provider.terminate_nodes(first)
        second = provider.create_node(self.node_config(), self.tags("r2"), 2)
        assert not set(first) & set(second)

    def test_bulk_read_reports_status_type_ip_and_creation_time(
        self, provider: NodeProvider, make_running: MakeRunning
    ) -> None:
        """Once running, a node is listed running with an internal IP and a creation time."""
        ids = provider.create_node(self.node_config(), self.tags(), 2)
        make_running(provider, ids)
        snapshot = provider.nodes({TAG_CLUSTER_NAME: self.cluster_name})
        assert not snapshot.partial
        nodes = {n.id: n for n in snapshot.nodes}
        for node_id in ids:
            node = nodes[node_id]
            assert node.status is ProviderNodeStatus.RUNNING
            assert node.internal_ip
            assert node.created_at >= 0
            assert provider.is_running(node_id)
            assert provider.internal_ip(node_id) == node.internal_ip
            assert not provider.is_terminated(node_id)

    def test_tag_filters_select_nodes(self, provider: NodeProvider) -> None:
        """Only nodes carrying every filter tag are listed; no filter lists all."""
        a = provider.create_node(self.node_config(), self.tags("ra"), 1)
        b = provider.create_node(self.node_config(), self.tags("rb"), 2)
        assert self.eventually(lambda: set(provider.non_terminated_nodes({TAG_LAUNCH_REQUEST: "rb"})) == set(b))
        assert set(provider.non_terminated_nodes({TAG_LAUNCH_REQUEST: "ra"})) == set(a)
        assert set(provider.non_terminated_nodes({TAG_LAUNCH_REQUEST: "nobody"})) == set()
        assert set(a) | set(b) <= set(provider.non_terminated_nodes({}))

    # -- tags --------------------------------------------------------------------------

    def test_set_node_tags_merges_and_keeps_other_tags(self, provider: NodeProvider) -> None:
        """set_node_tags adds and overwrites the given keys and keeps the rest; repeating it is harmless."""
        (node_id,) = provider.create_node(self.node_config(), self.tags(), 1)
        assert self.eventually(lambda: node_id in self.listed(provider))
        provider.set_node_tags(node_id, {TAG_NODE_STATUS: "up-to-date", "extra": "x"})
        provider.set_node_tags(node_id, {TAG_NODE_STATUS: "up-to-date", "extra": "x"})
        assert self.eventually(lambda: provider.node_tags(node_id).get("extra") == "x")
        tags = provider.node_tags(node_id)
        assert tags[TAG_NODE_STATUS] == "up-to-date"
        assert tags[TAG_USER_NODE_TYPE] == self.node_type
        assert tags[TAG_CLUSTER_NAME] == self.cluster_name

    def test_tags_of_a_missing_node_raise_node_not_found(self, provider: NodeProvider) -> None:
        """Reading or writing the tags of an unknown node raises NodeNotFoundError."""
        with pytest.raises(NodeNotFoundError):
            provider.node_tags("no-such-node")
        with pytest.raises(NodeNotFoundError):
            provider.set_node_tags("no-such-node", {"a": "b"})

    # -- terminate ---------------------------------------------------------------------

    def test_terminate_removes_nodes(self, provider: NodeProvider, make_running: MakeRunning) -> None:
        """Terminated nodes leave non_terminated_nodes and read as terminated; the others stay."""
        ids = provider.create_node(self.node_config(), self.tags(), 3)
        make_running(provider, ids)
        provider.terminate_nodes(ids[:2])
        assert self.eventually(lambda: not set(ids[:2]) & set(provider.non_terminated_nodes({})))
        assert all(provider.is_terminated(node_id) for node_id in ids[:2])
        assert ids[2] in provider.non_terminated_nodes({})
        assert not provider.is_terminated(ids[2])

    def test_terminate_single_node(self, provider: NodeProvider) -> None:
        """terminate_node is terminate_nodes of one id."""
        (node_id,) = provider.create_node(self.node_config(), self.tags(), 1)
        provider.terminate_node(node_id)
        assert self.eventually(lambda: provider.is_terminated(node_id))

    def test_terminating_a_missing_node_is_success(self, provider: NodeProvider) -> None:
        """An id that was never known, or is already gone, terminates without error."""
        provider.terminate_nodes(["never-existed"])
        (node_id,) = provider.create_node(self.node_config(), self.tags(), 1)
        provider.terminate_nodes([node_id])
        provider.terminate_nodes([node_id])
        provider.terminate_node(node_id)
        assert provider.is_terminated("never-existed")

    def test_unknown_node_reads_as_terminated_not_running(self, provider: NodeProvider) -> None:
        """is_running/is_terminated of an id the provider never knew: not running, terminated."""
        assert not provider.is_running("never-existed")
        assert provider.is_terminated("never-existed")
