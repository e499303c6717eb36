"""``rayk8s operator``: run the RayCluster operator; ``rayk8s crd``: print its CRD."""

from __future__ import annotations

import logging

import click

from rayk8s.cli._main import main

__all__ = ["crd_command", "operator_command"]


@main.command("crd", short_help="Print the RayCluster CustomResourceDefinition.")
def crd_command() -> None:
    """Print the RayCluster CRD (cluster.ray.io/v1) as YAML, generated from the cluster-config schema.

    `rayk8s crd | kubectl apply -f -` installs it.
    """
    from rayk8s.operator import crd_yaml

    click.echo(crd_yaml(), nl=False)


@main.command("operator", short_help="Run the RayCluster operator.")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="A namespace to manage RayClusters in (repeat for more). Default: the operator pod's own.",
)
@click.option(
    "--load-source",
    type=click.Choice(["ray", "simulated"]),
    default="ray",
    show_default=True,
    help="Where cluster load comes from: each head's Ray GCS, or (testing and demos, no Ray)"
    " the work declared in the rayk8s.io/simulated-work annotation.",
)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="A kubeconfig (default: in-cluster, then ~/.kube).")
@click.option("--context", help="The kubeconfig context to use.")
@click.option("--update-interval", type=float, help="Seconds between updates when a spec does not say (default 5).")
@click.option("--delete-grace-period", type=int, help="Grace period of worker pod deletes, in seconds.")
@click.option("--metrics-port", type=int, default=0, help="Serve Prometheus metrics on this port (0: off).")
@click.option("--liveness-port", type=int, default=0, help="Serve /healthz (kopf's liveness) on this port (0: off).")
def operator_command(
    namespaces: tuple[str, ...],
    load_source: str,
    kubeconfig: str | None,
    context: str | None,
    update_interval: float | None,
    delete_grace_period: int | None,
    metrics_port: int,
    liveness_port: int,
) -> None:
    """Run the RayCluster operator: one autoscaler per RayCluster in the watched namespaces.

    Creates each cluster's head pod and Service, keeps minWorkers and scales workers with
    the load, writes the RayCluster's status and Events, and stops a cluster's
    autoscaler when it is deleted (its pods go by their ownerReferences). Logs go to
    stdout; every line about a cluster starts with `<cluster>:`. Stops on SIGTERM.
    """
    from rayk8s.errors import RayK8sError
    from rayk8s.operator._cluster import OperatorSettings
    from rayk8s.operator._logging import configure_logging

    try:
        from rayk8s.operator._operator import run
    except ImportError as error:
        if error.name != "kopf":
            raise
        raise RayK8sError("the operator needs kopf: pip install 'rayk8s[operator]'") from None

    configure_logging(logging.INFO)
    settings = OperatorSettings(
        namespaces=namespaces,
        load_source=load_source,
        update_interval_s=update_interval,
        delete_grace_period_s=delete_grace_period,
        metrics_port=metrics_port,
        liveness_port=liveness_port,
    )
    run(settings, kubeconfig=kubeconfig, context=context)
