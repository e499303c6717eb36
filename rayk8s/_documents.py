"""Reading YAML and JSON documents (scenarios, cluster configs, traces) from files.

This is the I/O edge in front of the pure ``from_dict`` factories: every way reading can
fail (no such file, unreadable, not UTF-8, a syntax error, a key given twice) becomes a
:class:`~rayk8s.errors.ConfigError` whose path is the file name and whose message says
where the parser stopped (``line 3, column 7: ...``), so a program can print it as one line.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Literal

import yaml

from rayk8s.errors import ConfigError

__all__ = ["load_document", "parse_document"]

Format = Literal["yaml", "json"]

_SUFFIXES: dict[str, Format] = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The safe YAML loader (libyaml when available), refusing a mapping key given twice.

    PyYAML keeps the last of two equal keys silently; in a scenario that would quietly
    drop a node type.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            # Scalar keys compare by tag and text (cheap); others are constructed.
            if isinstance(key_node, yaml.ScalarNode):
                key: object = (key_node.tag, key_node.value)
            else:
                key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                mark = key_node.start_mark
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else key
                raise _DuplicateKey(f"line {mark.line + 1}, column {mark.column + 1}: duplicate key {shown!r}")
            seen.add(key)
        mapping: dict[Hashable, Any] = super().construct_mapping(node, deep=deep)
        return mapping


class _DuplicateKey(Exception):
    pass


def load_document(path: str | Path) -> Any:
    """Read and parse a YAML or JSON file.

    ``.json`` files are parsed as JSON, ``.yaml``/``.yml`` as YAML; any other name is
    parsed as JSON when it starts with ``{`` or ``[`` and as YAML otherwise. Raises
    :class:`ConfigError` (path: the file name) when the file cannot be read or parsed.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(name, "no such file") from None
    except IsADirectoryError:
        raise ConfigError(name, "is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(name, "permission denied") from None
    except UnicodeDecodeError as error:
        raise ConfigError(name, f"not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ConfigError(name, f"cannot read: {error.strerror or error}") from None
    return parse_document(text, name=name, format=_SUFFIXES.get(Path(path).suffix.lower()))


def parse_document(text: str, *, name: str = "<document>", format: Format | None = None) -> Any:
    """Parse ``text`` as YAML or JSON (``format``; None: JSON if it looks like JSON, else YAML).

    ``name`` is the path of the :class:`ConfigError` raised on a syntax error.
    """
    if format is None:
        format = "json" if text.lstrip().startswith(("{", "[")) else "yaml"
    if format == "json":
        try:
            return json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as error:
            raise ConfigError(name, f"line {error.lineno}, column {error.colno}: invalid JSON: {error.msg}") from None
        except _DuplicateKey as error:
            raise ConfigError(name, f"invalid JSON: {error}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as error:
        raise ConfigError(name, f"{error}") from None
    except yaml.MarkedYAMLError as error:
        raise ConfigError(name, _yaml_message(error, text)) from None
    except yaml.YAMLError as error:
        raise ConfigError(name, f"invalid YAML: {error}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"duplicate key {key!r}")
        out[key] = value
    return out


def _yaml_message(error: yaml.MarkedYAMLError, text: str) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = error.problem or "invalid YAML"
    if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
        problem += "; YAML does not allow tabs for indentation"
    context = ""
    if error.context:
        start = error.context_mark
        started = ""
        if start is not None and mark is not None and (start.line, start.column) != (mark.line, mark.column):
            started = f" started at line {start.line + 1}, column {start.column + 1}"
        context = f" ({error.context}{started})"
    return f"{where}invalid YAML: {problem}{context}"


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    return lines[line][column : column + 1] if line < len(lines) else ""
