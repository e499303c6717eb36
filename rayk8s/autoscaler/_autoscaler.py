"""The autoscaler's reconcile step: gather -> decide -> act -> report, one update at a time.

:class:`Autoscaler` talks only to what it is given: a provider (``nodes``,
``create_node``, ``terminate_nodes``, ``set_node_tags``), a load source (``load``) and a
clock (a callable returning seconds). :meth:`Autoscaler.update` never raises: every
failure -- a read, the decision, a launch, a termination -- is recorded in the returned
:class:`UpdateResult`, counted, and the next update starts afresh from what the provider
and the load source say. Call it from any loop: a thread, an asyncio task (in an
executor: the provider calls block), a kopf daemon, a controller.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import attrs

from rayk8s.autoscaler._config import AutoscalerConfig
from rayk8s.autoscaler._decide import (
    AutoscalerMemory,
    Decision,
    FailureRecord,
    InFlightLaunch,
    PlannedLaunch,
    PlannedTermination,
    Scheduler,
    TerminatingRecord,
    decide,
)
from rayk8s.autoscaler._load import LoadSnapshot, LoadSource
from rayk8s.autoscaler._policy import record_failure
from rayk8s.autoscaler._ports import ProviderPort, ProviderSnapshot
from rayk8s.autoscaler._result import LaunchReason
from rayk8s.autoscaler._scheduler import schedule
from rayk8s.autoscaler._status import StatusSummary
from rayk8s.autoscaler._tags import (
    NODE_KIND_WORKER,
    STATUS_UNINITIALIZED,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_CONFIG,
    TAG_LAUNCH_REQUEST,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)
from rayk8s.errors import LaunchError, QuotaError

__all__ = ["Autoscaler", "LaunchOutcome", "UpdateError", "UpdateResult"]

Clock = Callable[[], float]


@attrs.frozen
class UpdateError:
    """Something that went wrong in an update: ``stage`` is ``provider_read``,
    ``load_read``, ``decide``, ``schedule`` (the scheduler planned a launch that breaks
    the rules; it was refused), ``launch``, ``terminate``, ``tag`` or ``transition``."""

    stage: str
    message: str
    node_type: str | None = None

    def __str__(self) -> str:
        return f"{self.stage}{f' [{self.node_type}]' if self.node_type else ''}: {self.message}"


@attrs.frozen
class LaunchOutcome:
    """One ``create_node`` call: asked for ``count``, ``node_ids`` created; ``error`` and the
    number that ``failed`` if it raised."""

    node_type: str
    count: int
    reason: LaunchReason
    request_id: str
    node_ids: tuple[str, ...] = ()
    error: str | None = None
    failed: int = 0

    @property
    def created(self) -> int:
        """Nodes this call is known to have created (a failed call may have created some the
        next read will list)."""
        return len(self.node_ids)


@attrs.frozen
class UpdateResult:
    """What one update decided and did.

    ``decision``: the pure decision (``None`` only if deciding itself failed).
    ``launches``: one outcome per ``create_node`` call, with its reason.
    ``terminations``: the nodes the provider was asked to terminate, each with a reason.
    ``held_back``: why terminations were held back in this update (a read failed or was
    partial), else ``None``. ``errors``: everything that failed. ``status``: the summary.
    """

    now: float
    decision: Decision | None
    launches: tuple[LaunchOutcome, ...]
    terminations: tuple[PlannedTermination, ...]
    held_back: str | None
    errors: tuple[UpdateError, ...]
    status: StatusSummary

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def launched(self) -> dict[str, int]:
        """Nodes created per type in this update."""
        out: dict[str, int] = {}
        for item in self.launches:
            if item.created:
                out[item.node_type] = out.get(item.node_type, 0) + item.created
        return out

    def log_fields(self) -> dict[str, Any]:
        """The fields of the one canonical log line per update (``autoscaler_update``)."""
        decision = self.decision
        return {
            "now": self.now,
            "nodes": self.status.node_counts,
            "launched": self.launched,
            "deferred": dict(decision.deferred) if decision is not None else {},
            "terminated": {t.node_id: t.reason.value for t in self.terminations},
            "held_back": self.held_back,
            "unfulfilled": sum(u.count for u in self.status.unfulfilled),
            "errors": [str(e) for e in self.errors],
        }


def _default_ids(clock: Clock) -> Callable[[], str]:
    counter = itertools.count(1)

    def next_id() -> str:
        return f"{int(clock() * 1000):x}-{next(counter)}"

    return next_id


class Autoscaler:
    """One Ray cluster's autoscaler; :meth:`update` is one reconcile step.

    ``config``: the :class:`AutoscalerConfig`. ``provider``: a
    :class:`rayk8s.providers.NodeProvider` (anything with its ``nodes``, ``create_node``,
    ``terminate_nodes`` and ``set_node_tags``). ``load_source``: a :class:`LoadSource`.
    ``clock``: returns now in seconds (``time.time`` in programs, a virtual clock in
    the simulator). ``request_ids``: makes launch-request ids (tag ``ray-launch-request``);
    the default derives them from the clock and a counter. ``scheduler``: the scheduling
    function each update asks what to launch (``SchedulingRequest -> SchedulingResult``,
    default :func:`~rayk8s.autoscaler.schedule`) — a baseline or an experiment; its plan is
    held to the same rules (node types, back-off, ``max_workers``, upscaling speed, never
    terminating what it places work on) and a launch that breaks them is refused and
    reported as an ``UpdateError`` of stage ``schedule``.

    Not thread-safe: call :meth:`update` from one loop at a time.
    """

    def __init__(
        self,
        config: AutoscalerConfig,
        *,
        provider: ProviderPort,
        load_source: LoadSource,
        clock: Clock,
        request_ids: Callable[[], str] | None = None,
        scheduler: Scheduler = schedule,
    ) -> None:
        self.config = config
        self.provider = provider
        self.load_source = load_source
        self.clock = clock
        self.scheduler = scheduler
        self._request_ids = request_ids or _default_ids(clock)
        self._memory = AutoscalerMemory()
        self.updates = 0
        self.error_count = 0
        self.failed_updates = 0
        self.consecutive_failed_updates = 0
        self.last_result: UpdateResult | None = None

    @property
    def memory(self) -> AutoscalerMemory:
        """The soft state carried to the next update (in-flight launches, back-off, ...)."""
        return self._memory

    def update(self) -> UpdateResult:
        """Gather, decide, act, report. Never raises; errors are in the result."""
        now = self.clock()
        errors: list[UpdateError] = []

        # Gather: one provider read, one load read.
        snapshot: ProviderSnapshot | None = None
        load: LoadSnapshot | None = None
        try:
            snapshot = self.provider.nodes({TAG_CLUSTER_NAME: self.config.cluster_name})
        except Exception as error:
            errors.append(UpdateError("provider_read", _describe(error)))
        try:
            load = self.load_source.load()
        except Exception as error:
            errors.append(UpdateError("load_read", _describe(error)))

        # Decide.
        try:
            decision = decide(self.config, snapshot, load, self._memory, now, scheduler=self.scheduler)
        except Exception as error:
            errors.append(UpdateError("decide", _describe(error)))
            return self._finish(now, None, (), (), "the decision failed", errors, None)
        errors.extend(UpdateError("transition", t.why) for t in decision.refused)
        errors.extend(UpdateError("schedule", sentence) for sentence in decision.overruled)

        # Act.
        memory = decision.memory
        for node_id, tags in decision.tag_updates.items():
            try:
                self.provider.set_node_tags(node_id, tags)
            except Exception as error:
                errors.append(UpdateError("tag", f"{node_id}: {_describe(error)}"))
        terminated: tuple[PlannedTermination, ...] = ()
        if decision.terminations:
            try:
                self.provider.terminate_nodes([t.node_id for t in decision.terminations])
                terminated = decision.terminations
                terminating = dict(memory.terminating)
                for item in terminated:
                    terminating[item.node_id] = TerminatingRecord(now, item.reason)
                memory = attrs.evolve(memory, terminating=terminating)
            except Exception as error:
                errors.append(UpdateError("terminate", _describe(error)))
        outcomes: list[LaunchOutcome] = []
        for planned in decision.launches:
            outcome, memory = self._launch(planned, memory, now)
            outcomes.append(outcome)
            if outcome.error is not None:
                errors.append(UpdateError("launch", outcome.error, planned.node_type))
        self._memory = memory
        return self._finish(now, decision, tuple(outcomes), terminated, decision.hold_reason, errors, memory)

    def _launch(
        self, planned: PlannedLaunch, memory: AutoscalerMemory, now: float
    ) -> tuple[LaunchOutcome, AutoscalerMemory]:
        config = self.config
        request_id = self._request_ids()
        tags = {
            TAG_CLUSTER_NAME: config.cluster_name,
            TAG_NODE_KIND: NODE_KIND_WORKER,
            TAG_USER_NODE_TYPE: planned.node_type,
            TAG_NODE_STATUS: STATUS_UNINITIALIZED,
            TAG_LAUNCH_CONFIG: config.launch_config_hash(planned.node_type),
            TAG_LAUNCH_REQUEST: request_id,
        }
        node_config = config.node_types[planned.node_type].node_config
        try:
            node_ids = tuple(self.provider.create_node(node_config, tags, planned.count))
        except LaunchError as error:
            kind = "quota" if isinstance(error, QuotaError) else "launch_error"
            memory = self._failed(memory, planned.node_type, now, kind, error.reason, error.count)
            outcome = LaunchOutcome(
                planned.node_type, planned.count, planned.reason, request_id, (), str(error), error.count
            )
            return outcome, memory
        except Exception as error:
            reason = _describe(error)
            memory = self._failed(memory, planned.node_type, now, "launch_error", reason, planned.count)
            outcome = LaunchOutcome(
                planned.node_type, planned.count, planned.reason, request_id, (), reason, planned.count
            )
            return outcome, memory
        in_flight = dict(memory.in_flight)
        for node_id in node_ids:
            in_flight[node_id] = InFlightLaunch(node_id, planned.node_type, request_id, now)
        memory = attrs.evolve(memory, in_flight=in_flight)
        return LaunchOutcome(planned.node_type, planned.count, planned.reason, request_id, node_ids), memory

    def _failed(
        self, memory: AutoscalerMemory, node_type: str, now: float, kind: str, reason: str, count: int
    ) -> AutoscalerMemory:
        config = self.config
        backoff = record_failure(
            memory.backoff,
            node_type,
            now=now,
            reason=reason,
            initial_s=config.launch_backoff_initial_s,
            max_s=config.launch_backoff_max_s,
        )
        failures = (*memory.recent_failures, FailureRecord(now, node_type, kind, reason, count))[-20:]
        return attrs.evolve(memory, backoff=backoff, recent_failures=failures)

    def _finish(
        self,
        now: float,
        decision: Decision | None,
        launches: tuple[LaunchOutcome, ...],
        terminations: tuple[PlannedTermination, ...],
        held_back: str | None,
        errors: list[UpdateError],
        memory: AutoscalerMemory | None,
    ) -> UpdateResult:
        self.updates += 1
        self.error_count += len(errors)
        if errors:
            self.failed_updates += 1
            self.consecutive_failed_updates += 1
        else:
            self.consecutive_failed_updates = 0
        messages = [str(e) for e in errors]
        if decision is not None:
            if memory is not None:
                decision = attrs.evolve(decision, memory=memory)
            requests: dict[str, int] = {}
            for item in launches:
                if item.created:
                    requests[item.node_type] = requests.get(item.node_type, 0) + item.created
            status = StatusSummary.from_decision(
                self.config, decision, node_requests=requests, terminations=terminations, errors=messages
            )
        else:
            status = StatusSummary(self.config.cluster_name, now, held_back=held_back, errors=tuple(messages))
        result = UpdateResult(now, decision, launches, terminations, held_back, tuple(errors), status)
        self.last_result = result
        return result


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
