"""``rayk8s up/down/status`` for ``provider.type: local``: a real Ray cluster on this machine.

``up`` starts the head (``ray start --head`` through the local provider), waits until its
GCS answers, and starts the autoscaler monitor (:mod:`rayk8s.launcher.monitor`) as a
detached background process that runs :meth:`Autoscaler.update` every
``autoscaler.update_interval_s``, logs to ``monitor.log`` and writes the status summary
to ``status.txt`` in the cluster's state directory. ``down`` stops the monitor, the
workers and the head, and checks that none of their processes is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

import rayk8s
from rayk8s.autoscaler import AutoscalerConfig
from rayk8s.errors import ConfigError, RayK8sError
from rayk8s.launcher._config import ClusterConfig
from rayk8s.providers._tags import (
    NODE_KIND_HEAD,
    STATUS_UP_TO_DATE,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_CONFIG,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)
from rayk8s.providers.local import (
    LocalNodeProvider,
    check_node_config,
    check_provider_config,
    process_alive,
    spawn_detached,
)

__all__ = ["LocalCluster", "check_local"]

Echo = Callable[[str], None]

#: How long ``up`` waits for the head's GCS, and for the monitor's first update.
HEAD_TIMEOUT_S = 90.0
MONITOR_TIMEOUT_S = 60.0


def check_local(config: ClusterConfig) -> None:
    """Refuse a config the local launcher cannot run, naming the field.

    Other provider types get a clear error naming ``provider.type`` rather than a crash.
    """
    if config.provider.get("type") != "local":
        raise ConfigError(
            "provider.type",
            f"{config.provider.get('type')!r}: the launcher runs clusters of provider.type local or kubernetes",
        )
    check_provider_config(config.provider)
    for name, spec in config.node_types.items():
        check_node_config(spec.node_config, f"available_node_types.{name}.node_config")


def local_node_configs(config: ClusterConfig) -> dict[str, dict[str, Any]]:
    """Each node type's ``node_config`` with the type's ``resources`` filled in (what ``ray start`` gets)."""
    return {
        name: {**spec.node_config, "resources": spec.resources.to_dict()} for name, spec in config.node_types.items()
    }


def local_autoscaler_config(config: ClusterConfig) -> AutoscalerConfig:
    """The autoscaler config for a local cluster: node configs carry their resources."""
    return config.to_autoscaler_config(local_node_configs(config))


def _tail(path: str | Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@attrs.define
class LocalCluster:
    """One local cluster: its config, provider and state directory."""

    config: ClusterConfig
    echo: Echo = print
    #: How long ``up`` waits for the Ray head to answer, in seconds (``up --timeout``).
    head_timeout_s: float = HEAD_TIMEOUT_S
    provider: LocalNodeProvider = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        check_local(self.config)
        self.provider = LocalNodeProvider(self.config.provider, self.config.cluster_name)

    @property
    def state_dir(self) -> Path:
        return self.provider.state_dir

    @property
    def monitor_pid_file(self) -> Path:
        return self.state_dir / "monitor.pid"

    @property
    def status_file(self) -> Path:
        return self.state_dir / "status.txt"

    @property
    def monitor_log(self) -> Path:
        return self.state_dir / "monitor.log"

    @property
    def config_copy(self) -> Path:
        return self.state_dir / "cluster.yaml"

    # -- queries -----------------------------------------------------------------------

    def head(self) -> Any:
        """The head node as the provider lists it, or ``None``."""
        for node in self.provider.nodes({TAG_CLUSTER_NAME: self.config.cluster_name}).nodes:
            if node.is_head:
                return node
        return None

    def monitor_pid(self) -> int | None:
        """The monitor's pid if it runs."""
        try:
            pid = int(self.monitor_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid) else None

    def running(self) -> bool:
        head = self.head()
        return head is not None and head.status.value == "running"

    # -- up ----------------------------------------------------------------------------

    def up(self, *, restart: bool = True, confirm: Callable[[str], bool] | None = None) -> str:
        """Start the head (unless it runs and ``restart`` is false) and the monitor; returns the GCS address.

        If the cluster already runs: with ``restart``, it is stopped and started again
        (after ``confirm``); without, only the monitor is restarted with this config.
        """
        from rayk8s.ray import require_ray

        require_ray()  # names the rayk8s[ray] extra, before anything starts
        if self.running():
            if restart:
                if confirm is not None and not confirm(
                    f"Cluster {self.config.cluster_name!r} is running. Restart it (stops its workers and head)?"
                ):
                    raise RayK8sError("aborted: the cluster is still running")
                self.down()
            else:
                self.echo(f"Cluster {self.config.cluster_name!r} is running; restarting only its autoscaler.")
                self._stop_monitor()
                self._start_monitor()
                return str(self.provider.head_address)
        else:
            self._stop_monitor()
            head = self.head()
            if head is not None:  # a head that died: clean it up first
                self.provider.terminate_all()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for name in self.config.ignored:
            self.echo(f"note: {name} is ignored by the local provider (Ray runs from this Python environment)")
        head_type = self.config.head
        head_config = {**head_type.node_config, "resources": head_type.resources.to_dict()}
        autoscaler_config = local_autoscaler_config(self.config)
        tags = {
            TAG_CLUSTER_NAME: self.config.cluster_name,
            TAG_NODE_KIND: NODE_KIND_HEAD,
            TAG_USER_NODE_TYPE: head_type.name,
            TAG_NODE_STATUS: STATUS_UP_TO_DATE,
            TAG_LAUNCH_CONFIG: autoscaler_config.launch_config_hash(head_type.name),
        }
        self.echo(f"Starting the Ray head of cluster {self.config.cluster_name!r} (state in {self.state_dir})")
        (head_id,) = self.provider.create_node(head_config, tags, 1)
        address = str(self.provider.head_address)
        try:
            self._wait_for_head(head_id, address)
            self._start_monitor()
        except BaseException:
            self.echo("Start-up failed; stopping what was started.")
            self.down()
            raise
        return address

    def _wait_for_head(self, head_id: str, address: str) -> None:
        host, port = address.rsplit(":", 1)
        started = time.monotonic()
        last_report = 0.0
        while True:
            waited = time.monotonic() - started
            node = self.provider.node(head_id)
            if node is None or node.status.value != "running":
                log = self.provider.log_dir / f"{head_id}.log"
                raise RayK8sError(f"the Ray head exited during start-up; its log ({log}) ends:\n{_tail(log)}")
            with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1.0):
                if self._gcs_answers(address):
                    self.echo(f"The Ray head is up at {address} ({waited:.0f} s)")
                    return
            if waited > self.head_timeout_s:
                raise RayK8sError(f"the Ray head at {address} did not answer within {self.head_timeout_s:g} s")
            if waited - last_report >= 3.0:
                self.echo(f"waiting for the Ray head at {address} ... {waited:.0f} s")
                last_report = waited
            time.sleep(0.3)

    @staticmethod
    def _gcs_answers(address: str) -> bool:
        from rayk8s.ray import RayLoadSource

        try:
            RayLoadSource(address, timeout_s=5.0).read_state()
        except RayK8sError:
            raise
        except Exception:
            return False
        return True

    def _start_monitor(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        raw = dict(self._raw_config())
        self.config_copy.write_text(yaml.safe_dump(raw, sort_keys=False))
        with contextlib.suppress(FileNotFoundError):
            self.status_file.unlink()
        env = dict(os.environ)
        package_root = str(Path(rayk8s.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        pid = spawn_detached(
            [sys.executable, "-m", "rayk8s.launcher.monitor", str(self.config_copy)],
            env,
            self.state_dir / "monitor.out",
        )
        self.monitor_pid_file.write_text(str(pid))
        started = time.monotonic()
        last_report = 0.0
        while not self.status_file.exists():
            waited = time.monotonic() - started
            if not process_alive(pid):
                raise RayK8sError(
                    f"the autoscaler monitor exited; {self.state_dir / 'monitor.out'} ends:\n"
                    + _tail(self.state_dir / "monitor.out")
                )
            if waited > MONITOR_TIMEOUT_S:
                raise RayK8sError(f"the autoscaler monitor made no update within {MONITOR_TIMEOUT_S:.0f} s")
            if waited - last_report >= 3.0:
                self.echo(f"waiting for the autoscaler's first update ... {waited:.0f} s")
                last_report = waited
            time.sleep(0.2)
        self.echo(f"The autoscaler runs in the background (pid {pid}, log {self.monitor_log})")

    def _raw_config(self) -> Mapping[str, Any]:
        """The config for the monitor, with the provider's state directory made explicit."""
        raw = self.config.to_dict()
        raw["provider"] = {**raw["provider"], "state_dir": str(self.state_dir)}
        return raw

    # -- down --------------------------------------------------------------------------

    def _stop_monitor(self, grace_s: float = 10.0) -> None:
        pid = self.monitor_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            limit = time.monotonic() + grace_s
            while self.monitor_pid() is not None and time.monotonic() < limit:
                time.sleep(0.1)
            if self.monitor_pid() is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.monitor_pid_file.unlink()

    def down(self, *, workers_only: bool = False) -> list[str]:
        """Stop the monitor and every node (only the workers with ``workers_only``).

        Returns the ids of nodes whose processes could not be stopped (empty on success).
        With ``workers_only`` the monitor is stopped too (it would launch them again);
        ``rayk8s up --no-restart`` starts it again.
        """
        self._stop_monitor()
        left = self.provider.terminate_all(include_head=not workers_only)
        if not workers_only:
            with contextlib.suppress(FileNotFoundError):
                self.status_file.unlink()
        return left

    # -- status ------------------------------------------------------------------------

    def status(self) -> str:
        """A few lines on the processes, then the autoscaler's last status summary."""
        nodes = self.provider.nodes({TAG_CLUSTER_NAME: self.config.cluster_name}).nodes
        head = next((n for n in nodes if n.is_head), None)
        lines = [f"Cluster {self.config.cluster_name!r} (provider local, state in {self.state_dir})"]
        if head is None:
            lines.append("Head: not running (start it with `rayk8s up`)")
        else:
            lines.append(f"Head: {head.id} {head.status.value} at {self.provider.head_address}")
        pid = self.monitor_pid()
        lines.append(f"Autoscaler: {'running (pid ' + str(pid) + ')' if pid else 'not running'}")
        workers = [n for n in nodes if not n.is_head]
        lines.append(f"Worker processes: {len(workers)}")
        for node in workers:
            lines.append(f"  {node.id}  {node.node_type}  {node.status.value}")
        if self.status_file.exists() and pid is not None:
            lines.append("")
            lines.append(self.status_file.read_text().rstrip())
        return "\n".join(lines)
