"""A burst of work that needs workers: 8 one-CPU tasks on a cluster whose head has no CPU.

Run it against `rayk8s up examples/local/cluster.yaml`; in another shell,
`rayk8s status examples/local/cluster.yaml` shows the workers launched, and about
`idle_timeout_minutes` after the tasks finish, the workers stopped.
"""

import os
import socket
import time

import ray

TASKS = int(os.environ.get("DEMO_TASKS", "8"))
SECONDS = float(os.environ.get("DEMO_TASK_SECONDS", "10"))


@ray.remote(num_cpus=1)
def work(index: int) -> str:
    time.sleep(SECONDS)
    return ray.get_runtime_context().get_node_id()[:8]


def main() -> None:
    ray.init(address=os.environ.get("RAY_ADDRESS", "auto"))
    started = time.monotonic()
    print(f"Submitting {TASKS} tasks of {{CPU: 1}} ({SECONDS:g} s each) from {socket.gethostname()}")
    nodes = ray.get([work.remote(i) for i in range(TASKS)])
    print(f"{TASKS} tasks finished in {time.monotonic() - started:.0f} s on {len(set(nodes))} node(s)")


if __name__ == "__main__":
    main()
