"""``rayk8s schedule SCENARIO``: print the scheduling decision for one scenario file."""

from __future__ import annotations

import json
import sys
import time

import click
import structlog

from rayk8s._documents import load_document, parse_document
from rayk8s.autoscaler import Scenario, render_result_text, schedule
from rayk8s.cli._main import main, output_option
from rayk8s.errors import ConfigError

__all__ = ["schedule_command"]

log = structlog.get_logger()


@main.command("schedule", short_help="Print the scheduling decision for a scenario file.")
@click.argument("scenario", metavar="SCENARIO")
@output_option("one object (launch, new_nodes, existing, unfulfilled, stats)", "text: tables for people")
@click.option(
    "--max-rows",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Text output: rows shown per list (existing nodes, new node groups, unfulfilled); 0 shows all.",
)
def schedule_command(scenario: str, output: str, max_rows: int) -> None:
    """Decide what to launch for SCENARIO (a YAML or JSON file; - reads standard input).

    The decision says how many nodes of each type to launch and why, what each new node
    and each existing node is given, and what cannot be placed, with a reason. A scenario
    that does not validate exits with code 2 and one line naming the field.
    """
    name = "<stdin>" if scenario == "-" else scenario
    try:
        document = parse_document(sys.stdin.read(), name=name) if scenario == "-" else load_document(scenario)
        request = Scenario.from_dict(document).to_request()
    except ConfigError as error:
        if not error.path:  # about the document as a whole: name the file
            raise ConfigError(name, error.message) from None
        raise
    start = time.perf_counter()
    result = schedule(request)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    log.info(
        "scheduled",
        scenario=scenario,
        elapsed_ms=round(elapsed_ms, 3),
        new_nodes=result.new_node_count,
        unfulfilled=sum(item.count for item in result.unfulfilled),
    )
    if output == "json":
        click.echo(json.dumps(result.to_dict(elapsed_ms=round(elapsed_ms, 3)), indent=2))
    else:
        click.echo(render_result_text(result, request, elapsed_ms=elapsed_ms, max_rows=max_rows), nl=False)
