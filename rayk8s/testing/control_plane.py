"""A real Kubernetes control plane for tests, started from Python.

``ControlPlane.start()`` runs ``scripts/control-plane start`` in a fresh state
directory: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
KWOK (which plays the kubelet for fake Nodes), all on 127.0.0.1 with free
ports. The binaries come from ``KUBEBUILDER_ASSETS`` when set, else from the
build cache; a missing build is made first (needs Go), with progress written to
stderr. Everything the script prints is passed through to stderr as it
arrives, so a long build is visible.

Example::

    with ControlPlane.start(nodes=2) as cp:
        client = kubernetes.config.new_client_from_config(str(cp.kubeconfig))
        ...

Only the API server is reachable: pod IPs and ClusterIPs are addresses that
nothing listens on. The exec API works: KWOK serves ``pods/exec`` for every pod
by running the command on this machine, in :attr:`ControlPlane.exec_home` (also
its ``HOME``), so ``kubectl exec`` and ``kubernetes.stream`` really run
commands; there is no container, so every pod shares that directory.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from rayk8s.errors import RayK8sError

if TYPE_CHECKING:
    from typing import Self

    from kubernetes.client import ApiClient

__all__ = ["ControlPlane", "ControlPlaneError", "control_plane_script"]


class ControlPlaneError(RayK8sError, RuntimeError):
    """The control plane could not be built, started or stopped.

    ``str(error)`` is one line saying what failed; ``details`` holds the end of
    the script's output (which includes the failing component's log tail).
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def control_plane_script() -> Path:
    """The ``scripts/control-plane`` to run.

    ``RAYK8S_CONTROL_PLANE_SCRIPT`` wins; otherwise the script of the source
    tree this package was imported from.
    """
    override = os.environ.get("RAYK8S_CONTROL_PLANE_SCRIPT")
    script = Path(override) if override else Path(__file__).resolve().parents[2] / "scripts" / "control-plane"
    if not script.is_file():
        raise ControlPlaneError(
            f"cannot find the control-plane script at {script}; run from a rayk8s "
            "source checkout or set RAYK8S_CONTROL_PLANE_SCRIPT"
        )
    return script


def _run_script(args: list[str], *, echo: bool) -> None:
    """Run the script; stream its stderr to ours; raise with its error line."""
    command = ["bash", str(control_plane_script()), *args]
    tail: collections.deque[str] = collections.deque(maxlen=80)
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        for line in process.stderr or ():
            tail.append(line)
            if echo:
                sys.stderr.write(line)
                sys.stderr.flush()
        returncode = process.wait()
    if returncode != 0:
        errors = [line.split("error:", 1)[1].strip() for line in tail if "error:" in line]
        reason = errors[0] if errors else f"exited with status {returncode}"
        raise ControlPlaneError(f"scripts/control-plane {args[0]} failed: {reason}", "".join(tail))


