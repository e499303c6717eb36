"""The one place where Kubernetes API failures become rayk8s errors; retries; call counting.

:func:`map_api_error` turns a ``kubernetes.client.ApiException`` or a urllib3/socket error
into the :mod:`rayk8s.errors` class for its HTTP status (kopf's split): 403
:class:`~rayk8s.errors.APIForbiddenError`, 404 :class:`~rayk8s.errors.APINotFoundError`,
409 :class:`~rayk8s.errors.APIConflictError`, 429
:class:`~rayk8s.errors.APITooManyRequestsError` (with ``Retry-After``), 5xx and no
response :class:`~rayk8s.errors.APIServerError`; anything else
:class:`~rayk8s.errors.APIError`. Every error names the call (``create pods``) and keeps
the server's message.

:class:`ApiCaller` makes every call the provider makes: it counts each attempt by verb
and resource (:class:`ApiCallCounter`, also exported as the Prometheus counter
``rayk8s_kubernetes_api_calls_total``) and retries by :class:`RetryPolicy`:

- 429: wait ``Retry-After`` seconds (capped), else the back-off, and try again;
- 5xx and connection errors: capped exponential back-off with jitter, for calls that are
  safe to repeat (reads, deletes, merge patches); a create is never repeated blindly,
  because the first attempt may have created the pod (the provider reconciles by its
  launch-request label instead);
- anything else (403, 404, 409, 422, ...) is raised at once.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from rayk8s.errors import (
    APIConflictError,
    APIError,
    APIForbiddenError,
    APINotFoundError,
    APIServerError,
    APITooManyRequestsError,
    ConfigError,
)

__all__ = [
    "API_CALLS",
    "ApiCallCounter",
    "ApiCaller",
    "RetryPolicy",
    "map_api_error",
    "read_or_none",
    "response_json",
    "server_has",
    "status_message",
]

T = TypeVar("T")

#: The most a ``Retry-After`` hint is honoured for, in seconds (a hostile or confused
#: server cannot park the autoscaler for an hour).
MAX_RETRY_AFTER_S = 60.0


def _make_prometheus_counter() -> Any:
    try:
        from prometheus_client import Counter
    except ImportError:  # pragma: no cover - prometheus-client is a dependency
        return None
    return Counter(
        "rayk8s_kubernetes_api_calls",
        "Kubernetes API calls made by rayk8s (each attempt, retries included), by verb and resource.",
        ["cluster", "verb", "resource"],
    )


#: The process-wide Prometheus counter (``rayk8s_kubernetes_api_calls_total``); serve it
#: with ``prometheus_client.start_http_server`` or any exposition of the default registry.
API_CALLS = _make_prometheus_counter()


class ApiCallCounter:
    """Kubernetes API calls by ``(verb, resource)``; thread-safe.

    Verbs are the Kubernetes ones: ``list``, ``watch``, ``get``, ``create``, ``patch``,
    ``delete``. Each attempt counts, so a retried call counts twice. The same counts go
    to the Prometheus counter :data:`API_CALLS` under the ``cluster`` label.
    """

    def __init__(self, cluster: str = "") -> None:
        self.cluster = cluster
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, verb: str, resource: str) -> None:
        with self._lock:
            key = (verb, resource)
            self._counts[key] = self._counts.get(key, 0) + 1
        if API_CALLS is not None:
            API_CALLS.labels(self.cluster, verb, resource).inc()

    def snapshot(self) -> dict[tuple[str, str], int]:
        """The counts so far, ``{(verb, resource): calls}``."""
        with self._lock:
            return dict(self._counts)

    def get(self, verb: str, resource: str = "pods") -> int:
        with self._lock:
            return self._counts.get((verb, resource), 0)

    def by_verb(self) -> dict[str, int]:
        """Calls per verb, over all resources."""
        out: dict[str, int] = {}
        for (verb, _), count in self.snapshot().items():
            out[verb] = out.get(verb, 0) + count
        return out

    def total(self) -> int:
        return sum(self.snapshot().values())


def _status_body(error: ApiException) -> tuple[str, dict[str, Any] | None]:
    """The body as text when it is not JSON, and the parsed Status object when it is one."""
    body = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return "", None
    try:
        status = json.loads(body)
    except ValueError:
        return body, None
    return "", status if isinstance(status, dict) else None


def status_message(error: ApiException) -> str:
    """The server's message from an ``ApiException`` (its Status body), else its reason."""
    text, status = _status_body(error)
    if status is None and text:
        return text.strip()[:500]
    if status is not None and status.get("message"):
        return str(status["message"])
    return str(error.reason or "")


def status_details(error: ApiException) -> dict[str, Any]:
    """The ``details`` of the Status body (``causes`` with ``field`` for a 422), or {}."""
    _, status = _status_body(error)
    if status is not None and isinstance(status.get("details"), dict):
        return dict(status["details"])
    return {}


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    value = None
    for key, item in headers.items():
        if key.lower() == "retry-after":
            value = item
            break
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from the API server; fall back to the back-off


