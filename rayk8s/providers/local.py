"""The ``local`` provider: each node is a ``ray start --block`` process group on this machine.

A node is one ``ray start`` process started in a new session (so it leads its own process
group: the raylet, its workers and the agents all belong to it); the head node is the
same with ``--head``. :meth:`LocalNodeProvider.terminate_nodes` sends SIGTERM to the group
and, after ``terminate_grace_s``, SIGKILL. Ray's own fake multi-node provider, which its
autoscaler tests use, works the same way; here it is a first-class provider.

What a node offers comes from its ``node_config`` (the launcher fills it in from the node
type): ``resources`` (``CPU``/``GPU`` -> ``--num-cpus``/``--num-gpus``, ``memory`` ->
``--memory``, ``object_store_memory`` -> ``--object-store-memory``, anything else ->
``--resources``), optional ``env`` (extra environment) and ``ray_start_args`` (extra
arguments). Each node is started with ``RAY_CLOUD_INSTANCE_ID=<provider node id>`` and
``RAY_NODE_TYPE_NAME=<node type>`` -- what Ray's autoscaler v2 reads as the node's
``instance_id`` and ``ray_node_type_name`` -- and with the labels
``rayk8s.io/node-id`` and ``rayk8s.io/node-type``; that is how the Ray load source maps
Ray's nodes to this provider's ids.

State (node ids, process group ids, tags, the head's address) lives in a JSON file,
``nodes.json`` in the cluster's state directory (``provider.state_dir``, default
``~/.rayk8s/local/<cluster>``), written atomically under a lock, so a restarted autoscaler
and the ``rayk8s`` command see the same nodes.

Provider config (``provider`` in the cluster YAML):

- ``type: local``
- ``state_dir``: where the state file and the node logs go (default above).
- ``object_store_memory``: bytes of object store per node unless the node type says
  otherwise (default 78643200, Ray's minimum: plenty for demos, little memory).
- ``terminate_grace_s``: seconds between SIGTERM and SIGKILL (default 10).
- ``head_ip``: the address Ray binds to (default: the address this machine routes from;
  Ray does not let a node use 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from rayk8s.autoscaler._validate import (
    check_fields,
    expect_int,
    expect_mapping,
    expect_number,
    expect_str,
    field_path,
)
from rayk8s.errors import ConfigError, LaunchError, NodeNotFoundError, ProviderError
from rayk8s.providers._base import NodeProvider, ProviderNode, ProviderNodeStatus, ProviderSnapshot
from rayk8s.providers._tags import NODE_KIND_HEAD, TAG_NODE_KIND, TAG_USER_NODE_TYPE

__all__ = [
    "DEFAULT_OBJECT_STORE_MEMORY",
    "LABEL_NODE_ID",
    "LABEL_NODE_TYPE",
    "LocalNodeProvider",
    "default_state_dir",
    "process_alive",
    "spawn_detached",
]

log = structlog.get_logger()

#: Ray's minimum object store (75 MiB).
DEFAULT_OBJECT_STORE_MEMORY = 78_643_200
#: Ray node label carrying the provider node id (also given as ``RAY_CLOUD_INSTANCE_ID``).
LABEL_NODE_ID = "rayk8s.io/node-id"
#: Ray node label carrying the node type (Ray adds ``ray.io/node-group`` from ``RAY_NODE_TYPE_NAME``).
LABEL_NODE_TYPE = "rayk8s.io/node-type"

_PROVIDER_FIELDS = ("type", "state_dir", "object_store_memory", "terminate_grace_s", "head_ip", "module")
_NODE_CONFIG_FIELDS = ("resources", "env", "ray_start_args")
_STATE_VERSION = 1


def default_state_dir(cluster_name: str) -> Path:
    """``~/.rayk8s/local/<cluster>``: where a local cluster keeps its state by default."""
    return Path.home() / ".rayk8s" / "local" / cluster_name


def _routable_ip() -> str:
    """The address this machine sends from (what Ray picks for a node; no packet is sent)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))
        address: str = probe.getsockname()[0]
        if address and not address.startswith("0."):
            return address
    return socket.gethostbyname(socket.gethostname())


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        port: int = probe.getsockname()[1]
        return port


def spawn_detached(args: Sequence[str], env: Mapping[str, str], log_path: Path) -> int:
    """Start ``args`` in a new session (its own process group), output appended to ``log_path``.

    Returns the pid. No :class:`subprocess.Popen` is kept: the process outlives this one
    (a restarted autoscaler adopts it from the state file); :func:`process_alive` reaps it
    if it is our child.
    """
    executable = shutil.which(args[0], path=env.get("PATH")) if os.sep not in args[0] else args[0]
    if executable is None:
        raise FileNotFoundError(f"{args[0]}: command not found")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(executable, list(args), dict(env), file_actions=actions, setsid=True)


