"""A small fault-injecting HTTP proxy in front of the real API server.

Clients talk plain HTTP to ``127.0.0.1:<port>``; the proxy forwards each request over
TLS to the control plane's API server with the admin client certificate, and streams
the response back (watches included). Told to, it answers matching requests with a
status of its choice (429 with ``Retry-After``, 500, ...), drops the connection before
or after forwarding (the server acted but the client never hears), delays, cuts a watch
stream after a while, or answers a watch with the ``ERROR`` event (410 Gone, "too old
resource version") that the API server sends when a watch's resourceVersion has left
its window. (The real API server's watch cache serves pod watches from old
resourceVersions on a young control plane, so the expiry has to be injected.)

Everything the client sent is recorded in :attr:`FaultProxy.requests`, so a test can
count the calls that reached the wire.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import kubernetes
from kubernetes.client import ApiClient, Configuration

from rayk8s.testing import ControlPlane

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "proxy-connection", "upgrade", "te"}


@attrs.define
class Fault:
    """What to do with the next ``times`` requests that match.

    ``action``: ``status`` (answer ``status`` with a Status body, ``Retry-After`` if
    ``retry_after`` is set), ``drop`` (close the connection, nothing forwarded),
    ``drop_after`` (forward, then close without answering), ``delay`` (wait ``delay_s``,
    then forward), ``cut`` (forward a stream, close it after ``delay_s``), ``expire``
    (answer a watch with a 410 Gone ``ERROR`` event, as the API server does).
    Matching: ``method`` (any if None), ``path`` regex searched in the path, ``watch``
    True/False for watch requests or not (any if None).
    """

    action: str
    method: str | None = None
    path: str | None = None
    watch: bool | None = None
    times: int = 1
    status: int = 500
    retry_after: float | None = None
    delay_s: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str, query: dict[str, list[str]]) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        is_watch = query.get("watch", ["false"])[0] in ("true", "1")
        return self.watch is None or is_watch == self.watch


@attrs.frozen
class Seen:
    method: str
    path: str
    query: dict[str, list[str]] = attrs.field(hash=False)
    fault: str | None = None

    @property
    def watch(self) -> bool:
        return self.query.get("watch", ["false"])[0] in ("true", "1")


class FaultProxy:
    """Start with :meth:`start`; :meth:`client` gives an ``ApiClient`` that goes through it."""

    def __init__(self, control_plane: ControlPlane) -> None:
        configuration = Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(control_plane.kubeconfig), client_configuration=configuration
        )
        upstream = urllib.parse.urlsplit(configuration.host)
        self.upstream_host = upstream.hostname or "127.0.0.1"
        self.upstream_port = upstream.port or 443
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
        self.context = context
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> ApiClient:
        """An ``ApiClient`` through the proxy, without urllib3's own retries (faults reach rayk8s)."""
        configuration = Configuration(host=self.url)
        configuration.retries = False
        return ApiClient(configuration)

    def inject(self, action: str, **match: Any) -> Fault:
        fault = Fault(action, **match)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def count(self, method: str, *, watch: bool | None = None, path: str = "/pods") -> int:
        """Requests seen with this method (and watch flag) whose path contains ``path``."""
        with self._lock:
            seen = list(self.requests)
        return sum(1 for r in seen if r.method == method and path in r.path and (watch is None or r.watch == watch))

    # -- used by the handler -----------------------------------------------------------

    def take(self, method: str, path: str, query: dict[str, list[str]]) -> Fault | None:
        with self._lock:
            chosen = None
            for fault in self.faults:
                if fault.matches(method, path, query):
                    chosen = fault
                    break
            if chosen is not None:
                chosen.hits += 1
                chosen.times -= 1
                if chosen.times <= 0:
                    self.faults.remove(chosen)
            self.requests.append(Seen(method, path, query, chosen.action if chosen else None))
            return chosen

    @contextlib.contextmanager
    def tracked(self, sock: socket.socket | None) -> Iterator[None]:
        if sock is None:
            yield
            return
        with self._lock:
            self._open.add(sock)
        try:
            yield
        finally:
            with self._lock:
                self._open.discard(sock)


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _handle(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = self.owner.take(self.command, split.path, query)
        if fault is not None:
            if fault.action == "status":
                self._status(fault)
                return
            if fault.action == "drop":
                self._drop()
                return
            if fault.action == "delay":
                time.sleep(fault.delay_s)
            if fault.action == "expire":
                self._expired(query.get("resourceVersion", ["0"])[0])
                return
        upstream = http.client.HTTPSConnection(
            self.owner.upstream_host, self.owner.upstream_port, context=self.owner.context, timeout=600
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            if fault is not None and fault.action == "drop_after":
                response.read()
                self._drop()
                return

            def cut() -> None:
                self._drop()
                if upstream.sock is not None:
                    with contextlib.suppress(OSError):
                        upstream.sock.shutdown(socket.SHUT_RDWR)

            cut_after = fault.delay_s if fault is not None and fault.action == "cut" else None
            with self.owner.tracked(self.connection), self.owner.tracked(upstream.sock):
                self._relay(response, cut_after, cut)
        except (OSError, http.client.HTTPException):
            self._drop()
        finally:
            upstream.close()

    def _status(self, fault: Fault) -> None:
        payload = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": f"injected by the fault proxy: {fault.status}",
                "reason": "TooManyRequests" if fault.status == 429 else "InternalError",
                "code": fault.status,
            }
        ).encode()
        self.send_response(fault.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if fault.retry_after is not None:
            self.send_header("Retry-After", str(int(fault.retry_after)))
        self.end_headers()
        self.wfile.write(payload)

    def _expired(self, resource_version: str) -> None:
        event = {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {resource_version}",
                "reason": "Expired",
                "code": 410,
            },
        }
        line = json.dumps(event).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(line), line))
        self.wfile.flush()

    def _relay(self, response: http.client.HTTPResponse, cut_after: float | None, cut: Any) -> None:
        chunked = response.getheader("Transfer-Encoding", "").lower() == "chunked" or (
            response.getheader("Content-Length") is None
        )
        if not chunked:
            data = response.read()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_HEADERS and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_HEADERS and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        timer = None
        if cut_after is not None:
            timer = threading.Timer(cut_after, cut)
            timer.daemon = True
            timer.start()
        try:
            while True:
                data = response.read1(65536)
                if not data:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            if timer is not None:
                timer.cancel()
