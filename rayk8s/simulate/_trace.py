"""A trace: a scenario over time, the input of ``rayk8s simulate``.

```yaml
node_types:                 # as in a scenario, plus launch_delay_s, launch_failure_rate, quota
  cpu: {resources: {CPU: 4}, max_workers: 50, cost: 0.2, launch_delay_s: 45}
  gpu: {resources: {CPU: 8, GPU: 1}, max_workers: 8, cost: 2.5, launch_failure_rate: 0.2,
        idle_timeout_minutes: 2, quota: 4}
idle_timeout_minutes: 5     # autoscaler settings (Ray's defaults when absent)
upscaling_speed: 1.0
max_workers: 100
step_s: 1                   # simulation step, seconds
duration_s: 3600            # simulated time
seed: 0                     # launch failures are drawn from a generator seeded with this
arrivals:                   # tasks that arrive at `at` and each run `duration_s` once placed
  - {at: 0, shape: {CPU: 1}, count: 200, duration_s: 120}
placement_groups:           # placement groups that arrive at `at`, held `duration_s` once placed
  - {at: 600, strategy: STRICT_SPREAD, bundles: [{GPU: 1}, {GPU: 1}], count: 2, duration_s: 300}
```

Optional autoscaler settings: ``stuck_timeout_s``, ``launch_backoff_initial_s``,
``launch_backoff_max_s``. Errors are :class:`~rayk8s.errors.ConfigError` naming the field
path (``arrivals[3].duration_s: expected a non-negative number, got 'long'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from rayk8s._documents import load_document
from rayk8s.autoscaler import (
    AutoscalerConfig,
    NodeType,
    NodeTypeConfig,
    PlacementStrategy,
    Resources,
)
from rayk8s.errors import ConfigError

__all__ = ["Arrival", "PlacementGroupArrival", "Trace", "TraceNodeType", "load_trace"]

#: Default seconds from launch to a running node when a type does not say.
DEFAULT_LAUNCH_DELAY_S = 30.0

_TOP = {
    "node_types",
    "idle_timeout_minutes",
    "upscaling_speed",
    "max_workers",
    "step_s",
    "duration_s",
    "seed",
    "arrivals",
    "placement_groups",
    "stuck_timeout_s",
    "launch_backoff_initial_s",
    "launch_backoff_max_s",
}
_NODE_TYPE = {
    "resources",
    "min_workers",
    "max_workers",
    "cost",
    "launch_delay_s",
    "launch_failure_rate",
    "idle_timeout_minutes",
    "quota",
}


@attrs.frozen
class TraceNodeType:
    """A node type and how it launches in the simulation.

    ``quota``: the most nodes of the type the (simulated) cloud will run at once, whatever
    ``max_workers`` says — a stock-out; launches beyond it fail with a quota error.
    """

    node_type: NodeType
    launch_delay_s: float = DEFAULT_LAUNCH_DELAY_S
    launch_failure_rate: float = 0.0
    idle_timeout_minutes: float | None = None
    quota: int | None = None


@attrs.frozen
class Arrival:
    """``count`` tasks of ``shape`` arriving at ``at`` seconds, each running ``duration_s`` once placed."""

    at: float
    shape: Resources
    count: int
    duration_s: float


@attrs.frozen
class PlacementGroupArrival:
    """``count`` placement groups arriving at ``at``, each held ``duration_s`` once placed whole."""

    at: float
    strategy: PlacementStrategy
    bundles: tuple[Resources, ...]
    count: int
    duration_s: float


@attrs.frozen
class Trace:
    """Demand over time plus the cluster it runs on; build with :meth:`from_dict`."""

    node_types: Mapping[str, TraceNodeType] = attrs.field(hash=False)
    duration_s: float
    step_s: float = 1.0
    idle_timeout_minutes: float = 5.0
    upscaling_speed: float = 1.0
    max_workers: int | None = None
    seed: int = 0
    arrivals: tuple[Arrival, ...] = ()
    placement_groups: tuple[PlacementGroupArrival, ...] = ()
    settings: Mapping[str, float] = attrs.field(factory=dict, hash=False)

    @classmethod
    def from_dict(cls, data: object) -> Trace:
        """Validate a parsed trace document; errors name the field path."""
        root = _mapping(data, "", "a trace mapping (node_types, duration_s, arrivals, ...)")
        _fields(root, "", _TOP, required=("node_types", "duration_s"))
        types_value = _mapping(root["node_types"], "node_types", "a mapping of node type name to node type")
        if not types_value:
            raise ConfigError("node_types", "expected at least one node type")
        node_types = {str(name): _node_type(str(name), spec) for name, spec in types_value.items()}
        duration = _number(root["duration_s"], "duration_s", positive=True)
        step = _number(root.get("step_s", 1.0), "step_s", positive=True)
        if step > duration:
            raise ConfigError("step_s", f"step_s ({step:g}) exceeds duration_s ({duration:g})")
        max_workers = root.get("max_workers")
        arrivals = tuple(
            _arrival(item, f"arrivals[{i}]") for i, item in enumerate(_list(root.get("arrivals"), "arrivals"))
        )
        groups = tuple(
            _pg_arrival(item, f"placement_groups[{i}]")
            for i, item in enumerate(_list(root.get("placement_groups"), "placement_groups"))
        )
        settings = {
            key: _number(root[key], key)
            for key in ("stuck_timeout_s", "launch_backoff_initial_s", "launch_backoff_max_s")
            if key in root
        }
        return cls(
            node_types=node_types,
            duration_s=duration,
            step_s=step,
            idle_timeout_minutes=_number(root.get("idle_timeout_minutes", 5.0), "idle_timeout_minutes"),
            upscaling_speed=_number(root.get("upscaling_speed", 1.0), "upscaling_speed"),
            max_workers=None if max_workers is None else _int(max_workers, "max_workers"),
            seed=_int(root.get("seed", 0), "seed"),
            arrivals=tuple(sorted(arrivals, key=lambda a: a.at)),
            placement_groups=tuple(sorted(groups, key=lambda g: g.at)),
            settings=settings,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Trace:
        """Read a YAML or JSON trace file."""
        return cls.from_dict(load_trace(path))

    def autoscaler_config(self, cluster_name: str = "simulated") -> AutoscalerConfig:
        """The autoscaler settings this trace runs with."""
        types = [NodeTypeConfig(t.node_type, {}, t.idle_timeout_minutes) for t in self.node_types.values()]
        options: dict[str, Any] = dict(self.settings)
        return AutoscalerConfig(
            cluster_name,
            types,
            max_workers=self.max_workers,
            upscaling_speed=self.upscaling_speed,
            idle_timeout_minutes=self.idle_timeout_minutes,
            **options,
        )

    def provider_config(self) -> dict[str, Any]:
        """The fake provider's config: per-type launch delay, failure rate and quota, the seed."""
        return {
            "type": "fake",
            "launch_delay_s": {name: t.launch_delay_s for name, t in self.node_types.items()},
            "launch_failure_rate": {name: t.launch_failure_rate for name, t in self.node_types.items()},
            "quota": {name: t.quota for name, t in self.node_types.items() if t.quota is not None},
            "seed": self.seed,
        }


