"""``rayk8s up/down/attach/exec/monitor/status/get-head-ip`` for ``provider.type: kubernetes``.

``up`` creates (or brings up to date) the autoscaler's ServiceAccount, Role and
RoleBinding, the Services and the head pod; waits until the head runs (printing the
scheduler's reason while it is Pending, failing at once on an image pull failure); copies
``file_mounts``; runs the set-up commands (only when they or the mounted files changed)
and the head start commands (unless ``--no-restart``) in the head pod through the exec
API; writes the bootstrap config to ``~/ray_bootstrap_config.yaml`` on the head and
(re)starts rayk8s's autoscaler there (``python -m rayk8s.launcher.monitor``, the
Kubernetes provider with the head's in-cluster credentials). Everything it creates is
labelled ``ray-cluster-name=<cluster>``; ``down`` deletes exactly the labelled objects.

Workers start Ray without an exec from the autoscaler: the worker pod template gets a
``postStart`` hook running ``setup_commands``, ``worker_setup_commands`` and
``worker_start_ray_commands``, and ``RAY_HEAD_IP`` (the head Service's name) in its
environment (:func:`kubernetes_node_configs`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import shlex
import sys
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs
import yaml
from kubernetes.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api

from rayk8s.autoscaler import AutoscalerConfig
from rayk8s.autoscaler._ports import ProviderNode, ProviderNodeStatus
from rayk8s.errors import APIConflictError, APIError, APIForbiddenError, APINotFoundError, ConfigError, RayK8sError
from rayk8s.launcher._config import ClusterConfig, KubernetesFields
from rayk8s.providers._tags import (
    NODE_KIND_HEAD,
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_CONFIG,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)
from rayk8s.providers.kubernetes import HEAD_PORTS, KubernetesNodeProvider, KubernetesProviderConfig
from rayk8s.providers.kubernetes._api import ApiCallCounter, ApiCaller, read_or_none, response_json, server_has
from rayk8s.providers.kubernetes._exec import pod_exec
from rayk8s.providers.kubernetes._pods import waiting_problem
from rayk8s.providers.kubernetes._provider import client_from_config

__all__ = [
    "BOOTSTRAP_PATH",
    "MONITOR_DIR",
    "KubernetesCluster",
    "bootstrap_config",
    "kubernetes_autoscaler_config",
    "kubernetes_node_configs",
]

Echo = Callable[[str], None]

#: Where ``up`` writes the bootstrap config on the head (Ray's path).
BOOTSTRAP_PATH = "~/ray_bootstrap_config.yaml"
#: The autoscaler's directory on the head: ``monitor.log``, ``monitor.out``, ``monitor.pid``, ``status.txt``.
MONITOR_DIR = "~/rayk8s"
#: The tag recording which set-up (commands and mounted files) the head has had (Ray's name).
TAG_RUNTIME_CONFIG = "ray-runtime-config"
#: How long ``up`` waits for the autoscaler on the head to start.
MONITOR_TIMEOUT_S = 60.0
#: Stops the monitor whose pid is in {pid_file} (SIGTERM, then up to 10 s for its update to end).
_STOP_MONITOR = """old=
if [ -f {pid_file} ]; then
  old=$(cat {pid_file}); rm -f {pid_file}
  if kill "$old" 2>/dev/null; then
    i=0; while [ $i -lt 100 ] && kill -0 "$old" 2>/dev/null; do i=$((i + 1)); sleep 0.1; done
  else
    old=
  fi
fi"""
#: Bytes per exec when copying a file (kept well under the kernel's per-argument limit).
_CHUNK = 96 * 1024
_SHELL = ("/bin/sh", "-c")


def _home(path: str) -> str:
    """``path`` quoted for sh, with a leading ``~`` made ``$HOME``."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def kubernetes_node_configs(config: ClusterConfig) -> dict[str, dict[str, Any]]:
    """Each node type's pod template as the cluster launches it.

    The head's gets ``serviceAccountName`` (the autoscaler's ServiceAccount) unless it
    names one. A worker's first container gets ``RAY_HEAD_IP`` (the head Service, in the
    same namespace) and a ``postStart`` hook that runs ``setup_commands``, the type's (or
    the config's) ``worker_setup_commands`` and ``worker_start_ray_commands`` with
    ``set -e``. Raises :class:`ConfigError` when a worker template already has a
    ``postStart`` hook and there are commands to run.
    """
    fields = _fields(config)
    commands = config.commands
    out: dict[str, dict[str, Any]] = {}
    for name, spec in config.node_types.items():
        template = copy.deepcopy(dict(spec.node_config))
        path = f"available_node_types.{name}.node_config"
        pod_spec = template.setdefault("spec", {})
        if not isinstance(pod_spec, dict):
            raise ConfigError(f"{path}.spec", "expected the pod spec (a mapping with containers)")
        if name == config.head_node_type:
            pod_spec.setdefault("serviceAccountName", fields.service_account_name)
            out[name] = template
            continue
        worker_setup = spec.setup.get("worker_setup_commands")
        setup = commands.setup_commands + (
            tuple(worker_setup) if worker_setup is not None else commands.worker_setup_commands
        )
        script = setup + commands.worker_start_ray_commands
        containers = pod_spec.get("containers")
        if not script or not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
            out[name] = template
            continue
        add_start_hook(containers[0], script, config.cluster_name, f"{path}.spec.containers[0]")
        out[name] = template
    return out


