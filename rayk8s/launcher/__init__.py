"""The cluster launcher: ``rayk8s up/down/status/...`` from a Ray cluster-launcher YAML.

:class:`ClusterConfig` parses the YAML; :class:`LocalCluster` runs a cluster of the
``local`` provider (real Ray processes on this machine); :class:`KubernetesCluster` runs
one on Kubernetes (``provider.type: kubernetes``: RBAC, Services, the head pod, commands
and the autoscaler in the head through the exec API).
"""

from rayk8s.launcher._config import AutoscalerSettings, ClusterConfig, KubernetesFields, NodeCommands, NodeTypeSpec
from rayk8s.launcher._kubernetes import KubernetesCluster, kubernetes_autoscaler_config, kubernetes_node_configs
from rayk8s.launcher._local import LocalCluster, check_local

__all__ = [
    "AutoscalerSettings",
    "ClusterConfig",
    "KubernetesCluster",
    "KubernetesFields",
    "LocalCluster",
    "NodeCommands",
    "NodeTypeSpec",
    "check_local",
    "kubernetes_autoscaler_config",
    "kubernetes_node_configs",
]