def load_trace(path: str | Path) -> Any:
    """Parse a trace file (YAML or JSON) into plain data; errors name the file."""
    return load_document(path)


# -- field checks ---------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: object, path: str, expected: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, f"expected {expected}, got {type(value).__name__}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(path, f"expected a list, got {type(value).__name__}")
    return value


def _fields(spec: Mapping[str, Any], path: str, allowed: set[str], *, required: tuple[str, ...] = ()) -> None:
    for key in required:
        if key not in spec:
            raise ConfigError(_join(path, key), "required field missing")
    for key in spec:
        if key not in allowed:
            raise ConfigError(_join(path, str(key)), f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _number(value: object, path: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        raise ConfigError(path, f"expected a non-negative number, got {value!r}")
    if positive and value == 0:
        raise ConfigError(path, "expected a positive number, got 0")
    return float(value)


def _int(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(path, f"expected a non-negative whole number, got {value!r}")
    return value


def _count(value: object, path: str) -> int:
    count = _int(value, path)
    if count < 1:
        raise ConfigError(path, f"expected a positive count, got {count}")
    return count


def _node_type(name: str, value: object) -> TraceNodeType:
    path = f"node_types.{name}"
    spec = _mapping(value, path, "a node type mapping (resources, min_workers, max_workers, cost, launch_delay_s, ...)")
    _fields(spec, path, _NODE_TYPE, required=("resources",))
    resources = Resources.parse(spec["resources"], f"{path}.resources")
    if not resources:
        raise ConfigError(f"{path}.resources", "expected at least one resource")
    min_workers = _int(spec.get("min_workers", 0), f"{path}.min_workers")
    max_raw = spec.get("max_workers")
    max_workers = None if max_raw is None else _int(max_raw, f"{path}.max_workers")
    if max_workers is not None and min_workers > max_workers:
        raise ConfigError(f"{path}.min_workers", f"min_workers ({min_workers}) exceeds max_workers ({max_workers})")
    rate = _number(spec.get("launch_failure_rate", 0.0), f"{path}.launch_failure_rate")
    if rate > 1:
        raise ConfigError(f"{path}.launch_failure_rate", f"expected a probability between 0 and 1, got {rate:g}")
    idle = spec.get("idle_timeout_minutes")
    quota = spec.get("quota")
    return TraceNodeType(
        NodeType(
            name,
            resources,
            min_workers=min_workers,
            max_workers=max_workers,
            cost=_number(spec.get("cost", 1.0), f"{path}.cost"),
        ),
        launch_delay_s=_number(spec.get("launch_delay_s", DEFAULT_LAUNCH_DELAY_S), f"{path}.launch_delay_s"),
        launch_failure_rate=rate,
        idle_timeout_minutes=None if idle is None else _number(idle, f"{path}.idle_timeout_minutes"),
        quota=None if quota is None else _int(quota, f"{path}.quota"),
    )


def _arrival(value: object, path: str) -> Arrival:
    spec = _mapping(value, path, "an arrival mapping (at, shape, count, duration_s)")
    _fields(spec, path, {"at", "shape", "count", "duration_s"}, required=("at", "shape", "duration_s"))
    shape = Resources.parse(spec["shape"], f"{path}.shape")
    if not shape:
        raise ConfigError(f"{path}.shape", "expected at least one resource")
    return Arrival(
        at=_number(spec["at"], f"{path}.at"),
        shape=shape,
        count=_count(spec.get("count", 1), f"{path}.count"),
        duration_s=_number(spec["duration_s"], f"{path}.duration_s"),
    )


def _pg_arrival(value: object, path: str) -> PlacementGroupArrival:
    spec = _mapping(value, path, "a placement group arrival (at, strategy, bundles, count, duration_s)")
    _fields(spec, path, {"at", "strategy", "bundles", "count", "duration_s"}, required=("at", "bundles", "duration_s"))
    strategy_raw = spec.get("strategy", "PACK")
    try:
        strategy = PlacementStrategy(strategy_raw)
    except ValueError:
        known = ", ".join(s.value for s in PlacementStrategy)
        raise ConfigError(f"{path}.strategy", f"expected one of {known}, got {strategy_raw!r}") from None
    bundles_raw = _list(spec["bundles"], f"{path}.bundles")
    if not bundles_raw:
        raise ConfigError(f"{path}.bundles", "expected at least one bundle")
    bundles = tuple(Resources.parse(b, f"{path}.bundles[{i}]") for i, b in enumerate(bundles_raw))
    return PlacementGroupArrival(
        at=_number(spec["at"], f"{path}.at"),
        strategy=strategy,
        bundles=bundles,
        count=_count(spec.get("count", 1), f"{path}.count"),
        duration_s=_number(spec["duration_s"], f"{path}.duration_s"),
    )
