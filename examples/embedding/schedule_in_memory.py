"""The scheduler on in-memory values: no cluster, no provider, no Ray.

What would rayk8s launch for 40 one-CPU tasks, two GPU tasks and a 4-bundle STRICT_SPREAD
placement group, given one half-used CPU node? ``schedule()`` answers with a value that
says what to launch, where every demand goes, and why.

    python examples/embedding/schedule_in_memory.py
"""

from __future__ import annotations

import json

from rayk8s.autoscaler import (
    Node,
    NodeType,
    PlacementGroup,
    ResourceDemand,
    SchedulingRequest,
    render_result_text,
    schedule,
    verify,
)


def main() -> None:
    request = SchedulingRequest(
        node_types=[
            NodeType("cpu", {"CPU": 8, "memory": "32Gi"}, max_workers=20, cost=0.38),
            NodeType("gpu", {"CPU": 8, "GPU": 1, "memory": "60Gi"}, max_workers=4, cost=2.5),
        ],
        nodes=[Node("cpu-1", "cpu", "running", available={"CPU": 4, "memory": "16Gi"})],
        demands=[ResourceDemand({"CPU": 1}, 40), ResourceDemand({"CPU": 4, "GPU": 1}, 2)],
        placement_groups=[PlacementGroup([{"CPU": 2}] * 4, "STRICT_SPREAD", name="trainers")],
    )
    result = schedule(request)
    assert verify(request, result) == [], "the decision breaks a rule"
    print(render_result_text(result, request))
    print(json.dumps({"launch": dict(result.launch), "cost": result.cost}, sort_keys=True))


if __name__ == "__main__":
    main()
