"""The cluster launcher: ``rayk8s up/down/status`` from a Ray cluster-launcher YAML.

:class:`ClusterConfig` parses the YAML; :class:`LocalCluster` runs a cluster of the
``local`` provider (real Ray processes on this machine). The Kubernetes launcher is not
implemented yet.
"""

from rayk8s.launcher._config import AutoscalerSettings, ClusterConfig, NodeTypeSpec
from rayk8s.launcher._local import LocalCluster, check_local

__all__ = ["AutoscalerSettings", "ClusterConfig", "LocalCluster", "NodeTypeSpec", "check_local"]
