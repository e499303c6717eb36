"""``rayk8s down CONFIG``: stop a cluster's autoscaler, workers and head."""

from __future__ import annotations

import click

from rayk8s.cli._cluster import local_cluster
from rayk8s.cli._main import main
from rayk8s.errors import RayK8sError

__all__ = ["down_command"]


@main.command("down", short_help="Stop a Ray cluster (autoscaler, workers, head).")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--workers-only", is_flag=True, help="Stop the autoscaler and the workers; keep the head.")
def down_command(config: str, yes: bool, workers_only: bool) -> None:
    """Stop the cluster CONFIG describes, leaving none of its Ray processes behind."""
    cluster = local_cluster(config)
    what = "its autoscaler and workers" if workers_only else "its autoscaler, workers and head"
    if not yes and not click.confirm(
        f"Stop cluster {cluster.config.cluster_name!r} ({what})?", default=False, err=True
    ):
        raise RayK8sError("aborted: nothing was stopped")
    left = cluster.down(workers_only=workers_only)
    if left:
        raise RayK8sError(f"could not stop the processes of {', '.join(left)}")
    click.echo(f"Cluster {cluster.config.cluster_name!r}: stopped {what}.")
