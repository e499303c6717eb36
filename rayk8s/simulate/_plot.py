"""A PNG of a simulation: nodes per type and pending demand over time (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rayk8s.errors import RayK8sError

__all__ = ["draw_timeline", "plot_timeline", "pyplot", "save_figure"]


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend; a RayK8sError says how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RayK8sError("plots need matplotlib: pip install 'rayk8s[plot]' (or pip install matplotlib)") from None
    return plt


def draw_timeline(
    nodes_axis: Any, timeline: list[dict[str, Any]], *, legend: bool = True
) -> tuple[list[Any], list[str]]:
    """Draw nodes per type (stacked, left axis) and pending demand (line, right axis) on an axis.

    Returns the legend's handles and labels (for a figure-wide legend when ``legend`` is off).
    """
    minutes = [entry["t"] / 60 for entry in timeline]
    types = list(timeline[0]["nodes"]) if timeline else []
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
    if legend:
        nodes_axis.legend(handles + more_handles, labels + more_labels, loc="upper right")
    return handles + more_handles, labels + more_labels


def save_figure(figure: Any, path: str | Path, *, layout: bool = True) -> None:
    """Write ``figure`` as a PNG (laid out tight unless ``layout`` is off) and close it; an
    unwritable path is a RayK8sError."""
    plt = pyplot()
    if layout:
        figure.tight_layout()
    try:
        figure.savefig(path, format="png")
    except OSError as error:
        raise RayK8sError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        plt.close(figure)


def plot_timeline(timeline: list[dict[str, Any]], path: str | Path, *, title: str = "rayk8s simulate") -> None:
    """Write ``path``: nodes per type (stacked) and pending demand (right axis) against time.

    Needs matplotlib (``pip install rayk8s[plot]``); without it raises a
    :class:`~rayk8s.errors.RayK8sError` that says so.
    """
    figure, nodes_axis = pyplot().subplots(figsize=(10, 5), dpi=100)
    draw_timeline(nodes_axis, timeline)
    nodes_axis.set_title(title)
    save_figure(figure, path)
