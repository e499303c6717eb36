"""DeclaredLoadSource: a simulated Ray over a provider, for tests and demos where no Ray runs."""

from __future__ import annotations

import pytest

from rayk8s.autoscaler import Autoscaler, AutoscalerConfig, NodeType, ResourceDemand
from rayk8s.errors import ConfigError
from rayk8s.providers.fake import FakeNodeProvider, ManualClock
from rayk8s.simulate import DeclaredLoadSource, parse_work


def setup(work: list[ResourceDemand]) -> tuple[ManualClock, FakeNodeProvider, DeclaredLoadSource, Autoscaler]:
    clock = ManualClock()
    config = AutoscalerConfig("c", {"w": NodeType("w", {"CPU": 2}, max_workers=10)}, idle_timeout_minutes=1)
    provider = FakeNodeProvider({"type": "fake", "launch_delay_s": 10}, "c", clock=clock)
    load = DeclaredLoadSource(provider=provider, config=lambda: config, work=lambda: work, clock=clock)
    return clock, provider, load, Autoscaler(config, provider=provider, load_source=load, clock=clock)


def test_work_that_does_not_fit_is_pending_and_work_that_fits_makes_nodes_busy() -> None:
    """5 one-CPU tasks on no node: all pending; on three running 2-CPU nodes: all placed, the nodes busy."""
    work = [ResourceDemand({"CPU": 1}, 5)]
    clock, _, load, autoscaler = setup(work)
    assert load.load().demands == (ResourceDemand({"CPU": 1}, 5),)
    assert autoscaler.update().launched == {"w": 3}
    launching = load.load()
    assert launching.demands == (ResourceDemand({"CPU": 1}, 5),)  # pending nodes hold nothing yet
    assert launching.nodes == {}
    clock.advance(10)
    running = load.load()
    assert running.demands == ()
    assert len(running.nodes) == 3
    assert all(usage.busy for usage in running.nodes.values())
    assert sum(u.available.to_dict().get("CPU", 0) for u in running.nodes.values()) == 1
    assert autoscaler.update().launched == {}  # the work fits: nothing more


def test_nodes_without_work_are_idle_since_first_seen_so_and_scale_down() -> None:
    """Removing the work makes every node idle from that moment; after the idle timeout they go."""
    work = [ResourceDemand({"CPU": 1}, 4)]
    clock, _, load, autoscaler = setup(work)
    autoscaler.update()
    clock.advance(10)
    autoscaler.update()
    work.clear()
    clock.advance(1)
    idle = load.load()
    assert {u.idle_since for u in idle.nodes.values()} == {clock()}
    clock.advance(30)
    assert autoscaler.update().terminations == ()
    clock.advance(31)
    assert len(autoscaler.update().terminations) == 2


def test_declared_work_is_a_list_of_shape_and_count_with_field_paths_in_errors() -> None:
    """JSON text or a list; None or empty is no work; a bad entry names its path."""
    assert parse_work('[{"shape": {"CPU": 1}, "count": 3}]') == (ResourceDemand({"CPU": 1}, 3),)
    assert parse_work(None) == () and parse_work("") == ()
    with pytest.raises(ConfigError) as error:
        parse_work([{"shape": {"CPU": "x"}}], "work")
    assert error.value.path == "work[0].shape.CPU"
    with pytest.raises(ConfigError, match="JSON"):
        parse_work("{not json", "work")
