"""The autoscaler monitor of a local cluster: ``python -m rayk8s.launcher.monitor CONFIG``.

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
from rayk8s.launcher._config import ClusterConfig
from rayk8s.launcher._local import check_local, local_autoscaler_config
from rayk8s.providers.local import LocalNodeProvider
from rayk8s.ray import DrainingProvider, RayLoadSource

__all__ = ["main", "run"]


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
    interval = config.autoscaler.update_interval_s
    status_path = provider.state_dir / "status.txt"
    status_json = provider.state_dir / "status.json"
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
    args = parser.parse_args(argv)
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return run(args.config, stop)


if __name__ == "__main__":
    sys.exit(main())
