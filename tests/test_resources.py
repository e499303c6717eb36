"""Exact resource quantities, as Kubernetes writes them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rayk8s.autoscaler import Resources, parse_quantity
from rayk8s.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        ("1G", Decimal(10**9)),
        ("1M", Decimal(10**6)),
        ("1Mi", Decimal(2**20)),
        ("16Gi", Decimal(16 * 2**30)),
        ("1.5Ki", Decimal(1536)),
        ("2", Decimal(2)),
        ("0.25", Decimal("0.25")),
        ("1e3", Decimal(1000)),
        ("100k", Decimal(100_000)),
        (3, Decimal(3)),
        (0.5, Decimal("0.5")),
    ],
)
def test_kubernetes_quantities_parse_exactly(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


def test_mega_and_mebi_differ() -> None:
    assert Resources({"memory": "1M"}) != Resources({"memory": "1Mi"})


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("one", "expected a number or a Kubernetes quantity"),
        ("-1", "non-negative"),
        ("5Xi", "unknown quantity suffix 'Xi'"),
        (True, "expected a number"),
        (float("nan"), "finite"),
        ([1], "expected a number"),
    ],
)
def test_bad_quantities_name_the_field(value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        Resources.parse({"CPU": value}, "node_types.cpu.resources")
    assert error.value.path == "node_types.cpu.resources.CPU"
    assert fragment in error.value.message


def test_resources_are_values() -> None:
    a = Resources({"CPU": "500m", "memory": "1Gi"})
    b = Resources({"memory": 2**30, "CPU": 0.5})
    assert a == b and hash(a) == hash(b)
    assert a.to_dict() == {"CPU": 0.5, "memory": 2**30}
    assert str(a) == "{CPU: 0.5, memory: 1Gi}"
    assert Resources({"GPU": 0}) == Resources()
    assert (a + b) - b == a
    assert a * 3 == Resources({"CPU": 1.5, "memory": "3Gi"})
