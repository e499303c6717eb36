"""Malformed scenarios: each is refused with a ConfigError naming the exact field path.

Every case is one document (a small change to a valid scenario), the path the error must
name, and a fragment the message must contain, so a user can find and fix the field from
the one line the CLI prints.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayk8s._documents import parse_document
from rayk8s.autoscaler import Scenario
from rayk8s.errors import ConfigError

_VALID: dict[str, Any] = {
    "node_types": {
        "cpu": {"resources": {"CPU": 4, "memory": "16Gi"}, "max_workers": 10, "cost": 0.2},
        "gpu": {"resources": {"CPU": 8, "GPU": 1}, "max_workers": 2, "cost": 2.5},
    },
    "nodes": [
        {"id": "w-1", "type": "cpu", "available": {"CPU": 1}},
        {"id": "w-2", "type": "gpu", "status": "pending"},
    ],
    "demands": [{"shape": {"CPU": 1}, "count": 10}, {"shape": {"GPU": 1}}],
    "placement_groups": [{"strategy": "STRICT_SPREAD", "bundles": [{"CPU": 1}, {"CPU": 1}], "count": 2}],
    "resource_requests": [{"shape": {"CPU": 1}, "count": 8}],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """A copy of the valid scenario with the field at the dotted ``path`` set (or deleted, for _DELETE)."""
    document = copy.deepcopy(_VALID)
    *parents, last = path.split(".")
    target: Any = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if value is _DELETE:
        del target[key]
    else:
        target[key] = value
    return document


_DELETE = object()

CASES: list[Any] = [
    # -- the document as a whole -------------------------------------------------------
    pytest.param(None, "", "the scenario is empty", id="empty-document"),
    pytest.param([1, 2], "", "expected a scenario mapping", id="top-level-list"),
    pytest.param({**_VALID, "node_type": {}}, "node_type", "did you mean 'node_types'?", id="unknown-top-field-typo"),
    pytest.param(
        {**_VALID, "zzz": 1}, "zzz", "allowed: node_types, description, max_workers", id="unknown-top-field-no-match"
    ),
    pytest.param(_with("node_types", _DELETE), "node_types", "required field is missing", id="missing-node-types"),
    pytest.param(_with("description", 42), "description", "expected a string, got 42", id="description-not-string"),
    pytest.param(
        _with("max_workers", 2.5), "max_workers", "expected an integer >= 0, got 2.5", id="max-workers-fraction"
    ),
    pytest.param(
        _with("max_workers", -1), "max_workers", "expected an integer >= 0, got -1", id="max-workers-negative"
    ),
    # -- node types --------------------------------------------------------------------
    pytest.param(
        _with("node_types", [{"resources": {"CPU": 1}}]),
        "node_types",
        "expected a mapping of node type name to node type, got a list",
        id="node-types-list",
    ),
    pytest.param(_with("node_types.gpu", 4), "node_types.gpu", "expected a node type mapping", id="node-type-number"),
    pytest.param(
        _with("node_types.gpu.resources", _DELETE), "node_types.gpu.resources", "required field", id="no-resources"
    ),
    pytest.param(
        _with("node_types.gpu.resource", {"CPU": 1}),
        "node_types.gpu.resource",
        "unknown field (did you mean 'resources'?)",
        id="node-type-field-typo",
    ),
    pytest.param(
        _with("node_types.gpu.resources", {}),
        "node_types.gpu.resources",
        "at least one resource",
        id="no-resources-set",
    ),
    pytest.param(
        _with("node_types.gpu.resources", {"GPU": 0}),
        "node_types.gpu.resources",
        "at least one resource with an amount above zero",
        id="only-zero-resources",
    ),
    pytest.param(
        _with("node_types.cpu.resources.memory", "lots"),
        "node_types.cpu.resources.memory",
        "expected a number or a Kubernetes quantity",
        id="quantity-not-a-number",
    ),
    pytest.param(
        _with("node_types.cpu.resources.memory", "16GB"),
        "node_types.cpu.resources.memory",
        "unknown quantity suffix 'GB'",
        id="quantity-bad-suffix",
    ),
    pytest.param(
        _with("node_types.cpu.resources.CPU", -4),
        "node_types.cpu.resources.CPU",
        "non-negative",
        id="quantity-negative",
    ),
    pytest.param(
        _with("node_types.cpu.resources.CPU", float("nan")),
        "node_types.cpu.resources.CPU",
        "finite",
        id="quantity-nan",
    ),
    pytest.param(
        _with("node_types.cpu.resources", {"cpu": 4}),
        "node_types.cpu.resources.cpu",
        "did you mean 'CPU'? resource names are case-sensitive",
        id="resource-name-case",
    ),
    pytest.param(
        _with("node_types.cpu.resources", {"CPU": 1, "licence\nkey": "x"}),
        'node_types.cpu.resources["licence\\nkey"]',
        "expected a number or a Kubernetes quantity",
        id="resource-name-quoted-in-path",
    ),
    pytest.param(
        _with("node_types.cpu.min_workers", -1),
        "node_types.cpu.min_workers",
        "expected an integer >= 0, got -1",
        id="min-workers-negative",
    ),
    pytest.param(
        _with("node_types.cpu.max_workers", "ten"),
        "node_types.cpu.max_workers",
        'expected an integer >= 0, got "ten"',
        id="max-workers-string",
    ),
    pytest.param(
        _with("node_types.gpu.min_workers", 5),
        "node_types.gpu.min_workers",
        "min_workers (5) exceeds max_workers (2)",
        id="min-above-max",
    ),
    pytest.param(
        _with("node_types.gpu.cost", -0.5), "node_types.gpu.cost", "expected a number >= 0", id="cost-negative"
    ),
    pytest.param(_with("node_types.gpu.cost", True), "node_types.gpu.cost", "got true", id="cost-bool"),
    pytest.param(
        _with("node_types", {"": {"resources": {"CPU": 1}}}), 'node_types[""]', "non-empty", id="node-type-name-empty"
    ),
    pytest.param(
        _with("node_types", {"a b": "x"}), 'node_types["a b"]', "expected a node type mapping", id="quoted-type-path"
    ),
    # -- nodes -------------------------------------------------------------------------
    pytest.param(_with("nodes", {"w-1": {}}), "nodes", "expected a list, got a mapping", id="nodes-mapping"),
    pytest.param(_with("nodes.0", "w-1"), "nodes[0]", "expected a node mapping", id="node-string"),
    pytest.param(_with("nodes.0.id", _DELETE), "nodes[0].id", "required field is missing", id="node-without-id"),
    pytest.param(_with("nodes.0.id", 7), "nodes[0].id", "expected a string, got 7 (quote it)", id="node-id-number"),
    pytest.param(
        _with("nodes.1.type", "gpux"),
        "nodes[1].type",
        "unknown node type \"gpux\" (did you mean 'gpu'?); known types: cpu, gpu",
        id="node-unknown-type",
    ),
    pytest.param(
        _with("nodes.1.id", "w-1"), "nodes[1].id", 'duplicate node id "w-1" (also nodes[0])', id="duplicate-node-id"
    ),
    pytest.param(
        _with("nodes.0.status", "Running"),
        "nodes[0].status",
        "expected one of running, pending, got \"Running\" (did you mean 'running'?)",
        id="node-status",
    ),
    pytest.param(
        _with("nodes.0.available", {"CPU": 6}),
        "nodes[0].available.CPU",
        "6 available exceeds the node's total of 4",
        id="available-above-total",
    ),
    pytest.param(
        _with("nodes.0.available", {"CPU": 1, "GPU": 1}),
        "nodes[0].available.GPU",
        "exceeds the node's total of 0",
        id="available-resource-the-type-lacks",
    ),
    pytest.param(
        _with("nodes.0.available", {"CPU": "one"}),
        "nodes[0].available.CPU",
        "expected a number or a Kubernetes quantity",
        id="available-bad-quantity",
    ),
    pytest.param(
        _with("nodes.0.total", {"CPU": "2x"}), "nodes[0].total.CPU", "unknown quantity suffix 'x'", id="total-bad"
    ),
    pytest.param(_with("nodes.0.head", "yes"), "nodes[0].head", 'expected true or false, got "yes"', id="head-string"),
    pytest.param(
        _with("nodes.0.avail", {"CPU": 1}), "nodes[0].avail", "did you mean 'available'?", id="node-field-typo"
    ),
    # -- demands and resource requests -------------------------------------------------
    pytest.param(_with("demands", {"CPU": 1}), "demands", "expected a list", id="demands-mapping"),
    pytest.param(_with("demands.0.shape", _DELETE), "demands[0].shape", "required field", id="demand-without-shape"),
    pytest.param(_with("demands.1.count", 0), "demands[1].count", "expected an integer >= 1, got 0", id="count-zero"),
    pytest.param(_with("demands.0.count", -3), "demands[0].count", "got -3", id="count-negative"),
    pytest.param(_with("demands.0.count", "many"), "demands[0].count", 'got "many"', id="count-string"),
    pytest.param(_with("demands.0.count", 1.5), "demands[0].count", "got 1.5", id="count-fraction"),
    pytest.param(_with("demands.0.shape", {}), "demands[0].shape", "at least one resource", id="demand-empty-shape"),
    pytest.param(
        _with("demands.0.shape", ["CPU", 1]),
        "demands[0].shape",
        "expected a mapping of resource name to amount, got a list",
        id="demand-shape-list",
    ),
    pytest.param(
        _with("demands.0.shapes", {"CPU": 1}), "demands[0].shapes", "did you mean 'shape'?", id="demand-field-typo"
    ),
    pytest.param(
        _with("resource_requests.0.count", True),
        "resource_requests[0].count",
        "expected an integer >= 1, got true",
        id="request-count-bool",
    ),
    pytest.param(
        _with("resource_requests.0.shape", {"CPU": "1Gx"}),
        "resource_requests[0].shape.CPU",
        "unknown quantity suffix",
        id="request-bad-quantity",
    ),
    # -- placement groups --------------------------------------------------------------
    pytest.param(
        _with("placement_groups.0.bundles", []),
        "placement_groups[0].bundles",
        "expected at least one bundle",
        id="pg-no-bundles",
    ),
    pytest.param(
        _with("placement_groups.0.bundles", [{"CPU": 1}, {}]),
        "placement_groups[0].bundles[1]",
        "at least one resource",
        id="pg-empty-bundle",
    ),
    pytest.param(
        _with("placement_groups.0.bundles", {"CPU": 1}),
        "placement_groups[0].bundles",
        "expected a list of bundles, got a mapping",
        id="pg-bundles-mapping",
    ),
    pytest.param(
        _with("placement_groups.0.strategy", "STRICT"),
        "placement_groups[0].strategy",
        'expected one of PACK, SPREAD, STRICT_PACK, STRICT_SPREAD, got "STRICT"',
        id="pg-bad-strategy",
    ),
    pytest.param(
        _with("placement_groups.0.strategy", "strict_spread"),
        "placement_groups[0].strategy",
        "did you mean 'STRICT_SPREAD'?",
        id="pg-strategy-case",
    ),
    pytest.param(
        _with("placement_groups", [{"bundles": [{"CPU": 1}], "name": "a"}, {"bundles": [{"CPU": 1}], "name": "a"}]),
        "placement_groups[1].name",
        'duplicate placement group name "a" (also placement_groups[0]',
        id="pg-duplicate-name",
    ),
    pytest.param(
        _with("placement_groups", [{"bundles": [{"CPU": 1}]}, {"bundles": [{"CPU": 1}], "name": "pg0"}]),
        "placement_groups[1].name",
        "unnamed groups are called pg<index>",
        id="pg-name-clashes-with-default",
    ),
    pytest.param(
        _with("placement_groups.0.count", 0), "placement_groups[0].count", "expected an integer >= 1", id="pg-count-0"
    ),
    # -- unavailable node types --------------------------------------------------------
    pytest.param(
        _with("unavailable_node_types", ["gpu", "spot"]),
        "unavailable_node_types[1]",
        'unknown node type "spot"',
        id="unavailable-unknown-type",
    ),
    pytest.param(
        _with("unavailable_node_types", "gpu"), "unavailable_node_types", "expected a list", id="unavailable-not-list"
    ),
]


@pytest.mark.parametrize(("document", "path", "fragment"), CASES)
def test_malformed_scenario_names_the_field(document: Any, path: str, fragment: str) -> None:
    """A malformed scenario raises ConfigError with the exact field path and a message saying what was expected."""
    with pytest.raises(ConfigError) as caught:
        Scenario.from_dict(document)
    assert caught.value.path == path
    assert fragment in caught.value.message
    assert "\n" not in str(caught.value)


def test_there_are_at_least_thirty_cases() -> None:
    """The table keeps covering at least thirty distinct mistakes (the issue's bar)."""
    assert len({case.id for case in CASES}) == len(CASES) >= 30


def test_yaml_non_string_node_type_name() -> None:
    """A node type named by a YAML number is refused with its path, not silently stringified."""
    document = parse_document("node_types:\n  1: {resources: {CPU: 1}}\n", name="s.yaml")
    with pytest.raises(ConfigError) as caught:
        Scenario.from_dict(document)
    assert caught.value.path == 'node_types["1"]'
    assert "expected a string key, got 1" in caught.value.message


def test_first_error_wins_in_document_order() -> None:
    """With several mistakes, the error names the first one met (node types before nodes)."""
    document = _with("node_types.cpu.cost", "cheap")
    document["nodes"][0]["status"] = "gone"
    with pytest.raises(ConfigError) as caught:
        Scenario.from_dict(document)
    assert caught.value.path == "node_types.cpu.cost"


def test_the_valid_base_scenario_is_valid() -> None:
    """The base every case mutates is itself accepted (so each case fails for its own reason)."""
    scenario = Scenario.from_dict(_VALID)
    assert set(scenario.node_types) == {"cpu", "gpu"}


_junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["16Gi", "500m", "PACK", "running", "cpu", "gpu", "1e3", "-1"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [prefix] + [p for key, child in value.items() for p in _leaf_paths(child, (*prefix, key))]
    if isinstance(value, list):
        return [prefix] + [p for index, child in enumerate(value) for p in _leaf_paths(child, (*prefix, index))]
    return [prefix]


@given(data=st.data())
@settings(max_examples=300)
def test_any_corruption_is_a_config_error_or_a_scenario(data: st.DataObject) -> None:
    """Any part of a valid scenario replaced by anything: a ConfigError or a valid scenario, nothing else."""
    document = copy.deepcopy(_VALID)
    paths = [path for path in _leaf_paths(document) if path]
    path = data.draw(st.sampled_from(paths))
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(_junk)
    try:
        scenario = Scenario.from_dict(document)
    except ConfigError as error:
        assert "\n" not in str(error)
        return
    scenario.to_request()
    assert Scenario.from_dict(scenario.to_dict()) == scenario


@given(_junk)
def test_any_document_is_a_config_error_or_a_scenario(document: Any) -> None:
    """An arbitrary document never escapes as anything but ConfigError."""
    with contextlib.suppress(ConfigError):
        Scenario.from_dict(document)
