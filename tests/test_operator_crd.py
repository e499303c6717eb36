"""The RayCluster CRD is generated from the cluster-config schema, and the example file is its output."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from rayk8s.cli import main
from rayk8s.launcher._schema import CLUSTER_FIELDS, NODE_TYPE_FIELDS
from rayk8s.operator import crd_manifest, crd_yaml

CRD_FILE = Path(__file__).parent.parent / "examples" / "kubernetes" / "operator_configs" / "cluster_crd.yaml"


def test_the_example_crd_is_the_generated_one() -> None:
    """examples/kubernetes/operator_configs/cluster_crd.yaml is exactly what `rayk8s crd` prints.

    Regenerate it with `python -m rayk8s crd > examples/kubernetes/operator_configs/cluster_crd.yaml`.
    """
    result = CliRunner().invoke(main, ["crd"])
    assert result.exit_code == 0, result.output
    assert result.output == crd_yaml()
    assert CRD_FILE.read_text() == result.output


def test_every_spec_field_of_the_schema_is_in_the_crd() -> None:
    """Each config field the spec holds is a property of the CRD's spec, in its camelCase name."""
    (version,) = crd_manifest()["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["properties"]) == {f.spec_key for f in CLUSTER_FIELDS if f.in_spec}
    pod_type = spec["properties"]["podTypes"]["items"]
    assert set(pod_type["properties"]) == {"name"} | {f.spec_key for f in NODE_TYPE_FIELDS}
    assert pod_type["required"] == ["name"]
    assert spec["required"] == ["headPodType", "podTypes"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Status", "Age"]


def test_the_crd_is_valid_yaml_with_one_document() -> None:
    """The file parses to one CustomResourceDefinition."""
    (document,) = list(yaml.safe_load_all(CRD_FILE.read_text()))
    assert document["kind"] == "CustomResourceDefinition"
    assert document["metadata"]["name"] == "rayclusters.cluster.ray.io"
