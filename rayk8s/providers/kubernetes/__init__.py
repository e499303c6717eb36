"""The Kubernetes node provider: Ray nodes are pods, created and deleted through the API server.

``provider.type: kubernetes``. :class:`KubernetesNodeProvider` keeps a watch-fed cache
of the cluster's pods (one LIST, then WATCH), so a steady-state autoscaler update makes
no LIST call; every API call is counted (``api_calls``, and the Prometheus counter
``rayk8s_kubernetes_api_calls_total``). See ``docs/kubernetes-provider.md``.
"""

from rayk8s.providers.kubernetes._api import API_CALLS, ApiCallCounter, RetryPolicy, map_api_error
from rayk8s.providers.kubernetes._cache import CacheStats
from rayk8s.providers.kubernetes._pods import pod_manifest, pod_to_node, resources_from_pod_template
from rayk8s.providers.kubernetes._provider import KubernetesNodeProvider, KubernetesProviderConfig
from rayk8s.providers.kubernetes._services import HEAD_PORTS, head_service_manifest

__all__ = [
    "API_CALLS",
    "HEAD_PORTS",
    "ApiCallCounter",
    "CacheStats",
    "KubernetesNodeProvider",
    "KubernetesProviderConfig",
    "RetryPolicy",
    "head_service_manifest",
    "map_api_error",
    "pod_manifest",
    "pod_to_node",
    "resources_from_pod_template",
]
