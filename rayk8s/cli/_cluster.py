"""Shared by the cluster commands (``up``, ``down``, ``status``, ``attach``, ``exec``, ...):
reading the cluster config and picking the launcher for its ``provider.type``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from rayk8s.errors import ConfigError, RayK8sError

if TYPE_CHECKING:
    from rayk8s.launcher import ClusterConfig, KubernetesCluster, LocalCluster

__all__ = ["cluster_for", "confirmer", "kubernetes_cluster", "local_cluster", "read_config"]


def _quiet_http_retries() -> None:
    """Keep urllib3's per-retry warnings off the terminal unless asked (-v): errors say it once."""
    if logging.getLogger().level >= logging.WARNING:
        logging.getLogger("urllib3").setLevel(logging.ERROR)


def _echo(text: str) -> None:
    click.echo(text, err=True)


def read_config(config_path: str) -> ClusterConfig:
    from rayk8s.launcher import ClusterConfig

    return ClusterConfig.from_file(config_path)


def local_cluster(config_path: str) -> LocalCluster:
    """The launcher for CONFIG; a provider other than ``local`` is a ConfigError naming provider.type."""
    from rayk8s.launcher import LocalCluster

    return LocalCluster(read_config(config_path), echo=_echo)


def kubernetes_cluster(config_path: str, command: str) -> KubernetesCluster:
    """The Kubernetes launcher for CONFIG; another provider type is a ConfigError naming ``command``."""
    from rayk8s.launcher import KubernetesCluster

    config = read_config(config_path)
    if config.provider.get("type") != "kubernetes":
        raise ConfigError(
            "provider.type",
            f"`rayk8s {command}` needs provider.type kubernetes, got {config.provider.get('type')!r}",
        )
    _quiet_http_retries()
    return KubernetesCluster(config, echo=_echo)


def cluster_for(config_path: str) -> LocalCluster | KubernetesCluster:
    """The launcher for CONFIG's provider: ``kubernetes``, else the local launcher (which names others)."""
    from rayk8s.launcher import KubernetesCluster, LocalCluster

    config = read_config(config_path)
    if config.provider.get("type") == "kubernetes":
        _quiet_http_retries()
        return KubernetesCluster(config, echo=_echo)
    return LocalCluster(config, echo=_echo)


def confirmer(yes: bool) -> Callable[[str], bool] | None:
    """How a command asks before it changes a cluster: ``None`` with ``--yes`` (every answer
    yes); else ``question [y/N]`` on the terminal. Without a terminal on stdin a question
    is a one-line error saying to pass ``--yes``, never a wait for input that cannot come.
    """
    if yes:
        return None

    def confirm(question: str) -> bool:
        if not sys.stdin.isatty():
            raise RayK8sError(f"{question} -- no terminal to answer on (stdin is not a TTY); pass --yes to answer yes")
        return click.confirm(question, default=False, err=True)

    return confirm
