"""``rayk8s simulate [TRACE]``: run the autoscaler on the fake provider over a trace.

Without a TRACE it runs the built-in one (``rayk8s/simulate/default_trace.yaml``).
"""

from __future__ import annotations

import json

import click

from rayk8s.cli._main import main, output_option

__all__ = ["simulate_command"]


@main.command("simulate", short_help="Simulate the autoscaler over a trace of demand.")
@click.argument("trace", metavar="[TRACE]", required=False, type=click.Path(dir_okay=False))
@output_option("one object (summary, timeline, stats)", "text: a summary for people")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG of nodes and demand over time.")
def simulate_command(trace: str | None, output: str, plot_path: str | None) -> None:
    """Run the autoscaler over TRACE (YAML or JSON) with a virtual clock and the fake provider.

    Without TRACE, runs the built-in trace: half an hour of a mixed CPU/GPU cluster.

    Prints time to fulfil demand (p50/p95), node-hours and cost, idle node-hours, peak
    nodes, launches and terminations.
    """
    from rayk8s.simulate import DEFAULT_TRACE, Trace, simulate

    if trace is None:
        trace = str(DEFAULT_TRACE)
        click.echo(f"No TRACE given: simulating the built-in trace {DEFAULT_TRACE.name}", err=True)
    parsed = Trace.from_file(trace)
    result = simulate(parsed)
    if plot_path is not None:
        from rayk8s.simulate._plot import plot_timeline

        plot_timeline(result.timeline, plot_path, title=f"rayk8s simulate {trace}")
    if output == "json":
        click.echo(json.dumps(result.to_dict(), separators=(",", ":")))
    else:
        click.echo(result.render_text())
        if plot_path is not None:
            click.echo(f"Plot written to {plot_path}")
