"""The seeded scheduler scenario families, now in :mod:`rayk8s.bench` (``rayk8s bench`` uses them).

Kept so ``benchmarks/bench_scheduler.py`` and older imports keep working.
"""

from rayk8s.bench._scenarios import FAMILIES, FULL_GRID, QUICK_GRID, RSS_CASE, generate, suite
from rayk8s.bench._scenarios import BenchScenario as Scenario

__all__ = ["FAMILIES", "FULL_GRID", "QUICK_GRID", "RSS_CASE", "Scenario", "generate", "suite"]
