"""The operator on kopf: one daemon per RayCluster, each driving that cluster's autoscaler.

kopf watches the RayClusters of the namespaces given, retries, keeps a finalizer so a
daemon stops before its RayCluster goes, and starts one daemon per RayCluster on
creation and on operator start (resume). The daemon:

1. builds the cluster's :class:`~rayk8s.operator._cluster.ClusterRuntime` from the spec
   (an invalid spec: status phase ``Error`` naming the field path, a Warning Event, and
   a wait for the next spec);
2. every ``updateIntervalS``: creates the head pod if missing, runs one
   ``Autoscaler.update()`` (in a thread: the provider's calls block), writes the status
   subresource when it changed, posts Events for scale-up, scale-down and failures, and
   logs the monitor block with the ``<cluster>:`` prefix;
3. applies a changed spec (the daemon's ``spec`` is kopf's live view) without
   restarting Ray;
4. on deletion, stops; the pods and Services carry ownerReferences to the RayCluster, so
   Kubernetes' garbage collector removes them.

A second kopf watch, of the namespace's Services labelled ``ray-cluster-name`` (one for
all clusters), tells a running cluster when one of its Services is deleted; its next
update makes it again. The steady state makes no call to look for Services.

Nothing is kept between daemon runs but what Kubernetes stores (pod labels, the head's
launch request named after the RayCluster's uid), so a killed and restarted operator
resumes every cluster without duplicate or orphaned pods.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kopf
import kubernetes
import structlog
from kubernetes.client import ApiClient, Configuration, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from rayk8s.autoscaler._tags import TAG_CLUSTER_NAME
from rayk8s.errors import ConfigError, RayK8sError
from rayk8s.operator import _metrics
from rayk8s.operator._cluster import (
    WORK_ANNOTATION,
    ClusterRuntime,
    OperatorSettings,
    failed_status,
    invalid_status,
)
from rayk8s.operator._crd import GROUP, PLURAL, VERSION
from rayk8s.providers.kubernetes._api import map_api_error

__all__ = ["load_api_client", "make_registry", "own_namespace", "run"]

log = structlog.get_logger()
monitor_log = logging.getLogger("rayk8s.operator.monitor")

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_kubeconfig: Any = kubernetes.config  # untyped


def own_namespace() -> str:
    """The namespace of this pod's ServiceAccount, else ``default``."""
    try:
        return _SA_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> ApiClient:
    """A client from ``kubeconfig`` (and ``context``), else the in-cluster config, else the default kubeconfig."""
    if kubeconfig is None and context is None:
        configuration = Configuration()
        try:
            _kubeconfig.load_incluster_config(client_configuration=configuration)
        except _kubeconfig.ConfigException:
            pass
        else:
            return ApiClient(configuration)
    try:
        client: ApiClient = _kubeconfig.new_client_from_config(config_file=kubeconfig, context=context)
    except (_kubeconfig.ConfigException, OSError) as error:
        raise ConfigError("kubeconfig", f"cannot load {kubeconfig or 'the default kubeconfig'}: {error}") from error
    return client


