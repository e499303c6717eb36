"""`request_resources`: capacity up front, before any task is submitted.

The request stands (workers stay past the idle timeout) until it is replaced; asking for
0 CPUs withdraws it and the idle workers go.

    rayk8s up examples/local/cluster.yaml --yes
    python examples/local/request_resources_example.py
"""

import os
import time

import ray
from ray.autoscaler.sdk import request_resources

CPUS = 4


def main() -> None:
    ray.init(address=os.environ.get("RAY_ADDRESS", "auto"))
    started = time.monotonic()
    request_resources(num_cpus=CPUS)
    print(f"Requested {CPUS} CPUs with no task running; waiting for the workers ...")
    while ray.cluster_resources().get("CPU", 0) < CPUS:
        if time.monotonic() - started > 300:
            raise SystemExit(f"{CPUS} CPUs did not appear within 300 s")
        time.sleep(1)
    print(f"The cluster has {ray.cluster_resources()['CPU']:g} CPUs after {time.monotonic() - started:.0f} s")
    request_resources(num_cpus=0)
    print("Request withdrawn; the idle workers go after idle_timeout_minutes. Success!")


if __name__ == "__main__":
    main()