def map_api_error(call: str, error: BaseException) -> APIError:
    """The :mod:`rayk8s.errors` class for ``error`` raised by the call named ``call``."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, ApiException):
        status = int(error.status or 0)
        message = status_message(error)
        if status == 0:
            return APIServerError(call, 0, message or "no response")
        if status == 403:
            return APIForbiddenError(call, status, message)
        if status == 404:
            return APINotFoundError(call, status, message)
        if status == 409:
            return APIConflictError(call, status, message)
        if status == 429:
            return APITooManyRequestsError(call, status, message, _retry_after(error.headers))
        if status >= 500:
            return APIServerError(call, status, message)
        return APIError(call, status, message)
    if isinstance(error, Urllib3Error | OSError | TimeoutError):
        return APIServerError(call, 0, f"{type(error).__name__}: {error}")
    raise TypeError(f"not an API failure: {error!r}")


def is_api_failure(error: BaseException) -> bool:
    """True for the exceptions :func:`map_api_error` maps (the rest are bugs, not the API)."""
    return isinstance(error, ApiException | Urllib3Error | OSError | TimeoutError | APIError)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"provider.retry.{attribute.name}", f"expected a non-negative number, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How calls are retried (``provider.retry`` in the config).

    - ``max_attempts``: attempts per call, the first included (1: never retry).
    - ``initial_backoff_s``: the first back-off, doubled per attempt ...
    - ``max_backoff_s``: ... up to this cap. Each wait is drawn from
      ``[backoff / 2, backoff]`` (jitter, so many clients do not retry in step).
    """

    max_attempts: int = attrs.field(default=5, validator=_positive)
    initial_backoff_s: float = attrs.field(default=0.2, validator=_positive)
    max_backoff_s: float = attrs.field(default=10.0, validator=_positive)

    @classmethod
    def from_dict(cls, value: object) -> RetryPolicy:
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ConfigError("provider.retry", f"expected a mapping, got {value!r}")
        unknown = set(value) - {"max_attempts", "initial_backoff_s", "max_backoff_s"}
        if unknown:
            raise ConfigError(f"provider.retry.{sorted(unknown)[0]}", "unknown field")
        attempts = value.get("max_attempts", 5)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ConfigError("provider.retry.max_attempts", f"expected an integer >= 1, got {attempts!r}")
        return cls(**dict(value))

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        cap = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
        return rng.uniform(cap / 2, cap)


class ApiCaller:
    """Makes API calls: counts every attempt, retries by the policy, maps errors.

    ``sleep`` and ``rng`` are injected so tests run the retry logic without waiting.
    """

    def __init__(
        self,
        counter: ApiCallCounter,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.counter = counter
        self.policy = policy
        self.sleep = sleep
        self.rng = rng if rng is not None else random.Random()
        self._rng_lock = threading.Lock()
        self.retries = 0

    def call(
        self,
        verb: str,
        resource: str,
        function: Callable[..., T],
        *args: Any,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> T:
        """``function(*args, **kwargs)``, retried per the policy; raises an :class:`APIError`.

        ``idempotent=False`` (creates): a 5xx or a broken connection is raised at once,
        since the server may have acted; only a 429 (the server did nothing) is retried.
        """
        name = f"{verb} {resource}"
        attempt = 0
        while True:
            attempt += 1
            self.counter.add(verb, resource)
            try:
                return function(*args, **kwargs)
            except Exception as raw:
                if not is_api_failure(raw):
                    raise
                error = map_api_error(name, raw)
            wait = self._wait(error, attempt, idempotent)
            if wait is None:
                raise error
            self.retries += 1
            self.sleep(wait)

    def _wait(self, error: APIError, attempt: int, idempotent: bool) -> float | None:
        if attempt >= self.policy.max_attempts:
            return None
        if isinstance(error, APITooManyRequestsError):
            if error.retry_after is not None:
                return min(error.retry_after, MAX_RETRY_AFTER_S)
            return self.backoff(attempt)
        if isinstance(error, APIServerError) and idempotent:
            return self.backoff(attempt)
        return None

    def backoff(self, attempt: int) -> float:
        with self._rng_lock:
            return self.policy.backoff_s(attempt, self.rng)


def response_json(response: Any) -> dict[str, Any]:
    """The JSON body of a ``_preload_content=False`` response (its connection released)."""
    try:
        data: dict[str, Any] = json.loads(response.data)
        return data
    finally:
        response.release_conn()


def read_or_none(caller: ApiCaller, resource: str, read: Callable[..., Any], name: str, namespace: str) -> Any:
    """``get`` one namespaced object as JSON; ``None`` if it does not exist (404)."""
    try:
        return response_json(caller.call("get", resource, read, name, namespace, _preload_content=False))
    except APINotFoundError:
        return None


def server_has(current: Any, wanted: Any) -> bool:
    """Whether the server's value already holds what we would write (fields the server added aside).

    Mappings: every wanted key has a matching value; lists: same length, item by item.
    """
    if isinstance(wanted, Mapping):
        return isinstance(current, Mapping) and all(server_has(current.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(current, list) and len(current) == len(wanted) and all(map(server_has, current, wanted))
    return bool(current == wanted)
