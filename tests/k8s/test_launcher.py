"""`rayk8s up/down/attach/exec/monitor/status/get-head-ip` on the real control plane.

KWOK serves the exec API by running commands on this machine (in the control plane's
``exec_home``), so the launcher's exec path runs end to end: set-up and start commands,
file copies, the bootstrap config and the autoscaler monitor (a real
``python -m rayk8s.launcher.monitor`` process that uses the Kubernetes provider against
this API server; its Ray GCS does not exist, so its load reads fail and it launches
nothing). The commands in these configs are harmless ``echo``s: they run on this host.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api
from kubernetes.client.exceptions import ApiException

from rayk8s.errors import APIForbiddenError, RayK8sError
from rayk8s.launcher import ClusterConfig, KubernetesCluster
from rayk8s.providers.kubernetes import KubernetesNodeProvider
from rayk8s.testing import ControlPlane
from tests.k8s._helpers import service_account_with_role, wait_for, worker_tags

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "examples" / "kubernetes" / "example-full.yaml"
CLUSTER_LABEL = "ray-cluster-name"


def raw_config(name: str, namespace: str, control_plane: ControlPlane) -> dict[str, Any]:
    """The seed's example, renamed, pointed at the test namespace, with harmless commands."""
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    raw["cluster_name"] = name
    provider = raw["provider"]
    provider["namespace"] = namespace
    provider["kubeconfig"] = str(control_plane.kubeconfig)
    provider["delete_grace_period_s"] = 0
    service = provider["services"][0]
    service["metadata"]["name"] = f"{name}-ray-head"
    service["spec"]["selector"] = {"component": f"{name}-ray-head"}
    raw["available_node_types"]["head_node"]["node_config"]["metadata"]["labels"] = {"component": f"{name}-ray-head"}
    raw["head_setup_commands"] = [f"echo set-up >> ~/{name}-setup.log"]
    raw["head_start_ray_commands"] = [f"echo start >> ~/{name}-start.log"]
    raw["file_mounts"] = {f"~/{name}-mounts/example.yaml": str(EXAMPLE)}
    return raw


def write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / f"{raw['cluster_name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def home(control_plane: ControlPlane) -> Iterator[Path]:
    """The directory exec'ed commands run in, with the admin kubeconfig as ``~/.kube/config``.

    The autoscaler monitor `up` starts there finds no in-cluster credentials (there is no
    pod), so it uses that kubeconfig. Whatever monitor a test leaves running is stopped.
    """
    home = control_plane.exec_home
    kube = home / ".kube"
    kube.mkdir(parents=True, exist_ok=True)
    shutil.copy(control_plane.kubeconfig, kube / "config")
    yield home
    pid_file = home / "rayk8s" / "monitor.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text())
        if "rayk8s.launcher.monitor" in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGTERM)


@contextlib.contextmanager
def cluster_of(
    raw: dict[str, Any], api_client: ApiClient, lines: list[str] | None = None, **kwargs: Any
) -> Iterator[KubernetesCluster]:
    """The launcher for ``raw`` on ``api_client``; what it prints goes to ``lines``."""
    echo = lines.append if lines is not None else (lambda line: None)
    cluster = KubernetesCluster(ClusterConfig.from_dict(raw), echo=echo, api_client=api_client, **kwargs)
    try:
        yield cluster
    finally:
        cluster.close()


