"""The provider contract suite, run against the in-memory fake provider."""

from __future__ import annotations

import pytest

from rayk8s.providers import NodeProvider
from rayk8s.providers.fake import FakeNodeProvider, ManualClock

from .contract import ProviderContract


class TestFakeProviderContract(ProviderContract):
    @pytest.fixture
    def provider(self) -> FakeNodeProvider:
        return FakeNodeProvider({"type": "fake", "launch_delay_s": 30}, self.cluster_name, clock=ManualClock(1_000.0))

    @pytest.fixture
    def make_running(self):  # type: ignore[no-untyped-def]
        def run(provider: NodeProvider, node_ids: list[str]) -> None:
            assert isinstance(provider, FakeNodeProvider)
            assert isinstance(provider.clock, ManualClock)
            provider.clock.advance(30)

        return run


class TestFakeProviderContractWithTerminateDelay(TestFakeProviderContract):
    """The same contract when terminated nodes linger as ``terminating`` for a while."""

    @pytest.fixture
    def provider(self) -> FakeNodeProvider:
        return FakeNodeProvider(
            {"type": "fake", "launch_delay_s": 30, "terminate_delay_s": 10},
            self.cluster_name,
            clock=ManualClock(1_000.0),
        )
