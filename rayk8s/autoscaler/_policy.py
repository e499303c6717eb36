"""The autoscaler's policies as pure functions: every input (``now`` included) is passed in.

- :func:`rate_limit`: upscaling speed (Ray's rule: pending launches of a type at most
  ``max(5, upscaling_speed * running)``), with ``min_workers``, placement groups and
  ``request_resources`` exempt.
- :func:`select_idle`: which idle workers to terminate (over ``max_workers`` first, then
  idle beyond the timeout), longest idle first, never below ``min_workers``, never a node
  the scheduler is counting on.
- :func:`backoff_delay`, :func:`record_failure`, :func:`unavailable_types`: exponential,
  capped back-off of node types whose launches fail.
- :func:`is_stuck`, :func:`is_outdated`: per-node checks.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet

import attrs

from rayk8s.autoscaler._lifecycle import NodeState
from rayk8s.autoscaler._tags import TAG_LAUNCH_CONFIG

__all__ = [
    "INITIAL_PENDING_LAUNCHES",
    "Backoff",
    "IdleNode",
    "TerminationReason",
    "backoff_delay",
    "is_outdated",
    "is_stuck",
    "max_pending",
    "rate_limit",
    "record_failure",
    "record_success",
    "select_idle",
    "unavailable_types",
]

#: Pending launches of a type always allowed, whatever its running count (Ray's 5).
INITIAL_PENDING_LAUNCHES = 5


class TerminationReason(str, enum.Enum):
    """Why the autoscaler terminates a node."""

    IDLE = "idle"  # idle longer than the type's idle timeout
    MAX_WORKERS = "max_workers"  # more nodes than the per-type or cluster max_workers; idle ones go
    OUTDATED = "outdated"  # launched with a different launch config; replaced once idle
    STUCK = "stuck"  # did not join Ray within the stuck timeout
    LOST = "lost"  # heartbeat older than the timeout, or Ray forgot it
    FAILED = "failed"  # the provider reports the node failed


def max_pending(running: int, upscaling_speed: float) -> int:
    """How many launches of a type may be pending: ``max(5, floor(speed * running))``."""
    return max(INITIAL_PENDING_LAUNCHES, math.floor(upscaling_speed * running))


def rate_limit(
    wanted: Mapping[str, int],
    exempt: Mapping[str, int],
    *,
    running: Mapping[str, int],
    pending: Mapping[str, int],
    upscaling_speed: float,
) -> tuple[dict[str, int], dict[str, int]]:
    """Cap demand-driven launches per type by the upscaling speed.

    ``wanted``: launches per type for pending tasks and actors (rate limited).
    ``exempt``: launches per type for ``min_workers``, placement groups and
    ``request_resources`` (never limited, but they use up the headroom they occupy).
    Returns ``(launch, deferred)``: what to launch now per type, and what waits.
    """
    launch: dict[str, int] = {}
    deferred: dict[str, int] = {}
    for node_type in sorted(set(wanted) | set(exempt)):
        forced = exempt.get(node_type, 0)
        want = wanted.get(node_type, 0)
        headroom = max_pending(running.get(node_type, 0), upscaling_speed) - pending.get(node_type, 0) - forced
        allowed = max(0, min(want, headroom))
        if forced + allowed:
            launch[node_type] = forced + allowed
        if want - allowed:
            deferred[node_type] = want - allowed
    return launch, deferred


@attrs.frozen
class IdleNode:
    """A running worker the load source reports idle since ``idle_since``."""

    node_id: str
    node_type: str
    idle_since: float


def select_idle(
    idle: Iterable[IdleNode],
    *,
    now: float,
    timeouts_s: Mapping[str, float],
    keep: AbstractSet[str],
    live: Mapping[str, int],
    min_workers: Mapping[str, int],
    max_workers: Mapping[str, int | None],
    cluster_max_workers: int | None,
) -> list[tuple[str, TerminationReason]]:
    """Choose idle workers to terminate, longest idle first (ties by node id).

    First, while a type has more live nodes than its ``max_workers`` or the cluster more
    than ``cluster_max_workers``, idle nodes of it go whatever their idle time (reason
    ``max_workers``). Then nodes idle at least their type's timeout go (reason ``idle``)
    while the type keeps more than ``min_workers`` live nodes. Nodes in ``keep`` (the
    scheduler placed work, bundles or ``request_resources`` on them) always stay. Busy
    nodes are not in ``idle`` at all. ``live`` counts every live node per type, busy or not.
    """
    ordered = sorted(idle, key=lambda n: (n.idle_since, n.node_id))
    counts = dict(live)
    total = sum(counts.values())
    chosen: list[tuple[str, TerminationReason]] = []
    remaining: list[IdleNode] = []
    for node in ordered:
        if node.node_id in keep:
            continue
        type_max = max_workers.get(node.node_type)
        over_type = type_max is not None and counts.get(node.node_type, 0) > type_max
        over_cluster = cluster_max_workers is not None and total > cluster_max_workers
        if over_type or over_cluster:
            chosen.append((node.node_id, TerminationReason.MAX_WORKERS))
            counts[node.node_type] = counts.get(node.node_type, 0) - 1
            total -= 1
        else:
            remaining.append(node)
    for node in remaining:
        timeout = timeouts_s.get(node.node_type)
        if timeout is None or now - node.idle_since < timeout:
            continue
        if counts.get(node.node_type, 0) <= min_workers.get(node.node_type, 0):
            continue
        chosen.append((node.node_id, TerminationReason.IDLE))
        counts[node.node_type] = counts.get(node.node_type, 0) - 1
    return chosen


@attrs.frozen
class Backoff:
    """A node type backing off: ``failures`` in a row, not launched before ``until``."""

    failures: int
    until: float
    reason: str


def backoff_delay(failures: int, initial_s: float, max_s: float) -> float:
    """``initial * 2**(failures - 1)`` seconds, capped at ``max_s`` (0 for no failures)."""
    if failures <= 0:
        return 0.0
    return min(max_s, initial_s * 2.0 ** min(failures - 1, 62))


def record_failure(
    backoff: Mapping[str, Backoff],
    node_type: str,
    *,
    now: float,
    reason: str,
    initial_s: float,
    max_s: float,
) -> dict[str, Backoff]:
    """The back-off table after one more failure of ``node_type`` at ``now``."""
    failures = (backoff[node_type].failures if node_type in backoff else 0) + 1
    out = dict(backoff)
    out[node_type] = Backoff(failures, now + backoff_delay(failures, initial_s, max_s), reason)
    return out


def record_success(backoff: Mapping[str, Backoff], node_type: str) -> dict[str, Backoff]:
    """The back-off table after a node of ``node_type`` joined Ray: its failures are forgiven."""
    out = dict(backoff)
    out.pop(node_type, None)
    return out


def unavailable_types(backoff: Mapping[str, Backoff], now: float) -> frozenset[str]:
    """The node types not to launch at ``now``."""
    return frozenset(name for name, item in backoff.items() if item.until > now)


def is_stuck(state: NodeState, created_at: float, now: float, timeout_s: float) -> bool:
    """A node launched more than ``timeout_s`` ago that Ray has not seen join."""
    return state in (NodeState.LAUNCHING, NodeState.STARTING) and now - created_at > timeout_s


def is_outdated(tags: Mapping[str, str], current_hash: str | None) -> bool:
    """True when the node was launched with another launch config (or its type is gone)."""
    return current_hash is None or tags.get(TAG_LAUNCH_CONFIG) != current_hash
