"""``rayk8s bench``: compare schedulers and autoscaling policies on the same seeded inputs.

* Scheduler scenarios (:func:`generate`, families :data:`FAMILIES`) are decided by every
  :class:`Strategy` in :data:`STRATEGIES` — rayk8s and its variants, a first-fit-decreasing
  baseline, Ray's v1 and v2 schedulers when ``ray`` is installed — and measured against an
  LP lower bound on cost (scipy); every full decision is checked by
  :func:`rayk8s.autoscaler.verify`.
* Traces (:func:`generate_trace`, families :data:`TRACE_FAMILIES`) run on the simulator
  under each :class:`Policy` (upscaling speed, idle timeout) of the suite, and under the
  suite's :data:`COMPARE_POLICIES` with every strategy that gives a full placement as the
  autoscaler's scheduler (``Autoscaler(scheduler=...)``).

:func:`run_bench` returns one JSON-able document; :func:`render_markdown` and
:func:`write_outputs` (``RESULTS.md``, ``results.json``, PNG plots) report it.
"""

from rayk8s.bench._report import render_markdown, write_outputs
from rayk8s.bench._run import SUITES, Suite, run_bench, run_scenario, run_trace
from rayk8s.bench._scenarios import FAMILIES, FULL_GRID, QUICK_GRID, BenchScenario, generate
from rayk8s.bench._strategies import STRATEGIES, Decision, Strategy, demand_units, get_strategy
from rayk8s.bench._traces import (
    COMPARE_POLICIES,
    POLICIES,
    TRACE_FAMILIES,
    Policy,
    TraceScale,
    apply_policy,
    generate_trace,
)

__all__ = [
    "COMPARE_POLICIES",
    "FAMILIES",
    "FULL_GRID",
    "POLICIES",
    "QUICK_GRID",
    "STRATEGIES",
    "SUITES",
    "TRACE_FAMILIES",
    "BenchScenario",
    "Decision",
    "Policy",
    "Strategy",
    "Suite",
    "TraceScale",
    "apply_policy",
    "demand_units",
    "generate",
    "generate_trace",
    "get_strategy",
    "render_markdown",
    "run_bench",
    "run_scenario",
    "run_trace",
    "write_outputs",
]
