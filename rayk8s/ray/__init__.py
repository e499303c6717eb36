"""The Ray integration (optional extra ``rayk8s[ray]``): a live cluster's load, read from its GCS.

:class:`RayLoadSource` reads pending tasks, actors, placement groups,
``request_resources`` constraints and per-node usage from Ray's GCS and reports the
autoscaler's state back; :class:`DrainingProvider` drains a node through Ray before it is
terminated. Importing this package does not import ``ray``; building a source does.
"""

from rayk8s.ray._drain import DrainingProvider
from rayk8s.ray._load_source import LABEL_NODE_ID, RAY_EXTRA_HINT, RayLoadSource, RayNode, require_ray

__all__ = ["LABEL_NODE_ID", "RAY_EXTRA_HINT", "DrainingProvider", "RayLoadSource", "RayNode", "require_ray"]
