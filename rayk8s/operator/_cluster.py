"""One RayCluster as the operator runs it: its config, provider, load source and autoscaler.

:class:`ClusterRuntime` is what the per-cluster kopf daemon drives, and has no kopf in
it: build it from a RayCluster's name, namespace, uid and spec; :meth:`ensure_head`
creates the head pod if the cluster has no head, and the Services at start and after
:meth:`services_deleted`; :meth:`update` runs one
:meth:`Autoscaler.update`; :meth:`reload` applies a changed spec without touching Ray;
:meth:`status` and :func:`events_of` turn an update into the RayCluster's status and its
Kubernetes Events. Blocking calls (the provider's); the daemon runs them in a thread.
"""

from __future__ import annotations

import copy
import datetime
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import structlog
from kubernetes.client import ApiClient

from rayk8s.autoscaler import Autoscaler, LoadSource, ResourceDemand, UpdateResult
from rayk8s.autoscaler._ports import ProviderNode, ProviderNodeStatus, ProviderPort
from rayk8s.autoscaler._tags import (
    NODE_KIND_HEAD,
    STATUS_UNINITIALIZED,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_CONFIG,
    TAG_LAUNCH_REQUEST,
    TAG_NODE_KIND,
    TAG_NODE_STATUS,
    TAG_USER_NODE_TYPE,
)
from rayk8s.errors import ConfigError, RayK8sError
from rayk8s.launcher._config import ClusterConfig
from rayk8s.launcher._kubernetes import add_start_hook, kubernetes_node_configs
from rayk8s.launcher._schema import spec_path, spec_to_config
from rayk8s.operator._crd import GROUP, KIND, VERSION
from rayk8s.providers.kubernetes import KubernetesNodeProvider
from rayk8s.providers.kubernetes._services import HEAD_PORTS
from rayk8s.simulate import DeclaredLoadSource, parse_work

__all__ = [
    "LOAD_SOURCES",
    "WORK_ANNOTATION",
    "ClusterRuntime",
    "Event",
    "OperatorSettings",
    "cluster_config",
    "events_of",
]

log = structlog.get_logger()

#: The annotation the ``simulated`` load source reads the declared work from (JSON).
WORK_ANNOTATION = "rayk8s.io/simulated-work"

#: Where the operator reads a cluster's load: ``ray`` (the head's GCS) or ``simulated``.
LOAD_SOURCES = ("ray", "simulated")


@attrs.frozen
class OperatorSettings:
    """How the operator runs, field by field.

    - ``namespaces``: the namespaces whose RayClusters it manages (empty: its own, read
      from the pod's ServiceAccount, else ``default``).
    - ``load_source``: ``ray`` (read each cluster's load from its head's GCS, through the
      head Service; needs the ``ray`` extra) or ``simulated`` (a testing and demo mode: no
      Ray runs, the work is declared in the RayCluster's ``rayk8s.io/simulated-work``
      annotation; see :mod:`rayk8s.simulate._declared`).
    - ``update_interval_s``: seconds between two updates of a cluster when its spec does
      not say (``autoscaler.updateIntervalS``); default 5, as Ray's monitor.
    - ``delete_grace_period_s``: grace period of worker pod deletes (default: the pod's).
    - ``metrics_port``: the Prometheus endpoint's port (``0``: none).
    - ``liveness_port``: kopf's health endpoint ``/healthz`` (``0``: none).
    - ``update_threads``: threads running clusters' blocking updates at once.
    """

    namespaces: tuple[str, ...] = ()
    load_source: str = "ray"
    update_interval_s: float | None = None
    delete_grace_period_s: int | None = None
    metrics_port: int = 0
    liveness_port: int = 0
    update_threads: int = 64

    def __attrs_post_init__(self) -> None:
        if self.load_source not in LOAD_SOURCES:
            raise ConfigError("load_source", f"expected one of {', '.join(LOAD_SOURCES)}, got {self.load_source!r}")


