"""The ``rayk8s`` command group (minimal; the full group with logging set-up and one-line
errors is being written on another branch and replaces this file when merged)."""

from __future__ import annotations

from typing import Any

import click

from rayk8s import __version__
from rayk8s.errors import ConfigError, RayK8sError

__all__ = ["main"]


class _Group(click.Group):
    """Turns a rayk8s error into one line on stderr: exit 2 for bad input, 1 otherwise."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            click.echo(f"rayk8s: error: {' '.join(str(error).split())}", err=True)
            raise click.exceptions.Exit(2) from None
        except RayK8sError as error:
            click.echo(f"rayk8s: error: {' '.join(str(error).split())}", err=True)
            raise click.exceptions.Exit(1) from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="rayk8s")
def main() -> None:
    """rayk8s: a library-first autoscaler SDK for Ray clusters on Kubernetes."""
