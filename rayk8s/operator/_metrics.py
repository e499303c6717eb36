"""The operator's Prometheus metrics (served with ``--metrics-port``), all labelled by cluster.

- ``rayk8s_operator_clusters``: RayClusters with a running autoscaler.
- ``rayk8s_operator_updates_total{cluster}``: autoscaler updates run.
- ``rayk8s_operator_update_errors_total{cluster}``: updates that recorded an error.
- ``rayk8s_operator_update_seconds{cluster}``: how long an update took (histogram).
- ``rayk8s_operator_nodes{cluster, node_type}``: live nodes per type after the last update.

The Kubernetes provider's ``rayk8s_kubernetes_api_calls_total`` is served beside them.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["CLUSTERS", "NODES", "UPDATES", "UPDATE_ERRORS", "UPDATE_SECONDS", "forget_cluster"]

CLUSTERS = Gauge("rayk8s_operator_clusters", "RayClusters with a running autoscaler.")
UPDATES = Counter("rayk8s_operator_updates", "Autoscaler updates run.", ["cluster"])
UPDATE_ERRORS = Counter("rayk8s_operator_update_errors", "Autoscaler updates that recorded an error.", ["cluster"])
UPDATE_SECONDS = Histogram(
    "rayk8s_operator_update_seconds",
    "Duration of one autoscaler update (head check, update, status), in seconds.",
    ["cluster"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
NODES = Gauge("rayk8s_operator_nodes", "Live nodes per type after the last update.", ["cluster", "node_type"])


def forget_cluster(cluster: str, node_types: set[str]) -> None:
    """Drop a deleted cluster's series."""
    for metric in (UPDATES, UPDATE_ERRORS, UPDATE_SECONDS):
        with contextlib.suppress(KeyError):
            metric.remove(cluster)
    for node_type in node_types:
        with contextlib.suppress(KeyError):
            NODES.remove(cluster, node_type)
