"""A scheduling decision as text a person reads: what launches and why, where work lands.

Pure: builds a string from the request and the result. Long lists (existing nodes, new
node groups, unfulfilled items) are cut at ``max_rows`` with a line saying how many were
left out, so a cluster of thousands of nodes prints a screenful, not thousands of lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TypeVar

from rayk8s.autoscaler._model import SchedulingRequest
from rayk8s.autoscaler._resources import Resources, format_resources
from rayk8s.autoscaler._result import (
    BundlePlacement,
    DemandKind,
    NewNodeGroup,
    SchedulingResult,
    ShapeCount,
    Unfulfilled,
)

__all__ = ["render_result_text"]

_INDENT = "  "
_Row = TypeVar("_Row")


def render_result_text(
    result: SchedulingResult,
    request: SchedulingRequest,
    *,
    elapsed_ms: float | None = None,
    max_rows: int | None = 10,
) -> str:
    """Render ``result`` (the decision for ``request``) as a few compact tables.

    Sections: the launch per node type (count, cost, reasons); each new node group and
    what each of its nodes holds; what existing nodes were given (a total, then at most
    ``max_rows`` nodes); what is unfulfilled and why; a summary with totals.
    ``max_rows`` of None or 0 shows every row. ``elapsed_ms``, when given, is reported.
    """
    limit = max_rows or None
    sections = [
        _launch_section(result),
        _new_nodes_section(result.new_nodes, limit),
        _existing_section(result, request, limit),
        _unfulfilled_section(result.unfulfilled, limit),
        _summary_section(result, request, elapsed_ms),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


# -- sections --------------------------------------------------------------------------


def _launch_section(result: SchedulingResult) -> str:
    total = result.new_node_count
    if not total:
        return "Launch: nothing."
    head = f"Launch: {_plural(total, 'new node')}, cost {_money(result.cost)}/h"
    by_type: dict[str, list[NewNodeGroup]] = {}
    for group in result.new_nodes:
        by_type.setdefault(group.node_type, []).append(group)
    rows = []
    for node_type, count in result.launch.items():
        groups = by_type.get(node_type, [])
        reasons: Counter[str] = Counter()
        for group in groups:
            reasons[group.reason.value] += group.count
        cost = sum(group.cost_per_node * group.count for group in groups)
        why = ", ".join(f"{reason} ({n})" for reason, n in reasons.most_common()) or "-"
        rows.append([node_type, str(count), _money(cost), why])
    return head + "\n" + _table(["TYPE", "NODES", "COST/H", "WHY"], rows, numeric={1, 2})


def _new_nodes_section(groups: Sequence[NewNodeGroup], limit: int | None) -> str:
    if not groups:
        return ""
    rows = [
        [group.id, group.node_type, str(group.count), group.reason.value, _holdings(group)]
        for group in _head(groups, limit)
    ]
    lines = [
        "New nodes (what each node of a group holds)",
        _table(["GROUP", "TYPE", "NODES", "REASON", "EACH HOLDS"], rows, numeric={2}),
    ]
    lines.extend(_more(len(groups), limit, "group"))
    return "\n".join(lines)


def _existing_section(result: SchedulingResult, request: SchedulingRequest, limit: int | None) -> str:
    if not result.existing:
        used = (
            "no existing nodes" if not request.nodes else f"none of the {_plural(len(request.nodes), 'existing node')}"
        )
        return f"Existing nodes: {used} used."
    placed: Counter[Resources] = Counter()
    reserved: Counter[Resources] = Counter()
    bundles = 0
    for assignment in result.existing.values():
        _count_into(placed, assignment.assigned)
        _count_into(reserved, assignment.resource_requests)
        bundles += len(assignment.bundles)
    what = [_shape_counts(placed)] if placed else []
    if bundles:
        what.append(_plural(bundles, "placement-group bundle"))
    if reserved:
        what.append(f"request_resources {_shape_counts(reserved)}")
    head = f"Existing nodes: {len(result.existing):,} of {len(request.nodes):,} used: " + ("; ".join(what) or "nothing")
    status = {node.id: ("head" if node.is_head else node.status.value) for node in request.nodes}
    # Nodes given the same thing are one row: a large cluster reads as a few kinds of node.
    alike: dict[tuple[str, str, str], list[str]] = {}
    for node_id, assignment in result.existing.items():
        holds = _describe_holdings(assignment.assigned, assignment.bundles, assignment.resource_requests) or "nothing"
        alike.setdefault((assignment.node_type, status.get(node_id, "?"), holds), []).append(node_id)
    rows = [
        [_id_list(ids), f"{len(ids):,}", node_type, node_status, holds]
        for (node_type, node_status, holds), ids in _head(list(alike.items()), limit)
    ]
    lines = [head, _table(["NODES", "COUNT", "TYPE", "STATUS", "EACH HOLDS"], rows, numeric={1})]
    lines.extend(_more(len(alike), limit, "row"))
    return "\n".join(lines)


def _id_list(ids: Sequence[str], shown: int = 3) -> str:
    """``w-1, w-2, w-3 +27`` for a long list of node ids."""
    text = ", ".join(ids[:shown])
    return text if len(ids) <= shown else f"{text} +{len(ids) - shown:,}"


def _unfulfilled_section(items: Sequence[Unfulfilled], limit: int | None) -> str:
    if not items:
        return "Unfulfilled: nothing."
    rows = [[_unfulfilled_what(item), str(item.count), item.reason.value, item.detail] for item in _head(items, limit)]
    lines = [
        f"Unfulfilled: {sum(item.count for item in items)}",
        _table(["WHAT", "COUNT", "REASON", "DETAIL"], rows, numeric={1}),
    ]
    lines.extend(_more(len(items), limit, "item"))
    return "\n".join(lines)


def _summary_section(result: SchedulingResult, request: SchedulingRequest, elapsed_ms: float | None) -> str:
    missing: Counter[DemandKind] = Counter()
    for item in result.unfulfilled:
        missing[item.kind] += item.count
    rows: list[list[str]] = []
    demanded = sum(demand.count for demand in request.demands)
    if demanded:
        on_existing = sum(item.count for a in result.existing.values() for item in a.assigned)
        on_new = sum(group.count * item.count for group in result.new_nodes for item in group.assigned)
        rows.append(
            [
                "demands",
                f"{demanded:,} pending: {on_existing:,} on existing nodes, {on_new:,} on new nodes, "
                f"{missing[DemandKind.DEMAND]:,} unfulfilled",
            ]
        )
    groups = sum(group.count for group in request.placement_groups)
    if groups:
        placed = groups - missing[DemandKind.PLACEMENT_GROUP]
        rows.append(["placement groups", f"{placed:,} of {groups:,} placed whole"])
    requested = sum(item.count for item in request.resource_requests)
    if requested:
        held = requested - missing[DemandKind.RESOURCE_REQUEST]
        rows.append(["resource requests", f"{held:,} of {requested:,} bundles fit the cluster"])
    rows.append(["new nodes", f"{result.new_node_count:,}, cost {_money(result.cost)}/h"])
    if elapsed_ms is not None:
        rows.append(["decided in", f"{elapsed_ms:.1f} ms"])
    return "Summary\n" + _table(None, rows)


# -- pieces ----------------------------------------------------------------------------


def _holdings(group: NewNodeGroup) -> str:
    holds = _describe_holdings(group.assigned, group.bundles, group.resource_requests)
    return holds or f"nothing yet ({group.reason.value})"


def _describe_holdings(
    assigned: Sequence[ShapeCount], bundles: Sequence[BundlePlacement], reserved: Sequence[ShapeCount]
) -> str:
    parts = [f"{item.count} x {format_resources(item.shape)}" for item in assigned]
    parts.extend(_bundle_summary(bundles))
    parts.extend(f"room for {item.count} x {format_resources(item.shape)}" for item in reserved)
    return ", ".join(parts)


def _bundle_summary(bundles: Sequence[BundlePlacement]) -> list[str]:
    """Bundles per placement group: ``trainer#0 bundles 0-3 {GPU: 1}``, or across instances
    ``pg0: 4 bundles {CPU: 1} (instances 0-3)``."""
    by_pg: dict[str, list[BundlePlacement]] = {}
    for bundle in bundles:
        by_pg.setdefault(bundle.pg, []).append(bundle)
    parts = []
    for pg, items in by_pg.items():
        shapes: Counter[Resources] = Counter(item.shape for item in items)
        what = format_resources(items[0].shape) if len(shapes) == 1 else f"({_shape_counts(shapes)})"
        instances = sorted({item.instance for item in items})
        if len(instances) == 1:
            label = "bundle" if len(items) == 1 else "bundles"
            parts.append(f"{pg}#{instances[0]} {label} {_ranges(item.bundle for item in items)} {what}")
        else:
            parts.append(f"{pg}: {_plural(len(items), 'bundle')} {what} (instances {_ranges(instances)})")
    return parts


def _ranges(numbers: Iterable[int]) -> str:
    """``0-3, 5, 7-8`` for 0, 1, 2, 3, 5, 7, 8."""
    spans: list[list[int]] = []
    for number in sorted(set(numbers)):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _unfulfilled_what(item: Unfulfilled) -> str:
    if item.kind is DemandKind.PLACEMENT_GROUP:
        shapes: Counter[Resources] = Counter(item.bundles)
        return f"placement group {item.pg} {item.strategy}: {_shape_counts(shapes)}"
    shape = format_resources(item.shape) if item.shape is not None else "{}"
    kind = "request_resources" if item.kind is DemandKind.RESOURCE_REQUEST else "demand"
    return f"{kind} {shape}"


def _count_into(counter: Counter[Resources], items: Iterable[ShapeCount]) -> None:
    for item in items:
        counter[item.shape] += item.count


def _shape_counts(counter: Counter[Resources]) -> str:
    return ", ".join(f"{count:,} x {format_resources(shape)}" for shape, count in sorted(counter.items()))


def _head(items: Sequence[_Row], limit: int | None) -> Sequence[_Row]:
    return items if limit is None else items[:limit]


def _more(total: int, limit: int | None, noun: str) -> list[str]:
    if limit is None or total <= limit:
        return []
    return [f"{_INDENT}... {_plural(total - limit, 'more ' + noun)} not shown"]


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _money(amount: float) -> str:
    return f"{amount:,.2f}"


def _table(
    headers: Sequence[str] | None, rows: Sequence[Sequence[str]], numeric: frozenset[int] | set[int] = frozenset()
) -> str:
    """Columns padded to their widest cell, numbers right-aligned, the last column left ragged."""
    all_rows = [list(headers), *rows] if headers else [list(row) for row in rows]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(all_rows[0]))]
    lines = []
    for row in all_rows:
        cells = []
        for i, cell in enumerate(row):
            if i == len(row) - 1:
                cells.append(cell)
            elif i in numeric:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell.ljust(widths[i]))
        lines.append((_INDENT + "  ".join(cells)).rstrip())
    return "\n".join(lines)
