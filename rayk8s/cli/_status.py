"""``rayk8s status CONFIG``: the cluster's processes and the autoscaler's last status summary."""

from __future__ import annotations

import click

from rayk8s.cli._cluster import local_cluster
from rayk8s.cli._main import main

__all__ = ["status_command"]


@main.command("status", short_help="Show a cluster's nodes and the autoscaler's status.")
@click.argument("config", type=click.Path(dir_okay=False))
def status_command(config: str) -> None:
    """Print the head, the autoscaler process, the worker processes, and the last status summary."""
    click.echo(local_cluster(config).status())
