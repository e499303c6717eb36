"""``rayk8s status CONFIG``: the cluster's nodes and the autoscaler's last status summary."""

from __future__ import annotations

import click

from rayk8s.cli._cluster import cluster_for
from rayk8s.cli._main import main

__all__ = ["status_command"]


@main.command("status", short_help="Show a cluster's nodes and the autoscaler's status.")
@click.argument("config", type=click.Path(dir_okay=False))
def status_command(config: str) -> None:
    """Print the head, the workers, and the autoscaler's last status summary."""
    from rayk8s.launcher import KubernetesCluster

    cluster = cluster_for(config)
    if isinstance(cluster, KubernetesCluster):
        with cluster:
            click.echo(cluster.status())
        return
    click.echo(cluster.status())
