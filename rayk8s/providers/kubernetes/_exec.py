"""Running a command in a pod through the Kubernetes exec API (``kubernetes.stream``).

:func:`pod_exec` opens ``pods/exec`` over a websocket (``v5.channel.k8s.io``, else v4),
streams stdin in and stdout/stderr out as they come, and returns the command's exit
code, read from the exec's final Status (:func:`exit_code_of`). A handshake refused by
the API server becomes the :mod:`rayk8s.errors` class for its status, naming the call
(``create pods/exec``), so a user who may not exec sees "forbidden" and why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import yaml
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from rayk8s.errors import APIError
from rayk8s.providers.kubernetes._api import map_api_error

__all__ = ["exit_code_of", "pod_exec", "resize_message"]

Sink = Callable[[bytes], None]

_STDIN, _STDOUT, _STDERR, _ERROR, _RESIZE = 0, 1, 2, 3, 4
_HANDSHAKE = re.compile(r"Handshake status (\d{3})")
#: Go's os/exec message for a process that exited non-zero; runtimes that do not report
#: the ``ExitCode`` cause (KWOK's local exec) carry the code only in the message.
_EXIT_STATUS = re.compile(r"exit status (\d+)\s*$")


def exit_code_of(status_text: str | bytes) -> tuple[int, str]:
    """The exit code from the exec's final ``Status`` (the error channel), and a message.

    ``Success`` is 0; a ``NonZeroExitCode`` Status carries the code as its ``ExitCode``
    cause; a failure whose message ends ``exit status N`` is ``N``. The message is empty
    when the code is the command's own; any other failure is 1 with the runtime's
    message (the command may not have run). An empty channel (the connection closed
    early) is 1.
    """
    if isinstance(status_text, bytes):
        status_text = status_text.decode("utf-8", "replace")
    if not status_text.strip():
        return 1, "the exec connection closed without a status"
    try:
        status = yaml.safe_load(status_text)
    except yaml.YAMLError:
        return 1, status_text.strip()
    if not isinstance(status, dict):
        return 1, status_text.strip()
    if status.get("status") == "Success":
        return 0, ""
    message = str(status.get("message") or "")
    for cause in (status.get("details") or {}).get("causes") or ():
        if cause.get("reason") == "ExitCode":
            with contextlib.suppress(TypeError, ValueError):
                return int(cause.get("message")), ""
    match = _EXIT_STATUS.search(message)
    if match:
        return int(match.group(1)), ""
    return 1, message or "the exec failed without a message"


def _handshake_error(call: str, error: ApiException) -> APIError:
    """The error for a refused websocket handshake (``ApiException(status=0)`` from the client)."""
    text = str(error.reason or "")
    match = _HANDSHAKE.search(text)
    if not match:
        return map_api_error(call, error)
    status = int(match.group(1))
    # websocket-client's text: "Handshake status 403 Forbidden -+-+- {headers} -+-+- body".
    body = text.split(" -+-+- ")[-1].strip()
    if body.startswith(("b'", 'b"')):
        body = body[2:-1].encode().decode("unicode_escape")
    message = f"Handshake status {status}"
    with contextlib.suppress(ValueError, AttributeError):
        message = str(json.loads(body).get("message") or message)
    return map_api_error(call, ApiException(status=status, reason=message))


def pod_exec(
    core: CoreV1Api,
    namespace: str,
    pod: str,
    command: Sequence[str],
    *,
    container: str | None = None,
    stdin: bytes | IO[bytes] | None = None,
    stdout: Sink | None = None,
    stderr: Sink | None = None,
    tty: bool = False,
    terminal_size: Callable[[], tuple[int, int] | None] | None = None,
    timeout_s: float | None = None,
) -> int:
    """Run ``command`` in ``pod``; stream its output to ``stdout``/``stderr``; return its exit code.

    ``stdin``: bytes to send (then stdin is closed, with the v5 protocol), or a binary file
    read and forwarded until EOF (an interactive session). With ``tty`` the remote side
    gets a terminal and its output comes on ``stdout`` only. ``terminal_size`` (with
    ``tty``): asked at the start and then about every 0.2 s; a ``(columns, rows)`` it
    returns is sent on the resize channel (:func:`resize_message`), ``None`` means
    unchanged. ``timeout_s`` bounds the whole call (None: no bound). Raises
    :class:`~rayk8s.errors.APIError` (its subclass for 403, 404, ...) when the API server
    refuses the exec.
    """
    call = "create pods/exec"
    kwargs: dict[str, Any] = {
        "command": list(command),
        "stdin": stdin is not None,
        "stdout": True,
        "stderr": not tty,
        "tty": tty,
        "_preload_content": False,
        "binary": True,
    }
    if container:
        kwargs["container"] = container
    try:
        client = stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
    except ApiException as error:
        raise _handshake_error(call, error) from None
    out = stdout or (lambda data: None)
    err = stderr or (lambda data: None)
    stop = threading.Event()
    feeder: threading.Thread | None = None
    try:
        if isinstance(stdin, bytes):
            if stdin:
                client.write_channel(_STDIN, stdin)
            client.close_channel(_STDIN)
        elif stdin is not None:
            feeder = threading.Thread(target=_feed, args=(client, stdin, stop), daemon=True)
            feeder.start()
        status = b""
        deadline = None if timeout_s is None else _now() + timeout_s
        while client.is_open():
            size = terminal_size() if tty and terminal_size is not None else None
            if size is not None:
                with contextlib.suppress(Exception):  # the session is ending: nothing left to resize
                    client.write_channel(_RESIZE, resize_message(*size))
            client.update(timeout=0.2)
            for channel, sink in ((_STDOUT, out), (_STDERR, err)):
                data = client.read_channel(channel)
                if data:
                    sink(data)
            status += client.read_channel(_ERROR) or b""
            if deadline is not None and _now() > deadline:
                raise APIError(call, 0, f"the command did not finish within {timeout_s:g} s")
        for channel, sink in ((_STDOUT, out), (_STDERR, err)):
            data = client.read_channel(channel)
            if data:
                sink(data)
        status += client.read_channel(_ERROR) or b""
    finally:
        stop.set()
        if feeder is not None:
            feeder.join(timeout=1.0)
        with contextlib.suppress(Exception):
            client.close()
        with contextlib.suppress(Exception):  # a close handshake the server no longer answers
            client.sock.shutdown()
    code, message = exit_code_of(status)
    if message:
        err(f"{call} in pod {namespace}/{pod}: {message}\n".encode())
    return code


def resize_message(columns: int, rows: int) -> bytes:
    """What the resize channel (4) carries: the terminal's size as ``{"Width": .., "Height": ..}``."""
    return json.dumps({"Width": int(columns), "Height": int(rows)}).encode()


def _feed(client: Any, source: IO[bytes], stop: threading.Event) -> None:
    """Forward ``source`` to the exec's stdin until EOF (then close stdin) or ``stop``."""
    fileno = None
    with contextlib.suppress(AttributeError, OSError, ValueError):
        fileno = source.fileno()
    while not stop.is_set():
        try:
            if fileno is not None:
                ready, _, _ = select.select([fileno], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(fileno, 4096)
            else:
                data = source.read(4096)
        except (OSError, ValueError):  # our stdin closed: nothing more to send
            return
        if not data:
            with contextlib.suppress(Exception):
                client.close_channel(_STDIN)
            return
        try:
            client.write_channel(_STDIN, data)
        except Exception:  # the connection closed under us: the session is over
            return


def _now() -> float:
    return time.monotonic()
