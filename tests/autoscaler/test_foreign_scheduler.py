"""The autoscaler step with a scheduler other than rayk8s's own (``Autoscaler(scheduler=...)``).

A baseline or an experimental scheduler decides what to launch; the step still holds the
plan to its rules (node types, back-off, ``max_workers``, upscaling speed), never raises,
and never launches again for nodes that are still launching or for demand the scheduler
leaves unplaced.
"""

from __future__ import annotations

import attrs
import pytest

from rayk8s.autoscaler import (
    AutoscalerConfig,
    AutoscalerMemory,
    Backoff,
    LaunchReason,
    LoadSnapshot,
    NewNodeGroup,
    ProviderSnapshot,
    ResourceDemand,
    Scheduler,
    SchedulingRequest,
    SchedulingResult,
    decide,
    schedule,
)
from rayk8s.bench._ffd import first_fit_decreasing

from .harness import START, Harness, cpu, gpu, launched


def plan(*groups: tuple[str, int]) -> SchedulingResult:
    """A result that launches ``groups`` (type, count) for demand and places nothing."""
    new = tuple(NewNodeGroup(f"new-{i}", t, n, LaunchReason.DEMAND) for i, (t, n) in enumerate(groups, 1))
    return SchedulingResult(launch=dict(groups), new_nodes=new, existing={}, unfulfilled=(), cost=0.0)


def test_the_scheduler_passed_in_decides_what_to_launch() -> None:
    """With first-fit decreasing, ten one-CPU tasks launch three of the cheapest type that holds one
    (rayk8s's own scheduler, weighing the whole demand, buys one bigger node)."""
    types = [cpu(cost=1.0), attrs.evolve(gpu(cost=2.0), name="big", resources={"CPU": 16})]
    demand = [ResourceDemand({"CPU": 1}, 10)]
    ffd = Harness(types, scheduler=first_fit_decreasing)
    ffd.demand(demands=demand)
    own = Harness(types)
    own.demand(demands=demand)
    assert launched(ffd.update()) == {"cpu": 3}
    assert launched(own.update()) == {"big": 1}


def test_the_scheduler_sees_the_request_the_step_built() -> None:
    """The scheduling function gets the step's request: worker types, live nodes, the load."""
    seen: list[SchedulingRequest] = []

    def spy(request: SchedulingRequest) -> SchedulingResult:
        seen.append(request)
        return schedule(request)

    h = Harness([cpu()], scheduler=spy, max_workers=7)
    h.demand(demands=[ResourceDemand({"CPU": 1}, 8)])
    h.update()
    h.update(advance=5)
    first, second = seen
    assert set(first.node_types) == {"cpu"} and first.max_workers == 7 and not first.nodes
    assert sum(d.count for d in first.demands) == 8
    assert len(second.nodes) == 2  # the two nodes the first update launched, pending


def test_a_baseline_does_not_launch_again_for_nodes_still_launching() -> None:
    """FFD counts pending nodes as free capacity: the second update, nodes not up yet, launches nothing."""
    h = Harness([cpu()], scheduler=first_fit_decreasing, upscaling_speed=10)
    h.demand(demands=[ResourceDemand({"CPU": 1}, 16)])
    assert launched(h.update()) == {"cpu": 4}
    for _ in range(3):
        result = h.update(advance=10)
        assert launched(result) == {} and result.ok
    assert len(h.workers()) == 4


def test_demand_a_baseline_leaves_unplaced_launches_nothing_more_and_is_reported() -> None:
    """At max_workers, FFD leaves work unplaced: the step launches up to the cap once, then nothing,
    and reports the rest as unfulfilled — no crash, no error, no extra launch."""
    h = Harness([cpu(max_workers=3)], scheduler=first_fit_decreasing)
    h.demand(demands=[ResourceDemand({"CPU": 1}, 40), ResourceDemand({"CPU": 64}, 2)])
    assert launched(h.update()) == {"cpu": 3}
    h.clock.advance(61)
    h.run_all()
    h.join(h.workers(), idle_since=None)  # busy with 12 of the 40
    for _ in range(3):
        result = h.update(advance=30)
        assert launched(result) == {} and result.ok
        assert sum(u.count for u in result.status.unfulfilled) == 40 + 2
    assert len(h.workers()) == 3