def process_alive(pid: int) -> bool:
    """True when ``pid`` runs; reaps it if it is our exited child (a zombie is not running)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: started by an earlier process
    else:
        if done == pid:
            return False
    return _process_alive(pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie -- exited, not reaped -- is not running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def check_provider_config(provider: Mapping[str, Any], path: str = "provider") -> None:
    """Validate the ``local`` provider's fields (unknown ones are refused, with a suggestion)."""
    check_fields(provider, path, required=("type",), optional=_PROVIDER_FIELDS)
    if "state_dir" in provider:
        expect_str(provider["state_dir"], field_path(path, "state_dir"))
    if "object_store_memory" in provider:
        expect_int(provider["object_store_memory"], field_path(path, "object_store_memory"), minimum=1)
    if "terminate_grace_s" in provider:
        expect_number(provider["terminate_grace_s"], field_path(path, "terminate_grace_s"))
    if "head_ip" in provider:
        expect_str(provider["head_ip"], field_path(path, "head_ip"))


def check_node_config(node_config: Mapping[str, Any], path: str) -> None:
    """Validate a node type's ``node_config`` for the ``local`` provider."""
    check_fields(node_config, path, optional=_NODE_CONFIG_FIELDS)
    env = expect_mapping(node_config.get("env", {}), field_path(path, "env"))
    for key, value in env.items():
        expect_str(value, field_path(field_path(path, "env"), key), non_empty=False)
    args = node_config.get("ray_start_args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(field_path(path, "ray_start_args"), "expected a list of strings")


def ray_start_arguments(resources: Mapping[str, float], path: str = "resources") -> list[str]:
    """``ray start`` arguments giving a node exactly ``resources``.

    ``CPU`` and ``GPU`` must be whole numbers (``ray start`` takes integers); memory and
    object store memory are bytes. A node type without ``memory`` lets Ray detect it.
    """
    args: list[str] = []
    custom: dict[str, float] = {}
    for name, amount in resources.items():
        if name in ("CPU", "GPU"):
            if float(amount) != int(amount):
                raise ConfigError(field_path(path, name), f"the local provider needs a whole number, got {amount:g}")
            args.append(f"--num-{name.lower()}s={int(amount)}")
        elif name in ("memory", "object_store_memory"):
            flag = "--memory" if name == "memory" else "--object-store-memory"
            args.append(f"{flag}={int(amount)}")
        else:
            custom[name] = float(amount)
    if "CPU" not in resources:
        args.append("--num-cpus=0")
    if "GPU" not in resources:
        args.append("--num-gpus=0")
    if custom:
        args.append("--resources=" + json.dumps(custom, sort_keys=True))
    return args


class LocalNodeProvider(NodeProvider):
    """Nodes as ``ray start --block`` process groups on this machine; see the module docstring.

    ``clock``: seconds (creation times, termination grace), ``time.time`` by default.
    ``ray_command``: how to run Ray's CLI (default: this Python's ``ray`` scripts module).
    """

    def __init__(
        self,
        provider_config: Mapping[str, Any],
        cluster_name: str,
        *,
        clock: Callable[[], float] = time.time,
        ray_command: Sequence[str] | None = None,
    ) -> None:
        check_provider_config(provider_config)
        super().__init__(provider_config, cluster_name)
        state_dir = provider_config.get("state_dir")
        self.state_dir = (Path(state_dir).expanduser() if state_dir else default_state_dir(cluster_name)).absolute()
        self.object_store_memory = int(provider_config.get("object_store_memory", DEFAULT_OBJECT_STORE_MEMORY))
        self.terminate_grace_s = float(provider_config.get("terminate_grace_s", 10.0))
        self.head_ip = str(provider_config.get("head_ip") or _routable_ip())
        self.clock = clock
        self.ray_command = list(ray_command or [sys.executable, "-m", "ray.scripts.scripts"])

    # -- state -------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.state_dir / "nodes.json"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The state, read under an exclusive lock and written back atomically on exit."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                before = json.dumps(state, sort_keys=True)
                yield state
                if json.dumps(state, sort_keys=True) != before:
                    self._write(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.state_file.read_text()
        except FileNotFoundError:
            return {"version": _STATE_VERSION, "cluster_name": self.cluster_name, "next_id": 1, "nodes": {}}
        try:
            state: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as error:
            raise ProviderError(f"{self.state_file}: corrupt state file: {error}") from None
        return state

    def _write(self, state: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=".nodes.", suffix=".json")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(state, out, indent=2, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.state_file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @property
    def head_address(self) -> str | None:
        """The head's GCS address (``ip:port``) once the head node was created."""
        with self._locked() as state:
            address = state.get("head_address")
        return str(address) if address else None

    # -- the four required calls --------------------------------------------------------

    def nodes(self, tag_filters: Mapping[str, str] | None = None) -> ProviderSnapshot:
        """Every node in the state file that is not gone, refreshed from the processes.

        A node whose ``ray start`` process exited without being asked is ``failed``; a
        node being terminated is ``terminating`` until its whole process group is gone
        (SIGKILL after the grace period), then it leaves the state file.
        """
        filters = dict(tag_filters or {})
        with self._locked() as state:
            self._refresh(state)
            listed = [
                self._as_node(node_id, record)
                for node_id, record in state["nodes"].items()
                if all(record["tags"].get(k) == v for k, v in filters.items())
            ]
        return ProviderSnapshot(sorted(listed, key=lambda n: n.id))

    def create_node(self, node_config: Mapping[str, Any], tags: Mapping[str, str], count: int) -> list[str]:
        """Start ``count`` ``ray start`` process groups; a head when tagged ``ray-node-type=head``.

        Returns as soon as the processes are started (joining Ray takes a few seconds
        more). A worker needs the head: without one, raises :class:`LaunchError`.
        """
        node_type = tags.get(TAG_USER_NODE_TYPE, "worker")
        if count <= 0:
            return []
        check_node_config(node_config, "node_config")
        is_head = tags.get(TAG_NODE_KIND) == NODE_KIND_HEAD
        if is_head and count != 1:
            raise LaunchError(node_type, count, "a cluster has exactly one head node")
        created: list[str] = []
        with self._locked() as state:
            self._refresh(state)
            if is_head:
                live_heads = [i for i, r in state["nodes"].items() if r.get("head") and r["status"] != "terminating"]
                if live_heads:
                    raise LaunchError(node_type, 1, f"the cluster already has a head node ({live_heads[0]})")
            elif not state.get("head_address"):
                raise LaunchError(node_type, count, "the cluster has no head node (start it with `rayk8s up`)")
            for _ in range(count):
                number = int(state["next_id"])
                state["next_id"] = number + 1
                kind = "head" if is_head else "worker"
                node_id = f"{self.cluster_name}-{kind}-{number}-{secrets.token_hex(2)}"
                try:
                    record = self._start(node_id, node_type, node_config, is_head, state)
                except (OSError, ConfigError) as error:
                    raise LaunchError(node_type, count - len(created), f"cannot start ray: {error}") from error
                record["tags"] = dict(tags)
                state["nodes"][node_id] = record
                created.append(node_id)
                log.info("local_node_started", node_id=node_id, node_type=node_type, pid=record["pid"])
        return created

    def terminate_nodes(self, node_ids: Sequence[str]) -> None:
        """SIGTERM each node's process group (SIGKILL follows after the grace period). Idempotent."""
        with self._locked() as state:
            now = self.clock()
            for node_id in node_ids:
                record = state["nodes"].get(node_id)
                if record is None or record["status"] == "terminating":
                    continue
                record["status"] = "terminating"
                record["terminate_requested_at"] = now
                self._signal(record, signal.SIGTERM)
                log.info("local_node_terminating", node_id=node_id)
            self._refresh(state)

    def set_node_tags(self, node_id: str, tags: Mapping[str, str]) -> None:
        with self._locked() as state:
            record = state["nodes"].get(node_id)
            if record is None:
                raise NodeNotFoundError(node_id)
            record["tags"].update(tags)

    # -- beyond the interface -----------------------------------------------------------

    def wait_gone(self, node_ids: Sequence[str] | None = None, timeout_s: float | None = None) -> list[str]:
        """Block until these nodes (default: all) have left the state file; returns those left.

        Escalates to SIGKILL after the grace period as :meth:`nodes` does. Gives up after
        ``timeout_s`` (default: the grace period plus 10 s).
        """
        limit = time.monotonic() + (self.terminate_grace_s + 10.0 if timeout_s is None else timeout_s)
        while True:
            with self._locked() as state:
                self._refresh(state)
                left = [i for i in state["nodes"] if node_ids is None or i in node_ids]
            if not left or time.monotonic() > limit:
                return left
            time.sleep(0.2)

    def terminate_all(self, *, include_head: bool = True, wait: bool = True) -> list[str]:
        """Terminate every node (workers first, then the head); with ``wait``, until gone.

        Returns the ids of the nodes still there (empty on success).
        """
        with self._locked() as state:
            workers = [i for i, r in state["nodes"].items() if not r.get("head")]
            heads = [i for i, r in state["nodes"].items() if r.get("head")]
        self.terminate_nodes(workers)
        left = self.wait_gone(workers) if wait else []
        if include_head:
            self.terminate_nodes(heads)
            if wait:
                left += self.wait_gone(heads)
        if include_head and wait and not left:
            with self._locked() as state:
                state.pop("head_address", None)
        return left

    # -- internals ----------------------------------------------------------------------

    def _start(
        self, node_id: str, node_type: str, node_config: Mapping[str, Any], is_head: bool, state: dict[str, Any]
    ) -> dict[str, Any]:
        resources = dict(node_config.get("resources", {}))
        resources.setdefault("object_store_memory", self.object_store_memory)
        # Several nodes share this machine: every port a node binds is its own pick (0, or
        # a free port for the dashboard agent, whose default is fixed), as Ray's own
        # multi-node test cluster does; one log monitor (the head's) reads every node's logs.
        args = [
            *self.ray_command,
            "start",
            "--block",
            "--disable-usage-stats",
            f"--node-ip-address={self.head_ip}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--min-worker-port=0",
            "--max-worker-port=0",
        ]
        args += ray_start_arguments(resources, "node_config.resources")
        labels = f"{LABEL_NODE_ID}={node_id},{LABEL_NODE_TYPE}={node_type}"
        args.append(f"--labels={labels}")
        env = dict(os.environ)
        env.update({"RAY_CLOUD_INSTANCE_ID": node_id, "RAY_NODE_TYPE_NAME": node_type})
        # The autoscaler drains a node through the GCS before it terminates it; on SIGTERM
        # `ray start` need not wait to drain again (node_config.env may set it back).
        env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
        env.update({str(k): str(v) for k, v in dict(node_config.get("env", {})).items()})
        record: dict[str, Any] = {"head": is_head, "node_type": node_type}
        if is_head:
            port = free_port()
            # The GCS speaks autoscaler v2 (request_resources goes through it, `ray status`
            # shows what rayk8s reports); --no-monitor: rayk8s, not Ray, is the autoscaler.
            env["RAY_enable_autoscaler_v2"] = "1"
            args += [
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                "--no-monitor",
            ]
            record["address"] = f"{self.head_ip}:{port}"
            state["head_address"] = record["address"]
        else:
            # Nodes that start at the same time in one temp dir race for the same socket
            # names (Ray numbers them by what exists): each worker gets its own, short
            # (Unix socket paths are limited to ~107 bytes), removed when the node is gone.
            _, number, suffix = node_id.rsplit("-", 2)
            temp_dir = Path(tempfile.gettempdir()) / "rayk8s" / f"{self.cluster_name[:16]}-{number}-{suffix}"
            args += [f"--address={state['head_address']}", f"--temp-dir={temp_dir}"]
            record["temp_dir"] = str(temp_dir)
        args += list(node_config.get("ray_start_args", []))
        log_path = self.log_dir / f"{node_id}.log"
        pid = spawn_detached(args, env, log_path)
        record.update(
            {
                "pid": pid,
                "pgid": pid,
                "status": "running",
                "created_at": self.clock(),
                "internal_ip": self.head_ip,
                "log": str(log_path),
                "command": args,
            }
        )
        return record

    def _leader_alive(self, pid: int) -> bool:
        return process_alive(pid)

    def _signal(self, record: Mapping[str, Any], signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(record["pgid"]), signum)

    def _refresh(self, state: dict[str, Any]) -> None:
        now = self.clock()
        for node_id, record in list(state["nodes"].items()):
            pid = int(record["pid"])
            leader = self._leader_alive(pid)
            if record["status"] == "terminating":
                group = _group_alive(int(record["pgid"]))
                if not leader and not group:
                    del state["nodes"][node_id]
                    if record.get("temp_dir"):
                        shutil.rmtree(record["temp_dir"], ignore_errors=True)
                    if record.get("head") and state.get("head_address") == record.get("address"):
                        state.pop("head_address", None)
                    log.info("local_node_gone", node_id=node_id)
                elif now - float(record["terminate_requested_at"]) >= self.terminate_grace_s:
                    self._signal(record, signal.SIGKILL)
                    if not record.get("killed"):
                        record["killed"] = True
                        log.warning("local_node_killed", node_id=node_id, grace_s=self.terminate_grace_s)
            elif not leader and record["status"] != "failed":
                record["status"] = "failed"
                log.warning("local_node_exited", node_id=node_id, log=record.get("log"))

    def _as_node(self, node_id: str, record: Mapping[str, Any]) -> ProviderNode:
        return ProviderNode(
            id=node_id,
            status=ProviderNodeStatus(record["status"]),
            tags=record["tags"],
            created_at=float(record["created_at"]),
            internal_ip=record.get("internal_ip"),
        )
