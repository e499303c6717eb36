"""The provider contract suite, run against the Kubernetes provider on the real control plane."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from kubernetes.client import ApiClient

from rayk8s.providers import NodeProvider, ProviderNodeStatus
from rayk8s.providers.kubernetes import KubernetesNodeProvider
from tests.k8s._helpers import make_provider, pod_template
from tests.providers.contract import ProviderContract


class TestKubernetesProviderContract(ProviderContract):
    def node_config(self) -> Mapping[str, Any]:
        return pod_template()

    def eventually(self, check: Callable[[], bool]) -> bool:
        import time

        deadline = time.monotonic() + 30
        while not check():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    @pytest.fixture
    def provider(self, api_client: ApiClient, namespace: str) -> Iterator[KubernetesNodeProvider]:
        with make_provider(api_client, namespace, self.cluster_name) as provider:
            yield provider

    @pytest.fixture
    def make_running(self) -> Callable[[NodeProvider, list[str]], None]:
        def run(provider: NodeProvider, node_ids: list[str]) -> None:
            assert self.eventually(
                lambda: all(
                    (node := provider.node(node_id)) is not None and node.status is ProviderNodeStatus.RUNNING
                    for node_id in node_ids
                )
            ), "pods did not become Running"

        return run
