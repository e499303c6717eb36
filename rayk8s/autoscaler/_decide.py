"""The autoscaler's decide step: a pure function from what was read to what to do.

:func:`decide` takes the provider's snapshot, the load snapshot, the small soft state the
autoscaler keeps between updates (:class:`AutoscalerMemory`) and ``now``, and returns a
:class:`Decision`: nodes to launch (per type and reason), nodes to terminate (each with a
reason), tags to write, and the memory for the next update. It calls nothing and reads no
clock, so any decision can be reproduced from its inputs.

The pipeline:

1. Rebuild every node's :class:`NodeState` from its provider status, its tags and what
   the load source reports (see :mod:`._lifecycle`); add nodes created but not yet listed.
2. Nodes that must go whatever the load: failed, stuck before joining Ray (their type
   backs off), lost (heartbeat too old), outdated and idle.
3. Ask the scheduler, without those nodes and without node types backing off, what to
   launch (so replacements and fallbacks come out of the same decision). The scheduler is
   :func:`~rayk8s.autoscaler.schedule` unless another is passed (``scheduler=``); its plan
   is held to the rules whichever it is: launches of unknown or backing-off node types,
   and launches beyond ``max_workers`` (per type and cluster), are refused and reported
   in :attr:`Decision.overruled`.
4. Cap demand-driven launches by the upscaling speed.
5. Choose idle workers to terminate (over ``max_workers``, then idle beyond the timeout),
   never busy ones, never below ``min_workers``, never those the scheduler counts on.
6. If any read failed or was partial, hold back every termination (and, on a partial
   provider read, every launch) and say why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

import attrs

from rayk8s.autoscaler._config import AutoscalerConfig
from rayk8s.autoscaler._lifecycle import IllegalTransition, NodeState, check_transition, derive_state
from rayk8s.autoscaler._load import LoadSnapshot, NodeUsage
from rayk8s.autoscaler._model import Node, NodeStatus, SchedulingRequest
from rayk8s.autoscaler._policy import (
    Backoff,
    IdleNode,
    TerminationReason,
    is_outdated,
    is_stuck,
    rate_limit,
    record_failure,
    record_success,
    select_idle,
    unavailable_types,
)
from rayk8s.autoscaler._ports import ProviderNode, ProviderSnapshot
from rayk8s.autoscaler._resources import Resources
from rayk8s.autoscaler._result import LaunchReason, NewNodeGroup, SchedulingResult
from rayk8s.autoscaler._scheduler import schedule
from rayk8s.autoscaler._tags import (
    STATUS_UP_TO_DATE,
    TAG_CLUSTER_NAME,
    TAG_NODE_STATUS,
)

__all__ = [
    "AutoscalerMemory",
    "Decision",
    "FailureRecord",
    "InFlightLaunch",
    "NodeView",
    "PlannedLaunch",
    "PlannedTermination",
    "Scheduler",
    "TerminatingRecord",
    "Transition",
    "decide",
]

#: A scheduling function: one request in, one full decision out (placements, launches with
#: reasons, what is left unfulfilled). :func:`~rayk8s.autoscaler.schedule` is the default.
Scheduler = Callable[[SchedulingRequest], SchedulingResult]

#: How many recent failures the memory (and the status) keeps.
RECENT_FAILURES_KEPT = 20

#: Launch reasons the upscaling speed does not limit.
_EXEMPT = frozenset({LaunchReason.MIN_WORKERS, LaunchReason.PLACEMENT_GROUP, LaunchReason.REQUEST_RESOURCES})


@attrs.frozen
class InFlightLaunch:
    """A node ``create_node`` returned that the provider did not list yet."""

    node_id: str
    node_type: str
    request_id: str
    issued_at: float


@attrs.frozen
class TerminatingRecord:
    """We asked the provider to terminate this node at ``requested_at`` for ``reason``."""

    requested_at: float
    reason: TerminationReason


@attrs.frozen
class FailureRecord:
    """A launch that failed, or a node that never joined: shown in the status.

    ``kind``: ``quota`` or ``launch_error`` (``create_node`` raised), ``stuck`` (no join
    within the stuck timeout), ``failed`` (the provider gave up on the node), ``vanished``
    (created, never listed).
    """

    at: float
    node_type: str
    kind: str
    reason: str
    count: int = 1


@attrs.frozen
class AutoscalerMemory:
    """The soft state kept between updates; all of it may be lost without harm.

    Losing ``in_flight`` on a restart is safe because by then the provider lists those
    nodes; losing ``terminating`` costs one repeated (idempotent) terminate call; losing
    ``backoff`` costs at most one more failed launch per type.
    """

    in_flight: Mapping[str, InFlightLaunch] = attrs.field(factory=dict, hash=False)
    terminating: Mapping[str, TerminatingRecord] = attrs.field(factory=dict, hash=False)
    backoff: Mapping[str, Backoff] = attrs.field(factory=dict, hash=False)
    recent_failures: tuple[FailureRecord, ...] = ()
    states: Mapping[str, NodeState] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class NodeView:
    """One node of the cluster as this decision sees it."""

    id: str
    node_type: str
    is_head: bool
    state: NodeState
    created_at: float
    internal_ip: str | None = None
    usage: NodeUsage | None = None
    outdated: bool = False
    tags: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    unschedulable: str | None = None  # the provider's reason a pending node cannot be placed


@attrs.frozen
class Transition:
    """A node moved from ``old`` to ``new`` since the last update (``why`` from the table)."""

    node_id: str
    old: NodeState
    new: NodeState
    why: str


@attrs.frozen
class PlannedLaunch:
    """Launch ``count`` nodes of ``node_type`` for ``reason`` (one ``create_node`` call)."""

    node_type: str
    count: int
    reason: LaunchReason


@attrs.frozen
class PlannedTermination:
    """Terminate ``node_id`` for ``reason``; ``detail`` is a sentence a person can read."""

    node_id: str
    node_type: str
    reason: TerminationReason
    detail: str


@attrs.frozen
class Decision:
    """Everything one update decided, and what it decided from.

    ``held``: terminations (and, on a partial provider read, launches) that were due but
    held back because a read failed or was partial; ``hold_reason`` says which.
    ``deferred``: demand-driven launches per type that the upscaling speed postponed.
    ``tag_updates``: tags to write per node id (nodes that just joined Ray).
    ``refused``: state moves the transition table does not allow (reported, not applied).
    ``overruled``: launches the scheduler planned that break the rules (unknown or
    backing-off node type, over ``max_workers``), refused, one sentence each; always
    empty with rayk8s's own scheduler.
    """

    now: float
    nodes: tuple[NodeView, ...]
    load: LoadSnapshot
    scheduling: SchedulingResult | None
    launches: tuple[PlannedLaunch, ...]
    deferred: Mapping[str, int]
    terminations: tuple[PlannedTermination, ...]
    held: tuple[PlannedTermination, ...]
    held_launches: tuple[PlannedLaunch, ...]
    hold_reason: str | None
    tag_updates: Mapping[str, Mapping[str, str]]
    transitions: tuple[Transition, ...]
    refused: tuple[Transition, ...]
    unavailable_types: frozenset[str]
    new_failures: tuple[FailureRecord, ...]
    memory: AutoscalerMemory
    overruled: tuple[str, ...] = ()


def decide(
    config: AutoscalerConfig,
    snapshot: ProviderSnapshot | None,
    load: LoadSnapshot | None,
    memory: AutoscalerMemory,
    now: float,
    *,
    scheduler: Scheduler = schedule,
) -> Decision:
    """Decide one update. ``snapshot``/``load`` of ``None`` mean that read failed.

    A failed provider read decides nothing (what exists is unknown). A failed load read
    is taken as no demand: ``min_workers`` is still kept, nothing is terminated.
    ``scheduler`` decides what to launch (default :func:`~rayk8s.autoscaler.schedule`);
    it must be pure too for the decision to stay reproducible. Whatever it returns, only
    launches within the rules are planned (see :attr:`Decision.overruled`); an exception
    it raises propagates.
    """
    if snapshot is None:
        return _nothing(config, load, memory, now, "the provider read failed")

    load_known = load is not None and not load.partial
    load_value = load if load is not None else LoadSnapshot(partial=True, detail="the load read failed")
    usage = load_value.nodes
    hold_reasons = []
    if snapshot.partial:
        hold_reasons.append("the provider read was partial" + (f" ({snapshot.detail})" if snapshot.detail else ""))
    if load is None:
        hold_reasons.append("the load read failed")
    elif load.partial:
        hold_reasons.append("the load read was partial" + (f" ({load.detail})" if load.detail else ""))
    hold_reason = "; ".join(hold_reasons) or None

    # 1. Rebuild states.
    views: list[NodeView] = []
    transitions: list[Transition] = []
    refused: list[Transition] = []
    states: dict[str, NodeState] = {}
    tag_updates: dict[str, Mapping[str, str]] = {}
    backoff: dict[str, Backoff] = dict(memory.backoff)
    failures: list[FailureRecord] = []
    listed: set[str] = set()
    for pnode in snapshot.nodes:
        if pnode.tags.get(TAG_CLUSTER_NAME) != config.cluster_name:
            continue
        listed.add(pnode.id)
        node_usage = usage.get(pnode.id)
        state = derive_state(
            pnode, node_usage, load_known=load_known, now=now, heartbeat_timeout_s=config.heartbeat_timeout_s
        )
        if pnode.id in memory.terminating:
            state = NodeState.TERMINATING
        old = memory.states.get(pnode.id)
        if old is not None and old is not state:
            try:
                transitions.append(Transition(pnode.id, old, state, check_transition(old, state)))
            except IllegalTransition as error:
                refused.append(Transition(pnode.id, old, state, str(error)))
                state = old
        states[pnode.id] = state
        view = _view(config, pnode, state, node_usage)
        views.append(view)
        if state is NodeState.RUNNING and pnode.tags.get(TAG_NODE_STATUS) != STATUS_UP_TO_DATE:
            tag_updates[pnode.id] = {TAG_NODE_STATUS: STATUS_UP_TO_DATE}
            backoff = record_success(backoff, view.node_type)
    for node_id, old in memory.states.items():
        if node_id not in listed and node_id not in memory.in_flight and old is not NodeState.TERMINATED:
            try:
                why = check_transition(old, NodeState.TERMINATED)
            except IllegalTransition as error:  # a REQUESTED node that vanished is handled below
                why = str(error)
            transitions.append(Transition(node_id, old, NodeState.TERMINATED, why))

    # Nodes created but not listed yet count as pending, until the stuck timeout.
    in_flight: dict[str, InFlightLaunch] = {}
    for node_id, launch in memory.in_flight.items():
        if node_id in listed:
            continue
        if now - launch.issued_at <= config.stuck_timeout_s:
            in_flight[node_id] = launch
            states[node_id] = NodeState.REQUESTED
            views.append(
                NodeView(node_id, launch.node_type, False, NodeState.REQUESTED, launch.issued_at, outdated=False)
            )
        else:
            failures.append(FailureRecord(now, launch.node_type, "vanished", "created but never listed", 1))
            backoff = _fail(config, backoff, launch.node_type, now, "created but never listed")
            transitions.append(Transition(node_id, NodeState.REQUESTED, NodeState.TERMINATED, "never listed"))
    terminating = {node_id: record for node_id, record in memory.terminating.items() if node_id in listed}

    # 2. Nodes that must go whatever the load.
    forced: list[PlannedTermination] = []
    for view in views:
        if view.is_head or view.state is NodeState.REQUESTED:
            continue
        if view.id in terminating:
            record = terminating[view.id]
            if now - record.requested_at >= config.terminate_retry_s:
                forced.append(PlannedTermination(view.id, view.node_type, record.reason, "still listed; asking again"))
            continue
        planned = _forced(config, view, now)
        if planned is not None:
            forced.append(planned)
    held: list[PlannedTermination] = []
    if hold_reason is not None:
        held.extend(forced)
        forced = []
    tags_by_id = {view.id: view.tags for view in views}
    for planned in forced:
        never_joined = tags_by_id[planned.node_id].get(TAG_NODE_STATUS) != STATUS_UP_TO_DATE
        retry = planned.node_id in terminating
        if planned.reason in (TerminationReason.STUCK, TerminationReason.FAILED) and never_joined and not retry:
            failures.append(FailureRecord(now, planned.node_type, planned.reason.value, planned.detail, 1))
            backoff = _fail(config, backoff, planned.node_type, now, planned.detail)
    going = {planned.node_id for planned in forced}
    unavailable = unavailable_types(backoff, now)

    # 3. Schedule.
    request = SchedulingRequest(
        node_types=config.worker_node_types,
        nodes=tuple(_scheduler_node(config, view) for view in views if view.state.live and view.id not in going),
        demands=load_value.demands,
        placement_groups=load_value.placement_groups,
        resource_requests=load_value.resource_requests,
        max_workers=config.max_workers,
        unavailable_node_types=unavailable,
    )
    result = scheduler(request)
    admitted, overruled = _admit(request, result.new_nodes)

    # 4. Upscaling speed.
    by_reason: Counter[tuple[str, LaunchReason]] = Counter()
    for group in admitted:
        by_reason[(group.node_type, group.reason)] += group.count
    wanted = {t: c for (t, r), c in by_reason.items() if r not in _EXEMPT}
    exempt: Counter[str] = Counter()
    for (t, r), c in by_reason.items():
        if r in _EXEMPT:
            exempt[t] += c
    workers = [v for v in views if not v.is_head and v.id not in going]
    running = Counter(v.node_type for v in workers if v.state is NodeState.RUNNING)
    pending = Counter(v.node_type for v in workers if v.state.pending)
    allowed, deferred = rate_limit(
        wanted, exempt, running=running, pending=pending, upscaling_speed=config.upscaling_speed
    )
    launches: list[PlannedLaunch] = []
    for (node_type, reason), count in sorted(by_reason.items(), key=lambda item: (item[0][0], item[0][1].value)):
        if reason in _EXEMPT:
            launches.append(PlannedLaunch(node_type, count, reason))
        else:
            permitted = allowed.get(node_type, 0) - exempt.get(node_type, 0)
            if permitted > 0:
                launches.append(PlannedLaunch(node_type, min(count, permitted), reason))
    held_launches: list[PlannedLaunch] = []
    if snapshot.partial:
        held_launches, launches = launches, []

    # 5. Idle workers.
    live = Counter(v.node_type for v in workers if v.state.live)
    idle = [
        IdleNode(v.id, v.node_type, v.usage.idle_since)
        for v in workers
        if v.state is NodeState.RUNNING and v.usage is not None and v.usage.idle_since is not None
    ]
    node_types = config.worker_node_types
    chosen = select_idle(
        idle,
        now=now,
        timeouts_s={name: config.idle_timeout_s(name) for name in node_types},
        keep=frozenset(result.existing),
        live=live,
        min_workers={name: t.min_workers for name, t in node_types.items()},
        max_workers={name: t.max_workers for name, t in node_types.items()},
        cluster_max_workers=config.max_workers,
    )
    by_id = {v.id: v for v in workers}
    idle_terminations = [
        PlannedTermination(node_id, by_id[node_id].node_type, reason, _idle_detail(config, by_id[node_id], reason, now))
        for node_id, reason in chosen
    ]
    if hold_reason is not None:
        held.extend(idle_terminations)
    else:
        forced.extend(idle_terminations)

    failures_kept = (*memory.recent_failures, *failures)[-RECENT_FAILURES_KEPT:]
    new_memory = AutoscalerMemory(
        in_flight=in_flight, terminating=terminating, backoff=backoff, recent_failures=failures_kept, states=states
    )
    return Decision(
        now=now,
        nodes=tuple(views),
        load=load_value,
        scheduling=result,
        launches=tuple(launches),
        deferred=deferred,
        terminations=tuple(forced),
        held=tuple(held),
        held_launches=tuple(held_launches),
        hold_reason=hold_reason,
        tag_updates=tag_updates,
        transitions=tuple(transitions),
        refused=tuple(refused),
        unavailable_types=unavailable,
        new_failures=tuple(failures),
        memory=new_memory,
        overruled=overruled,
    )


def _admit(request: SchedulingRequest, groups: tuple[NewNodeGroup, ...]) -> tuple[list[NewNodeGroup], tuple[str, ...]]:
    """The new-node groups of a plan that keep the rules, and a sentence per one refused.

    A plan may only launch worker types of the request that are not backing off, a
    positive count, and no more than the per-type and cluster ``max_workers`` leave room
    for, counting the existing workers the request lists (pending ones included, so a
    scheduler that ignores launching nodes cannot launch past the limits). Groups are
    admitted in the plan's order; one that only partly fits is cut to the room left.
    """
    workers: Counter[str] = Counter(node.node_type for node in request.nodes if not node.is_head)
    total = sum(workers.values())
    admitted: list[NewNodeGroup] = []
    overruled: list[str] = []
    for group in groups:
        name = group.node_type
        node_type = request.node_types.get(name)
        asked = f"{group.count} {name!r} node(s) for {group.reason.value}"
        if node_type is None:
            overruled.append(f"refused {asked}: not a worker node type of this cluster")
            continue
        if name in request.unavailable_node_types:
            overruled.append(f"refused {asked}: the type is backing off after launch failures")
            continue
        if group.count < 1:
            overruled.append(f"refused {asked}: not a positive count")
            continue
        room = group.count
        if node_type.max_workers is not None:
            room = min(room, node_type.max_workers - workers[name])
        if request.max_workers is not None:
            room = min(room, request.max_workers - total)
        room = max(0, room)
        if room < group.count:
            overruled.append(f"refused {group.count - room} of {asked}: over max_workers")
        if room:
            admitted.append(group if room == group.count else attrs.evolve(group, count=room))
            workers[name] += room
            total += room
    return admitted, tuple(overruled)


def _nothing(
    config: AutoscalerConfig, load: LoadSnapshot | None, memory: AutoscalerMemory, now: float, reason: str
) -> Decision:
    return Decision(
        now=now,
        nodes=(),
        load=load if load is not None else LoadSnapshot(partial=True, detail="not read"),
        scheduling=None,
        launches=(),
        deferred={},
        terminations=(),
        held=(),
        held_launches=(),
        hold_reason=reason,
        tag_updates={},
        transitions=(),
        refused=(),
        unavailable_types=unavailable_types(memory.backoff, now),
        new_failures=(),
        memory=memory,
    )


def _fail(
    config: AutoscalerConfig, backoff: Mapping[str, Backoff], node_type: str, now: float, reason: str
) -> dict[str, Backoff]:
    return record_failure(
        backoff,
        node_type,
        now=now,
        reason=reason,
        initial_s=config.launch_backoff_initial_s,
        max_s=config.launch_backoff_max_s,
    )


def _view(config: AutoscalerConfig, pnode: ProviderNode, state: NodeState, usage: NodeUsage | None) -> NodeView:
    node_type = pnode.node_type or ("head" if pnode.is_head else "unknown")
    is_head = pnode.is_head
    outdated = False
    if not is_head:
        current = config.launch_config_hash(node_type) if node_type in config.node_types else None
        outdated = is_outdated(pnode.tags, current)
    return NodeView(
        id=pnode.id,
        node_type=node_type,
        is_head=is_head,
        state=state,
        created_at=pnode.created_at,
        internal_ip=pnode.internal_ip,
        usage=usage,
        outdated=outdated,
        tags=pnode.tags,
        unschedulable=pnode.unschedulable,
    )


def _forced(config: AutoscalerConfig, view: NodeView, now: float) -> PlannedTermination | None:
    if view.state is NodeState.FAILED:
        return PlannedTermination(view.id, view.node_type, TerminationReason.FAILED, "the provider reports it failed")
    if is_stuck(view.state, view.created_at, now, config.stuck_timeout_s):
        return PlannedTermination(
            view.id,
            view.node_type,
            TerminationReason.STUCK,
            f"not joined Ray {now - view.created_at:.0f}s after launch (timeout {config.stuck_timeout_s:g}s)"
            + (f"; unschedulable: {view.unschedulable}" if view.unschedulable else ""),
        )
    if view.state is NodeState.LOST:
        heartbeat = view.usage.last_heartbeat if view.usage is not None else None
        detail = (
            f"no heartbeat for {now - heartbeat:.0f}s (timeout {config.heartbeat_timeout_s:g}s)"
            if heartbeat is not None
            else "Ray no longer reports the node"
        )
        return PlannedTermination(view.id, view.node_type, TerminationReason.LOST, detail)
    if (
        view.outdated
        and view.state is NodeState.RUNNING
        and view.usage is not None
        and view.usage.idle_since is not None
    ):
        return PlannedTermination(
            view.id, view.node_type, TerminationReason.OUTDATED, "launched with an older launch config; idle"
        )
    return None


def _scheduler_node(config: AutoscalerConfig, view: NodeView) -> Node:
    known = view.node_type in config.worker_node_types
    usage = view.usage
    if view.state is NodeState.RUNNING:
        # A running node Ray does not report (load read failed) is taken as full.
        available = usage.available if usage is not None else Resources()
        total = None
        if not known or view.is_head:
            total = usage.total if usage is not None and usage.total is not None else _type_resources(config, view)
        return Node(view.id, view.node_type, NodeStatus.RUNNING, available=available, total=total, is_head=view.is_head)
    total = None if known else _type_resources(config, view)
    return Node(view.id, view.node_type, NodeStatus.PENDING, total=total, is_head=view.is_head)


def _type_resources(config: AutoscalerConfig, view: NodeView) -> Resources:
    node_type = config.node_types.get(view.node_type)
    return node_type.node_type.resources if node_type is not None else Resources()


def _idle_detail(config: AutoscalerConfig, view: NodeView, reason: TerminationReason, now: float) -> str:
    idle_s = now - view.usage.idle_since if view.usage is not None and view.usage.idle_since is not None else 0.0
    if reason is TerminationReason.MAX_WORKERS:
        return f"over max_workers; idle {idle_s:.0f}s"
    return f"idle {idle_s:.0f}s (timeout {config.idle_timeout_s(view.node_type):g}s)"
