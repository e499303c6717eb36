"""The LP lower bound on the cost of new nodes, now in :mod:`rayk8s.bench` (needs scipy).

Kept so ``benchmarks/bench_scheduler.py`` and older imports keep working.
"""

from rayk8s.bench._bound import ACCELERATORS, LowerBound, Placed, lower_bound, placed_from_result

__all__ = ["ACCELERATORS", "LowerBound", "Placed", "lower_bound", "placed_from_result"]
