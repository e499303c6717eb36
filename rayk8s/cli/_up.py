"""``rayk8s up CONFIG``: start a cluster and its autoscaler (provider ``local`` for now)."""

from __future__ import annotations

import click

from rayk8s.cli._cluster import local_cluster
from rayk8s.cli._main import main

__all__ = ["up_command"]


@main.command("up", short_help="Start a Ray cluster and its autoscaler.")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--no-restart",
    is_flag=True,
    help="If the cluster runs, keep its Ray processes and restart only the autoscaler (picks up config changes).",
)
def up_command(config: str, yes: bool, no_restart: bool) -> None:
    """Start the cluster CONFIG describes: the Ray head, then the autoscaler in the background.

    With `provider.type: local` the head is a real `ray start --head` on this machine and
    workers are `ray start` processes the autoscaler starts and stops. Returns once the
    head answers and the autoscaler has made its first update; connect a driver with
    `ray.init(address="auto")`, watch with `rayk8s status CONFIG`, stop with
    `rayk8s down CONFIG`.
    """
    cluster = local_cluster(config)
    address = cluster.up(
        restart=not no_restart,
        confirm=None if yes else (lambda question: click.confirm(question, default=False, err=True)),
    )
    click.echo(f"Cluster {cluster.config.cluster_name!r} is up. Ray head (GCS): {address}")
    click.echo('  Connect a driver on this machine:  ray.init(address="auto")')
    click.echo(f"  Watch it:                          rayk8s status {config}")
    click.echo(f"  Stop it:                           rayk8s down {config} --yes")
