"""A custom controller that embeds the rayk8s autoscaler -- not the rayk8s operator.

A plain watch loop on the official Kubernetes client over ConfigMaps labelled
``rayk8s.io/autoscale=true``. Each such ConfigMap describes one group of Ray worker pods
in its own small format:

    data:
      pod_template: |            # the worker pod (YAML); Ray resources come from its limits
        spec: {containers: [{name: ray, image: rayproject/ray:2.60.0,
                             resources: {limits: {cpu: 500m, memory: 512Mi}}}]}
      min_workers: "1"
      max_workers: "4"
      idle_timeout_minutes: "0.1"
      work: '[{"shape": {"CPU": 1}, "count": 3}]'   # the simulated load (see below)

For each one the controller builds an ``Autoscaler`` with the ``KubernetesNodeProvider``
(pods owned by the ConfigMap, so deleting it deletes them) and calls ``update()`` on its
own schedule, every ``--interval`` seconds; a changed ConfigMap gets a new config, a
deleted one stops its autoscaler.

Load: no Ray runs in this example, so it reads the ``work`` key through
``rayk8s.simulate.DeclaredLoadSource``. A real controller passes
``rayk8s.ray.RayLoadSource("<head>:6379")`` instead.

    python examples/embedding/configmap_controller.py --namespace ray [--kubeconfig FILE]
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Any

import kubernetes
import yaml
from kubernetes import watch
from kubernetes.client import CoreV1Api

from rayk8s.autoscaler import Autoscaler, AutoscalerConfig, NodeType, NodeTypeConfig
from rayk8s.providers.kubernetes import KubernetesNodeProvider, resources_from_pod_template
from rayk8s.simulate import DeclaredLoadSource, parse_work

LABEL = "rayk8s.io/autoscale=true"


class Managed:
    """One ConfigMap's autoscaler and provider."""

    def __init__(self, configmap: Any, namespace: str, api_client: Any) -> None:
        self.name = configmap.metadata.name
        self.data: dict[str, str] = dict(configmap.data or {})
        owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": self.name, "uid": configmap.metadata.uid}
        self.provider = KubernetesNodeProvider(
            {"type": "kubernetes", "namespace": namespace, "owner_reference": owner, "delete_grace_period_s": 0},
            self.name,
            api_client=api_client,
        )
        self.config = self._config()
        load = DeclaredLoadSource(
            provider=self.provider,
            config=lambda: self.config,
            work=lambda: parse_work(self.data.get("work"), f"{self.name}.data.work"),
            clock=time.time,
        )
        self.autoscaler = Autoscaler(self.config, provider=self.provider, load_source=load, clock=time.time)

    def _config(self) -> AutoscalerConfig:
        template = yaml.safe_load(self.data["pod_template"])
        max_workers = self.data.get("max_workers")
        worker = NodeType(
            "worker",
            resources_from_pod_template(template),
            min_workers=int(self.data.get("min_workers", "0")),
            max_workers=int(max_workers) if max_workers else None,
        )
        return AutoscalerConfig(
            cluster_name=self.name,
            node_types=[NodeTypeConfig(worker, template)],
            idle_timeout_minutes=float(self.data.get("idle_timeout_minutes", "5")),
        )

    def changed(self, configmap: Any) -> None:
        data = dict(configmap.data or {})
        if data != self.data:
            self.data = data
            self.config = self._config()
            self.autoscaler.config = self.config
            print(f"{self.name}: config changed", flush=True)


def run(namespace: str, kubeconfig: str | None, interval: float, stop: threading.Event) -> None:
    api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    core = CoreV1Api(api_client)
    managed: dict[str, Managed] = {}
    while not stop.is_set():
        # Watch for `interval` seconds (it starts with an ADDED event per ConfigMap), then update each.
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, label_selector=LABEL, timeout_seconds=max(1, int(interval))
        ):
            configmap = event["object"]
            name = configmap.metadata.name
            if event["type"] == "DELETED":
                if name in managed:
                    managed.pop(name).provider.close()  # its pods go with it (ownerReferences)
                    print(f"{name}: stopped", flush=True)
            elif name in managed:
                managed[name].changed(configmap)
            else:
                managed[name] = Managed(configmap, namespace, api_client)
                print(f"{name}: started", flush=True)
        for name, item in managed.items():
            result = item.autoscaler.update()
            terminated = [t.node_id for t in result.terminations]
            print(f"{name}: nodes={dict(result.status.node_counts)} launched={result.launched}"
                  f" terminated={terminated} errors={[str(e) for e in result.errors]}", flush=True)  # fmt: skip
    for item in managed.values():
        item.provider.close()
    api_client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--kubeconfig", help="default: ~/.kube/config")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between updates")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(args.namespace, args.kubeconfig, args.interval, stop)


if __name__ == "__main__":
    main()
