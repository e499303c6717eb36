"""``rayk8s attach / exec / monitor / get-head-ip CONFIG``: the head pod of a Kubernetes cluster.

All go through the Kubernetes exec API (``kubernetes.stream``); a head that is not
running, or an exec the credentials may not make, is one line on stderr.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

import click

from rayk8s.cli._cluster import kubernetes_cluster
from rayk8s.cli._main import main

__all__ = ["attach_command", "exec_command", "get_head_ip_command", "monitor_command"]


def _out(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _err(data: bytes) -> None:
    sys.stderr.buffer.write(data)
    sys.stderr.buffer.flush()


@contextlib.contextmanager
def _raw_terminal() -> Iterator[None]:
    """Our terminal in raw mode while a remote terminal is attached (restored afterwards)."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _TerminalSize:
    """Our terminal's size for the remote one: once at the start, then after each SIGWINCH.

    Called by the exec loop (:func:`~rayk8s.providers.kubernetes._exec.pod_exec`): returns
    ``(columns, rows)`` when there is a size to send, else ``None``.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.changed = True

    def __call__(self) -> tuple[int, int] | None:
        if not self.changed:
            return None
        self.changed = False  # before reading: a resize from now on is sent next time
        try:
            size = os.get_terminal_size(self.fd)
        except OSError:
            return None
        return size.columns, size.lines

    def on_resize(self, signum: int, frame: object) -> None:
        self.changed = True


@contextlib.contextmanager
def _terminal_size() -> Iterator[_TerminalSize]:
    """The size of the terminal on stdin, tracked through SIGWINCH (the old handler restored afterwards)."""
    size = _TerminalSize(sys.stdin.fileno())
    previous = signal.signal(signal.SIGWINCH, size.on_resize)
    try:
        yield size
    finally:
        signal.signal(signal.SIGWINCH, previous)


@main.command("exec", short_help="Run a shell command in the head pod.")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("command")
def exec_command(config: str, command: str) -> None:
    """Run COMMAND with /bin/sh -c in the head pod; stream its output; exit with its exit code."""
    with kubernetes_cluster(config, "exec") as cluster:
        code = cluster.exec(command, stdout=_out, stderr=_err)
    raise click.exceptions.Exit(code)


@main.command("attach", short_help="Open a shell in the head pod.")
@click.argument("config", type=click.Path(dir_okay=False))
def attach_command(config: str) -> None:
    """An interactive shell (bash if there is one) in the head pod.

    With a terminal on stdin the remote shell gets a terminal too, of the same size,
    resized with it; otherwise stdin is read as the shell's input
    (`echo 'ray status' | rayk8s attach CONFIG`).
    """
    interactive = sys.stdin.isatty()
    flag = " -i" if interactive else ""
    shell = f"command -v bash >/dev/null 2>&1 && exec bash{flag} || exec sh{flag}"
    with kubernetes_cluster(config, "attach") as cluster:
        stdin = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0) if _has_fileno() else sys.stdin.buffer
        with contextlib.ExitStack() as stack:
            stack.enter_context(stdin)
            size = None
            if interactive:
                stack.enter_context(_raw_terminal())
                size = stack.enter_context(_terminal_size())
            code = cluster.exec(shell, stdin=stdin, stdout=_out, stderr=_err, tty=interactive, terminal_size=size)
    raise click.exceptions.Exit(code)


def _has_fileno() -> bool:
    try:
        sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


@main.command("monitor", short_help="Follow the autoscaler's log on the head.")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-n", "--lines", default=100, show_default=True, help="Lines of history to show first.")
@click.option("--no-follow", is_flag=True, help="Print the last lines and stop.")
def monitor_command(config: str, lines: int, no_follow: bool) -> None:
    """Print the autoscaler's log on the head pod and follow it (Ctrl-C stops)."""
    with kubernetes_cluster(config, "monitor") as cluster, contextlib.suppress(KeyboardInterrupt):
        code = cluster.monitor(lines=lines, follow=not no_follow, stdout=_out)
        raise click.exceptions.Exit(code)


@main.command("get-head-ip", short_help="Print the head pod's IP.")
@click.argument("config", type=click.Path(dir_okay=False))
def get_head_ip_command(config: str) -> None:
    """Print the IP of the running head pod (a cluster-internal address)."""
    with kubernetes_cluster(config, "get-head-ip") as cluster:
        click.echo(cluster.head_ip())
