"""Valid scenarios: what a scenario document means, its defaults, and its round trip."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rayk8s._documents import load_document, parse_document
from rayk8s.autoscaler import (
    Node,
    NodeStatus,
    NodeType,
    PlacementGroup,
    PlacementStrategy,
    ResourceDemand,
    ResourceRequest,
    Resources,
    Scenario,
    SchedulingRequest,
    schedule,
    verify,
)

EXAMPLES = sorted((Path(__file__).parent.parent / "examples" / "scenarios").iterdir())

DESIGN_SCENARIO = """
node_types:                     # name -> type; quantities are numbers or Kubernetes strings (500m, 16Gi)
  cpu-small: {resources: {CPU: 4, memory: 16Gi}, min_workers: 0, max_workers: 100, cost: 0.19}
  gpu:       {resources: {CPU: 8, GPU: 1, memory: 60Gi}, max_workers: 10, cost: 2.5}
max_workers: 200                # cluster-wide cap on worker nodes (optional)
nodes:                          # nodes that exist now (optional)
  - {id: w-1, type: cpu-small, available: {CPU: 1, memory: 4Gi}}
demands:                        # pending tasks and actors, aggregated by shape
  - {shape: {CPU: 1}, count: 1000}
placement_groups:               # pending placement groups
  - {strategy: STRICT_SPREAD, bundles: [{CPU: 1}, {CPU: 1}], count: 10}
resource_requests:              # request_resources(): capacity the cluster must be able to hold, used or not
  - {shape: {CPU: 1}, count: 64}
"""


def test_design_scenario_parses_to_the_model() -> None:
    """The scenario printed in DESIGN.md means exactly these model values."""
    scenario = Scenario.from_dict(parse_document(DESIGN_SCENARIO, format="yaml"))
    assert scenario.node_types == {
        "cpu-small": NodeType("cpu-small", {"CPU": 4, "memory": 16 * 2**30}, min_workers=0, max_workers=100, cost=0.19),
        "gpu": NodeType("gpu", {"CPU": 8, "GPU": 1, "memory": 60 * 2**30}, max_workers=10, cost=2.5),
    }
    assert scenario.max_workers == 200
    assert scenario.nodes == (Node("w-1", "cpu-small", available={"CPU": 1, "memory": 4 * 2**30}),)
    assert scenario.demands == (ResourceDemand({"CPU": 1}, 1000),)
    assert scenario.placement_groups == (
        PlacementGroup([{"CPU": 1}, {"CPU": 1}], strategy=PlacementStrategy.STRICT_SPREAD, count=10),
    )
    assert scenario.resource_requests == (ResourceRequest({"CPU": 1}, 64),)


def test_quantities_are_exact() -> None:
    """Kubernetes quantity strings and plain numbers both work, exactly (500m = 0.5, 1G != 1Gi)."""
    scenario = Scenario.from_dict(
        {
            "node_types": {
                "t": {"resources": {"CPU": "500m", "memory": "1G", "object_store_memory": "1Gi", "x": 0.25}}
            },
        }
    )
    resources = scenario.node_types["t"].resources
    assert resources.units == {
        "CPU": 5_000,
        "memory": 10**9 * 10_000,
        "object_store_memory": 2**30 * 10_000,
        "x": 2_500,
    }
    assert Decimal(resources["CPU"]) == Decimal("0.5")


def test_defaults() -> None:
    """Omitted optional fields take their documented defaults."""
    scenario = Scenario.from_dict(
        {
            "node_types": {"t": {"resources": {"CPU": 1}}},
            "nodes": [{"id": "n", "type": "t"}],
            "demands": [{"shape": {"CPU": 1}}],
            "placement_groups": [{"bundles": [{"CPU": 1}]}],
            "resource_requests": [{"shape": {"CPU": 1}}],
        }
    )
    node_type = scenario.node_types["t"]
    assert (node_type.min_workers, node_type.max_workers, node_type.cost) == (0, None, 1.0)
    assert scenario.nodes[0] == Node("n", "t", status=NodeStatus.RUNNING, available=None, total=None, is_head=False)
    assert scenario.demands[0].count == 1
    assert scenario.placement_groups[0].strategy is PlacementStrategy.PACK
    assert scenario.placement_groups[0].count == 1
    assert scenario.resource_requests[0].count == 1
    assert scenario.max_workers is None
    assert scenario.unavailable_node_types == frozenset()
    assert scenario.description is None


def test_null_lists_and_caps_mean_absent() -> None:
    """`nodes:` with every item commented out (null) is an empty list; `max_workers: null` is no cap."""
    scenario = Scenario.from_dict(
        parse_document("node_types: {t: {resources: {CPU: 1}, max_workers: null}}\nnodes:\ndemands:\nmax_workers:\n")
    )
    assert scenario.nodes == ()
    assert scenario.demands == ()
    assert scenario.max_workers is None
    assert scenario.node_types["t"].max_workers is None


def test_pending_nodes_head_nodes_and_foreign_types() -> None:
    """A node may be pending, may be the head, and may use a type outside node_types when it gives `total`."""
    scenario = Scenario.from_dict(
        {
            "node_types": {"t": {"resources": {"CPU": 4}}},
            "nodes": [
                {"id": "head", "type": "head", "head": True, "total": {"CPU": 2}, "available": {"CPU": 1}},
                {"id": "n1", "type": "t", "status": "pending"},
            ],
        }
    )
    head, pending = scenario.nodes
    assert head.is_head and head.total == Resources({"CPU": 2}) and head.available == Resources({"CPU": 1})
    assert pending.status is NodeStatus.PENDING


def test_whole_floats_count_as_integers() -> None:
    """A count written 3.0 (as some JSON writers do) is the integer 3."""
    scenario = Scenario.from_dict(
        {"node_types": {"t": {"resources": {"CPU": 1}}}, "demands": [{"shape": {"CPU": 1}, "count": 3.0}]}
    )
    assert scenario.demands[0].count == 3
    assert isinstance(scenario.demands[0].count, int)


def test_to_request_carries_every_field() -> None:
    """The request handed to the scheduler holds the scenario's node types, nodes, demands and limits."""
    scenario = Scenario.from_dict(
        {
            "node_types": {"a": {"resources": {"CPU": 1}}, "b": {"resources": {"CPU": 2}}},
            "max_workers": 3,
            "unavailable_node_types": ["b"],
            "nodes": [{"id": "n", "type": "a"}],
            "demands": [{"shape": {"CPU": 1}, "count": 2}],
            "placement_groups": [{"bundles": [{"CPU": 1}], "name": "g"}],
            "resource_requests": [{"shape": {"CPU": 2}}],
        }
    )
    request = scenario.to_request()
    assert isinstance(request, SchedulingRequest)
    assert request == SchedulingRequest(
        node_types=scenario.node_types,
        nodes=scenario.nodes,
        demands=scenario.demands,
        placement_groups=scenario.placement_groups,
        resource_requests=scenario.resource_requests,
        max_workers=3,
        unavailable_node_types=frozenset({"b"}),
    )
    assert Scenario.from_request(request) == Scenario.from_dict(scenario.to_dict())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip(path: Path) -> None:
    """Every example scenario survives to_dict -> from_dict unchanged."""
    scenario = Scenario.from_dict(load_document(path))
    assert Scenario.from_dict(scenario.to_dict()) == scenario


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_decisions_keep_the_rules(path: Path) -> None:
    """Every example scenario's decision passes the independent checker (capacities, strategies, limits, counts)."""
    request = Scenario.from_dict(load_document(path)).to_request()
    assert verify(request, schedule(request)) == []