def rayk8s(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m rayk8s ARGS`` as a user runs it (a real process, its own stdin/stdout)."""
    return subprocess.run(
        [sys.executable, "-m", "rayk8s", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def objects(api_client: ApiClient, namespace: str) -> dict[str, dict[str, str]]:
    """Every object of the kinds `up` makes, in the namespace: ``{"Kind/name": {"rv": ..., "cluster": ...}}``."""
    core = CoreV1Api(api_client)
    rbac = RbacAuthorizationV1Api(api_client)
    found: dict[str, dict[str, str]] = {}
    listings = {
        "ServiceAccount": core.list_namespaced_service_account,
        "Role": rbac.list_namespaced_role,
        "RoleBinding": rbac.list_namespaced_role_binding,
        "Service": core.list_namespaced_service,
        "Pod": core.list_namespaced_pod,
    }
    for kind, call in listings.items():
        for item in call(namespace).items:
            if item.metadata.deletion_timestamp:
                continue
            labels = item.metadata.labels or {}
            found[f"{kind}/{item.metadata.name}"] = {
                "rv": item.metadata.resource_version,
                "cluster": labels.get(CLUSTER_LABEL, ""),
            }
    return found


def test_up_creates_exactly_the_expected_objects(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path
) -> None:
    """RBAC, the head Service and one head pod, labelled; commands, files and the autoscaler on the head."""
    raw = raw_config("lc-up", namespace, control_plane)
    before = objects(api_client, namespace)
    lines: list[str] = []
    with cluster_of(raw, api_client, lines) as cluster:
        head = cluster.up()
        after = objects(api_client, namespace)
        created = {key: value for key, value in after.items() if key not in before}
        assert set(created) == {
            "ServiceAccount/autoscaler",
            "Role/autoscaler",
            "RoleBinding/autoscaler",
            "Service/lc-up-ray-head",
            f"Pod/{head.id}",
        }
        assert all(value["cluster"] == "lc-up" for value in created.values())
        core = CoreV1Api(api_client)
        pod = core.read_namespaced_pod(head.id, namespace)
        assert head.id.startswith("lc-up-ray-head-")
        assert pod.metadata.labels["ray-node-type"] == "head"
        assert pod.metadata.labels["ray-user-node-type"] == "head_node"
        assert pod.metadata.labels["component"] == "lc-up-ray-head"
        assert pod.spec.service_account_name == "autoscaler"
        service = core.read_namespaced_service("lc-up-ray-head", namespace)
        assert {p.port for p in service.spec.ports} == {10001, 8265, 6379}
        assert service.spec.selector == {"component": "lc-up-ray-head"}
        rbac = RbacAuthorizationV1Api(api_client)
        binding = rbac.read_namespaced_role_binding("autoscaler", namespace)
        assert binding.role_ref.name == "autoscaler"
        assert [(s.kind, s.name) for s in binding.subjects] == [("ServiceAccount", "autoscaler")]

        # What ran in the head pod (through the exec API).
        assert (home / "lc-up-setup.log").read_text() == "set-up\n"
        assert (home / "lc-up-start.log").read_text() == "start\n"
        assert (home / "lc-up-mounts" / "example.yaml").read_bytes() == EXAMPLE.read_bytes()
        bootstrap = ClusterConfig.from_file(home / "ray_bootstrap_config.yaml")
        assert bootstrap.cluster_name == "lc-up"
        assert "kubeconfig" not in bootstrap.provider  # the head uses its own credentials
        # The autoscaler on the head runs and sees the head pod through the Kubernetes provider.
        log = home / "rayk8s" / "monitor.log"

        def update_seen() -> dict[str, Any] | None:
            for line in log.read_text().splitlines():
                event = json.loads(line)
                if event.get("event") == "autoscaler_update" and event.get("cluster") == "lc-up":
                    return event
            return None

        update = wait_for("an autoscaler update in the monitor's log", update_seen, timeout_s=90)
        assert update["nodes"] == {"head_node": 1}
        assert update["launched"] == {}
        assert any("Head pod" in line and "created" in line for line in lines)
        cluster.down()


def test_a_second_up_changes_nothing(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path
) -> None:
    """Same resourceVersions after a second `up`; set-up does not run again; start runs again unless --no-restart."""
    raw = raw_config("lc-again", namespace, control_plane)
    lines: list[str] = []
    with cluster_of(raw, api_client, lines) as cluster:
        first = cluster.up()
        before = objects(api_client, namespace)
        second = cluster.up()
        assert second.id == first.id
        assert objects(api_client, namespace) == before
        cluster.up(restart=False)
        assert objects(api_client, namespace) == before
        assert (home / "lc-again-setup.log").read_text() == "set-up\n"
        assert (home / "lc-again-start.log").read_text() == "start\nstart\n"
        assert any("unchanged" in line for line in lines)
        cluster.down()


def test_up_on_an_unchanged_cluster_only_reads_and_execs(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path
) -> None:
    """A second `up` (a new launcher, as a second `rayk8s up` is) creates, patches and deletes
    nothing: one read per RBAC object and Service, the pod list and watch, and the execs."""
    raw = raw_config("lc-reads", namespace, control_plane)
    with cluster_of(raw, api_client) as cluster:
        cluster.up()
    with cluster_of(raw, api_client) as cluster:
        cluster.up()
        calls = cluster.provider.api_calls.snapshot()
        cluster.down()
    print("API calls of a second up:", sorted(calls.items()), "total", sum(calls.values()))
    writes = {key: n for key, n in calls.items() if key[0] in ("create", "patch", "delete") and key[1] != "pods/exec"}
    assert writes == {}
    assert {key: n for key, n in calls.items() if key[0] == "get"} == {
        ("get", "serviceaccounts"): 1,
        ("get", "roles"): 1,
        ("get", "rolebindings"): 1,
        ("get", "services"): 1,
    }


def test_up_asks_before_it_launches_or_restarts_and_no_changes_nothing(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path
) -> None:
    """As `ray up`: one question before launching a cluster, before restarting Ray on a running
    head, and with --no-restart before running changed set-up commands (none when they are
    unchanged); an answer of no changes nothing."""
    raw = raw_config("lc-ask", namespace, control_plane)
    asked: list[str] = []

    def answer(reply: bool) -> Any:
        def confirm(question: str) -> bool:
            asked.append(question)
            return reply

        return confirm

    before = objects(api_client, namespace)
    with cluster_of(raw, api_client) as cluster:
        with pytest.raises(RayK8sError, match=r"^aborted: nothing was changed$"):
            cluster.up(confirm=answer(False))
        assert asked == [f"No head pod found. Launch cluster 'lc-ask' in namespace {namespace!r}?"]
        assert objects(api_client, namespace) == before
        head = cluster.up(confirm=answer(True))
        made = objects(api_client, namespace)
        asked.clear()
        with pytest.raises(RayK8sError, match=r"^aborted: nothing was changed$"):
            cluster.up(confirm=answer(False))
        assert asked == [f"Cluster 'lc-ask' is running. Restart Ray on the head pod {head.id}?"]
        assert (home / "lc-ask-start.log").read_text() == "start\n"  # Ray was not restarted
        assert objects(api_client, namespace) == made
        asked.clear()
        cluster.up(restart=False, confirm=answer(False))  # nothing running changes: nothing to ask
        assert asked == []
    raw["head_setup_commands"].append("echo more >> ~/lc-ask-setup.log")
    with cluster_of(raw, api_client) as cluster:
        with pytest.raises(RayK8sError, match=r"^aborted: nothing was changed$"):
            cluster.up(restart=False, confirm=answer(False))
        assert asked == [f"Run the changed set-up commands on the head pod {head.id} (Ray keeps running)?"]
        assert (home / "lc-ask-setup.log").read_text() == "set-up\n"
        cluster.down()


def test_up_without_a_terminal_or_yes_fails_in_one_line_and_timeout_is_checked(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """`rayk8s up` with stdin not a terminal and no --yes refuses at once (never waits for an
    answer), naming --yes, and creates nothing; --timeout must be a positive number of seconds."""
    path = write(tmp_path, raw_config("lc-tty", namespace, control_plane))
    before = objects(api_client, namespace)
    refused = rayk8s("up", str(path), stdin="y\n", timeout=60)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"rayk8s: error: No head pod found. Launch cluster 'lc-tty' in namespace {namespace!r}?"
        " -- no terminal to answer on (stdin is not a TTY); pass --yes to answer yes\n"
    )
    assert objects(api_client, namespace) == before
    for value in ("0", "-3", "soon"):
        bad = rayk8s("up", str(path), "--yes", "--timeout", value)
        assert bad.returncode == 2
        assert "Invalid value for '--timeout'" in bad.stderr
    assert objects(api_client, namespace) == before


def test_a_changed_config_updates_only_what_changed(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path
) -> None:
    """A new Role rule patches the Role; new set-up commands run; the head pod stays."""
    raw = raw_config("lc-change", namespace, control_plane)
    with cluster_of(raw, api_client) as cluster:
        head = cluster.up()
    before = objects(api_client, namespace)
    raw["provider"]["autoscaler_role"]["rules"].append(
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
    )
    raw["head_setup_commands"].append("echo more >> ~/lc-change-setup.log")
    with cluster_of(raw, api_client) as cluster:
        assert cluster.up().id == head.id
        after = objects(api_client, namespace)
        changed = {key for key in before if before[key]["rv"] != after[key]["rv"]}
        # The Role, and the head pod's runtime-config label (the set-up it has had).
        assert changed == {"Role/autoscaler", f"Pod/{head.id}"}
        assert (home / "lc-change-setup.log").read_text() == "set-up\nset-up\nmore\n"
        cluster.down()


def test_down_removes_what_up_created_and_nothing_else(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path, tmp_path: Path
) -> None:
    """Unrelated pods, Services and ServiceAccounts stay; a second `down` removes nothing."""
    core = CoreV1Api(api_client)
    core.create_namespaced_pod(
        namespace, {"metadata": {"name": "unrelated"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    )
    core.create_namespaced_service(
        namespace, {"metadata": {"name": "unrelated"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    )
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "unrelated"}})
    before = objects(api_client, namespace)
    path = write(tmp_path, raw_config("lc-down", namespace, control_plane))
    up = rayk8s("up", str(path), "--yes")
    assert up.returncode == 0, up.stderr
    assert "rayk8s attach" in up.stdout  # the attach command is printed
    with cluster_of(raw_config("lc-down", namespace, control_plane), api_client) as cluster:
        worker_type = "worker_node"
        tags = worker_tags("lc-down", node_type=worker_type)
        (worker,) = cluster.provider.create_node(cluster.node_configs[worker_type], tags, 1)
    down = rayk8s("down", str(path), "--yes")
    assert down.returncode == 0, down.stderr
    for kind_name in (
        f"pod {worker}",
        "Service lc-down-ray-head",
        "Role autoscaler",
        "RoleBinding autoscaler",
        "ServiceAccount autoscaler",
    ):
        assert f"removed {kind_name}" in down.stdout
    # The unrelated pod's status (hence resourceVersion) moves on as it starts: compare names.
    wait_for("only the unrelated objects to be left", lambda: objects(api_client, namespace).keys() == before.keys())
    assert core.read_namespaced_service("unrelated", namespace).spec.ports[0].port == 80
    again = rayk8s("down", str(path), "--yes")
    assert again.returncode == 0, again.stderr
    assert "nothing to remove" in again.stdout


def test_two_clusters_share_the_default_rbac_and_down_hands_it_over(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path
) -> None:
    """The second cluster's head runs as the first's ``autoscaler`` ServiceAccount: the first
    `down` keeps the RBAC objects and relabels them as the second's, whose `down` removes them."""
    rbac_names = ("ServiceAccount/autoscaler", "Role/autoscaler", "RoleBinding/autoscaler")
    lines: list[str] = []
    with (
        cluster_of(raw_config("lc-first", namespace, control_plane), api_client, lines) as first,
        cluster_of(raw_config("lc-second", namespace, control_plane), api_client) as second,
    ):
        first.up()
        second.up()
        removed = first.down()
        assert not any(item.endswith(" autoscaler") for item in removed), removed
        found = objects(api_client, namespace)
        assert {found[name]["cluster"] for name in rbac_names} == {"lc-second"}
        assert any("handed over to lc-second" in line for line in lines)
        removed = second.down()
        assert {"ServiceAccount autoscaler", "Role autoscaler", "RoleBinding autoscaler"} <= set(removed)

    def only_unlabelled_left() -> dict[str, dict[str, str]] | None:
        found = objects(api_client, namespace)
        return None if any(info["cluster"] for info in found.values()) else found

    wait_for("both clusters' objects to go", only_unlabelled_left)


def test_down_workers_only_keeps_the_head(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path
) -> None:
    """`down --workers-only` deletes the worker pods and stops the autoscaler; head, Services and RBAC stay."""
    raw = raw_config("lc-workers", namespace, control_plane)
    with cluster_of(raw, api_client) as cluster:
        head = cluster.up()
        (worker,) = cluster.provider.create_node(
            cluster.node_configs["worker_node"], worker_tags("lc-workers", node_type="worker_node"), 1
        )
        removed = cluster.down(workers_only=True)
        assert removed == ["autoscaler process on the head", f"pod {worker}"]
        left = wait_for(
            "the worker pod to go",
            lambda: (found := objects(api_client, namespace)) and f"Pod/{worker}" not in found and found,
        )
        assert f"Pod/{head.id}" in left and "Service/lc-workers-ray-head" in left and "Role/autoscaler" in left
        cluster.down()


def test_a_worker_pod_carries_the_start_commands(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path
) -> None:
    """The API server accepts the worker template with its postStart hook and RAY_HEAD_IP."""
    raw = raw_config("lc-hook", namespace, control_plane)
    with cluster_of(raw, api_client) as cluster:
        (worker,) = cluster.provider.create_node(
            cluster.node_configs["worker_node"], worker_tags("lc-hook", node_type="worker_node"), 1
        )
        pod = CoreV1Api(api_client).read_namespaced_pod(worker, namespace)
        container = pod.spec.containers[0]
        assert container.lifecycle.post_start._exec.command[-1].endswith("ray start --address=$RAY_HEAD_IP:6379")
        assert [(e.name, e.value) for e in container.env] == [("RAY_HEAD_IP", "lc-hook-ray-head")]
        cluster.down()


def test_the_created_rbac_is_enough_for_the_autoscaler(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path
) -> None:
    """As the ServiceAccount `up` made, the Kubernetes provider lists, launches, tags and deletes pods."""
    raw = raw_config("lc-rbac", namespace, control_plane)
    with cluster_of(raw, api_client) as cluster:
        cluster.up()
        worker_config = cluster.node_configs["worker_node"]
        with (
            control_plane.service_account_client(namespace, "autoscaler") as sa_client,
            KubernetesNodeProvider(raw["provider"], "lc-rbac", api_client=sa_client) as provider,
        ):
            assert not provider.nodes().partial
            assert provider.ensure_services() == {"lc-rbac-ray-head": "unchanged"}
            (worker,) = provider.create_node(worker_config, worker_tags("lc-rbac", node_type="worker_node"), 1)
            provider.set_node_tags(worker, {"ray-node-status": "up-to-date"})
            provider.terminate_nodes([worker])
            with pytest.raises(ApiException) as raised:  # and no more than that
                CoreV1Api(sa_client).list_namespaced_secret(namespace)
            assert raised.value.status == 403
        cluster.down()


def test_exec_attach_monitor_status_and_get_head_ip(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path, tmp_path: Path
) -> None:
    """The head commands as a user runs them: output streamed, exit codes passed through."""
    path = write(tmp_path, raw_config("lc-exec", namespace, control_plane))
    assert rayk8s("up", str(path), "--yes").returncode == 0
    with cluster_of(raw_config("lc-exec", namespace, control_plane), api_client) as cluster:
        head = cluster.running_head()

    ran = rayk8s("exec", str(path), "echo out; echo err >&2; exit 7")
    assert (ran.returncode, ran.stdout, ran.stderr) == (7, "out\n", "err\n")
    ok = rayk8s("exec", str(path), "cat ~/lc-exec-start.log")
    assert (ok.returncode, ok.stdout) == (0, "start\n")

    attached = rayk8s("attach", str(path), stdin="echo attached-to $HOME\nexit 4\n")
    assert attached.returncode == 4
    assert attached.stdout == f"attached-to {home}\n"

    monitor = rayk8s("monitor", str(path), "--no-follow", "-n", "1000")
    assert monitor.returncode == 0
    assert '"monitor_started"' in monitor.stdout

    ip = rayk8s("get-head-ip", str(path))
    assert (ip.returncode, ip.stdout) == (0, f"{head.internal_ip}\n")

    status = rayk8s("status", str(path))
    assert status.returncode == 0
    assert f"Head: {head.id} running at {head.internal_ip}" in status.stdout
    assert rayk8s("down", str(path), "--yes").returncode == 0


def _set_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _take_terminal() -> None:  # in the child: the pty on stdin becomes its controlling terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_attach_on_a_terminal_gives_the_remote_shell_its_size_and_resizes(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path, tmp_path: Path
) -> None:
    """`rayk8s attach` on a terminal (a pty here): the remote terminal starts at our size, and
    when ours is resized (the kernel sends SIGWINCH) the new size reaches it over the exec's
    resize channel — `stty size` in the remote shell reports both. KWOK gives the exec a pty."""
    raw = raw_config("lc-tty-attach", namespace, control_plane)
    with cluster_of(raw, api_client) as cluster:
        cluster.up()
    path = write(tmp_path, raw)
    master, slave = os.openpty()
    _set_size(slave, 27, 91)
    process = subprocess.Popen(
        [sys.executable, "-m", "rayk8s", "attach", str(path)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        start_new_session=True,
        preexec_fn=_take_terminal,
    )
    os.close(slave)
    seen = bytearray()

    def read_until(*texts: bytes) -> bool:
        while select.select([master], [], [], 0.1)[0]:
            with contextlib.suppress(OSError):
                seen.extend(os.read(master, 4096))
        return any(text in seen for text in texts)

    try:
        wait_for("the remote shell's prompt", lambda: read_until(b"# ", b"$ "), timeout_s=60)

        def reported(size: bytes) -> Callable[[], bool]:
            def probe() -> bool:  # ask the remote terminal its size until it answers ``size``
                if read_until(size):
                    return True
                os.write(master, b"stty size\r")
                return False

            return probe

        wait_for("the first size", reported(b"27 91"), timeout_s=60, interval_s=1.0)
        _set_size(master, 40, 120)  # the kernel signals the attach process (SIGWINCH)
        wait_for("the new size", reported(b"40 120"), timeout_s=30, interval_s=1.0)
        os.write(master, b"exit 5\r")
        assert process.wait(30) == 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        os.close(master)
        print(seen.decode(errors="replace"))  # shown when the test fails
    with cluster_of(raw, api_client) as cluster:
        cluster.down()


def test_exec_when_the_head_is_not_running_or_exec_is_forbidden(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path, tmp_path: Path
) -> None:
    """One line: the head is pending (with the scheduler's reason); exec forbidden names `create pods/exec`."""
    raw = raw_config("lc-noexec", namespace, control_plane)
    with cluster_of(raw, api_client) as cluster:
        cluster.apply_rbac()
        tags = cluster._head_tags()
        head_config = dict(cluster.node_configs["head_node"])
        head_config["spec"] = {**head_config["spec"], "nodeSelector": {"no-such": "node"}}
        (pending,) = cluster.provider.create_node(head_config, tags, 1)
        wait_for("the scheduler's verdict", lambda: (n := cluster.provider.node(pending)) and n.unschedulable)
        path = write(tmp_path, raw)
        ran = rayk8s("exec", str(path), "true")
        assert ran.returncode == 1
        assert ran.stderr.count("\n") == 1
        assert f"the head pod {pending} is pending, not running (0/3 nodes are available" in ran.stderr
        cluster.provider.terminate_nodes([pending])

        cluster.up()
        rules = [{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]}]
        service_account_with_role(api_client, namespace, "viewer", rules)
        with (
            control_plane.service_account_client(namespace, "viewer") as viewer,
            cluster_of(raw, viewer) as as_viewer,
        ):
            with pytest.raises(APIForbiddenError) as raised:
                as_viewer.exec("true")
            assert str(raised.value).startswith("create pods/exec failed (403)")
            assert 'is forbidden: User "system:serviceaccount:' in str(raised.value)
            assert 'resource "pods/exec"' in str(raised.value)
        cluster.down()


