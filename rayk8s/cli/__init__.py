"""The ``rayk8s`` command line.

``main`` is the click group (the ``rayk8s`` console script and ``python -m rayk8s``).
Each subcommand is a module here that decorates its function with ``@main.command()``;
adding one is one import line below.
"""

from rayk8s.cli._main import configure_logging, main

# isort: split
# Subcommands, one line each: importing the module registers it with ``main``.
from rayk8s.cli import (
    _bench,  # noqa: F401  (rayk8s bench)
    _down,  # noqa: F401  (rayk8s down)
    _head,  # noqa: F401  (rayk8s attach, exec, monitor, get-head-ip)
    _operator,  # noqa: F401  (rayk8s operator, rayk8s crd)
    _schedule,  # noqa: F401  (rayk8s schedule)
    _simulate,  # noqa: F401  (rayk8s simulate)
    _status,  # noqa: F401  (rayk8s status)
    _up,  # noqa: F401  (rayk8s up)
)

__all__ = ["configure_logging", "main"]
