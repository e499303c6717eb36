"""The provider contract suite, run against the ``local`` provider with real ``ray start`` processes."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from rayk8s.providers import NodeProvider
from rayk8s.providers._tags import NODE_KIND_HEAD, TAG_CLUSTER_NAME, TAG_NODE_KIND, TAG_USER_NODE_TYPE
from rayk8s.providers.local import LocalNodeProvider

from .contract import ProviderContract

pytest.importorskip("ray", reason="the local provider's tests need the rayk8s[ray] extra")

pytestmark = [pytest.mark.ray]


@pytest.fixture(scope="module")
def head_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One real Ray head for the module; each test's provider shares its state directory."""
    state_dir = tmp_path_factory.mktemp("local-contract")
    head = LocalNodeProvider({"type": "local", "state_dir": str(state_dir)}, ProviderContract.cluster_name)
    head.create_node(
        {}, {TAG_CLUSTER_NAME: "contract-head", TAG_NODE_KIND: NODE_KIND_HEAD, TAG_USER_NODE_TYPE: "head"}, 1
    )
    yield state_dir
    assert head.terminate_all() == []


class TestLocalProviderContract(ProviderContract):
    cluster_name = "contract"

    def node_config(self) -> Mapping[str, Any]:
        return {"resources": {"CPU": 1}}

    def eventually(self, check: Callable[[], bool]) -> bool:
        limit = time.monotonic() + 30
        while not check():
            if time.monotonic() > limit:
                return False
            time.sleep(0.2)
        return True

    @pytest.fixture
    def provider(self, head_state: Path) -> Iterator[LocalNodeProvider]:
        # A cluster name per test: the head's tags name another cluster, so listings see only this test's nodes.
        self.cluster_name = f"contract-{uuid.uuid4().hex[:6]}"
        provider = LocalNodeProvider(
            {"type": "local", "state_dir": str(head_state), "terminate_grace_s": 3}, "contract"
        )
        yield provider
        mine = provider.non_terminated_nodes({TAG_CLUSTER_NAME: self.cluster_name})
        provider.terminate_nodes(mine)
        assert provider.wait_gone([n.id for n in provider.nodes({TAG_CLUSTER_NAME: self.cluster_name}).nodes]) == []

    @pytest.fixture
    def make_running(self) -> Callable[[NodeProvider, list[str]], None]:
        def run(provider: NodeProvider, node_ids: list[str]) -> None:
            assert self.eventually(lambda: all(provider.is_running(i) for i in node_ids))

        return run


def test_a_new_provider_instance_adopts_the_nodes_of_an_earlier_one(tmp_path: Path) -> None:
    """The state file is the truth: a second provider (a restarted autoscaler) lists the nodes the
    first one started, with their tags, and terminates them; no process of theirs is left."""
    config = {"type": "local", "state_dir": str(tmp_path), "terminate_grace_s": 3}
    first = LocalNodeProvider(config, "adopt")
    first.create_node({}, {TAG_CLUSTER_NAME: "adopt", TAG_NODE_KIND: NODE_KIND_HEAD, TAG_USER_NODE_TYPE: "head"}, 1)
    tags = {TAG_CLUSTER_NAME: "adopt", TAG_USER_NODE_TYPE: "cpu", "extra": "kept"}
    ids = first.create_node({"resources": {"CPU": 1}}, tags, 2)
    pgids = [int(r["pgid"]) for r in json.loads(first.state_file.read_text())["nodes"].values()]
    second = LocalNodeProvider(config, "adopt")
    listed = {n.id: n for n in second.nodes({"extra": "kept"}).nodes}
    assert set(listed) == set(ids)
    assert all(n.node_type == "cpu" for n in listed.values())
    assert second.terminate_all() == []
    assert second.nodes().nodes == ()
    for pgid in pgids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
