"""The ``rayk8s`` command group: global options, logging set-up, and one-line errors.

Subcommands live in their own modules in this package and register themselves with
``@main.command()``; :mod:`rayk8s.cli` imports each module once (one line per command).
A subcommand imports heavy dependencies (kubernetes, ray) inside its function, so
``rayk8s schedule`` does not pay for ``rayk8s up``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TextIO, TypeVar

import click
import structlog

from rayk8s import __version__
from rayk8s.errors import ConfigError, RayK8sError

__all__ = ["configure_logging", "fail", "main", "output_option"]

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code for a bad input (a scenario, config or trace that does not validate), as for usage errors.
EXIT_BAD_INPUT = 2
#: Exit code for any other rayk8s error (a provider that failed, say).
EXIT_FAILURE = 1


class _Group(click.Group):
    """A click group that turns a rayk8s error raised by any subcommand into one line on stderr.

    ``ConfigError`` exits with code 2 (``rayk8s: error: <path>: <message>``), any other
    ``RayK8sError`` with code 1. Everything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            fail(str(error), EXIT_BAD_INPUT)
        except RayK8sError as error:
            fail(str(error), EXIT_FAILURE)


def output_option(json_help: str, text_help: str = "text: for people") -> Callable[[F], F]:
    """The ``-o/--output text|json`` option every reporting subcommand shares (default text)."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=f"{text_help}; json: {json_help}.",
    )


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``rayk8s: error: <message>`` as one line on stderr and exit with ``code``."""
    one_line = " ".join(message.split())
    click.echo(f"rayk8s: error: {one_line}", err=True)
    raise click.exceptions.Exit(code)


class _Stderr:
    """A file that writes to whatever ``sys.stderr`` is at the time of writing.

    structlog keeps the file it was given; a program whose stderr is swapped later (click's
    test runner, a daemon redirecting its output) must still log to the current one.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(verbosity: int, stream: TextIO | None = None) -> None:
    """Configure structlog (and the standard library's logging) for a program.

    ``verbosity`` 0 shows warnings and errors, 1 (``-v``) adds info, 2 or more (``-vv``)
    adds debug. Logs go to stderr (or ``stream``), so a command's stdout stays parseable.
    Only programs call this; library code only calls ``structlog.get_logger()``.
    """
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    output: Any = stream if stream is not None else _Stderr()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=output),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(handler, "_rayk8s", False) for handler in root.handlers):
        handler = logging.StreamHandler(output)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)-7s] %(name)s: %(message)s", "%H:%M:%S"))
        handler._rayk8s = True  # type: ignore[attr-defined]
        root.addHandler(handler)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="rayk8s", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="Log more: -v for info, -vv for debug (logs go to stderr).")
def main(verbose: int) -> None:
    """rayk8s: an autoscaler SDK for Ray clusters on Kubernetes."""
    configure_logging(verbose)
