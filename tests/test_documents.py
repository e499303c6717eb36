"""Reading scenario (and config) files: YAML or JSON, and every failure as a one-line ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from rayk8s._documents import load_document, parse_document
from rayk8s.errors import ConfigError


def test_yaml_and_json_by_extension(tmp_path: Path) -> None:
    """`.yaml`/`.yml` files are YAML and `.json` files are JSON."""
    (tmp_path / "a.yaml").write_text("a: {b: 1}\n")
    (tmp_path / "a.yml").write_text("- 1\n- 2\n")
    (tmp_path / "a.json").write_text('{"a": [1, 2.5, null]}')
    assert load_document(tmp_path / "a.yaml") == {"a": {"b": 1}}
    assert load_document(tmp_path / "a.yml") == [1, 2]
    assert load_document(str(tmp_path / "a.json")) == {"a": [1, 2.5, None]}


def test_other_names_are_detected_by_content(tmp_path: Path) -> None:
    """A file with another name is JSON when it looks like JSON, YAML otherwise."""
    (tmp_path / "scenario").write_text('{"x": 1}')
    (tmp_path / "scenario.txt").write_text("x: 1\n")
    assert load_document(tmp_path / "scenario") == {"x": 1}
    assert load_document(tmp_path / "scenario.txt") == {"x": 1}


def test_json_file_with_a_syntax_error_reports_line_and_column(tmp_path: Path) -> None:
    """A JSON syntax error names the file and the parser's line and column."""
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": ]\n}')
    with pytest.raises(ConfigError) as caught:
        load_document(path)
    assert caught.value.path == str(path)
    assert caught.value.message.startswith("line 3, column 8: invalid JSON")


def test_yaml_syntax_error_reports_line_and_column(tmp_path: Path) -> None:
    """A YAML syntax error names the file and the parser's line and column."""
    path = tmp_path / "bad.yaml"
    path.write_text("node_types:\n  cpu: {resources: {CPU: 4}\ndemands: []\n")
    with pytest.raises(ConfigError) as caught:
        load_document(path)
    assert caught.value.path == str(path)
    assert caught.value.message.startswith("line 3, column 1: invalid YAML")
    assert "(while parsing a flow mapping started at line 2, column 8)" in caught.value.message
    assert "\n" not in str(caught.value)


def test_tabs_in_yaml_get_a_hint() -> None:
    """Indenting YAML with a tab says that tabs are the problem."""
    with pytest.raises(ConfigError, match="YAML does not allow tabs") as caught:
        parse_document("nodes:\n\t- {id: a}\n", name="t.yaml")
    assert caught.value.message.startswith("line 2, column 1:")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(
            "node_types:\n  gpu: {}\n  cpu: {}\n  gpu: {}\n", "line 4, column 3: duplicate key 'gpu'", id="yaml"
        ),
        pytest.param('{"node_types": {}, "node_types": {}}', "duplicate key 'node_types'", id="json"),
    ],
)
def test_duplicate_keys_are_refused(text: str, fragment: str) -> None:
    """A key given twice is an error, not a silent last-one-wins (which would drop a node type)."""
    with pytest.raises(ConfigError) as caught:
        parse_document(text, name="dup")
    assert caught.value.path == "dup"
    assert fragment in caught.value.message


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming it."""
    with pytest.raises(ConfigError) as caught:
        load_document(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_directory(tmp_path: Path) -> None:
    """A directory given as the file is a ConfigError, not an IsADirectoryError traceback."""
    with pytest.raises(ConfigError, match="is a directory"):
        load_document(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 text are a ConfigError."""
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_document(path)


def test_empty_document_is_none() -> None:
    """An empty YAML file parses to None (the scenario layer then says it is empty)."""
    assert parse_document("# only a comment\n", format="yaml") is None


def test_yaml_is_loaded_safely() -> None:
    """Python-object tags are refused: loading a file never constructs arbitrary objects."""
    with pytest.raises(ConfigError, match="invalid YAML"):
        parse_document("!!python/object/apply:os.system ['true']\n", format="yaml")
