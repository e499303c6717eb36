"""The RayCluster operator: a ``RayCluster`` custom resource, one autoscaler per cluster, on kopf.

``rayk8s operator`` (or ``python -m rayk8s.operator``) runs it; ``rayk8s crd`` prints the
CRD, generated from the cluster-config schema. :class:`ClusterRuntime` is one cluster's
autoscaler, provider and status without kopf, for embedding. See ``docs/operator.md``.
"""

from rayk8s.operator._cluster import (
    WORK_ANNOTATION,
    ClusterRuntime,
    Event,
    OperatorSettings,
    cluster_config,
    events_of,
)
from rayk8s.operator._crd import GROUP, KIND, PLURAL, VERSION, crd_manifest, crd_yaml

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "WORK_ANNOTATION",
    "ClusterRuntime",
    "Event",
    "OperatorSettings",
    "cluster_config",
    "crd_manifest",
    "crd_yaml",
    "events_of",
]