def _connection_info(client: ApiClient) -> kopf.ConnectionInfo:
    """kopf's credentials from the same configuration the operator's own client uses."""
    configuration = client.configuration
    token = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get("BearerToken")
    scheme = None
    if token and " " in token:
        scheme, token = token.split(" ", 1)
    elif token:
        scheme = (configuration.api_key_prefix or {}).get("authorization", "Bearer")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def _status_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch from ``old`` to ``new`` status: maps that lost keys get them nulled."""
    patch = copy.deepcopy(dict(new))
    for key in ("nodes",):
        before = (old or {}).get(key)
        if isinstance(before, Mapping):
            after = patch.get(key) or {}
            patch[key] = {**{k: None for k in before if k not in after}, **after}
    for key in old or {}:
        if key not in patch and key != "kopf":
            patch[key] = None
    return patch


def _unchanged(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    if old is None:
        return False
    skip = {"lastUpdateTime"}
    return {k: v for k, v in old.items() if k not in skip} == {k: v for k, v in new.items() if k not in skip}


class _StatusWriter:
    """Writes a RayCluster's status subresource when it changed (a merge patch)."""

    def __init__(self, api: CustomObjectsApi, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.last: dict[str, Any] | None = None

    def write(self, status: dict[str, Any]) -> bool:
        if _unchanged(self.last, status):
            return False
        status = {**status, "lastUpdateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        body = {"status": _status_patch(self.last, status)}
        try:
            self.api.patch_namespaced_custom_object_status(GROUP, VERSION, self.namespace, PLURAL, self.name, body)
        except (ApiException, Urllib3Error, OSError) as error:  # logged; written again at the next update
            mapped = map_api_error("patch rayclusters/status", error)
            log.warning("status_write_failed", cluster=self.name, error=str(mapped))
            self.last = None  # unknown now: write in full next time
            return False
        self.last = status
        return True


def make_registry(settings: OperatorSettings, api_client: ApiClient) -> kopf.OperatorRegistry:
    """The kopf registry of the operator: the login handler and the per-RayCluster daemon."""
    registry = kopf.OperatorRegistry()
    custom = CustomObjectsApi(api_client)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return _connection_info(api_client)

    @kopf.on.startup(registry=registry)
    async def startup(**_: Any) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(settings.update_threads, thread_name_prefix="rayk8s-update"))
        log.info("operator_started", load_source=settings.load_source, namespaces=list(settings.namespaces))

    # The runtimes of the clusters whose daemons run, by (namespace, name).
    runtimes: dict[tuple[str, str], ClusterRuntime] = {}

    # One watch of the namespace's Services, shared by all clusters: a deleted Service of a
    # running cluster is made again at its next update (no call per update to look for it).
    def deleted(type: str, **_: Any) -> bool:
        return type == "DELETED"

    @kopf.on.event("", "v1", "services", registry=registry, labels={TAG_CLUSTER_NAME: kopf.PRESENT}, when=deleted)
    async def service_deleted(
        name: str, namespace: str | None, labels: Mapping[str, str], meta: kopf.Meta, **_: Any
    ) -> None:
        runtime = runtimes.get((namespace or "", labels[TAG_CLUSTER_NAME]))
        owners = {reference.get("uid") for reference in meta.get("ownerReferences") or ()}
        if runtime is not None and runtime.uid in owners:
            runtime.services_deleted(name)

    # Stopping (deletion, operator exit): the flag first, 10 s to finish the update in flight.
    daemon = kopf.daemon(
        GROUP, VERSION, PLURAL, registry=registry, id="autoscaler", cancellation_backoff=10.0, cancellation_timeout=30.0
    )

    @daemon  # type: ignore[arg-type]
    async def autoscaler(
        name: str,
        namespace: str,
        uid: str,
        spec: Mapping[str, Any],
        meta: Mapping[str, Any],
        body: kopf.Body,
        status: Mapping[str, Any],
        stopped: kopf.DaemonStopped,
        **_: Any,
    ) -> None:
        """One RayCluster's loop: build its runtime, update it every interval, stop with the daemon."""
        writer = _StatusWriter(custom, namespace, name)
        writer.last = {k: v for k, v in dict(status).items() if k != "kopf"} or None
        runtime: ClusterRuntime | None = None
        rejected: dict[str, Any] | None = None  # the last spec found invalid
        invalid: str | None = None  # why, while the current spec is that one
        failure: str | None = None  # the last error building the cluster's runtime (retried)

        def work() -> object:
            return (meta.get("annotations") or {}).get(WORK_ANNOTATION)

        with structlog.contextvars.bound_contextvars(cluster=name):
            try:
                while not stopped:
                    current = copy.deepcopy(dict(spec))
                    generation = meta.get("generation")
                    interval = settings.update_interval_s or 5.0
                    try:
                        if runtime is None and current != rejected:
                            runtime = await asyncio.to_thread(
                                ClusterRuntime,
                                name,
                                namespace,
                                uid,
                                current,
                                api_client=api_client,
                                settings=settings,
                                work=work,
                            )
                            runtimes[namespace, name] = runtime
                            _metrics.CLUSTERS.inc()
                            log.info(
                                "cluster_started", namespace=namespace, node_types=sorted(runtime.config.node_types)
                            )
                        elif (
                            runtime is not None and current not in (runtime.spec, rejected) and runtime.reload(current)
                        ):
                            kopf.event(body, type="Normal", reason="ConfigReloaded", message="applied the changed spec")
                        failure = None
                    except ConfigError as error:
                        if current != rejected:
                            rejected, invalid = current, str(error)
                            log.error("invalid_spec", error=invalid)
                            kopf.event(body, type="Warning", reason="InvalidSpec", message=invalid)
                            if runtime is None:
                                await asyncio.to_thread(writer.write, invalid_status(error, generation))
                    except RayK8sError as error:  # cannot start the cluster's runtime yet (Ray missing, ...): retried
                        if str(error) != failure:
                            failure = str(error)
                            log.error("cluster_start_failed", error=failure)
                            kopf.event(body, type="Warning", reason="StartFailed", message=failure)
                            await asyncio.to_thread(writer.write, failed_status(failure, generation))
                    if runtime is not None:
                        interval = runtime.update_interval_s
                        if current == runtime.spec:
                            rejected = invalid = None
                        await _update_once(runtime, body, writer, generation if invalid is None else None, invalid)
                    await stopped.wait(interval)
            finally:
                if runtime is not None:
                    runtimes.pop((namespace, name), None)
                    _metrics.CLUSTERS.dec()
                    _metrics.forget_cluster(name, set(runtime.autoscaler_config.node_types))
                    await asyncio.to_thread(runtime.close)
                    log.info("cluster_stopped")

    return registry


async def _update_once(
    runtime: ClusterRuntime, body: kopf.Body, writer: _StatusWriter, generation: int | None, invalid: str | None
) -> None:
    started = time.monotonic()
    result, events = await asyncio.to_thread(runtime.update)
    new_status = await asyncio.to_thread(runtime.status, result, generation, invalid=invalid)
    await asyncio.to_thread(writer.write, new_status)
    elapsed = time.monotonic() - started
    _metrics.UPDATE_SECONDS.labels(runtime.name).observe(elapsed)
    _metrics.UPDATES.labels(runtime.name).inc()
    if result is None or result.errors:
        _metrics.UPDATE_ERRORS.labels(runtime.name).inc()
    if result is not None:
        # The one canonical line per update; elapsed_ms covers head check, update and status write.
        log.info("autoscaler_update", elapsed_ms=round(elapsed * 1000, 1), **result.log_fields())
        for node_type in runtime.autoscaler_config.node_types:
            _metrics.NODES.labels(runtime.name, node_type).set(result.status.node_counts.get(node_type, 0))
        monitor_log.info(result.status.render_monitor(), extra={"cluster": runtime.name})
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def kopf_settings() -> kopf.OperatorSettings:
    """kopf's settings: state in ``rayk8s.io`` annotations, our finalizer, quiet event posting, no scanning."""
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = "rayk8s.io/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="rayk8s.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="rayk8s.io")
    settings.posting.level = logging.WARNING  # our own Events say what happened; kopf's only on trouble
    settings.peering.standalone = True
    # Namespaced: no watching of Namespaces or CRDs (a Role cannot allow it). The CRD must
    # exist when the operator starts, and the namespaces are the ones given.
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    return settings


def run(
    settings: OperatorSettings,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    stop_flag: Any = None,
    ready_flag: Any = None,
) -> None:
    """Run the operator until SIGTERM/SIGINT (or ``stop_flag``); blocks."""
    api_client = load_api_client(kubeconfig, context)
    namespaces = list(settings.namespaces) or [own_namespace()]
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port)
    liveness = f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    try:
        kopf.run(
            registry=make_registry(settings, api_client),
            settings=kopf_settings(),
            standalone=True,
            namespaces=namespaces,
            liveness_endpoint=liveness,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        api_client.close()  # type: ignore[no-untyped-call]
