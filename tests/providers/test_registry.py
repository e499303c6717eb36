"""Finding providers by provider.type, by entry point, and by provider.module."""

from __future__ import annotations

from importlib import metadata

import pytest

from rayk8s.errors import ConfigError
from rayk8s.providers import _registry, get_provider_class, known_provider_types, make_provider
from rayk8s.providers.fake import FakeNodeProvider


class NotAProvider:
    pass


def test_builtin_fake_is_found_by_type() -> None:
    """provider.type: fake resolves to the fake provider, and make_provider builds it."""
    assert get_provider_class({"type": "fake"}) is FakeNodeProvider
    provider = make_provider({"type": "fake", "launch_delay_s": 1}, "demo")
    assert isinstance(provider, FakeNodeProvider)
    assert provider.cluster_name == "demo"


def test_unknown_type_names_the_field_and_lists_known_types() -> None:
    """An unknown provider.type is a ConfigError at provider.type listing the known types."""
    with pytest.raises(ConfigError) as raised:
        get_provider_class({"type": "aws"})
    assert raised.value.path == "provider.type"
    assert "'aws'" in str(raised.value) and "fake" in str(raised.value)


def test_missing_type_is_an_error() -> None:
    """No provider.type (and no module) is a ConfigError at provider.type."""
    with pytest.raises(ConfigError) as raised:
        get_provider_class({})
    assert raised.value.path == "provider.type"


def test_module_path_names_a_class_directly() -> None:
    """provider.module: 'pkg.module.Class' loads that class, as in Ray (type: external)."""
    cls = get_provider_class({"type": "external", "module": "rayk8s.providers.fake.FakeNodeProvider"})
    assert cls is FakeNodeProvider


@pytest.mark.parametrize(
    "module",
    ["no.such.module.Provider", "rayk8s.providers.fake.NoSuchClass", f"{__name__}.NotAProvider", "nodots"],
)
def test_bad_module_names_provider_module(module: str) -> None:
    """A module that cannot be imported, lacks the class, or is not a NodeProvider: ConfigError at provider.module."""
    with pytest.raises(ConfigError) as raised:
        get_provider_class({"type": "external", "module": module})
    assert raised.value.path == "provider.module"


def test_third_party_entry_points_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider registered under the rayk8s.providers entry-point group resolves by its name."""
    entry = metadata.EntryPoint("acme", "rayk8s.providers.fake:FakeNodeProvider", _registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        _registry.metadata, "entry_points", lambda group: [entry] if group == "rayk8s.providers" else []
    )
    assert get_provider_class({"type": "acme"}) is FakeNodeProvider
    assert "acme" in known_provider_types()
