"""Shared by ``rayk8s up``, ``down`` and ``status``: reading the cluster config for a launcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rayk8s.launcher import LocalCluster

__all__ = ["local_cluster"]


def _echo(text: str) -> None:
    click.echo(text, err=True)


def local_cluster(config_path: str) -> LocalCluster:
    """The launcher for CONFIG; a provider other than ``local`` is a ConfigError naming provider.type."""
    from rayk8s.launcher import ClusterConfig, LocalCluster

    return LocalCluster(ClusterConfig.from_file(config_path), echo=_echo)
