"""One exception tree for everything rayk8s raises.

``RayK8sError`` is the root. Configuration problems raise :class:`ConfigError`, which
names the field path (``available_node_types.gpu.resources.GPU``) and what was expected.
Provider problems raise :class:`ProviderError` or one of its children; an API failure
says which call failed and why.
"""

from __future__ import annotations

__all__ = [
    "APIConflictError",
    "APIError",
    "APIForbiddenError",
    "APINotFoundError",
    "APIServerError",
    "APITooManyRequestsError",
    "ConfigError",
    "LaunchConfigError",
    "LaunchError",
    "NodeNotFoundError",
    "ProviderError",
    "QuotaError",
    "RayK8sError",
]


class RayK8sError(Exception):
    """The root of every error rayk8s raises on purpose."""


class ConfigError(RayK8sError, ValueError):
    """A configuration, scenario or trace value is wrong.

    ``path`` is the dotted field path (``nodes[3].available.CPU``); ``message`` says
    what was expected and what was found. ``str(error)`` is ``"<path>: <message>"``.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ProviderError(RayK8sError):
    """A node provider could not do what it was asked."""


class LaunchError(ProviderError):
    """Launching nodes failed.

    Carries the node type, how many nodes of the request failed and the reason, so the
    autoscaler can back off that node type and report it.
    """

    def __init__(self, node_type: str, count: int, reason: str) -> None:
        self.node_type = node_type
        self.count = count
        self.reason = reason
        super().__init__(f"launching {count} node(s) of type {node_type!r} failed: {reason}")


class LaunchConfigError(LaunchError):
    """A launch was refused because the node config is invalid (the reason names the field).

    Retrying will not help until the config changes (a pod template the API server
    rejects with 422, say).
    """


class QuotaError(LaunchError):
    """A launch was refused because a quota is exhausted."""


class NodeNotFoundError(ProviderError):
    """A node id names no node the provider knows."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        super().__init__(f"no node with id {node_id!r}")


class APIError(ProviderError):
    """A call to a remote API failed: ``call`` names it, ``status`` is the HTTP status (0 if none)."""

    def __init__(self, call: str, status: int, reason: str) -> None:
        self.call = call
        self.status = status
        self.reason = reason
        super().__init__(f"{call} failed ({status or 'no response'}): {reason}")


class APIForbiddenError(APIError):
    """HTTP 403: the credentials may not make this call."""


class APINotFoundError(APIError):
    """HTTP 404: the object (or its namespace) does not exist."""


class APIConflictError(APIError):
    """HTTP 409: the object changed or already exists."""


class APITooManyRequestsError(APIError):
    """HTTP 429: throttled; ``retry_after`` seconds is the server's hint, if it gave one."""

    def __init__(self, call: str, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(call, status, reason)
        self.retry_after = retry_after


class APIServerError(APIError):
    """HTTP 5xx or no response: the server (or the connection to it) failed."""