def test_a_scheduler_that_places_nothing_launches_nothing() -> None:
    """A scheduler that answers with an empty plan: no launch, no error, the step goes on."""
    h = Harness([cpu()], scheduler=lambda request: plan())
    h.demand(demands=[ResourceDemand({"CPU": 1}, 10)])
    result = h.update()
    assert launched(result) == {} and result.ok


def test_launches_that_break_the_rules_are_refused_and_reported() -> None:
    """An unknown type, a zero count and launches past max_workers are refused, each with a
    sentence; what is within the rules still launches, and update() does not raise."""
    rogue = plan(("tpu", 2), ("cpu", 0), ("cpu", 9), ("gpu", 4))
    h = Harness([cpu(max_workers=3), gpu(max_workers=10)], scheduler=lambda request: rogue, max_workers=5)
    result = h.update()
    assert launched(result) == {"cpu": 3, "gpu": 2}
    messages = [str(e) for e in result.errors]
    assert all(m.startswith("schedule: refused ") for m in messages)
    assert any("'tpu'" in m and "not a worker node type" in m for m in messages)
    assert any("'cpu'" in m and "not a positive count" in m for m in messages)
    assert any(m.startswith("schedule: refused 6 of 9 'cpu'") and "max_workers" in m for m in messages)
    assert any(m.startswith("schedule: refused 2 of 4 'gpu'") for m in messages)
    # Next update: the cluster is at its cap, so the same plan launches nothing.
    assert launched(h.update(advance=5)) == {}
    assert len(h.workers()) == 5


def test_a_backing_off_type_is_not_launched_whatever_the_scheduler_says() -> None:
    """The pure step refuses launches of a type in back-off, and says why."""
    config = AutoscalerConfig("demo", [cpu(), gpu()])
    memory = AutoscalerMemory(backoff={"gpu": Backoff(1, START + 60, "quota")})
    decision = decide(
        config,
        ProviderSnapshot(()),
        LoadSnapshot(),
        memory,
        START,
        scheduler=lambda request: plan(("gpu", 2), ("cpu", 1)),
    )
    assert [(p.node_type, p.count) for p in decision.launches] == [("cpu", 1)]
    (sentence,) = decision.overruled
    assert "'gpu'" in sentence and "backing off" in sentence


def test_rayk8s_own_scheduler_is_never_overruled() -> None:
    """With the default scheduler the rules are the scheduler's own: nothing is refused."""
    h = Harness([cpu(max_workers=3), gpu(max_workers=10)], max_workers=5)
    h.demand(demands=[ResourceDemand({"CPU": 4}, 20)])
    result = h.update()
    assert result.ok and result.decision is not None and result.decision.overruled == ()
    assert sum(launched(result).values()) == 5


def test_a_scheduler_that_raises_fails_the_update_not_the_caller() -> None:
    """An exception in the scheduling function is an UpdateError of stage decide; nothing is done."""

    def broken(request: SchedulingRequest) -> SchedulingResult:
        raise ValueError("no idea")

    h = Harness([cpu(min_workers=2)], scheduler=broken)
    result = h.update()
    assert [(e.stage, e.message) for e in result.errors] == [("decide", "ValueError: no idea")]
    assert launched(result) == {} and not h.workers()


@pytest.mark.parametrize("scheduler", [schedule, first_fit_decreasing])
def test_min_workers_come_from_the_scheduler(scheduler: Scheduler) -> None:
    """Both rayk8s and the FFD baseline launch min_workers with no demand."""
    h = Harness([cpu(min_workers=2)], scheduler=scheduler)
    assert launched(h.update()) == {"cpu": 2}