def test_to_dict_writes_bytes_with_binary_suffixes() -> None:
    """Written scenarios stay readable: whole Gi/Mi amounts of memory are written as 16Gi, not 17179869184."""
    scenario = Scenario.from_dict(
        {"node_types": {"t": {"resources": {"CPU": "500m", "memory": "16Gi", "object_store_memory": 1000}}}}
    )
    assert scenario.to_dict()["node_types"]["t"]["resources"] == {
        "CPU": 0.5,
        "memory": "16Gi",
        "object_store_memory": 1000,
    }


def test_json_and_yaml_spellings_are_the_same_scenario() -> None:
    """The same scenario written as JSON and as YAML parses to equal values."""
    as_json = (
        '{"node_types": {"t": {"resources": {"CPU": 2, "memory": "4Gi"}}},'
        ' "demands": [{"shape": {"CPU": 1}, "count": 5}]}'
    )
    as_yaml = "node_types:\n  t:\n    resources: {CPU: 2, memory: 4Gi}\ndemands:\n  - shape: {CPU: 1}\n    count: 5\n"
    assert Scenario.from_dict(parse_document(as_json)) == Scenario.from_dict(parse_document(as_yaml))


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)
_amounts = st.one_of(
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=1, max_value=10_000).map(lambda n: f"{n}m"),
    st.integers(min_value=1, max_value=512).map(lambda n: f"{n}Gi"),
)
_shapes = st.dictionaries(st.sampled_from(["CPU", "GPU", "memory", "custom"]), _amounts, min_size=1, max_size=3)


@st.composite
def _scenarios(draw: st.DrawFn) -> dict[str, Any]:
    type_names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    node_types = {}
    for name in type_names:
        low = draw(st.integers(0, 3))
        node_types[name] = {
            "resources": draw(_shapes),
            "min_workers": low,
            "max_workers": draw(st.one_of(st.none(), st.integers(low, 50))),
            "cost": draw(st.floats(0, 100, allow_nan=False)),
        }
    nodes = [
        {
            "id": f"n{i}",
            "type": draw(st.sampled_from(type_names)),
            "status": draw(st.sampled_from(["running", "pending"])),
        }
        for i in range(draw(st.integers(0, 4)))
    ]
    return {
        "node_types": node_types,
        "nodes": nodes,
        "demands": [
            {"shape": shape, "count": draw(st.integers(1, 10**6))} for shape in draw(st.lists(_shapes, max_size=3))
        ],
        "placement_groups": [
            {
                "strategy": draw(st.sampled_from(["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"])),
                "bundles": draw(st.lists(_shapes, min_size=1, max_size=4)),
                "count": draw(st.integers(1, 5)),
            }
            for _ in range(draw(st.integers(0, 2)))
        ],
        "resource_requests": [
            {"shape": shape, "count": draw(st.integers(1, 100))} for shape in draw(st.lists(_shapes, max_size=2))
        ],
        "max_workers": draw(st.one_of(st.none(), st.integers(0, 500))),
    }


@given(_scenarios())
def test_round_trip_property(document: dict[str, Any]) -> None:
    """Any valid scenario survives to_dict -> from_dict, and to_dict is a fixed point after one pass."""
    scenario = Scenario.from_dict(document)
    written = scenario.to_dict()
    assert Scenario.from_dict(written) == scenario
    assert Scenario.from_dict(written).to_dict() == written


def test_isolate_accelerators_round_trips_and_reaches_the_request() -> None:
    """isolate_accelerators is read, written back and passed to the scheduler."""
    data = {"node_types": {"cpu": {"resources": {"CPU": 4}}}, "isolate_accelerators": True}
    scenario = Scenario.from_dict(data)
    assert scenario.to_request().isolate_accelerators is True
    assert Scenario.from_dict(scenario.to_dict()) == scenario