class ControlPlane:
    """A running control plane; stop it with :meth:`stop` or a ``with`` block.

    Attributes:
        directory: the state directory (PKI, kubeconfigs, logs under ``logs/``).
        kubeconfig: path of an admin kubeconfig (client certificate in
            ``system:masters``; the server certificate is verified with ``ca_file``).
        server: the API server URL, ``https://127.0.0.1:<port>``.
        ca_file: the CA that signed the API server's certificate; use it to verify
            TLS for clients built from other credentials (service-account tokens).
        nodes: how many fake Nodes were created (``kwok-node-0`` ...).
        exec_home: where commands exec'ed into any pod run (their ``HOME``; this
            source tree is on their ``PYTHONPATH``).
    """

    def __init__(self, directory: Path, server: str, nodes: int, *, owns_directory: bool) -> None:
        self.directory = directory
        self.kubeconfig = directory / "kubeconfig"
        self.server = server
        self.ca_file = directory / "pki" / "ca.crt"
        self.exec_home = directory / "kwok" / "home"
        self.nodes = nodes
        self._owns_directory = owns_directory
        self._stopped = False

    @classmethod
    def start(
        cls,
        nodes: int = 3,
        node_cpu: str = "8",
        node_memory: str = "32Gi",
        *,
        node_pods: int = 110,
        with_scheduler: bool = True,
        with_controller_manager: bool = True,
        with_kwok: bool = True,
        directory: Path | None = None,
        etcd_compaction_interval: str = "5m",
        timeout_s: int = 120,
        echo: bool = True,
    ) -> ControlPlane:
        """Build if needed, start, and wait until everything is healthy.

        Args:
            nodes: fake Nodes to create (managed by KWOK); 0 for none.
            node_cpu: cpu capacity and allocatable of each Node (a quantity).
            node_memory: memory capacity and allocatable of each Node (a quantity).
            node_pods: pods capacity of each Node.
            with_scheduler: run kube-scheduler (pods get bound to Nodes).
            with_controller_manager: run kube-controller-manager (garbage
                collection, service accounts and their tokens, namespaces, ...).
            with_kwok: run KWOK; without it no Node is created.
            directory: state directory; a fresh temporary one (removed on stop)
                when None.
            etcd_compaction_interval: how often kube-apiserver compacts etcd's
                history (a Go duration; Kubernetes' default is 5m). A watch from a
                compacted resourceVersion gets 410 Gone; a short interval lets a
                test see that within seconds.
            timeout_s: seconds each component may take to become healthy.
            echo: copy the script's progress and errors to stderr as they come.

        Raises:
            ControlPlaneError: the build or a component failed; the message is
                one line, ``details`` has the log tail.
        """
        owns = directory is None
        state = Path(tempfile.mkdtemp(prefix="rayk8s-cp-")) if directory is None else directory
        args = [
            "start",
            "--dir", str(state),
            "--nodes", str(nodes if with_kwok else 0),
            "--node-cpu", node_cpu,
            "--node-memory", node_memory,
            "--node-pods", str(node_pods),
            "--timeout", str(timeout_s),
            "--etcd-compaction-interval", etcd_compaction_interval,
        ]  # fmt: skip
        if not with_scheduler:
            args.append("--no-scheduler")
        if not with_controller_manager:
            args.append("--no-controller-manager")
        if not with_kwok:
            args.append("--no-kwok")
        try:
            _run_script(args, echo=echo)
        except BaseException:
            # The script stops what it started when it fails; this covers the
            # script itself being interrupted from here.
            with contextlib.suppress(ControlPlaneError):
                _run_script(["stop", "--dir", str(state)], echo=False)
            if owns:
                shutil.rmtree(state, ignore_errors=True)
            raise
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in (state / "env").read_text().splitlines()
            if "=" in line
        )
        plane = cls(
            state,
            env["RAYK8S_CP_SERVER"],
            nodes if with_kwok else 0,
            owns_directory=owns,
        )
        atexit.register(plane.stop)  # no leftover processes if the caller forgets
        return plane

    @staticmethod
    def build(*, echo: bool = True) -> None:
        """Build the binaries into the cache unless present (or in KUBEBUILDER_ASSETS)."""
        _run_script(["build"], echo=echo)

    def stop(self) -> None:
        """Stop every process and remove the state directory we created. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        _run_script(["stop", "--dir", str(self.directory)], echo=False)
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def service_account_token(self, namespace: str, name: str, *, expiration_s: int = 600) -> str:
        """A token for ServiceAccount ``namespace/name`` from the TokenRequest API (asked as admin)."""
        import kubernetes.client
        import kubernetes.config
        from kubernetes.client import AuthenticationV1TokenRequest, V1TokenRequestSpec

        admin_client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        with admin_client as admin:
            spec = V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_s)
            core = kubernetes.client.CoreV1Api(admin)
            answer = core.create_namespaced_service_account_token(
                name, namespace, AuthenticationV1TokenRequest(spec=spec)
            )
        if answer.status is None or not answer.status.token:
            raise ControlPlaneError(f"the TokenRequest for ServiceAccount {namespace}/{name} returned no token")
        return str(answer.status.token)

    def service_account_client(self, namespace: str, name: str, *, expiration_s: int = 600) -> ApiClient:
        """An API client authenticated as ServiceAccount ``namespace/name`` (RBAC applies).

        Asks the TokenRequest API for a token with the admin credentials; the server's
        certificate is verified with ``ca_file``. Close the client when done.
        """
        import kubernetes.client

        token = self.service_account_token(namespace, name, expiration_s=expiration_s)
        configuration = kubernetes.client.Configuration()
        configuration.host = self.server
        configuration.ssl_ca_cert = str(self.ca_file)
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return kubernetes.client.ApiClient(configuration)

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path, *, expiration_s: int = 3600) -> Path:
        """Write a kubeconfig at ``path`` that authenticates as ServiceAccount ``namespace/name``.

        For a program run as a separate process (an operator) under that account's RBAC;
        its default namespace is ``namespace``. Returns ``path``.
        """
        import yaml

        token = self.service_account_token(namespace, name, expiration_s=expiration_s)
        user = f"{namespace}-{name}"
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "rayk8s", "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "rayk8s", "user": user, "namespace": namespace}}],
            "current-context": user,
        }
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        return path

    def log_path(self, component: str) -> Path:
        """The log file of ``etcd``, ``kube-apiserver``, ``kube-scheduler``, ... ."""
        return self.directory / "logs" / f"{component}.log"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<ControlPlane {self.server} nodes={self.nodes} {state} dir={self.directory}>"
