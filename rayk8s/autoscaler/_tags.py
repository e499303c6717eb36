"""The tag keys and values the autoscaler stores on every node it launches.

Tags are the autoscaler's durable memory: everything it needs to know about a node after
a restart (which cluster, head or worker, which node type, which launch configuration,
which launch request, whether it ever joined Ray) is written as a tag when the node is
created or changes state, and read back on every update. The keys follow Ray's
(``ray-node-type`` is head|worker, ``ray-user-node-type`` the configured type); the
Kubernetes provider stores them as pod labels, so values stay label-safe (at most 63
characters of ``[A-Za-z0-9._-]``).

:mod:`rayk8s.providers` re-exports these names; they are defined here, in the pure
layer, because the autoscaler step reads them and may not import the provider layer.
"""

from __future__ import annotations

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

#: The cluster a node belongs to.
TAG_CLUSTER_NAME = "ray-cluster-name"
#: ``head`` or ``worker`` (Ray calls this key ``ray-node-type``).
TAG_NODE_KIND = "ray-node-type"
#: The configured node type (``available_node_types`` key) the node was launched as.
TAG_USER_NODE_TYPE = "ray-user-node-type"
#: Where the node stands, as last recorded by the autoscaler (see the ``STATUS_*`` values).
TAG_NODE_STATUS = "ray-node-status"
#: The launch-config hash of the node type when the node was launched (``outdated`` check).
TAG_LAUNCH_CONFIG = "ray-launch-config"
#: The id of the launch request that created the node (one ``create_node`` call).
TAG_LAUNCH_REQUEST = "ray-launch-request"

NODE_KIND_HEAD = "head"
NODE_KIND_WORKER = "worker"

#: Written at launch: the node has never been seen as part of the Ray cluster.
STATUS_UNINITIALIZED = "uninitialized"
#: Written once the load source first reports the node: it joined Ray. A node with this
#: tag that Ray stops reporting is lost, not still starting.
STATUS_UP_TO_DATE = "up-to-date"