def test_forbidden_and_missing_namespace_are_one_line(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """`up` without permissions names the verb and resource; a missing namespace says how to create it."""
    raw = raw_config("lc-denied", namespace, control_plane)
    with (
        control_plane.service_account_client(namespace, "default") as nobody,
        cluster_of(raw, nobody) as cluster,
        pytest.raises(APIForbiddenError) as raised,
    ):
        cluster.up()
    assert str(raised.value).startswith("list pods failed (403)")  # the first call: is there a head?
    assert 'cannot list resource "pods"' in str(raised.value)
    assert objects(api_client, namespace).keys() == {"ServiceAccount/default"}

    missing = raw_config("lc-missing", "no-such-namespace", control_plane)
    result = rayk8s("up", str(write(tmp_path, missing)), "--yes")
    assert result.returncode == 1
    assert result.stderr == (
        "rayk8s: error: namespace 'no-such-namespace' does not exist (provider.namespace);"
        " create it with `kubectl create namespace no-such-namespace`\n"
    )


def test_a_head_stuck_pending_or_failing_to_pull_is_reported_with_the_reason(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path, tmp_path: Path
) -> None:
    """`up --timeout` reports the scheduler's reason while waiting and after the timeout; an ErrImagePull at once."""
    raw = raw_config("lc-stuck", namespace, control_plane)
    raw["available_node_types"]["head_node"]["node_config"]["spec"]["nodeSelector"] = {"no-such": "node"}
    stuck = rayk8s("up", str(write(tmp_path, raw)), "--yes", "--timeout", "6.5")
    assert stuck.returncode == 1
    progress, error = stuck.stderr.splitlines()[-2:]
    assert progress.startswith("Waiting for head pod lc-stuck-ray-head-")
    assert "(5 s of 6.5 s): pending: 0/3 nodes are available" in progress
    assert "is still pending after 6.5 s: 0/3 nodes are available" in error

    # The kubelet (here: the test, through the API) reports an image pull failure.
    with cluster_of(raw, api_client, head_timeout_s=120) as cluster:
        (head,) = [n.id for n in cluster.nodes("head")]
        outcome: list[BaseException] = []

        def run_up() -> None:
            try:
                cluster.up()
            except BaseException as error:
                outcome.append(error)

        thread = threading.Thread(target=run_up)
        thread.start()
        status = {
            "status": {
                "containerStatuses": [
                    {
                        "name": "ray-node",
                        "image": "rayproject/ray:latest",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}},
                    }
                ]
            }
        }
        CoreV1Api(api_client).patch_namespaced_pod_status(head, namespace, status)
        thread.join(timeout=60)
        assert not thread.is_alive()
        (error,) = outcome
        assert str(error) == (f"the head pod {head} cannot start: container ray-node: ErrImagePull: pull access denied")
        cluster.down()
        with contextlib.suppress(ApiException):
            CoreV1Api(api_client).delete_namespaced_pod(head, namespace, grace_period_seconds=0)


def test_file_mounts_copy_directories_and_large_files(
    api_client: ApiClient, control_plane: ControlPlane, namespace: str, home: Path, tmp_path: Path
) -> None:
    """A mounted directory arrives whole (nested files too); a file larger than one exec's chunk arrives intact."""
    source = tmp_path / "project"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "module.py").write_text("VALUE = 1\n")
    blob = os.urandom(300_000)
    (source / "blob.bin").write_bytes(blob)
    raw = raw_config("lc-mounts", namespace, control_plane)
    raw["file_mounts"] = {"~/lc-mounts/project": str(source), "~/lc-mounts/blob.bin": str(source / "blob.bin")}
    with cluster_of(raw, api_client) as cluster:
        cluster.up()
        assert (home / "lc-mounts" / "project" / "pkg" / "module.py").read_text() == "VALUE = 1\n"
        assert (home / "lc-mounts" / "project" / "blob.bin").read_bytes() == blob
        assert (home / "lc-mounts" / "blob.bin").read_bytes() == blob
        assert not list((home / "lc-mounts").glob("*.rayk8s-part"))
        cluster.down()
