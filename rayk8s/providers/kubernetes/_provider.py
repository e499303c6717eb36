"""The Kubernetes node provider: nodes are pods, node requests become pod creates and deletes.

See ``docs/kubernetes-provider.md`` for the configuration, the labels, the RBAC it needs,
its metrics and its retries.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import kubernetes
import structlog
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.config.config_exception import ConfigException

from rayk8s.autoscaler._ports import ProviderNode, ProviderSnapshot
from rayk8s.autoscaler._tags import (
    NODE_KIND_HEAD,
    TAG_CLUSTER_NAME,
    TAG_LAUNCH_REQUEST,
    TAG_NODE_KIND,
    TAG_USER_NODE_TYPE,
)
from rayk8s.autoscaler._validate import suggest
from rayk8s.errors import (
    APIError,
    APINotFoundError,
    APIServerError,
    APITooManyRequestsError,
    ConfigError,
    LaunchConfigError,
    LaunchError,
    NodeNotFoundError,
    ProviderError,
    QuotaError,
)
from rayk8s.providers._base import NodeProvider
from rayk8s.providers.kubernetes._api import ApiCallCounter, ApiCaller, RetryPolicy, response_json
from rayk8s.providers.kubernetes._cache import PodCache
from rayk8s.providers.kubernetes._pods import (
    is_valid_label_value,
    pod_manifest,
    resources_from_pod_template,
    tag_labels,
    tags_of,
)
from rayk8s.providers.kubernetes._services import ensure_services, service_manifests

__all__ = ["KubernetesNodeProvider", "KubernetesProviderConfig"]

log = structlog.get_logger()

_kubeconfig: Any = kubernetes.config  # untyped

_MERGE_PATCH = "application/merge-patch+json"
_CLUSTER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

#: ``provider`` keys of Ray's cluster-launcher config that rayk8s accepts and ignores.
_RAY_KEYS = frozenset(
    {"type", "module", "use_internal_ips", "autoscaler_service_account", "autoscaler_role", "autoscaler_role_binding"}
)
_OUR_KEYS = frozenset(
    {
        "namespace",
        "services",
        "kubeconfig",
        "context",
        "delete_grace_period_s",
        "create_concurrency",
        "retry",
        "owner_reference",
        "watch_grace_period_s",
        "sync_timeout_s",
        "watch_timeout_s",
    }
)


def _number(config: Mapping[str, Any], key: str, default: float | None, *, integer: bool = False) -> Any:
    value = config.get(key, default)
    if value is None:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
        expected = "a non-negative integer" if integer else "a non-negative number"
        raise ConfigError(f"provider.{key}", f"expected {expected}, got {value!r}")
    return value


def _optional_str(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"provider.{key}", f"expected a non-empty string, got {value!r}")
    return value


@attrs.frozen
class KubernetesProviderConfig:
    """The ``provider`` section for ``type: kubernetes``, checked field by field.

    - ``namespace`` (required): where the pods and Services live.
    - ``services``: Service manifests to create besides the head Service.
    - ``kubeconfig`` / ``context``: a kubeconfig file and context; without ``kubeconfig``
      the in-cluster config (a pod's ServiceAccount) is tried, then the default kubeconfig.
    - ``delete_grace_period_s``: grace period of pod deletes (default: the pod's own).
    - ``create_concurrency``: pod creates in flight at once (default 10).
    - ``retry``: ``{max_attempts, initial_backoff_s, max_backoff_s}`` (:class:`RetryPolicy`).
    - ``owner_reference``: an ownerReference put on every pod and Service (the operator
      passes its RayCluster), so deleting the owner deletes them.
    - ``watch_grace_period_s``: a broken pod watch makes reads partial after this long
      (default 10).
    - ``sync_timeout_s``: how long the first read waits for the first LIST (default 30).
    - ``watch_timeout_s``: the server-side timeout of each watch request (default 300).
    """

    namespace: str
    services: tuple[Mapping[str, Any], ...] = ()
    kubeconfig: str | None = None
    context: str | None = None
    delete_grace_period_s: int | None = None
    create_concurrency: int = 10
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    owner_reference: Mapping[str, Any] | None = None
    watch_grace_period_s: float = 10.0
    sync_timeout_s: float = 30.0
    watch_timeout_s: int = 300

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> KubernetesProviderConfig:
        """Check ``config`` (the ``provider`` mapping); raise :class:`ConfigError` naming the field."""
        if not isinstance(config, Mapping):
            raise ConfigError("provider", f"expected a mapping, got {config!r}")
        unknown = sorted(set(config) - _RAY_KEYS - _OUR_KEYS)
        if unknown:
            hint = suggest(unknown[0], _RAY_KEYS | _OUR_KEYS)
            raise ConfigError(f"provider.{unknown[0]}", f"unknown field{hint} (known: {', '.join(sorted(_OUR_KEYS))})")
        namespace = config.get("namespace")
        if not isinstance(namespace, str) or not _CLUSTER_NAME.match(namespace):
            raise ConfigError("provider.namespace", f"expected a namespace name, got {namespace!r}")
        services = config.get("services") or ()
        if not isinstance(services, Sequence) or isinstance(services, str):
            raise ConfigError("provider.services", f"expected a list of Service manifests, got {services!r}")
        owner = config.get("owner_reference")
        if owner is not None:
            if not isinstance(owner, Mapping):
                raise ConfigError("provider.owner_reference", f"expected a mapping, got {owner!r}")
            for key in ("apiVersion", "kind", "name", "uid"):
                if not isinstance(owner.get(key), str) or not owner.get(key):
                    raise ConfigError(f"provider.owner_reference.{key}", "required (a non-empty string)")
        concurrency = _number(config, "create_concurrency", 10, integer=True)
        if concurrency < 1:
            raise ConfigError("provider.create_concurrency", f"expected an integer >= 1, got {concurrency!r}")
        watch_timeout = _number(config, "watch_timeout_s", 300, integer=True)
        if watch_timeout < 1:
            raise ConfigError("provider.watch_timeout_s", f"expected an integer >= 1, got {watch_timeout!r}")
        return cls(
            namespace=namespace,
            services=tuple(services),
            kubeconfig=_optional_str(config, "kubeconfig"),
            context=_optional_str(config, "context"),
            delete_grace_period_s=_number(config, "delete_grace_period_s", None, integer=True),
            create_concurrency=concurrency,
            retry=RetryPolicy.from_dict(config.get("retry")),
            owner_reference=dict(owner) if owner is not None else None,
            watch_grace_period_s=float(_number(config, "watch_grace_period_s", 10.0)),
            sync_timeout_s=float(_number(config, "sync_timeout_s", 30.0)),
            watch_timeout_s=watch_timeout,
        )


def client_from_config(config: KubernetesProviderConfig) -> ApiClient:
    if config.kubeconfig is not None:
        try:
            client: ApiClient = _kubeconfig.new_client_from_config(
                config_file=config.kubeconfig, context=config.context
            )
            return client
        except (ConfigException, OSError) as error:
            raise ConfigError("provider.kubeconfig", f"cannot load {config.kubeconfig}: {error}") from error
    if config.context is None:
        configuration = Configuration()
        try:
            _kubeconfig.load_incluster_config(client_configuration=configuration)
        except ConfigException:
            pass
        else:
            return ApiClient(configuration)
    try:
        default: ApiClient = _kubeconfig.new_client_from_config(context=config.context)
        return default
    except (ConfigException, OSError) as error:
        raise ConfigError(
            "provider.kubeconfig", f"no in-cluster config and no usable default kubeconfig: {error}"
        ) from error


@attrs.frozen
class _Failure:
    error: APIError
    retry: bool  # nothing (or maybe something) was created: another round may fix it


class KubernetesNodeProvider(NodeProvider):
    """Ray nodes as pods in one namespace (see the module and ``docs/kubernetes-provider.md``).

    ``KubernetesNodeProvider(provider_config, cluster_name, *, api_client=None)``: pass an
    ``ApiClient`` to use it instead of one built from ``kubeconfig`` / in-cluster config.
    The pod cache starts at once (a background thread); :meth:`close` stops it.
    ``sleep`` and ``rng`` drive the retry back-off (tests inject them).

    ``api_calls`` counts every API call by verb and resource (also the Prometheus counter
    ``rayk8s_kubernetes_api_calls_total``); ``cache.stats`` says what the watch has done.
    """

    def __init__(
        self,
        provider_config: Mapping[str, Any],
        cluster_name: str,
        *,
        api_client: ApiClient | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: Any = None,
    ) -> None:
        super().__init__(provider_config, cluster_name)
        if not isinstance(cluster_name, str) or len(cluster_name) > 50 or not _CLUSTER_NAME.match(cluster_name):
            raise ConfigError(
                "cluster_name",
                "expected at most 50 lowercase letters, digits and '-' (it names pods and Services),"
                f" got {cluster_name!r}",
            )
        self.config = KubernetesProviderConfig.from_dict(provider_config)
        self.namespace = self.config.namespace
        self._owns_client = api_client is None
        self.api_client = api_client if api_client is not None else client_from_config(self.config)
        self.core = CoreV1Api(self.api_client)
        self.api_calls = ApiCallCounter(cluster_name)
        extra: dict[str, Any] = {}
        if sleep is not None:
            extra["sleep"] = sleep
        self.caller = ApiCaller(self.api_calls, self.config.retry, rng=rng, **extra)
        self._watch_client = ApiClient(self.api_client.configuration)
        self.cache = PodCache(
            self._watch_client,
            self.namespace,
            f"{TAG_CLUSTER_NAME}={cluster_name}",
            self.caller,
            grace_period_s=self.config.watch_grace_period_s,
            watch_timeout_s=self.config.watch_timeout_s,
        )
        self._pool = ThreadPoolExecutor(self.config.create_concurrency, thread_name_prefix="rayk8s-k8s")
        self._uncertain: set[str] = set()  # launch requests whose creates may have half-succeeded
        self._services_ready = False
        self._lock = threading.Lock()
        self._closed = False
        self.cache.start()

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the pod cache and the worker threads; close clients this provider made."""
        if self._closed:
            return
        self._closed = True
        self.cache.stop()
        self._pool.shutdown(wait=True)
        closable: list[Any] = [self._watch_client, self.api_client] if self._owns_client else [self._watch_client]
        for client in closable:
            client.close()

    def __enter__(self) -> KubernetesNodeProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -------------------------------------------------------------------------------

    def nodes(self, tag_filters: Mapping[str, str] | None = None) -> ProviderSnapshot:
        """Pods of this cluster from the watch-fed cache: no API call once synced.

        ``partial`` (with ``detail``) while the first LIST has not completed within
        ``sync_timeout_s`` or the watch has been broken beyond ``watch_grace_period_s``.
        """
        self.cache.wait_synced(self.config.sync_timeout_s)
        snapshot = self.cache.snapshot()
        nodes = snapshot.nodes
        if tag_filters:
            wanted = tuple(tag_filters.items())
            nodes = tuple(n for n in nodes if all(n.tags.get(k) == v for k, v in wanted))
        return ProviderSnapshot(nodes, partial=snapshot.partial, detail=snapshot.detail)

    def node(self, node_id: str) -> ProviderNode | None:
        self.cache.wait_synced(self.config.sync_timeout_s)
        return self.cache.node(node_id)

    # -- create ------------------------------------------------------------------------------

    def create_node(self, node_config: Mapping[str, Any], tags: Mapping[str, str], count: int) -> list[str]:
        """Create ``count`` pods from the pod template ``node_config``, labelled with ``tags``.

        Idempotent per launch request: pods already carrying this ``ray-launch-request``
        count towards ``count``, so a call repeated after a timeout creates only what is
        missing. Creates run ``create_concurrency`` at a time; a create whose outcome is
        unknown (5xx, dropped connection) is settled by listing the request's pods, never
        by creating blindly again. Failures raise :class:`LaunchError` with the number
        not created: :class:`QuotaError` for an exceeded ResourceQuota,
        :class:`LaunchConfigError` naming the template field the API server rejected.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if count == 0:
            return []
        node_type = tags.get(TAG_USER_NODE_TYPE) or tags.get(TAG_NODE_KIND) or "node"
        request_id = tags.get(TAG_LAUNCH_REQUEST) or uuid.uuid4().hex
        tags = {**tags, TAG_LAUNCH_REQUEST: request_id}
        try:
            manifest = pod_manifest(node_config, tags, self.cluster_name, owner_reference=self.config.owner_reference)
        except ConfigError as error:
            raise LaunchConfigError(node_type, count, str(error)) from error
        if tags.get(TAG_NODE_KIND) == NODE_KIND_HEAD and not self._services_ready:
            try:
                self.ensure_services()
            except APIError as error:
                raise LaunchError(node_type, count, f"cannot create the head Service: {error}") from error
        self.cache.wait_synced(self.config.sync_timeout_s)
        ids = self._request_pods(request_id, fresh=request_id in self._uncertain)
        rounds = 0
        failures: list[_Failure] = []
        while len(ids) < count:
            created, failures = self._create_many(manifest, count - len(ids))
            ids.extend(created)
            if not failures:
                break
            rounds += 1
            if any(not f.retry for f in failures) or rounds >= self.config.retry.max_attempts:
                break
            # Some creates may have happened: ask the API server, then create what is missing.
            self._uncertain.add(request_id)
            self.caller.sleep(self.caller.backoff(rounds))
            try:
                ids = self._request_pods(request_id, fresh=True)
            except APIError as error:
                failures = [_Failure(error, retry=False)]
                break
        if len(ids) < count:
            raise self._launch_error(node_type, count - len(ids), count, failures)
        self._uncertain.discard(request_id)
        log.info("pods_created", cluster=self.cluster_name, node_type=node_type, count=count, request=request_id)
        return ids[:count]

    def _request_pods(self, request_id: str, *, fresh: bool) -> list[str]:
        """Names of live pods of this launch request, from the cache or (``fresh``) the API."""
        selector_value = tag_labels({TAG_LAUNCH_REQUEST: request_id})[0][TAG_LAUNCH_REQUEST]
        if fresh:
            response = self.caller.call(
                "list",
                "pods",
                self.core.list_namespaced_pod,
                self.namespace,
                label_selector=f"{TAG_CLUSTER_NAME}={self.cluster_name},{TAG_LAUNCH_REQUEST}={selector_value}",
                _preload_content=False,
            )
            pods = response_json(response).get("items") or []
            for pod in pods:
                self.cache.apply_write(pod)
        else:
            pods = self.cache.pods()
        out = []
        for pod in pods:
            metadata = pod.get("metadata") or {}
            if metadata.get("deletionTimestamp"):
                continue
            if tags_of(metadata).get(TAG_LAUNCH_REQUEST) == request_id:
                out.append(str(metadata["name"]))
        return sorted(out)

    def _create_many(self, manifest: Mapping[str, Any], count: int) -> tuple[list[str], list[_Failure]]:
        stop = threading.Event()  # set on an error more creates cannot fix (quota, invalid template)

        def create_one() -> str | _Failure:
            if stop.is_set():
                return _Failure(APIError("create pods", 0, "not attempted after an earlier failure"), retry=False)
            try:
                response = self.caller.call(
                    "create",
                    "pods",
                    self.core.create_namespaced_pod,
                    self.namespace,
                    manifest,
                    idempotent=False,
                    _preload_content=False,
                )
            except APIError as error:
                retry = isinstance(error, APIServerError | APITooManyRequestsError) or error.status == 409
                if not retry:
                    stop.set()
                return _Failure(error, retry)
            pod = response_json(response)
            self.cache.apply_write(pod)
            return str(pod["metadata"]["name"])

        futures = [self._pool.submit(create_one) for _ in range(count)]
        created: list[str] = []
        failures: list[_Failure] = []
        for future in futures:
            result = future.result()
            if isinstance(result, _Failure):
                failures.append(result)
            else:
                created.append(result)
        return created, failures

    def _launch_error(self, node_type: str, missing: int, count: int, failures: Sequence[_Failure]) -> LaunchError:
        errors = [f.error for f in failures if f.error.status != 0 or "not attempted" not in f.error.reason]
        errors = errors or [f.error for f in failures]
        if not errors:
            return LaunchError(node_type, missing, f"{missing} of {count} pod(s) were not created")
        quota = next((e for e in errors if e.status == 403 and "exceeded quota" in e.reason), None)
        if quota is not None:
            return QuotaError(node_type, missing, quota.reason)
        invalid = next((e for e in errors if e.status == 422), None)
        if invalid is not None:
            return LaunchConfigError(
                node_type,
                missing,
                f"the API server rejected the pod template (node_config of {node_type!r}): {invalid.reason}",
            )
        first = errors[0]
        return LaunchError(node_type, missing, f"{missing} of {count} pod(s) not created: {first}")

    # -- terminate ---------------------------------------------------------------------------

    def terminate_nodes(self, node_ids: Sequence[str]) -> None:
        """Delete the pods (``delete_grace_period_s``); a pod already gone is success.

        Raises :class:`ProviderError` naming the pods that could not be deleted, after
        trying every one.
        """
        names = list(dict.fromkeys(node_ids))
        if not names:
            return

        def delete_one(name: str) -> APIError | None:
            kwargs: dict[str, Any] = {"_preload_content": False}
            if self.config.delete_grace_period_s is not None:
                kwargs["grace_period_seconds"] = self.config.delete_grace_period_s
            try:
                response = self.caller.call(
                    "delete", "pods", self.core.delete_namespaced_pod, name, self.namespace, **kwargs
                )
            except APINotFoundError:
                self.cache.forget(name)
                return None
            except APIError as error:
                return error
            body = response_json(response)
            if body.get("kind") == "Pod" and (body.get("metadata") or {}).get("deletionTimestamp"):
                self.cache.apply_write(body)
            else:
                self.cache.forget(name)
            return None

        errors = [(name, e) for name, e in zip(names, self._pool.map(delete_one, names), strict=True) if e is not None]
        log.info("pods_deleted", cluster=self.cluster_name, count=len(names) - len(errors), failed=len(errors))
        if errors:
            shown = "; ".join(f"{name}: {error}" for name, error in errors[:3])
            raise ProviderError(f"could not delete {len(errors)} of {len(names)} pod(s): {shown}")

    # -- tags --------------------------------------------------------------------------------

    def set_node_tags(self, node_id: str, tags: Mapping[str, str]) -> None:
        """Merge ``tags`` into the pod's labels (a merge patch); no call if they are already set."""
        current = self.node(node_id)
        if current is not None and all(current.tags.get(k) == str(v) for k, v in tags.items()):
            return
        labels, annotations = tag_labels(tags)
        patched_annotations: dict[str, str | None] = dict(annotations)
        for key, value in tags.items():
            if is_valid_label_value(str(value)):
                patched_annotations[f"tags.rayk8s.io/{key.replace('/', '_')}"] = None
        body = {"metadata": {"labels": labels, "annotations": patched_annotations}}
        try:
            response = self.caller.call(
                "patch",
                "pods",
                self.core.patch_namespaced_pod,
                node_id,
                self.namespace,
                body,
                _content_type=_MERGE_PATCH,
                _preload_content=False,
            )
        except APINotFoundError:
            self.cache.forget(node_id)
            raise NodeNotFoundError(node_id) from None
        self.cache.apply_write(response_json(response))

    # -- services and resources --------------------------------------------------------------

    def ensure_services(self) -> dict[str, str]:
        """Make the head Service and ``provider.services`` match the config; idempotent.

        Each is read, and created if missing or merge-patched if it differs. Returns
        ``{name: "created" | "updated" | "unchanged"}``.
        """
        manifests = service_manifests(self.cluster_name, self.config.services, self.config.owner_reference)
        done = ensure_services(self.core, self.caller, self.namespace, manifests)
        self._services_ready = True
        return done

    @staticmethod
    def fillout_available_node_types_resources(
        available_node_types: Mapping[str, Mapping[str, Any]],
    ) -> dict[str, dict[str, Any]]:
        """Node types with ``resources`` derived from their pod templates where not stated (Ray's name).

        So the scheduler knows what a node of each type holds before any pod of it exists
        (scale from zero). See :func:`rayk8s.providers.kubernetes.resources_from_pod_template`.
        """
        out: dict[str, dict[str, Any]] = {}
        for name, node_type in available_node_types.items():
            path = f"available_node_types.{name}"
            if not isinstance(node_type, Mapping):
                raise ConfigError(path, f"expected a mapping, got {node_type!r}")
            resources = resources_from_pod_template(
                node_type.get("node_config") or {},
                node_type.get("resources"),
                path=f"{path}.node_config",
                resources_path=f"{path}.resources",
            )
            out[name] = {**node_type, "resources": resources.to_dict()}
        return out
