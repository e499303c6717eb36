"""A watch-fed cache of the cluster's pods, kept by a background thread.

One LIST at start (paged), then one long WATCH from the list's resourceVersion, with
bookmarks so the resourceVersion stays fresh when nothing changes:

- the server ends a watch after ``timeout_seconds``: watch again from the last
  resourceVersion (no LIST);
- a dropped connection or a failed watch request: back off, then resume from the last
  resourceVersion (no LIST);
- 410 Gone (the resourceVersion left the server's window; as an HTTP status or as an
  ``ERROR`` event): LIST again and replace the contents.

Readers get a :class:`CacheSnapshot` that says whether it can be trusted in full:
``partial`` while the first LIST has not completed, and while the watch has been broken
for longer than the grace period (the cache may have missed changes). The autoscaler
terminates nothing on a partial read.

The provider's own writes are applied at once (:meth:`PodCache.apply_write`) from the
API's responses, so a node it just created is listed before the watch event arrives;
the watch's newer versions replace them, deletions are remembered so an older write
cannot bring a deleted pod back.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import structlog
from kubernetes.client import ApiClient, CoreV1Api

from rayk8s.autoscaler._ports import ProviderNode
from rayk8s.errors import APIError, APIServerError
from rayk8s.providers.kubernetes._api import ApiCaller, map_api_error
from rayk8s.providers.kubernetes._pods import pod_to_node

__all__ = ["CacheSnapshot", "CacheStats", "PodCache"]

log = structlog.get_logger()

#: How many deleted pod uids are remembered (so late writes cannot resurrect them).
_TOMBSTONES = 10_000


def _rv(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _newer(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    if old is None:
        return True
    new_meta, old_meta = new.get("metadata") or {}, old.get("metadata") or {}
    if new_meta.get("uid") != old_meta.get("uid"):
        return True
    a, b = _rv(new_meta.get("resourceVersion")), _rv(old_meta.get("resourceVersion"))
    return a is None or b is None or a >= b


@attrs.frozen
class CacheSnapshot:
    """The cached nodes at one time; ``partial`` when they may be incomplete or stale."""

    nodes: tuple[ProviderNode, ...]
    partial: bool
    detail: str = ""


@attrs.define
class CacheStats:
    """What the cache has done: LISTs (and re-LISTs after 410), watches, events, failures."""

    lists: int = 0
    relists: int = 0
    watches: int = 0
    events: int = 0
    bookmarks: int = 0
    expired: int = 0
    watch_failures: int = 0


@attrs.define
class _Entry:
    pod: dict[str, Any]
    node: ProviderNode


class PodCache:
    """Pods of one namespace matching a label selector, kept current by LIST + WATCH.

    ``api_client`` is used only by the cache's thread (a watch holds a connection).
    ``grace_period_s``: how long a broken watch is tolerated before snapshots are partial.
    ``watch_timeout_s``: the server-side timeout of each watch request. ``clock`` is
    monotonic seconds.
    """

    def __init__(
        self,
        api_client: ApiClient,
        namespace: str,
        label_selector: str,
        caller: ApiCaller,
        *,
        grace_period_s: float = 10.0,
        watch_timeout_s: int = 300,
        page_size: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = CoreV1Api(api_client)
        self._api_client = api_client
        self.namespace = namespace
        self.label_selector = label_selector
        self._caller = caller
        self.grace_period_s = grace_period_s
        self.watch_timeout_s = watch_timeout_s
        self.page_size = page_size
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._tombstones: OrderedDict[str, None] = OrderedDict()
        self._resource_version: str | None = None
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._broken_since: float | None = None
        self._broken_reason = ""
        self._response: Any = None
        self._thread: threading.Thread | None = None
        self._view: tuple[ProviderNode, ...] | None = None
        self.stats = CacheStats()
        self.last_error: APIError | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"rayk8s-pod-cache-{self.namespace}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the watch thread (idempotent)."""
        self._stop.set()
        self.interrupt()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def interrupt(self) -> None:
        """Break the current watch connection (it resumes from the last resourceVersion)."""
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()

    def wait_synced(self, timeout_s: float) -> bool:
        """Wait until the first LIST has completed; True if it has."""
        return self._synced.wait(timeout_s)

    @property
    def watching(self) -> bool:
        """True while a watch request is connected and streaming."""
        return self._response is not None

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    @property
    def resource_version(self) -> str | None:
        return self._resource_version

    # -- reads -------------------------------------------------------------------------------

    def snapshot(self) -> CacheSnapshot:
        with self._lock:
            if self._view is None:
                self._view = tuple(entry.node for entry in self._entries.values())
            nodes = self._view
            broken_since, reason = self._broken_since, self._broken_reason
        if not self._synced.is_set():
            detail = "the pod cache has not completed its first list"
            if self.last_error is not None:
                detail += f" ({self.last_error})"
            return CacheSnapshot(nodes, True, detail)
        if broken_since is not None:
            down = self._clock() - broken_since
            if down > self.grace_period_s:
                return CacheSnapshot(nodes, True, f"the pod watch has been broken for {down:.0f}s: {reason}")
        return CacheSnapshot(nodes, False)

    def node(self, name: str) -> ProviderNode | None:
        with self._lock:
            entry = self._entries.get(name)
            return entry.node if entry is not None else None

    def pods(self) -> list[dict[str, Any]]:
        """The cached pods (the API's JSON; do not modify)."""
        with self._lock:
            return [entry.pod for entry in self._entries.values()]

    # -- writes from the provider ------------------------------------------------------------

    def apply_write(self, pod: Mapping[str, Any]) -> None:
        """Apply a pod the API returned from a create, patch or delete."""
        metadata = pod.get("metadata") or {}
        with self._lock:
            if metadata.get("uid") not in self._tombstones:
                self._put(dict(pod))

    def forget(self, name: str) -> None:
        """The API said the pod does not exist (a delete answered 404)."""
        with self._lock:
            entry = self._entries.pop(name, None)
            if entry is not None:
                self._bury((entry.pod.get("metadata") or {}).get("uid"))
                self._view = None

    # -- machinery ---------------------------------------------------------------------------

    def _put(self, pod: dict[str, Any]) -> None:
        name = (pod.get("metadata") or {}).get("name")
        if not name:
            return
        old = self._entries.get(name)
        if _newer(pod, old.pod if old is not None else None):
            self._entries[name] = _Entry(pod, pod_to_node(pod))
            self._view = None

    def _bury(self, uid: object) -> None:
        if isinstance(uid, str):
            self._tombstones[uid] = None
            while len(self._tombstones) > _TOMBSTONES:
                self._tombstones.popitem(last=False)

    def _delete(self, pod: Mapping[str, Any]) -> None:
        metadata = pod.get("metadata") or {}
        name, uid = str(metadata.get("name") or ""), metadata.get("uid")
        entry = self._entries.get(name)
        if entry is not None and (entry.pod.get("metadata") or {}).get("uid") in (uid, None):
            del self._entries[name]
            self._view = None
        self._bury(uid)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if self._resource_version is None:
                    self._list()
                self._watch()
                attempt = 0
            except APIError as error:
                if self._stop.is_set():
                    break
                if error.status == 410:
                    self.stats.expired += 1
                    log.info("pod_watch_expired", namespace=self.namespace, detail=error.reason)
                    self._resource_version = None
                    continue
                attempt += 1
                self.stats.watch_failures += 1
                self.last_error = error
                with self._lock:
                    if self._broken_since is None:
                        self._broken_since = self._clock()
                    self._broken_reason = str(error)
                wait = getattr(error, "retry_after", None)
                if wait is None:
                    wait = self._caller.backoff(attempt)
                log.warning("pod_watch_failed", namespace=self.namespace, error=str(error), retry_in_s=round(wait, 2))
                self._stop.wait(wait)
            except Exception as error:  # a bug or an unreadable event: log, back off, carry on
                if self._stop.is_set():
                    break
                attempt += 1
                log.exception("pod_watch_crashed", namespace=self.namespace)
                with self._lock:
                    if self._broken_since is None:
                        self._broken_since = self._clock()
                    self._broken_reason = f"{type(error).__name__}: {error}"
                self._resource_version = None
                self._stop.wait(self._caller.backoff(attempt))

    def _list(self) -> None:
        """LIST every page; replace the contents; remember the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": self.label_selector, "limit": self.page_size}
            if token:
                kwargs["_continue"] = token
            response: Any = self._caller.call(
                "list",
                "pods",
                self._core.list_namespaced_pod,
                self.namespace,
                _preload_content=False,
                _request_timeout=(10, 60),
                **kwargs,
            )
            try:
                body = json.loads(response.data)
            finally:
                response.release_conn()
            items.extend(body.get("items") or ())
            metadata = body.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                version = str(metadata.get("resourceVersion"))
                break
        list_rv = _rv(version)
        with self._lock:
            kept = {}
            for name, entry in self._entries.items():
                # A write applied after this list's snapshot stays; the watch confirms it.
                entry_rv = _rv((entry.pod.get("metadata") or {}).get("resourceVersion"))
                if list_rv is not None and entry_rv is not None and entry_rv > list_rv:
                    kept[name] = entry
            self._entries = kept
            for pod in items:
                self._put(pod)
            self._view = None
            self._resource_version = version
            self._broken_since = None
        self.stats.lists += 1
        if self._synced.is_set():
            self.stats.relists += 1
        self._synced.set()
        log.debug("pod_cache_listed", namespace=self.namespace, pods=len(items), resource_version=version)

    def _watch(self) -> None:
        """One WATCH request from the current resourceVersion, applied until it ends."""
        self._caller.counter.add("watch", "pods")
        self.stats.watches += 1
        try:
            response: Any = self._core.list_namespaced_pod(
                self.namespace,
                label_selector=self.label_selector,
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=self._resource_version,
                timeout_seconds=self.watch_timeout_s,
                _preload_content=False,
                _request_timeout=(10, self.watch_timeout_s + 30),
            )
        except Exception as error:
            raise map_api_error("watch pods", error) from error
        self._response = response
        with self._lock:
            self._broken_since = None
        try:
            if self._stop.is_set():  # stop() ran before the response could be interrupted
                return
            for event in self._events(response):
                if self._stop.is_set():
                    return
                self._apply(event)
        except APIError:
            raise
        except Exception as error:
            if self._stop.is_set():
                return
            raise map_api_error("watch pods", error) from error
        finally:
            self._response = None
            response.release_conn()

    @staticmethod
    def _events(response: Any) -> Iterator[dict[str, Any]]:
        """The stream's events, one JSON object a line. A line that does not parse, or a
        stream that ends mid-line, is a broken connection: the caller resumes from the
        last event it applied."""
        buffer = b""
        for chunk in response.stream(None, decode_content=True):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError as error:
                    raise APIServerError("watch pods", 0, f"unreadable watch event: {error}") from error
                if not isinstance(event, dict):
                    raise APIServerError("watch pods", 0, "unreadable watch event: not an object")
                yield event
        if buffer.strip():
            raise APIServerError("watch pods", 0, "the watch stream ended in the middle of an event")

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 0)
            raise APIError("watch pods", code, str(obj.get("message") or obj.get("reason") or "watch error"))
        version = (obj.get("metadata") or {}).get("resourceVersion")
        with self._lock:
            if kind in ("ADDED", "MODIFIED"):
                self._put(obj)
            elif kind == "DELETED":
                self._delete(obj)
            if version:
                self._resource_version = str(version)
        if kind == "BOOKMARK":
            self.stats.bookmarks += 1
        else:
            self.stats.events += 1
