"""``rayk8s up CONFIG``: start (or update) a cluster and its autoscaler."""

from __future__ import annotations

import click

from rayk8s.cli._cluster import cluster_for, confirmer
from rayk8s.cli._main import main

__all__ = ["up_command"]


@main.command("up", short_help="Create or update a Ray cluster and its autoscaler.")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Answer yes to the question before launching or restarting.")
@click.option(
    "--no-restart",
    is_flag=True,
    help="If the cluster runs, keep its Ray processes and restart only the autoscaler (picks up config changes).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="How long to wait for the head to run (default: 300 on Kubernetes, 90 locally).",
)
def up_command(config: str, yes: bool, no_restart: bool, timeout: float | None) -> None:
    """Start the cluster CONFIG describes: the Ray head, then the autoscaler.

    With `provider.type: kubernetes`: the autoscaler's ServiceAccount, Role and
    RoleBinding, the Services and the head pod, created or brought up to date; the
    set-up and head start commands run in the head pod, and the autoscaler starts there.
    Running it again changes only what changed. With `provider.type: local` the head is
    a real `ray start --head` on this machine and the autoscaler runs beside it.

    Before launching a cluster, replacing its head or restarting Ray on it, `up` asks
    (as `ray up` does); `--yes` answers yes. Without a terminal it fails instead of
    asking: pass `--yes` in scripts.
    """
    from rayk8s.launcher import KubernetesCluster

    confirm = confirmer(yes)
    cluster = cluster_for(config)
    if timeout is not None:
        cluster.head_timeout_s = timeout
    if isinstance(cluster, KubernetesCluster):
        with cluster:
            head = cluster.up(restart=not no_restart, confirm=confirm)
        name = cluster.config.cluster_name
        click.echo(
            f"Cluster {name!r} is up in namespace {cluster.namespace!r}. Head pod: {head.id} ({head.internal_ip})"
        )
        click.echo(f"  Get a shell on the head:  rayk8s attach {config}")
        click.echo(f"  Run a command there:      rayk8s exec {config} 'ray status'")
        click.echo(f"  Follow the autoscaler:    rayk8s monitor {config}")
        click.echo(f"  Tear it down:             rayk8s down {config} --yes")
        return
    address = cluster.up(restart=not no_restart, confirm=confirm)
    click.echo(f"Cluster {cluster.config.cluster_name!r} is up. Ray head (GCS): {address}")
    click.echo('  Connect a driver on this machine:  ray.init(address="auto")')
    click.echo(f"  Watch it:                          rayk8s status {config}")
    click.echo(f"  Stop it:                           rayk8s down {config} --yes")
