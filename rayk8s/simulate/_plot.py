"""A PNG of a simulation: nodes per type and pending demand over time (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rayk8s.errors import RayK8sError

__all__ = ["plot_timeline"]


def plot_timeline(timeline: list[dict[str, Any]], path: str | Path, *, title: str = "rayk8s simulate") -> None:
    """Write ``path``: nodes per type (stacked) and pending demand (right axis) against time.

    Needs matplotlib (``pip install rayk8s[plot]``); without it raises a
    :class:`~rayk8s.errors.RayK8sError` that says so.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RayK8sError("--plot needs matplotlib: pip install 'rayk8s[plot]' (or pip install matplotlib)") from None
    minutes = [entry["t"] / 60 for entry in timeline]
    types = list(timeline[0]["nodes"]) if timeline else []
    figure, nodes_axis = plt.subplots(figsize=(10, 5), dpi=100)
    if types:
        nodes_axis.stackplot(
            minutes, *[[entry["nodes"].get(name, 0) for entry in timeline] for name in types], labels=types, alpha=0.7
        )
    nodes_axis.set_xlabel("time (minutes)")
    nodes_axis.set_ylabel("nodes (launching or running)")
    demand_axis = nodes_axis.twinx()
    demand_axis.plot(
        minutes, [entry["pending_demands"] for entry in timeline], color="black", linewidth=1.2, label="pending demand"
    )
    demand_axis.set_ylabel("pending tasks and placement groups")
    handles, labels = nodes_axis.get_legend_handles_labels()
    more_handles, more_labels = demand_axis.get_legend_handles_labels()
    nodes_axis.legend(handles + more_handles, labels + more_labels, loc="upper right")
    nodes_axis.set_title(title)
    figure.tight_layout()
    try:
        figure.savefig(path, format="png")
    except OSError as error:
        raise RayK8sError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        plt.close(figure)