def owner_reference(name: str, uid: str) -> dict[str, Any]:
    """The ownerReference every pod and Service of the cluster carries."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": name, "uid": uid, "controller": True}


def cluster_config(
    name: str, namespace: str, spec: Mapping[str, Any], *, provider: Mapping[str, Any] | None = None
) -> ClusterConfig:
    """The cluster config of a RayCluster ``spec``, checked; errors name the spec's field path.

    The operator fills ``provider`` (type kubernetes, this namespace, plus ``provider``);
    pod types' Ray resources not stated in ``rayResources`` come from their containers'
    limits. Raises :class:`ConfigError` with a path such as ``spec.podTypes[1].minWorkers``.
    """
    provider_config = {"type": "kubernetes", "namespace": namespace, **(provider or {})}
    data = spec_to_config(spec, cluster_name=name, provider=provider_config)
    try:
        config = ClusterConfig.from_dict(data)
        pod_templates(config)  # a template the operator cannot complete is a spec error too
    except ConfigError as error:
        raise ConfigError(spec_path(error.path, spec), error.message) from None
    return config


def _head_service_host(name: str, namespace: str) -> str:
    return f"{name}-ray-head.{namespace}.svc"


def pod_templates(config: ClusterConfig) -> dict[str, dict[str, Any]]:
    """Each pod type's pod template as the operator creates it.

    Workers are the launcher's (:func:`rayk8s.launcher.kubernetes_node_configs`): a
    ``postStart`` hook runs ``setupCommands``, the type's (or the cluster's) worker set-up
    commands and ``workerStartRayCommands``, with ``RAY_HEAD_IP`` set to the head Service.
    The head gets the same kind of hook with the head's commands (the launcher runs them
    through exec instead; the operator's Role has no ``pods/exec``). Every Ray container
    gets ``RAY_CLOUD_INSTANCE_ID``, the pod's name, which is how the Ray load source maps
    Ray nodes to pods. The main process must keep the container up (``sleep infinity``).
    """
    out = kubernetes_node_configs(config)
    head_type = config.head_node_type
    head = copy.deepcopy(dict(config.head.node_config))
    commands = config.commands
    script = commands.setup_commands + commands.head_setup_commands + commands.head_start_ray_commands
    containers = (head.get("spec") or {}).get("containers")
    if script and isinstance(containers, list) and containers and isinstance(containers[0], dict):
        path = f"available_node_types.{head_type}.node_config.spec.containers[0]"
        add_start_hook(containers[0], script, config.cluster_name, path)
    out[head_type] = head
    for template in out.values():
        containers = (template.get("spec") or {}).get("containers")
        if isinstance(containers, list) and containers and isinstance(containers[0], dict):
            env = containers[0].setdefault("env", [])
            if not any(isinstance(e, Mapping) and e.get("name") == "RAY_CLOUD_INSTANCE_ID" for e in env):
                env.append({"name": "RAY_CLOUD_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    return out


def update_interval_s(spec: Mapping[str, Any], config: ClusterConfig, settings: OperatorSettings) -> float:
    """The spec's ``autoscaler.updateIntervalS`` if it states one, else ``--update-interval``, else 5."""
    stated = isinstance(spec.get("autoscaler"), Mapping) and "updateIntervalS" in spec["autoscaler"]
    if stated or settings.update_interval_s is None:
        return config.autoscaler.update_interval_s
    return settings.update_interval_s


@attrs.frozen
class Event:
    """A Kubernetes Event to post on the RayCluster: ``type`` Normal or Warning."""

    type: str
    reason: str
    message: str


