"""``rayk8s down CONFIG``: stop a cluster's autoscaler, workers and head (and, on Kubernetes, its Services and RBAC)."""

from __future__ import annotations

import click

from rayk8s.cli._cluster import cluster_for, confirmer
from rayk8s.cli._main import main
from rayk8s.errors import RayK8sError

__all__ = ["down_command"]


@main.command("down", short_help="Tear a Ray cluster down (autoscaler, workers, head).")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--workers-only", is_flag=True, help="Stop the autoscaler and the workers; keep the head.")
def down_command(config: str, yes: bool, workers_only: bool) -> None:
    """Tear down the cluster CONFIG describes. Idempotent.

    On Kubernetes it deletes the workers, the head pod, the Services and the
    ServiceAccount, Role and RoleBinding that `rayk8s up` created (only objects labelled
    `ray-cluster-name=<cluster>`), and prints each one.
    """
    from rayk8s.launcher import KubernetesCluster

    cluster = cluster_for(config)
    name = cluster.config.cluster_name
    if isinstance(cluster, KubernetesCluster):
        what = "its autoscaler and worker pods" if workers_only else "its pods, Services and RBAC objects"
    else:
        what = "its autoscaler and workers" if workers_only else "its autoscaler, workers and head"
    confirm = confirmer(yes)
    if confirm is not None and not confirm(f"Tear down cluster {name!r} ({what})?"):
        raise RayK8sError("aborted: nothing was stopped")
    if isinstance(cluster, KubernetesCluster):
        with cluster:
            removed = cluster.down(workers_only=workers_only)
        for item in removed:
            click.echo(f"removed {item}")
        click.echo(f"Cluster {name!r}: " + ("nothing to remove." if not removed else f"removed {len(removed)}."))
        return
    left = cluster.down(workers_only=workers_only)
    if left:
        raise RayK8sError(f"could not stop the processes of {', '.join(left)}")
    click.echo(f"Cluster {name!r}: stopped {what}.")
