"""The bin-packing scheduler (being written; see the docstring of :func:`schedule`)."""

from __future__ import annotations

from rayk8s.autoscaler._model import SchedulingRequest
from rayk8s.autoscaler._result import SchedulingResult

__all__ = ["schedule"]


def schedule(request: SchedulingRequest) -> SchedulingResult:
    """Decide which nodes to launch and where every demand lands."""
    raise NotImplementedError("the scheduler lands in the next commit")
