"""Finding a provider class from the config's ``provider`` mapping.

``provider.type`` names a built-in provider or one registered by a third party under the
entry-point group ``rayk8s.providers`` (``myprovider = mypkg.provider:MyProvider`` in
its package metadata). As in Ray, ``provider.module: "pkg.module.Class"`` names a class
directly (with ``type: external`` or any type).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from rayk8s.errors import ConfigError
from rayk8s.providers._base import NodeProvider

__all__ = ["ENTRY_POINT_GROUP", "get_provider_class", "known_provider_types", "make_provider"]

ENTRY_POINT_GROUP = "rayk8s.providers"

#: Providers shipped with rayk8s, found even when the package is not installed (a checkout).
_BUILTIN = {
    "fake": "rayk8s.providers.fake:FakeNodeProvider",
    "kubernetes": "rayk8s.providers.kubernetes:KubernetesNodeProvider",
    "local": "rayk8s.providers.local:LocalNodeProvider",
}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_provider_types() -> list[str]:
    """The ``provider.type`` values that resolve: built-ins and registered entry points."""
    return sorted(set(_BUILTIN) | set(_entry_points()))


def _load(target: str, path: str) -> Any:
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(path, f"expected 'package.module.Class', got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(path, f"cannot import {module_name!r}: {error}") from error
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(path, f"module {module_name!r} has no attribute {attr!r}") from None


def get_provider_class(provider_config: Mapping[str, Any]) -> type[NodeProvider]:
    """The :class:`NodeProvider` subclass ``provider_config`` names.

    Raises :class:`ConfigError` naming ``provider.type`` (with the known types) or
    ``provider.module`` when nothing matches or the class is not a ``NodeProvider``.
    """
    module = provider_config.get("module")
    if module is not None:
        if not isinstance(module, str):
            raise ConfigError("provider.module", f"expected 'package.module.Class', got {module!r}")
        cls = _load(module, "provider.module")
        path = "provider.module"
    else:
        provider_type = provider_config.get("type")
        if not isinstance(provider_type, str) or not provider_type:
            raise ConfigError("provider.type", f"expected a provider type (known: {', '.join(known_provider_types())})")
        path = "provider.type"
        if provider_type in _BUILTIN:
            cls = _load(_BUILTIN[provider_type], path)
        else:
            entry = _entry_points().get(provider_type)
            if entry is None:
                raise ConfigError(
                    path,
                    f"unknown provider type {provider_type!r} (known: {', '.join(known_provider_types())};"
                    " or give provider.module: 'package.module.Class')",
                )
            try:
                cls = entry.load()
            except ImportError as error:
                raise ConfigError(path, f"cannot load provider {provider_type!r}: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, NodeProvider)):
        raise ConfigError(path, f"{cls!r} is not a rayk8s.providers.NodeProvider subclass")
    return cls


def make_provider(provider_config: Mapping[str, Any], cluster_name: str, **kwargs: Any) -> NodeProvider:
    """Build the provider ``provider_config`` names: ``cls(provider_config, cluster_name, **kwargs)``."""
    return get_provider_class(provider_config)(provider_config, cluster_name, **kwargs)
