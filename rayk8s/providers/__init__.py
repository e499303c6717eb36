"""Node providers: the pluggable interface the autoscaler acts through, and its implementations.

:class:`NodeProvider` is the interface (Ray's method names, a written contract per
method); :func:`get_provider_class` finds a provider by the config's ``provider.type``
(built-ins, the ``rayk8s.providers`` entry-point group, or ``provider.module``).
``fake`` (:class:`rayk8s.providers.fake.FakeNodeProvider`) runs in memory.
"""

from rayk8s.providers._base import NodeProvider, ProviderNode, ProviderNodeStatus, ProviderSnapshot
from rayk8s.providers._registry import ENTRY_POINT_GROUP, get_provider_class, known_provider_types, make_provider

__all__ = [
    "ENTRY_POINT_GROUP",
    "NodeProvider",
    "ProviderNode",
    "ProviderNodeStatus",
    "ProviderSnapshot",
    "get_provider_class",
    "known_provider_types",
    "make_provider",
]