def add_start_hook(container: dict[str, Any], script: Sequence[str], cluster_name: str, path: str) -> None:
    """Give a Ray container ``RAY_HEAD_IP`` (the head Service's name) and a ``postStart`` hook
    running ``script`` with ``set -e``. Raises :class:`ConfigError` at ``<path>.lifecycle.postStart``
    if the container already has such a hook."""
    env = container.setdefault("env", [])
    if not any(isinstance(item, Mapping) and item.get("name") == "RAY_HEAD_IP" for item in env):
        env.append({"name": "RAY_HEAD_IP", "value": f"{cluster_name}-ray-head"})
    lifecycle = container.setdefault("lifecycle", {})
    if "postStart" in lifecycle:
        raise ConfigError(
            f"{path}.lifecycle.postStart",
            "rayk8s runs the set-up and start commands as this hook; remove it or the commands",
        )
    lifecycle["postStart"] = {"exec": {"command": [*_SHELL, "\n".join(("set -e", *script))]}}


def kubernetes_autoscaler_config(config: ClusterConfig) -> AutoscalerConfig:
    """The autoscaler config of a Kubernetes cluster (pod templates as launched)."""
    return config.to_autoscaler_config(kubernetes_node_configs(config))


def bootstrap_config(config: ClusterConfig) -> dict[str, Any]:
    """The config the autoscaler on the head reads: this one, with in-cluster credentials."""
    raw = config.to_dict()
    raw["provider"] = {k: v for k, v in raw["provider"].items() if k not in ("kubeconfig", "context")}
    return raw


def _fields(config: ClusterConfig) -> KubernetesFields:
    if config.kubernetes is None:
        raise ConfigError("provider.type", f"expected kubernetes, got {config.provider.get('type')!r}")
    return config.kubernetes


def _runtime_hash(config: ClusterConfig, mounts: Sequence[tuple[str, bytes, bool]]) -> str:
    """A digest of what the head's set-up depends on: the set-up commands and the mounted files."""
    digest = hashlib.sha256()
    digest.update(json.dumps(list(config.commands.setup_for(head=True))).encode())
    for remote, data, is_dir in mounts:
        digest.update(f"{remote}:{is_dir}:".encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:40]


def _read_mounts(config: ClusterConfig) -> list[tuple[str, bytes, bool]]:
    """``file_mounts`` as ``(remote path, bytes, is a directory tarball)``, read now."""
    mounts = []
    base = config.source.parent if config.source is not None else Path.cwd()
    for remote, local in config.commands.file_mounts.items():
        path = (base / Path(local).expanduser()).resolve()
        if path.is_dir():
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
                for item in sorted(path.rglob("*")):
                    archive.add(item, arcname=str(item.relative_to(path)), recursive=False)
            mounts.append((remote, buffer.getvalue(), True))
        elif path.is_file():
            mounts.append((remote, path.read_bytes(), False))
        else:
            raise ConfigError(f"file_mounts.{remote}", f"no such local file or directory: {path}")
    return mounts


