"""The fake provider's own features: launch delay, failure injection, quota, call record."""

from __future__ import annotations

import random

import pytest

from rayk8s.errors import ConfigError, LaunchError, ProviderError, QuotaError
from rayk8s.providers import ProviderNodeStatus
from rayk8s.providers._tags import TAG_CLUSTER_NAME, TAG_USER_NODE_TYPE
from rayk8s.providers.fake import FakeNodeProvider, ManualClock


def tags(node_type: str = "cpu") -> dict[str, str]:
    return {TAG_CLUSTER_NAME: "c", TAG_USER_NODE_TYPE: node_type}


def make(**config: object) -> tuple[FakeNodeProvider, ManualClock]:
    clock = ManualClock(100.0)
    return FakeNodeProvider({"type": "fake", **config}, "c", clock=clock), clock


def statuses(provider: FakeNodeProvider) -> dict[str, ProviderNodeStatus]:
    return {n.id: n.status for n in provider.nodes().nodes}


def test_nodes_run_after_their_types_launch_delay() -> None:
    """A node is pending until its type's launch delay has passed, then running with an IP."""
    provider, clock = make(launch_delay_s={"gpu": 60, "default": 10})
    (cpu,) = provider.create_node({}, tags("cpu"), 1)
    (gpu,) = provider.create_node({}, tags("gpu"), 1)
    assert statuses(provider) == {cpu: ProviderNodeStatus.PENDING, gpu: ProviderNodeStatus.PENDING}
    assert provider.internal_ip(cpu) is None
    clock.advance(10)
    assert statuses(provider) == {cpu: ProviderNodeStatus.RUNNING, gpu: ProviderNodeStatus.PENDING}
    assert provider.internal_ip(cpu)
    clock.advance(50)
    assert statuses(provider)[gpu] is ProviderNodeStatus.RUNNING


def test_zero_delay_nodes_run_at_once_and_record_creation_time() -> None:
    """Without a delay nodes are running immediately; created_at is the clock at creation."""
    provider, _clock = make()
    (_node_id,) = provider.create_node({}, tags(), 1)
    (node,) = provider.nodes().nodes
    assert node.status is ProviderNodeStatus.RUNNING
    assert node.created_at == 100.0


@pytest.mark.parametrize(("kind", "error"), [("launch", LaunchError), ("quota", QuotaError)])
def test_injected_launch_failures_carry_type_count_and_reason(kind: str, error: type[LaunchError]) -> None:
    """fail_next_launch makes the next launch of that type raise, with type, count and reason; then it recovers."""
    provider, _ = make()
    provider.fail_next_launch(kind, node_type="gpu", reason="no GPUs left")
    provider.create_node({}, tags("cpu"), 1)  # another type is unaffected
    with pytest.raises(error) as raised:
        provider.create_node({}, tags("gpu"), 3)
    assert (raised.value.node_type, raised.value.count, raised.value.reason) == ("gpu", 3, "no GPUs left")
    assert len(provider.create_node({}, tags("gpu"), 1)) == 1


def test_stuck_launches_stay_pending_for_ever() -> None:
    """A stuck launch creates nodes that never leave pending."""
    provider, clock = make(launch_delay_s=5)
    provider.stick_next_launch(node_type="cpu")
    (node_id,) = provider.create_node({}, tags(), 1)
    clock.advance(10_000)
    assert statuses(provider) == {node_id: ProviderNodeStatus.PENDING}


def test_quota_limits_live_nodes_per_type() -> None:
    """Beyond the quota, create_node creates what fits and raises QuotaError for the rest."""
    provider, _ = make(quota={"gpu": 2})
    with pytest.raises(QuotaError) as raised:
        provider.create_node({}, tags("gpu"), 3)
    assert raised.value.count == 1
    assert len(provider.nodes().nodes) == 2


def test_failure_rate_is_reproducible_with_a_seed() -> None:
    """With a failure rate, the same seed fails the same launches; failures raise LaunchError for the failed count."""

    def run() -> list[int]:
        provider = FakeNodeProvider(
            {"type": "fake", "launch_failure_rate": 0.5}, "c", clock=ManualClock(), rng=random.Random(7)
        )
        failed = []
        for _ in range(10):
            try:
                provider.create_node({}, tags(), 4)
                failed.append(0)
            except LaunchError as error:
                failed.append(error.count)
        return failed

    first = run()
    assert first == run()
    assert 0 < sum(first) < 40


def test_injected_read_failures_raise_or_return_partial() -> None:
    """fail_next_reads makes a read raise, or return half the nodes marked partial; then reads recover."""
    provider, _ = make()
    provider.create_node({}, tags(), 4)
    provider.fail_next_reads()
    with pytest.raises(ProviderError):
        provider.nodes()
    provider.fail_next_reads(partial=True)
    snapshot = provider.nodes()
    assert snapshot.partial and len(snapshot.nodes) == 2
    assert not provider.nodes().partial


def test_failed_nodes_are_listed_failed() -> None:
    """fail_node makes the provider report the node failed."""
    provider, _ = make()
    (node_id,) = provider.create_node({}, tags(), 1)
    provider.fail_node(node_id)
    assert statuses(provider) == {node_id: ProviderNodeStatus.FAILED}


def test_calls_are_recorded() -> None:
    """Every call is recorded with its arguments, in order."""
    provider, _ = make()
    (node_id,) = provider.create_node({"image": "ray"}, tags(), 1)
    provider.nodes({TAG_CLUSTER_NAME: "c"})
    provider.terminate_nodes([node_id])
    assert [c.method for c in provider.calls] == ["create_node", "nodes", "terminate_nodes"]
    assert provider.calls_to("create_node")[0].args["node_config"] == {"image": "ray"}
    assert provider.calls_to("terminate_nodes")[0].args == {"node_ids": [node_id]}


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"launch_delay_s": "slow"}, "provider.launch_delay_s"),
        ({"launch_delay_s": {"gpu": -1}}, "provider.launch_delay_s.gpu"),
        ({"launch_failure_rate": True}, "provider.launch_failure_rate"),
        ({"quota": [1]}, "provider.quota"),
    ],
)
def test_bad_config_names_the_field(config: dict[str, object], path: str) -> None:
    """A bad provider option raises ConfigError naming provider.<field>."""
    with pytest.raises(ConfigError) as raised:
        FakeNodeProvider({"type": "fake", **config}, "c")
    assert raised.value.path == path
