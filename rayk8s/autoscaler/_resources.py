"""Resource quantities and resource sets.

Amounts are exact: Kubernetes quantity strings are parsed with :class:`decimal.Decimal`
(``500m`` = 0.5, ``1Gi`` = 2**30, ``1G`` = 10**9, ``1M`` != ``1Mi``) and stored as integers
in units of 1/10,000 (the resolution Ray uses), so adding and subtracting many small
fractions never drifts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

from rayk8s.errors import ConfigError

__all__ = ["UNITS_PER_ONE", "Quantity", "Resources", "parse_quantity"]

#: Amounts are stored as integers in units of ``1 / UNITS_PER_ONE``.
UNITS_PER_ONE = 10_000

#: What a resource amount may be given as.
Quantity: TypeAlias = int | float | str | Decimal

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^\s*(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))(?P<suffix>[a-zA-Z]*)(?P<exp>[+-]?\d+)?\s*$")
_ALLOWED = "a number or a Kubernetes quantity such as 2, 0.5, 500m, 16Gi, 1G"


def parse_quantity(value: object, path: str = "") -> Decimal:
    """Parse a number or a Kubernetes quantity string into an exact, non-negative Decimal.

    ``path`` names the field in the error message. Raises :class:`ConfigError` for
    anything else (booleans, negative amounts, unknown suffixes, NaN, infinity).
    """
    if isinstance(value, bool):
        raise ConfigError(path, f"expected {_ALLOWED}, got {value!r}")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(path, f"expected a finite amount, got {value!r}")
        amount = Decimal(repr(value))
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        amount = _parse_string(value, path)
    else:
        raise ConfigError(path, f"expected {_ALLOWED}, got {type(value).__name__} {value!r}")
    if not amount.is_finite():
        raise ConfigError(path, f"expected a finite amount, got {value!r}")
    if amount < 0:
        raise ConfigError(path, f"expected a non-negative amount, got {value!r}")
    return amount


def _parse_string(text: str, path: str) -> Decimal:
    match = _QUANTITY.match(text)
    if match is None:
        raise ConfigError(path, f"expected {_ALLOWED}, got {text!r}")
    number, suffix, exponent = match["number"], match["suffix"], match["exp"]
    try:
        amount = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        raise ConfigError(path, f"expected {_ALLOWED}, got {text!r}") from None
    if suffix in ("e", "E") and exponent is not None:
        return amount.scaleb(int(exponent))
    if exponent is not None:
        raise ConfigError(path, f"expected {_ALLOWED}, got {text!r}")
    if suffix in _BINARY:
        return amount * _BINARY[suffix]
    if suffix in _DECIMAL:
        return amount * _DECIMAL[suffix]
    allowed_suffixes = ", ".join([*_BINARY, *(s for s in _DECIMAL if s)])
    raise ConfigError(path, f"unknown quantity suffix {suffix!r} in {text!r} (allowed: {allowed_suffixes})")


def _to_units(amount: Decimal) -> int:
    return int((amount * UNITS_PER_ONE).to_integral_value())


class Resources(Mapping[str, float]):
    """An immutable set of named resource amounts (``{"CPU": 4, "memory": 16Gi}``).

    Behaves as a read-only mapping from resource name to amount (a float; whole amounts
    compare equal to ints). Zero amounts are dropped, so ``Resources({"GPU": 0})`` is
    empty. Hashable and ordered by name, so equal resource sets are interchangeable
    dictionary keys.

    Build one with ``Resources({...})`` from numbers or quantity strings, or
    ``Resources.parse(mapping, path)`` to get field paths in errors.
    """

    __slots__ = ("_hash", "_units")

    _units: tuple[tuple[str, int], ...]

    def __init__(self, amounts: Mapping[str, Quantity] | None = None) -> None:
        units: dict[str, int] = {}
        for name, value in (amounts or {}).items():
            if not isinstance(name, str) or not name:
                raise ConfigError(repr(name), "resource names must be non-empty strings")
            amount = _to_units(parse_quantity(value, name))
            if amount:
                units[name] = amount
        self._units = tuple(sorted(units.items()))
        self._hash = hash(self._units)

    @classmethod
    def parse(cls, amounts: object, path: str) -> Resources:
        """Like the constructor, but errors name ``path`` and ``path.<resource>``."""
        if isinstance(amounts, Resources):
            return amounts
        if not isinstance(amounts, Mapping):
            raise ConfigError(path, f"expected a mapping of resource name to amount, got {type(amounts).__name__}")
        units: dict[str, int] = {}
        for name, value in amounts.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{path}.{name}", "resource names must be non-empty strings")
            amount = _to_units(parse_quantity(value, f"{path}.{name}"))
            if amount:
                units[name] = amount
        return cls.from_units(units)

    @classmethod
    def from_units(cls, units: Mapping[str, int]) -> Resources:
        """Build from integer amounts in units of 1/``UNITS_PER_ONE`` (zeros dropped)."""
        self = cls.__new__(cls)
        self._units = tuple(sorted((name, amount) for name, amount in units.items() if amount))
        self._hash = hash(self._units)
        return self

    @property
    def units(self) -> Mapping[str, int]:
        """The exact amounts, in units of 1/``UNITS_PER_ONE``."""
        return dict(self._units)

    def __getitem__(self, name: str) -> float:
        for key, amount in self._units:
            if key == name:
                return amount / UNITS_PER_ONE
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._units)

    def __len__(self) -> int:
        return len(self._units)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resources):  # the common case, first
            return self._units == other._units
        if isinstance(other, Mapping):
            try:
                return self == Resources(other)
            except ConfigError:
                return False
        return NotImplemented

    def __lt__(self, other: Resources) -> bool:
        return self._units < other._units

    def __add__(self, other: Resources) -> Resources:
        units = dict(self._units)
        for name, amount in other._units:
            units[name] = units.get(name, 0) + amount
        return Resources.from_units(units)

    def __sub__(self, other: Resources) -> Resources:
        """Subtract amounts; a result below zero raises ValueError."""
        units = dict(self._units)
        for name, amount in other._units:
            left = units.get(name, 0) - amount
            if left < 0:
                raise ValueError(f"cannot subtract {other} from {self}: {name} would be negative")
            units[name] = left
        return Resources.from_units(units)

    def __mul__(self, factor: int) -> Resources:
        return Resources.from_units({name: amount * factor for name, amount in self._units})

    def fits_in(self, capacity: Resources) -> bool:
        """True when every amount here is at most the same amount in ``capacity``."""
        available = dict(capacity._units)
        return all(amount <= available.get(name, 0) for name, amount in self._units)

    def to_dict(self) -> dict[str, int | float]:
        """Plain numbers, whole amounts as ints (for JSON and YAML output)."""
        out: dict[str, int | float] = {}
        for name, amount in self._units:
            whole, rest = divmod(amount, UNITS_PER_ONE)
            out[name] = whole if rest == 0 else amount / UNITS_PER_ONE
        return out

    def __repr__(self) -> str:
        return f"Resources({self.to_dict()!r})"

    def __str__(self) -> str:
        return format_resources(self)


_BINARY_UNITS = (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_BYTE_RESOURCES = frozenset({"memory", "object_store_memory", "ephemeral-storage"})


def format_resources(resources: Resources) -> str:
    """A short human form: ``{CPU: 4, GPU: 1, memory: 16Gi}``."""
    parts = [f"{name}: {format_amount(name, amount)}" for name, amount in resources.items()]
    return "{" + ", ".join(parts) + "}"


def format_amount(name: str, amount: float) -> str:
    """An amount as a person would write it: bytes with binary suffixes, else the number."""
    if name in _BYTE_RESOURCES and amount >= 1024:
        for suffix, size in _BINARY_UNITS:
            if amount >= size and (amount / size) * 10 == int((amount / size) * 10):
                value = amount / size
                return f"{int(value) if value == int(value) else value}{suffix}"
    return str(int(amount)) if amount == int(amount) else f"{amount:g}"
