"""``rayk8s bench``: compare scheduling strategies and autoscaling policies on seeded inputs."""

from __future__ import annotations

import json

import click

from rayk8s.cli._main import main, output_option

__all__ = ["bench_command"]


def _names(values: tuple[str, ...]) -> list[str] | None:
    """Repeatable options that also take comma-separated lists."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return names or None


def _check(kind: str, names: list[str] | None, known: list[str]) -> None:
    for name in names or ():
        if name not in known:
            raise click.BadParameter(f"unknown {kind} {name!r} (known: {', '.join(known)})", param_hint=f"--{kind}")


@main.command("bench", short_help="Compare schedulers and autoscaling policies on seeded scenarios and traces.")
@click.option(
    "--suite",
    type=click.Choice(["quick", "full"]),
    default="quick",
    show_default=True,
    help="quick: every family at its smallest, 20-minute traces, 2 policies (seconds); "
    "full: 100 to 100,000 demands, 2-hour traces, 9 policies, the other strategies under 3 (about 12 minutes).",
)
@click.option("--strategy", "strategies", multiple=True, help="Only these strategies (repeatable or a,b); default all.")
@click.option("--family", "families", multiple=True, help="Only these scenario families (repeatable or a,b).")
@click.option("--trace", "traces", multiple=True, help="Only these trace families (repeatable or a,b).")
@click.option("--no-scenarios", is_flag=True, help="Skip the scheduling scenarios.")
@click.option("--no-traces", is_flag=True, help="Skip the traces and policies.")
@click.option("--no-bound", is_flag=True, help="Skip the LP lower bound (it needs scipy).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every generator.")
@output_option("the whole document (meta, scenarios, traces, summary)", "text: the markdown report")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Also write RESULTS.md, results.json and plots/*.png into this folder.",
)
@click.option("--no-plots", is_flag=True, help="With --out: skip the PNG plots (they need matplotlib).")
@click.option("--list", "list_only", is_flag=True, help="List strategies, families, traces and policies, and exit.")
def bench_command(
    suite: str,
    strategies: tuple[str, ...],
    families: tuple[str, ...],
    traces: tuple[str, ...],
    no_scenarios: bool,
    no_traces: bool,
    no_bound: bool,
    seed: int,
    output: str,
    out_dir: str | None,
    no_plots: bool,
    list_only: bool,
) -> None:
    """Run a benchmark suite and print a markdown report (or JSON).

    Scheduling scenarios are decided by every strategy — rayk8s, its variants, a
    first-fit-decreasing baseline, and Ray's v1 and v2 schedulers when ray is installed —
    and measured for decision time, nodes, cost, cost over an LP lower bound, and demand
    left unfulfilled; every full decision is checked by the independent checker. Traces
    run on the simulator under each policy (upscaling speed, idle timeout), and under every
    strategy that gives a full placement (as the autoscaler's scheduler), and report time
    to fulfil demand, node-hours, idle node-hours, churn and peak nodes.

    Exits with 1 when the checker finds a violation.
    """
    from rayk8s.bench import (
        COMPARE_POLICIES,
        FAMILIES,
        POLICIES,
        STRATEGIES,
        SUITES,
        TRACE_FAMILIES,
        render_markdown,
        run_bench,
    )

    if list_only:
        click.echo("strategies:")
        for strategy in STRATEGIES.values():
            note = "" if strategy.available() else f" (needs {strategy.requires})"
            note += "" if strategy.scheduler is not None else " [no traces: counts, not placements]"
            click.echo(f"  {strategy.name:20} {strategy.description}{note}")
        click.echo("scenario families: " + ", ".join(FAMILIES))
        click.echo("trace families:    " + ", ".join(TRACE_FAMILIES))
        for name, policies in POLICIES.items():
            click.echo(f"policies ({name}): " + ", ".join(p.name for p in policies))
            click.echo("  every strategy under: " + ", ".join(p.name for p in COMPARE_POLICIES[name]))
        return
    chosen = _names(strategies)
    wanted_families = _names(families)
    wanted_traces = _names(traces)
    _check("strategy", chosen, list(STRATEGIES))
    _check("family", wanted_families, list(FAMILIES))
    _check("trace", wanted_traces, list(TRACE_FAMILIES))
    plots = out_dir is not None and not no_plots
    document = run_bench(
        SUITES[suite],
        strategies=chosen,
        families=wanted_families,
        traces=wanted_traces,
        seed=seed,
        bound=not no_bound,
        scenarios_on=not no_scenarios,
        traces_on=not no_traces,
        progress=lambda line: click.echo(line, err=True),
        keep_timelines=plots,
    )
    command = _command_line(suite, chosen, wanted_families, wanted_traces, no_scenarios, no_traces, no_bound, seed)
    if out_dir is not None:
        from rayk8s.bench import write_outputs

        written = write_outputs(document, out_dir, command=command + f" --out {out_dir}", plots=plots)
        click.echo(f"Wrote {', '.join(str(p) for p in written.values())}" + (" and plots/" if plots else ""), err=True)
    public = {key: value for key, value in document.items() if not key.startswith("_")}
    if output == "json":
        click.echo(json.dumps(public, indent=1, default=str))
    else:
        click.echo(render_markdown(public, command=command), nl=False)
    violations = sum(s["violations"] for s in document["summary"]["strategies"].values())
    if violations:
        click.echo(f"rayk8s bench: the checker found {violations} violation(s)", err=True)
        raise click.exceptions.Exit(1)


def _command_line(
    suite: str,
    strategies: list[str] | None,
    families: list[str] | None,
    traces: list[str] | None,
    no_scenarios: bool,
    no_traces: bool,
    no_bound: bool,
    seed: int,
) -> str:
    """The command that reproduces this run (for the report's header)."""
    parts = ["rayk8s bench", f"--suite {suite}"]
    for flag, names in (("--strategy", strategies), ("--family", families), ("--trace", traces)):
        if names:
            parts.append(f"{flag} {','.join(names)}")
    parts += [flag for flag, on in (("--no-scenarios", no_scenarios), ("--no-traces", no_traces)) if on]
    if no_bound:
        parts.append("--no-bound")
    if seed:
        parts.append(f"--seed {seed}")
    return " ".join(parts)
