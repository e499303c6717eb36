"""The autoscaler monitor: ``python -m rayk8s.launcher.monitor CONFIG [--address A --state-dir D]``.

For a local cluster ``rayk8s up`` starts it detached on this machine. For a Kubernetes
cluster ``rayk8s up`` starts it in the head pod with ``--address`` (the head's GCS) and
``--state-dir`` (``~/rayk8s``): the Kubernetes provider uses the pod's in-cluster
credentials, and pod templates are completed as the launcher completes them. A failure
at start-up is logged as ``monitor_failed`` (one line) and exits with status 1.

``rayk8s up`` starts it detached. It reads the cluster config, connects to the head's
GCS, and runs :meth:`Autoscaler.update` every ``autoscaler.update_interval_s`` seconds:
the local provider (draining each node through Ray before terminating it) and the Ray
load source, reporting each update's state back to Ray (``ray status``). Each update
writes ``status.txt`` (the status summary) in the state directory and one
``autoscaler_update`` log line to ``monitor.log``. SIGTERM or SIGINT stop it after the
current update.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import structlog

from rayk8s.autoscaler import Autoscaler
from rayk8s.errors import RayK8sError
from rayk8s.launcher._config import ClusterConfig
from rayk8s.launcher._local import check_local, local_autoscaler_config
from rayk8s.providers.local import LocalNodeProvider
from rayk8s.ray import DrainingProvider, RayLoadSource

__all__ = ["main", "run", "run_kubernetes"]


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def _configure_logging(path: Path) -> None:
    stream = open(path, "a", buffering=1)  # noqa: SIM115 (lives as long as the process)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=False),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )


def run(config_path: str, stop: threading.Event) -> int:
    """Run the loop until ``stop`` is set; returns the exit code."""
    config = ClusterConfig.from_file(config_path)
    check_local(config)
    provider = LocalNodeProvider(config.provider, config.cluster_name)
    _configure_logging(provider.state_dir / "monitor.log")
    log = structlog.get_logger().bind(cluster=config.cluster_name)
    address = provider.head_address
    if address is None:
        log.error("monitor_no_head")
        return 1
    load_source = RayLoadSource(address)
    autoscaler = Autoscaler(
        local_autoscaler_config(config),
        provider=DrainingProvider(provider, load_source),
        load_source=load_source,
        clock=time.time,
    )
    return _loop(autoscaler, load_source, config, provider.state_dir, address, stop, log)


def run_kubernetes(config_path: str, address: str, state_dir: Path, stop: threading.Event) -> int:
    """The loop in a Kubernetes cluster's head pod; returns the exit code."""
    from rayk8s.launcher._kubernetes import kubernetes_autoscaler_config
    from rayk8s.providers.kubernetes import KubernetesNodeProvider

    state_dir.mkdir(parents=True, exist_ok=True)
    _configure_logging(state_dir / "monitor.log")
    log = structlog.get_logger()
    try:
        config = ClusterConfig.from_file(config_path)
        log = log.bind(cluster=config.cluster_name)
        provider = KubernetesNodeProvider(config.provider, config.cluster_name)
        load_source = RayLoadSource(address)
    except RayK8sError as error:
        log.error("monitor_failed", error=str(error))
        return 1
    autoscaler = Autoscaler(
        kubernetes_autoscaler_config(config),
        provider=DrainingProvider(provider, load_source),
        load_source=load_source,
        clock=time.time,
    )
    try:
        return _loop(autoscaler, load_source, config, state_dir, address, stop, log)
    finally:
        provider.close()


def _loop(
    autoscaler: Autoscaler,
    load_source: RayLoadSource,
    config: ClusterConfig,
    state_dir: Path,
    address: str,
    stop: threading.Event,
    log: structlog.typing.FilteringBoundLogger,
) -> int:
    """``update()`` every ``autoscaler.update_interval_s`` until ``stop``; status files in ``state_dir``."""
    interval = config.autoscaler.update_interval_s
    status_path = state_dir / "status.txt"
    status_json = state_dir / "status.json"
    log.info("monitor_started", gcs_address=address, interval_s=interval, pid=os.getpid())
    while not stop.is_set():
        started = time.monotonic()
        result = autoscaler.update()
        load_source.report(result)
        log.info("autoscaler_update", **result.log_fields())
        _write_atomic(status_path, result.status.render_status() + "\n")
        _write_atomic(status_json, json.dumps(result.status.to_dict(), default=str) + "\n")
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    log.info("monitor_stopped", updates=autoscaler.updates, errors=autoscaler.error_count)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rayk8s.launcher.monitor", description=__doc__)
    parser.add_argument("config", help="the cluster config (the copy `rayk8s up` keeps in the state directory)")
    parser.add_argument("--address", help="the head's GCS address (Kubernetes clusters: given by `rayk8s up`)")
    parser.add_argument("--state-dir", help="where the log and the status files go (Kubernetes clusters)")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.address is not None:
        state_dir = Path(args.state_dir or "~/rayk8s").expanduser()
        return run_kubernetes(args.config, args.address, state_dir, stop)
    return run(args.config, stop)


if __name__ == "__main__":
    sys.exit(main())
