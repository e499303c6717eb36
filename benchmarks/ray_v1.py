"""Ray v1's scheduler on a rayk8s request, now in :mod:`rayk8s.bench` (strategy ``ray-v1``).

Kept so ``benchmarks/bench_scheduler.py`` and older imports keep working.
"""

from rayk8s.bench._ray_v1 import RAY_CAP, RayPlan, available, coverage, ray_version, run_ray_v1

__all__ = ["RAY_CAP", "RayPlan", "available", "coverage", "ray_version", "run_ray_v1"]