def events_of(result: UpdateResult) -> list[Event]:
    """The Events an update deserves: ScaledUp, ScaledDown, LaunchFailed, AutoscalingError."""
    events: list[Event] = []
    for outcome in result.launches:
        if outcome.created:
            events.append(
                Event("Normal", "ScaledUp", f"launched {outcome.created} {outcome.node_type} ({outcome.reason.value})")
            )
        if outcome.error is not None:
            events.append(Event("Warning", "LaunchFailed", f"{outcome.node_type}: {outcome.error}"))
    if result.terminations:
        by_reason: dict[str, list[str]] = {}
        for item in result.terminations:
            by_reason.setdefault(item.reason.value, []).append(item.node_id)
        for reason, ids in sorted(by_reason.items()):
            events.append(Event("Normal", "ScaledDown", f"terminated {len(ids)} ({reason}): {', '.join(sorted(ids))}"))
    for error in result.errors:
        if error.stage != "launch":
            events.append(Event("Warning", "AutoscalingError", str(error)))
    return events


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ClusterRuntime:
    """One RayCluster's autoscaler and provider (see the module).

    ``work``: returns the declared work (the ``simulated`` load source); ``clock``:
    seconds, ``time.time`` by default.
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        uid: str,
        spec: Mapping[str, Any],
        *,
        api_client: ApiClient,
        settings: OperatorSettings,
        work: Callable[[], object] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.settings = settings
        self.clock = clock
        self._work = work
        self.log = log.bind(cluster=name)
        self.config = self._config(spec)
        self.spec = copy.deepcopy(dict(spec))
        self.autoscaler_config = self.config.to_autoscaler_config(pod_templates(self.config))
        self.provider = KubernetesNodeProvider(self.config.provider, name, api_client=api_client)
        self._report: Callable[[UpdateResult], object] | None = None  # tells Ray what the autoscaler did
        try:
            self.load_source, acting = self._load_source()
        except BaseException:
            self.provider.close()  # its pod watch thread would outlive a runtime never returned
            raise
        self.autoscaler = Autoscaler(self.autoscaler_config, provider=acting, load_source=self.load_source, clock=clock)
        self._conditions: dict[str, dict[str, str]] = {}
        self._head_error: str | None = None
        self._services_lost = 0  # Services of this cluster seen deleted (services_deleted)
        self._services_made: int | None = None  # _services_lost as of the last ensure_services

    def _config(self, spec: Mapping[str, Any]) -> ClusterConfig:
        extra: dict[str, Any] = {"owner_reference": owner_reference(self.name, self.uid)}
        if self.settings.delete_grace_period_s is not None:
            extra["delete_grace_period_s"] = self.settings.delete_grace_period_s
        return cluster_config(self.name, self.namespace, spec, provider=extra)

    def _load_source(self) -> tuple[LoadSource, ProviderPort]:
        """The load source, and the provider the autoscaler acts through (draining via Ray for ``ray``)."""
        if self.settings.load_source == "simulated":
            declared = DeclaredLoadSource(
                provider=self.provider,
                config=lambda: self.autoscaler_config,
                work=self.declared_work,
                clock=self.clock,
            )
            return declared, self.provider
        from rayk8s.ray import DrainingProvider, RayLoadSource

        ray = RayLoadSource(f"{_head_service_host(self.name, self.namespace)}:{HEAD_PORTS['gcs']}", clock=self.clock)
        self._report = ray.report
        return ray, DrainingProvider(self.provider, ray)

    def declared_work(self) -> Sequence[ResourceDemand]:
        """The work the RayCluster's ``rayk8s.io/simulated-work`` annotation declares."""
        return parse_work(self._work(), f"metadata.annotations[{WORK_ANNOTATION}]")

    @property
    def update_interval_s(self) -> float:
        """Seconds between updates: the spec's ``autoscaler.updateIntervalS``, else the operator's setting."""
        return update_interval_s(self.spec, self.config, self.settings)

    # -- acting --------------------------------------------------------------------------

    def reload(self, spec: Mapping[str, Any]) -> bool:
        """Apply a changed spec to the autoscaler (Ray is not restarted); False if unchanged.

        Raises :class:`ConfigError` (spec path) and keeps the old config if it is invalid.
        """
        if dict(spec) == self.spec:
            return False
        config = self._config(spec)
        self.config = config
        self.spec = copy.deepcopy(dict(spec))
        self.autoscaler_config = config.to_autoscaler_config(pod_templates(config))
        self.autoscaler.config = self.autoscaler_config
        self.log.info("config_reloaded", node_types=sorted(self.autoscaler_config.node_types))
        return True

    def head(self) -> ProviderNode | None:
        """The head node the provider lists (not terminating), or ``None``."""
        snapshot = self.provider.nodes({TAG_CLUSTER_NAME: self.name, TAG_NODE_KIND: NODE_KIND_HEAD})
        live = [n for n in snapshot.nodes if n.status is not ProviderNodeStatus.TERMINATING]
        return live[0] if live else None

    def services_deleted(self, name: str) -> None:
        """One of this cluster's Services was deleted: the next update makes it again.

        The operator calls it from its watch of the namespace's Services (one thread).
        """
        self._services_lost += 1
        self.log.warning("service_deleted", service=name)

    def ensure_services(self) -> list[Event]:
        """Make the Services when the runtime starts and after :meth:`services_deleted`; else no call."""
        lost = self._services_lost
        if self._services_made == lost:
            return []
        again = self._services_made is not None
        outcomes = self.provider.ensure_services()
        self._services_made = lost
        made = sorted(name for name, outcome in outcomes.items() if outcome == "created")
        if not (made and again):
            return []
        self.log.info("services_recreated", services=made)
        return [Event("Normal", "ServiceRecreated", f"made the deleted Service {', '.join(made)} again")]

    def ensure_head(self) -> list[Event]:
        """Make the Services if needed (:meth:`ensure_services`), and the head pod whenever the cluster has none.

        Restart-safe: the head's launch request is named after the RayCluster's uid, so a
        create repeated by a restarted operator finds the pod the first one made; nothing
        is created while the pod list is partial. A Failed head pod is deleted, and
        replaced at the next update. Returns the Events to post; raises
        :class:`~rayk8s.errors.RayK8sError` (a launch or API failure).
        """
        events = self.ensure_services()
        snapshot = self.provider.nodes({TAG_CLUSTER_NAME: self.name, TAG_NODE_KIND: NODE_KIND_HEAD})
        live = [n for n in snapshot.nodes if n.status is not ProviderNodeStatus.TERMINATING]
        if any(n.status is ProviderNodeStatus.FAILED for n in live):
            failed = [n.id for n in live if n.status is ProviderNodeStatus.FAILED]
            self.provider.terminate_nodes(failed)
            self.log.warning("head_failed", pods=failed)
            return [*events, Event("Warning", "HeadFailed", f"deleted the failed head pod {', '.join(failed)}")]
        if live or snapshot.partial:
            return events
        head_type = self.config.head_node_type
        tags = {
            TAG_CLUSTER_NAME: self.name,
            TAG_NODE_KIND: NODE_KIND_HEAD,
            TAG_USER_NODE_TYPE: head_type,
            TAG_NODE_STATUS: STATUS_UNINITIALIZED,
            TAG_LAUNCH_CONFIG: self.autoscaler_config.launch_config_hash(head_type),
            TAG_LAUNCH_REQUEST: f"head-{self.uid}",
        }
        names = self.provider.create_node(self.autoscaler_config.node_types[head_type].node_config, tags, 1)
        self.log.info("head_created", pod=names[0])
        return [*events, Event("Normal", "HeadCreated", f"created the head pod {names[0]}")]

    def update(self) -> tuple[UpdateResult | None, list[Event]]:
        """Make sure the head exists, then one autoscaler update.

        Returns the update's result (``None`` if the head could not be made) and the
        Events to post.
        """
        try:
            events = self.ensure_head()
        except RayK8sError as error:
            self.log.error("head_launch_failed", error=str(error))
            self._head_error = str(error)
            return None, [Event("Warning", "HeadLaunchFailed", str(error))]
        self._head_error = None
        result = self.autoscaler.update()
        if self._report is not None:
            self._report(result)
        return result, events + events_of(result)

    def close(self) -> None:
        self.provider.close()

    # -- reporting -----------------------------------------------------------------------

    def _condition(self, kind: str, ok: bool, reason: str, message: str) -> dict[str, str]:
        status = "True" if ok else "False"
        previous = self._conditions.get(kind)
        since = previous["lastTransitionTime"] if previous and previous["status"] == status else _now_iso()
        condition = {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}
        self._conditions[kind] = condition
        return condition

    def status(
        self, result: UpdateResult | None, generation: int | None = None, *, invalid: str | None = None
    ) -> dict[str, Any]:
        """The RayCluster's ``status`` after ``result`` (see docs/operator.md).

        ``invalid``: why the current spec was refused (the cluster runs its last valid
        config): phase ``Error`` and condition ``ConfigValid`` False.
        """
        head = self.head()
        head_running = head is not None and head.status is ProviderNodeStatus.RUNNING
        head_error = self._head_error
        conditions = [
            self._condition(
                "ConfigValid",
                invalid is None,
                "InvalidSpec" if invalid else "Valid",
                invalid or "the spec is a valid cluster config",
            ),
            self._condition(
                "HeadReady",
                head_running,
                "Running" if head_running else ("LaunchFailed" if head_error else "Pending"),
                head_error or (f"head pod {head.id} is {head.status.value}" if head else "no head pod yet"),
            ),
        ]
        status: dict[str, Any] = {"observedGeneration": generation} if generation is not None else {}
        if result is None:
            phase, message = "Error", f"the head could not be launched: {head_error}"
            conditions.append(self._condition("Autoscaling", False, "HeadLaunchFailed", message))
        else:
            errors = [str(e) for e in result.errors]
            # A type backing off after failed launches keeps the cluster in recovery until it may launch again.
            errors += [
                f"{node_type}: launches paused after {item.failures} failure(s): {item.reason}"
                for node_type, item in sorted(result.status.backoff.items())
                if item.until > result.now
                and not any(e.stage == "launch" and e.node_type == node_type for e in result.errors)
            ]
            if not head_running:
                phase, message = "Pending", "; ".join(["waiting for the head pod to run", *errors])[:1000]
            elif errors:
                phase, message = "AutoscalingExceptionRecovery", "; ".join(errors)[:1000]
            else:
                phase, message = "Running", ""
            conditions.append(
                self._condition(
                    "Autoscaling",
                    not errors,
                    "UpdateFailed" if errors else "UpdateSucceeded",
                    message or "the last update succeeded",
                )
            )
            counts = dict(result.status.node_counts)
            status["nodes"] = counts
            status["workers"] = result.status.worker_nodes
            if result.launches or result.terminations:
                status["lastDecision"] = {
                    "time": _now_iso(),
                    "launched": result.launched,
                    "terminated": {t.node_id: t.reason.value for t in result.terminations},
                    "unfulfilled": sum(u.count for u in result.status.unfulfilled),
                }
        if invalid is not None:
            phase, message = "Error", f"{invalid} (the cluster runs its last valid spec)"
        status.update(phase=phase, message=message, conditions=conditions)
        return status


def _error_status(reason: str, message: str, generation: int | None) -> dict[str, Any]:
    condition = {"type": "ConfigValid", "status": "False", "reason": reason, "message": message}
    if reason != "InvalidSpec":
        condition = {"type": "Autoscaling", "status": "False", "reason": reason, "message": message}
    status: dict[str, Any] = {
        "phase": "Error",
        "message": message,
        "conditions": [{**condition, "lastTransitionTime": _now_iso()}],
    }
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def invalid_status(error: ConfigError, generation: int | None) -> dict[str, Any]:
    """The status of a RayCluster whose spec is not a valid cluster config."""
    return _error_status("InvalidSpec", str(error), generation)


def failed_status(message: str, generation: int | None) -> dict[str, Any]:
    """The status of a RayCluster whose autoscaler cannot be started (retried each interval)."""
    return _error_status("StartFailed", message, generation)


__all__ += ["failed_status", "invalid_status", "owner_reference", "pod_templates", "update_interval_s"]