@attrs.define
class KubernetesCluster:
    """One Ray cluster on Kubernetes as the launcher manages it.

    ``KubernetesCluster(config, echo=..., api_client=None, output=...)``: ``echo`` gets
    progress lines, ``output`` the output of the commands ``up`` runs in the head pod
    (default: our stderr). Without ``api_client`` the client comes from
    ``provider.kubeconfig``/``context`` or the default kubeconfig.
    ``head_timeout_s``: how long ``up`` waits for the head pod to run (``up --timeout``). Close it with
    :meth:`close` (or use it as a context manager).
    """

    config: ClusterConfig
    echo: Echo = print
    api_client: ApiClient | None = None
    output: Callable[[bytes], None] = attrs.field(factory=lambda: _to_stderr)
    head_timeout_s: float = 300.0
    provider: KubernetesNodeProvider = attrs.field(init=False)
    _owns_client: bool = attrs.field(init=False, default=False)
    fields: KubernetesFields = attrs.field(init=False)
    node_configs: dict[str, dict[str, Any]] = attrs.field(init=False)
    autoscaler_config: AutoscalerConfig = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.fields = _fields(self.config)
        self.node_configs = kubernetes_node_configs(self.config)
        self.autoscaler_config = self.config.to_autoscaler_config(self.node_configs)
        provider_config = KubernetesProviderConfig.from_dict(self.config.provider)
        owns_client = self.api_client is None
        client = self.api_client if self.api_client is not None else client_from_config(provider_config)
        try:
            caller = ApiCaller(ApiCallCounter(self.name), provider_config.retry)
            self.check_access(CoreV1Api(client), caller)
        except BaseException:
            if owns_client:
                _close(client)
            raise
        self.provider = KubernetesNodeProvider(self.config.provider, self.name, api_client=client)
        self._owns_client = owns_client

    def close(self) -> None:
        self.provider.close()
        if self._owns_client:
            _close(self.provider.api_client)

    def __enter__(self) -> KubernetesCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def name(self) -> str:
        return self.config.cluster_name

    @property
    def namespace(self) -> str:
        return self.fields.namespace

    @property
    def core(self) -> CoreV1Api:
        return self.provider.core

    def _call(self, verb: str, resource: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.provider.caller.call(verb, resource, function, *args, **kwargs)

    # -- checks ------------------------------------------------------------------------

    def check_access(self, core: CoreV1Api, caller: ApiCaller) -> None:
        """One clear error for an unreachable API server or a missing namespace (on construction).

        Reads the namespace: 404 means it does not exist; 403 (no permission to read
        namespaces) is fine, later calls say what is forbidden.
        """
        host = core.api_client.configuration.host
        try:
            caller.call("get", "namespaces", core.read_namespace, self.namespace, _preload_content=False)
        except APINotFoundError:
            raise RayK8sError(
                f"namespace {self.namespace!r} does not exist (provider.namespace); create it with"
                f" `kubectl create namespace {self.namespace}`"
            ) from None
        except APIForbiddenError:
            return
        except APIError as error:
            if error.status == 0:
                raise RayK8sError(f"cannot reach the Kubernetes API server at {host}: {error.reason}") from None
            raise

    # -- queries -----------------------------------------------------------------------

    def nodes(self, kind: str | None = None) -> list[ProviderNode]:
        """The cluster's pods that are not terminating (``kind``: head or worker only).

        A pod list the credentials may not make raises its :class:`APIForbiddenError` at
        once, rather than after the provider's wait for its first list.
        """
        cache = self.provider.cache
        deadline = time.monotonic() + self.provider.config.sync_timeout_s
        while not cache.wait_synced(0.1) and time.monotonic() < deadline:
            if isinstance(cache.last_error, APIForbiddenError):
                raise cache.last_error
        snapshot = self.provider.nodes({TAG_CLUSTER_NAME: self.name})
        if snapshot.partial:
            raise RayK8sError(f"cannot list the pods of cluster {self.name!r}: {snapshot.detail}")
        return [
            node
            for node in snapshot.nodes
            if node.status is not ProviderNodeStatus.TERMINATING
            and (kind is None or node.tags.get(TAG_NODE_KIND) == kind)
        ]

    def head(self) -> ProviderNode | None:
        heads = self.nodes(NODE_KIND_HEAD)
        running = [node for node in heads if node.status is ProviderNodeStatus.RUNNING]
        candidates = running or heads
        return candidates[0] if candidates else None

    def running_head(self) -> ProviderNode:
        """The head pod if it runs; else a one-line error saying where it stands."""
        head = self.head()
        if head is None:
            raise RayK8sError(
                f"cluster {self.name!r} has no head pod in namespace {self.namespace!r} (run `rayk8s up`)"
            )
        if head.status is not ProviderNodeStatus.RUNNING:
            raise RayK8sError(f"the head pod {head.id} is {head.status.value}, not running{self._why(head)}")
        return head

    def _why(self, node: ProviderNode) -> str:
        pod = next((p for p in self.provider.cache.pods() if (p.get("metadata") or {}).get("name") == node.id), None)
        problem = waiting_problem(pod) if pod is not None else None
        reason = problem or node.unschedulable
        return f" ({reason})" if reason else ""

    def head_ip(self) -> str:
        head = self.running_head()
        if not head.internal_ip:
            raise RayK8sError(f"the head pod {head.id} has no IP yet")
        return head.internal_ip

    # -- exec --------------------------------------------------------------------------

    def exec(
        self,
        command: str,
        *,
        stdout: Callable[[bytes], None] | None = None,
        stderr: Callable[[bytes], None] | None = None,
        stdin: bytes | IO[bytes] | None = None,
        tty: bool = False,
        terminal_size: Callable[[], tuple[int, int] | None] | None = None,
        pod: str | None = None,
    ) -> int:
        """Run ``command`` with ``/bin/sh -c`` in the head pod (or ``pod``); returns its exit code.

        ``tty`` and ``terminal_size``: a remote terminal, and its size as it changes (see :func:`pod_exec`).
        """
        name = pod or self.running_head().id
        self.provider.api_calls.add("create", "pods/exec")
        return pod_exec(
            self.core,
            self.namespace,
            name,
            [*_SHELL, command],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            tty=tty,
            terminal_size=terminal_size,
        )

    def _run(self, command: str, what: str, *, quiet: bool = False) -> bytes:
        """Run a launcher command on the head; its output (stdout and stderr) or an error naming ``what``."""
        output = bytearray()

        def keep(data: bytes) -> None:
            output.extend(data)
            if not quiet:
                self.output(data)

        code = self.exec(command, stdout=keep, stderr=keep)
        if code != 0:
            tail = bytes(output).decode("utf-8", "replace").strip().splitlines()[-5:]
            raise RayK8sError(f"{what} exited with status {code}" + (f": {' | '.join(tail)}" if tail else ""))
        return bytes(output)

    def copy_to_head(self, data: bytes, remote: str, *, extract: bool = False) -> None:
        """Write ``data`` to ``remote`` on the head (a gzip tarball unpacked into it with ``extract``)."""
        encoded = base64.b64encode(data).decode()
        target = _home(remote)
        part = _home(remote.rstrip("/") + ".rayk8s-part")
        parent = f'"$(dirname {target})"'
        prepare = f"mkdir -p {target}" if extract else f"mkdir -p {parent}"
        unpack = f"tar -xzf - -C {target}" if extract else f"cat > {target}"
        if len(encoded) <= _CHUNK:  # one exec
            self._run(f"{prepare} && printf %s {encoded} | base64 -d | {unpack}", f"writing {remote}", quiet=True)
            return
        self._run(f"{prepare} && : > {part}", f"preparing {remote}", quiet=True)
        for start in range(0, len(encoded), _CHUNK):
            chunk = encoded[start : start + _CHUNK]
            self._run(f"printf %s {chunk} >> {part}", f"copying to {remote}", quiet=True)
        finish = f"base64 -d {part} | tar -xzf - -C {target}" if extract else f"base64 -d {part} > {target}"
        self._run(f"{finish} && rm -f {part}", f"writing {remote}", quiet=True)

    # -- up ----------------------------------------------------------------------------

    def up(self, *, restart: bool = True, confirm: Callable[[str], bool] | None = None) -> ProviderNode:
        """Create or update the cluster; returns the running head. See the module docstring.

        Before it changes anything, ``up`` asks ``confirm`` the one question
        :meth:`up_question` gives (launch, replace the head, restart Ray, run changed
        set-up); an answer of no raises :class:`RayK8sError` with nothing changed.
        ``confirm=None`` answers yes (``--yes``).
        """
        mounts = _read_mounts(self.config)
        runtime = _runtime_hash(self.config, mounts)
        head: ProviderNode | None = self.head()
        question = self.up_question(head, restart=restart, runtime=runtime)
        if question is not None and confirm is not None and not confirm(question):
            raise RayK8sError("aborted: nothing was changed")
        self.apply_rbac()
        for name, outcome in self.provider.ensure_services().items():
            self.echo(f"Service {name}: {outcome}")
        head = self._ensure_head(head)
        head = self._wait_running(head.id)
        self.echo(f"Head pod {head.id} is running (IP {head.internal_ip})")
        fresh = head.tags.get(TAG_RUNTIME_CONFIG) != runtime
        if fresh:
            for remote, data, is_dir in mounts:
                self.echo(f"Copying {remote} to the head")
                self.copy_to_head(data, remote, extract=is_dir)
            self._run_commands("setup", self.config.commands.setup_for(head=True))
        else:
            self.echo("File mounts and set-up commands: unchanged since the last `up`, not run again")
        if fresh or restart:
            self._run_commands("head_start_ray_commands", self.config.commands.head_start_ray_commands)
        else:
            self.echo("Ray on the head: not restarted (--no-restart)")
        if fresh:
            self.provider.set_node_tags(head.id, {TAG_RUNTIME_CONFIG: runtime})
        self.start_monitor(head)
        return head

    def apply_rbac(self) -> None:
        """Create or update the autoscaler's ServiceAccount, Role and RoleBinding; print what was done.

        Each is read first: created if missing, patched if it differs, else left (a
        second ``up`` only reads them).

        An object of that name that rayk8s did not create (no ``ray-cluster-name`` label
        of this cluster) is used as it is and never deleted by ``down``.
        """
        rbac = RbacAuthorizationV1Api(self.provider.api_client)
        plan: list[tuple[str, Mapping[str, Any], Any, Any, Any, tuple[str, ...]]] = [
            (
                "serviceaccounts",
                self.fields.service_account,
                self.core.create_namespaced_service_account,
                self.core.read_namespaced_service_account,
                self.core.patch_namespaced_service_account,
                (),
            ),
            (
                "roles",
                self.fields.role,
                rbac.create_namespaced_role,
                rbac.read_namespaced_role,
                rbac.patch_namespaced_role,
                ("rules",),
            ),
            (
                "rolebindings",
                self.fields.role_binding,
                rbac.create_namespaced_role_binding,
                rbac.read_namespaced_role_binding,
                rbac.patch_namespaced_role_binding,
                ("subjects", "roleRef"),
            ),
        ]
        for resource, manifest, create, read, patch, keys in plan:
            body = self._labelled(manifest)
            name = body["metadata"]["name"]
            kind = body.get("kind", resource)
            current = read_or_none(self.provider.caller, resource, read, name, self.namespace)
            if current is None:
                try:
                    self._call(
                        "create", resource, create, self.namespace, body, idempotent=False, _preload_content=False
                    )
                except APIConflictError:  # made since we read: compare with that one
                    current = read_or_none(self.provider.caller, resource, read, name, self.namespace) or {}
                else:
                    self.echo(f"{kind} {name}: created")
                    continue
            labels = (current.get("metadata") or {}).get("labels") or {}
            if labels.get(TAG_CLUSTER_NAME) != self.name:
                self.echo(f"{kind} {name}: exists and was not created by rayk8s for this cluster; used as it is")
                continue
            wanted = {key: body.get(key) for key in keys}
            if all(server_has(current.get(key), value) for key, value in wanted.items()) and server_has(
                labels, {**labels, **body["metadata"]["labels"]}
            ):
                self.echo(f"{kind} {name}: unchanged")
                continue
            if resource == "rolebindings" and not server_has(current.get("roleRef"), body.get("roleRef")):
                # roleRef cannot change: replace the binding.
                self._call("delete", resource, rbac.delete_namespaced_role_binding, name, self.namespace)
                self._call("create", resource, create, self.namespace, body, idempotent=False, _preload_content=False)
            else:
                patch_body = {"metadata": {"labels": body["metadata"]["labels"]}, **wanted}
                self._call(
                    "patch",
                    resource,
                    patch,
                    name,
                    self.namespace,
                    patch_body,
                    _content_type="application/merge-patch+json",
                    _preload_content=False,
                )
            self.echo(f"{kind} {name}: updated")

    def _labelled(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(dict(manifest))
        metadata = body.setdefault("metadata", {})
        metadata.pop("namespace", None)
        metadata["labels"] = {**(metadata.get("labels") or {}), TAG_CLUSTER_NAME: self.name}
        return body

    def _head_tags(self) -> dict[str, str]:
        head_type = self.config.head_node_type
        return {
            TAG_CLUSTER_NAME: self.name,
            TAG_NODE_KIND: NODE_KIND_HEAD,
            TAG_USER_NODE_TYPE: head_type,
            TAG_NODE_STATUS: STATUS_UP_TO_DATE,
            TAG_LAUNCH_CONFIG: self.autoscaler_config.launch_config_hash(head_type),
        }

    def up_question(self, head: ProviderNode | None, *, restart: bool, runtime: str) -> str | None:
        """What ``up`` asks before acting on ``head`` (the cluster's head pod, or ``None``), as Ray's
        ``ray up`` does; ``None`` when it changes nothing running (``--no-restart``, set-up unchanged).

        ``runtime``: the digest of the set-up commands and mounted files ``up`` would apply.
        """
        name, namespace = self.name, self.namespace
        if head is None:
            return f"No head pod found. Launch cluster {name!r} in namespace {namespace!r}?"
        if head.status is ProviderNodeStatus.FAILED:
            return f"The head pod {head.id} has failed. Replace it (a new head for cluster {name!r})?"
        if head.tags.get(TAG_LAUNCH_CONFIG) != self._head_tags()[TAG_LAUNCH_CONFIG]:
            return f"The head pod {head.id} was made from another head node_config. Replace it (Ray restarts)?"
        if restart and head.status is not ProviderNodeStatus.RUNNING:
            return f"The head pod {head.id} is {head.status.value}. Wait for it and start Ray on it again?"
        if restart:
            return f"Cluster {name!r} is running. Restart Ray on the head pod {head.id}?"
        if head.tags.get(TAG_RUNTIME_CONFIG) != runtime:
            return f"Run the changed set-up commands on the head pod {head.id} (Ray keeps running)?"
        return None

    def _ensure_head(self, head: ProviderNode | None) -> ProviderNode:
        """The head pod: ``head`` if it is up to date, else a new one (``head`` deleted first)."""
        tags = self._head_tags()
        if head is not None and head.status is ProviderNodeStatus.FAILED:
            self.echo(f"Head pod {head.id} has failed; replacing it")
            self._delete_and_wait([head.id])
            head = None
        if head is not None and head.tags.get(TAG_LAUNCH_CONFIG) != tags[TAG_LAUNCH_CONFIG]:
            self.echo(f"Replacing head pod {head.id} (its node_config changed)")
            self._delete_and_wait([head.id])
            head = None
        if head is not None:
            self.echo(f"Head pod {head.id}: exists")
            return head
        (name,) = self.provider.create_node(self.node_configs[self.config.head_node_type], tags, 1)
        self.echo(f"Head pod {name}: created")
        node = self.provider.node(name)
        return node if node is not None else ProviderNode(name, ProviderNodeStatus.PENDING, tags)

    def _delete_and_wait(self, names: Sequence[str], timeout_s: float = 120.0) -> None:
        self.provider.terminate_nodes(names)
        deadline = time.monotonic() + timeout_s
        while any(self.provider.node(name) is not None for name in names):
            if time.monotonic() > deadline:
                raise RayK8sError(f"pods {', '.join(names)} were not gone within {timeout_s:.0f} s")
            time.sleep(0.2)

    def _wait_running(self, name: str) -> ProviderNode:
        started = time.monotonic()
        last = -10.0
        while True:
            node = self.provider.node(name)
            waited = time.monotonic() - started
            if node is None:
                raise RayK8sError(f"the head pod {name} disappeared while starting")
            if node.status is ProviderNodeStatus.RUNNING and node.internal_ip:
                return node
            if node.status is ProviderNodeStatus.FAILED:
                raise RayK8sError(f"the head pod {name} failed{self._why(node)}")
            pod = next((p for p in self.provider.cache.pods() if (p.get("metadata") or {}).get("name") == name), {})
            problem = waiting_problem(pod)
            if problem:
                raise RayK8sError(f"the head pod {name} cannot start: {problem}")
            if waited > self.head_timeout_s:
                reason = node.unschedulable or "no reason reported"
                raise RayK8sError(
                    f"the head pod {name} is still {node.status.value} after {self.head_timeout_s:g} s: {reason}"
                )
            if waited - last >= 5.0:
                detail = f": {node.unschedulable}" if node.unschedulable else ""
                progress = f"{waited:.0f} s of {self.head_timeout_s:g} s"
                self.echo(f"Waiting for head pod {name} ({progress}): {node.status.value}{detail}")
                last = waited
            time.sleep(0.2)

    def _run_commands(self, what: str, commands: Sequence[str]) -> None:
        for index, command in enumerate(commands):
            self.echo(f"[{what} {index + 1}/{len(commands)}] {command}")
            self._run(command, f"{what}[{index}] ({command!r})")

    # -- the autoscaler on the head ----------------------------------------------------

    def start_monitor(self, head: ProviderNode) -> None:
        """Write the bootstrap config to the head and (re)start the autoscaler there.

        Waits (up to ``MONITOR_TIMEOUT_S``) until it logs ``monitor_started``; raises
        with the end of its log if it exits first.
        """
        text = yaml.safe_dump(bootstrap_config(self.config), sort_keys=False)
        self.copy_to_head(text.encode(), BOOTSTRAP_PATH)
        directory = _home(MONITOR_DIR)
        log = _home(f"{MONITOR_DIR}/monitor.log")
        out = _home(f"{MONITOR_DIR}/monitor.out")
        pid_file = _home(f"{MONITOR_DIR}/monitor.pid")
        address = f"{head.internal_ip}:{HEAD_PORTS['gcs']}"
        tries = int(MONITOR_TIMEOUT_S * 10)
        script = f"""
mkdir -p {directory} && touch {log} {out}
{_STOP_MONITOR.format(pid_file=pid_file)}
n=$(wc -l < {log})
nohup python -m rayk8s.launcher.monitor {_home(BOOTSTRAP_PATH)} --address {address} --state-dir {directory} \
  >> {out} 2>&1 < /dev/null &
pid=$!
echo $pid > {pid_file}
i=0
while [ $i -lt {tries} ]; do
  tail -n +$((n + 1)) {log} | grep -q '"monitor_started"' && exit 0
  state=$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -c1)
  if [ -z "$state" ] || [ "$state" = Z ]; then break; fi
  i=$((i + 1)); sleep 0.1
done
echo "--- {MONITOR_DIR}/monitor.log:"; tail -n +$((n + 1)) {log} | tail -n 3
echo "--- {MONITOR_DIR}/monitor.out:"; tail -n 5 {out}
exit 3
"""
        output = bytearray()
        code = self.exec(script, stdout=output.extend, stderr=output.extend)
        if code != 0:
            detail = " | ".join(line for line in bytes(output).decode("utf-8", "replace").splitlines() if line.strip())
            raise RayK8sError(f"the autoscaler on the head pod {head.id} did not start: {detail}")
        self.echo(f"The autoscaler runs on the head (log: {MONITOR_DIR}/monitor.log; follow it with `rayk8s monitor`)")

    def stop_monitor(self) -> bool:
        """Stop the autoscaler on the head if it runs there; True if one was stopped."""
        head = self.head()
        if head is None or head.status is not ProviderNodeStatus.RUNNING:
            return False
        pid_file = _home(f"{MONITOR_DIR}/monitor.pid")
        return self.exec(_STOP_MONITOR.format(pid_file=pid_file) + '\n[ -n "$old" ]') == 0

    def monitor(self, *, lines: int = 100, follow: bool = True, stdout: Callable[[bytes], None]) -> int:
        """Print the autoscaler's log on the head (the last ``lines``, then follow it)."""
        log = _home(f"{MONITOR_DIR}/monitor.log")
        out = _home(f"{MONITOR_DIR}/monitor.out")
        flag = "-F" if follow else ""
        return self.exec(f"touch {log} {out}; tail -q -n {int(lines)} {flag} {out} {log}", stdout=stdout, stderr=stdout)

    # -- down --------------------------------------------------------------------------

    def down(self, *, workers_only: bool = False) -> list[str]:
        """Delete the workers, then (unless ``workers_only``) the head, the Services and RBAC.

        Only objects labelled ``ray-cluster-name=<cluster>`` are deleted. Returns what
        was removed, as ``"<kind> <name>"``; idempotent (nothing left: an empty list).
        """
        removed: list[str] = []
        try:
            if self.stop_monitor():
                removed.append("autoscaler process on the head")
        except APIError as error:
            if workers_only:  # it would launch the workers again
                raise RayK8sError(f"cannot stop the autoscaler on the head: {error}") from None
            self.echo(f"note: cannot stop the autoscaler on the head ({error}); it goes with the head pod")
        workers = [node.id for node in self.nodes(NODE_KIND_WORKER)]
        if workers:
            self.provider.terminate_nodes(workers)
            removed.extend(f"pod {name}" for name in workers)
        if workers_only:
            return removed
        heads = [node.id for node in self.nodes(NODE_KIND_HEAD)]
        if heads:
            self.provider.terminate_nodes(heads)
            removed.extend(f"pod {name}" for name in heads)
        selector = f"{TAG_CLUSTER_NAME}={self.name}"
        rbac = RbacAuthorizationV1Api(self.provider.api_client)
        # RBAC objects another cluster's head still runs as are handed over (relabelled), not deleted.
        heir = next(iter(self._other_clusters_using_the_service_account()), None)
        core = self.core
        listings: list[tuple[str, str, Any, Any, Any]] = [
            ("Service", "services", core.list_namespaced_service, core.delete_namespaced_service, None),
            (
                "RoleBinding",
                "rolebindings",
                rbac.list_namespaced_role_binding,
                rbac.delete_namespaced_role_binding,
                rbac.patch_namespaced_role_binding,
            ),
            ("Role", "roles", rbac.list_namespaced_role, rbac.delete_namespaced_role, rbac.patch_namespaced_role),
            (
                "ServiceAccount",
                "serviceaccounts",
                core.list_namespaced_service_account,
                core.delete_namespaced_service_account,
                core.patch_namespaced_service_account,
            ),
        ]
        for kind, resource, list_call, delete_call, patch_call in listings:
            listing = self._call(
                "list", resource, list_call, self.namespace, label_selector=selector, _preload_content=False
            )
            for item in response_json(listing).get("items") or []:
                name = item["metadata"]["name"]
                if heir is not None and patch_call is not None:
                    body = {"metadata": {"labels": {TAG_CLUSTER_NAME: heir}}}
                    self._call(
                        "patch",
                        resource,
                        patch_call,
                        name,
                        self.namespace,
                        body,
                        _content_type="application/merge-patch+json",
                        _preload_content=False,
                    )
                    self.echo(f"kept {kind} {name}: cluster {heir}'s head runs as it; handed over to {heir}")
                    continue
                try:
                    self._call("delete", resource, delete_call, name, self.namespace, _preload_content=False)
                except APINotFoundError:
                    continue
                removed.append(f"{kind} {name}")
        return removed

    def _other_clusters_using_the_service_account(self) -> list[str]:
        """Other clusters whose pods run as this cluster's autoscaler ServiceAccount, by name.

        Two clusters in one namespace share the default RBAC objects (``autoscaler``):
        the first ``up`` creates them, the second uses them as they are. Deleting them
        with the first cluster would leave the second's autoscaler without permissions.
        """
        account = self.fields.service_account_name
        pods = response_json(
            self._call("list", "pods", self.core.list_namespaced_pod, self.namespace, _preload_content=False)
        )
        clusters = set()
        for pod in pods.get("items") or []:
            labels = (pod.get("metadata") or {}).get("labels") or {}
            owner = labels.get(TAG_CLUSTER_NAME)
            if owner and owner != self.name and (pod.get("spec") or {}).get("serviceAccountName") == account:
                clusters.add(owner)
        return sorted(clusters)

    # -- status ------------------------------------------------------------------------

    def status(self) -> str:
        """The pods, the Services and the autoscaler's last status summary."""
        nodes = self.nodes()
        head = next((n for n in nodes if n.tags.get(TAG_NODE_KIND) == NODE_KIND_HEAD), None)
        lines = [f"Cluster {self.name!r} (provider kubernetes, namespace {self.namespace})"]
        if head is None:
            lines.append("Head: no head pod (start it with `rayk8s up`)")
        else:
            lines.append(f"Head: {head.id} {head.status.value}{' at ' + head.internal_ip if head.internal_ip else ''}")
        workers = [n for n in nodes if n.tags.get(TAG_NODE_KIND) != NODE_KIND_HEAD]
        lines.append(f"Worker pods: {len(workers)}")
        for node in workers:
            lines.append(f"  {node.id}  {node.node_type}  {node.status.value}  {node.internal_ip or ''}".rstrip())
        if head is not None and head.status is ProviderNodeStatus.RUNNING:
            output = bytearray()
            status_file = _home(f"{MONITOR_DIR}/status.txt")
            try:
                code = self.exec(f"cat {status_file}", stdout=output.extend, stderr=lambda data: None)
            except APIError as error:
                lines.append(f"Autoscaler status: unavailable ({error})")
            else:
                if code == 0 and output:
                    lines.extend(["", bytes(output).decode("utf-8", "replace").rstrip()])
                else:
                    lines.append("Autoscaler status: none yet (see `rayk8s monitor`)")
        return "\n".join(lines)


def _to_stderr(data: bytes) -> None:
    sys.stderr.buffer.write(data)
    sys.stderr.buffer.flush()


def _close(client: Any) -> None:
    client.close()
