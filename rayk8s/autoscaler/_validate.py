"""Small checks for parsed documents (scenarios, configs, traces) that name the field path.

Every function takes the value found and the ``path`` it was found at, and either returns
the value in the type the caller wants or raises :class:`ConfigError` saying what was
expected and what was found (``nodes[3].count: expected an integer >= 1, got -2``).
Unknown fields get a did-you-mean suggestion. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from rayk8s.autoscaler._resources import Resources, parse_quantity
from rayk8s.errors import ConfigError

__all__ = [
    "MISSING",
    "check_fields",
    "describe",
    "expect_bool",
    "expect_choice",
    "expect_int",
    "expect_list",
    "expect_mapping",
    "expect_number",
    "expect_resources",
    "expect_str",
    "field_path",
    "index_path",
    "suggest",
]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_/-]*$")


class _Missing:
    """The marker for "this field is absent", distinct from an explicit ``null``."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def field_path(parent: str, key: object) -> str:
    """``parent.key``; keys that are not plain words are quoted (``node_types["a b"]``)."""
    text = str(key)
    if isinstance(key, str) and _PLAIN_KEY.match(text):
        return f"{parent}.{text}" if parent else text
    return f"{parent}[{json.dumps(text)}]"


def index_path(parent: str, index: int) -> str:
    """``parent[index]``."""
    return f"{parent}[{index}]"


def describe(value: object) -> str:
    """A found value as the user wrote it: ``"one"``, ``-2``, ``true``, ``null``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + '..."'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def suggest(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    choices = list(candidates)
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not matches:
        folded = {choice.lower(): choice for choice in choices}
        if word.lower() in folded:
            matches = [folded[word.lower()]]
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def expect_mapping(value: object, path: str, what: str = "a mapping") -> Mapping[str, Any]:
    """``value`` as a mapping with string keys."""
    if not isinstance(value, Mapping):
        raise ConfigError(path, f"expected {what}, got {describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(field_path(path, key), f"expected a string key, got {describe(key)}")
    return value


def check_fields(
    mapping: Mapping[str, Any],
    path: str,
    *,
    required: Collection[str] = (),
    optional: Collection[str] = (),
) -> None:
    """Reject unknown fields (with a suggestion) and missing required ones."""
    allowed = list(dict.fromkeys([*required, *optional]))
    for key in mapping:
        if key not in allowed:
            hint = suggest(key, allowed)
            if not hint:
                hint = f" (allowed: {', '.join(allowed)})"
            raise ConfigError(field_path(path, key), f"unknown field{hint}")
    for key in required:
        if key not in mapping:
            raise ConfigError(field_path(path, key), "required field is missing")


def expect_list(value: object, path: str, what: str = "a list") -> Sequence[Any]:
    """``value`` as a list (a YAML sequence or JSON array)."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(path, f"expected {what}, got {describe(value)}")
    return value


def expect_str(value: object, path: str, *, non_empty: bool = True) -> str:
    """``value`` as a string (non-empty unless ``non_empty`` is False)."""
    if not isinstance(value, str):
        hint = " (quote it)" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        raise ConfigError(path, f"expected a string, got {describe(value)}{hint}")
    if non_empty and not value.strip():
        raise ConfigError(path, "expected a non-empty string")
    return value


def expect_bool(value: object, path: str) -> bool:
    """``value`` as a boolean (``true`` or ``false``; no strings, no numbers)."""
    if not isinstance(value, bool):
        raise ConfigError(path, f"expected true or false, got {describe(value)}")
    return value


def expect_int(value: object, path: str, *, minimum: int | None = 0) -> int:
    """``value`` as a whole number at least ``minimum``; ``2.0`` is accepted as 2."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, f"expected {_int_wanted(minimum)}, got {describe(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(path, f"expected {_int_wanted(minimum)}, got {describe(value)}")
        value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(path, f"expected {_int_wanted(minimum)}, got {value}")
    return value


def expect_worker_limits(spec: Mapping[str, Any], path: str) -> tuple[int, int | None]:
    """A node type's ``min_workers`` (default 0) and ``max_workers`` (default and null: no cap).

    ``min_workers`` above ``max_workers`` is an error at ``<path>.min_workers``.
    """
    min_workers = expect_int(spec.get("min_workers", 0), field_path(path, "min_workers"))
    max_value = spec.get("max_workers")
    max_workers = None if max_value is None else expect_int(max_value, field_path(path, "max_workers"))
    if max_workers is not None and min_workers > max_workers:
        raise ConfigError(
            field_path(path, "min_workers"), f"min_workers ({min_workers}) exceeds max_workers ({max_workers})"
        )
    return min_workers, max_workers


def _int_wanted(minimum: int | None) -> str:
    return "an integer" if minimum is None else f"an integer >= {minimum}"


def expect_number(value: object, path: str, *, minimum: float | None = 0) -> float:
    """``value`` as a finite number at least ``minimum``."""
    wanted = "a number" if minimum is None else f"a number >= {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, f"expected {wanted}, got {describe(value)}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(path, f"expected a finite number, got {describe(value)}")
    if minimum is not None and number < minimum:
        raise ConfigError(path, f"expected {wanted}, got {describe(value)}")
    return number


def expect_choice(value: object, path: str, choices: Sequence[str]) -> str:
    """``value`` as one of ``choices`` (case-sensitive; the error lists them all)."""
    if isinstance(value, str) and value in choices:
        return value
    hint = suggest(value, choices) if isinstance(value, str) else ""
    raise ConfigError(path, f"expected one of {', '.join(choices)}, got {describe(value)}{hint}")


#: Ray's built-in resource names; a spelling that differs only in case is a mistake.
_WELL_KNOWN_RESOURCES = ("CPU", "GPU", "TPU", "memory", "object_store_memory")
_FOLDED_RESOURCES = {name.lower(): name for name in _WELL_KNOWN_RESOURCES}


def expect_resources(value: object, path: str, *, non_empty: bool = False) -> Resources:
    """``value`` as :class:`Resources` (numbers or Kubernetes quantities; errors name ``path.<resource>``).

    A name that differs from one of Ray's built-in resources only in case (``cpu``, ``Memory``)
    is refused: resource names are case-sensitive, so it would silently be a custom resource
    no node has. With ``non_empty``, at least one amount must be above zero.
    """
    amounts = expect_mapping(value, path, "a mapping of resource name to amount")
    for name in amounts:
        if not name:
            raise ConfigError(field_path(path, name), "resource names must be non-empty")
        canonical = _FOLDED_RESOURCES.get(name.lower())
        if canonical is not None and canonical != name:
            hint = f"did you mean {canonical!r}? resource names are case-sensitive"
            raise ConfigError(field_path(path, name), f"unknown resource ({hint})")
    # Parsed here, not by Resources.parse, so every path is spelled by field_path (quoted when odd).
    exact = {name: parse_quantity(amount, field_path(path, name)) for name, amount in amounts.items()}
    resources = Resources(exact)
    if non_empty and not resources:
        raise ConfigError(path, "expected at least one resource with an amount above zero")
    return resources


def expect_shape_count(value: object, path: str) -> tuple[Resources, int]:
    """A ``{shape, count}`` mapping (a demand or a resource request); ``count`` defaults to 1."""
    spec = expect_mapping(value, path, "a mapping with shape and count")
    check_fields(spec, path, required=("shape",), optional=("count",))
    shape = expect_resources(spec["shape"], field_path(path, "shape"), non_empty=True)
    count = expect_int(spec.get("count", 1), field_path(path, "count"), minimum=1)
    return shape, count
