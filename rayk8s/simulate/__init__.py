"""``rayk8s simulate``: the autoscaler on the fake provider with a virtual clock, driven by a trace.

Also :class:`DeclaredLoadSource`: a simulated Ray over a real provider (declared work),
for tests and demos where no Ray runs in the nodes.
"""

from pathlib import Path

from rayk8s.simulate._declared import DeclaredLoadSource, parse_work
from rayk8s.simulate._simulator import SimulationResult, Simulator, TraceLoadSource, simulate
from rayk8s.simulate._trace import Arrival, PlacementGroupArrival, Trace, TraceNodeType, load_trace

#: The trace ``rayk8s simulate`` runs when given none.
DEFAULT_TRACE = Path(__file__).with_name("default_trace.yaml")

__all__ = [
    "DEFAULT_TRACE",
    "Arrival",
    "DeclaredLoadSource",
    "PlacementGroupArrival",
    "SimulationResult",
    "Simulator",
    "Trace",
    "TraceLoadSource",
    "TraceNodeType",
    "load_trace",
    "parse_work",
    "simulate",
]
