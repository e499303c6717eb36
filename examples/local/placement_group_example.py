"""A STRICT_SPREAD placement group: one bundle per node, so the autoscaler launches one worker per bundle.

rayk8s up examples/local/cluster.yaml --yes
python examples/local/placement_group_example.py
"""

import os

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

BUNDLES = 3


@ray.remote(num_cpus=1)
def where() -> str:
    return ray.get_runtime_context().get_node_id()


def main() -> None:
    ray.init(address=os.environ.get("RAY_ADDRESS", "auto"))
    group = placement_group([{"CPU": 1}] * BUNDLES, strategy="STRICT_SPREAD")
    print(f"Waiting for a STRICT_SPREAD group of {BUNDLES} bundles (the autoscaler starts {BUNDLES} workers) ...")
    if not group.wait(timeout_seconds=300):
        raise SystemExit("the placement group was not placed within 300 s")
    nodes = ray.get(
        [
            where.options(
                scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=i)
            ).remote()
            for i in range(BUNDLES)
        ]
    )
    print(f"{BUNDLES} bundles ran on {len(set(nodes))} different nodes")
    assert len(set(nodes)) == BUNDLES
    remove_placement_group(group)
    print("Success!")


if __name__ == "__main__":
    main()
