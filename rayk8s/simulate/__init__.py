"""``rayk8s simulate``: the autoscaler on the fake provider with a virtual clock, driven by a trace."""

from rayk8s.simulate._simulator import SimulationResult, Simulator, TraceLoadSource, simulate
from rayk8s.simulate._trace import Arrival, PlacementGroupArrival, Trace, TraceNodeType, load_trace

__all__ = [
    "Arrival",
    "PlacementGroupArrival",
    "SimulationResult",
    "Simulator",
    "Trace",
    "TraceLoadSource",
    "TraceNodeType",
    "load_trace",
    "simulate",
]
