"""Tag keys and values on provider nodes (Ray's names; pod labels for Kubernetes).

Defined in :mod:`rayk8s.autoscaler._tags` (the pure layer reads them) and re-exported
here for provider authors.
"""

from rayk8s.autoscaler._tags import (
    NODE_KIND_HEAD,
    NODE_KIND_WORKER,
    STATUS_UNINITIALIZED,
    STATUS_UP_TO_DATE,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_CONFIG,
    TAG_LAUNCH_REQUEST,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)

__all__ = [
    "NODE_KIND_HEAD",
    "NODE_KIND_WORKER",
    "STATUS_UNINITIALIZED",
    "STATUS_UP_TO_DATE",
    "TAG_CLUSTER_NAME",
    "TAG_LAUNCH_CONFIG",
    "TAG_LAUNCH_REQUEST",
    "TAG_NODE_KIND",
    "TAG_NODE_STATUS",
    "TAG_USER_NODE_TYPE",
]
