"""Wait for three Ray nodes, then move objects between them for 10 iterations; print Success!.

The Kubernetes guide's job example, rebuilt for a local cluster: the head of
`examples/local/cluster.yaml` has no CPU, so the script asks the autoscaler for two
2-CPU workers (`request_resources`), waits until the head and both workers are up, then
each iteration creates an object on every worker and reads it from a task on another one.

    rayk8s up examples/local/cluster.yaml --yes
    python examples/local/job_example.py
"""

import os
import sys
import time

import ray
from ray.autoscaler.sdk import request_resources
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

NODES = 3
ITERATIONS = 10


def wait_for_nodes(expected: int, timeout_s: float = 300) -> list[str]:
    started = time.monotonic()
    while True:
        alive = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
        if len(alive) >= expected:
            return alive
        if time.monotonic() - started > timeout_s:
            sys.exit(f"only {len(alive)} of {expected} nodes after {timeout_s:.0f} s")
        print(f"{len(alive)} of {expected} nodes; waiting ...")
        time.sleep(2)


@ray.remote(num_cpus=1)
def make_block(size: int) -> bytes:
    return os.urandom(size)


@ray.remote(num_cpus=1)
def checksum(block: bytes) -> tuple[str, int]:
    return ray.get_runtime_context().get_node_id(), sum(block[:4096])


def on(node_id: str) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def main() -> None:
    ray.init(address=os.environ.get("RAY_ADDRESS", "auto"))
    request_resources(num_cpus=4)  # two 2-CPU workers: with the head, three nodes
    try:
        wait_for_nodes(NODES)
        workers = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
        for iteration in range(ITERATIONS):
            blocks = {node: make_block.options(scheduling_strategy=on(node)).remote(1 << 20) for node in workers}
            reads = []
            for index, node in enumerate(workers):
                reader = workers[(index + 1) % len(workers)]
                reads.append(checksum.options(scheduling_strategy=on(reader)).remote(blocks[node]))
            results = ray.get(reads)
            assert len({node for node, _ in results}) == len(workers)
            print(f"Iteration {iteration}: moved {len(results)} objects of 1 MiB between {len(workers)} workers")
    finally:
        request_resources(num_cpus=0)
    print("Success!")


if __name__ == "__main__":
    main()
