"""The operator's log output: every line about a cluster starts with ``<cluster>:``, as in Ray's.

Two streams reach stdout, both through :func:`prefix_lines`:

- structlog events (the library's and the operator's) that carry ``cluster`` (bound by
  the cluster's daemon, or passed by the provider) are rendered ``key=value`` after the
  prefix;
- stdlib records -- kopf's per-object messages (which carry the object's name) and the
  monitor block (``extra={"cluster": ...}``) -- get the prefix on every line, so a
  multi-line monitor block stays greppable: ``kubectl logs ... | grep ^example-cluster2:``.
  kopf's routine lines about the Services it watches for the operator are left out.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

__all__ = ["ClusterPrefixFormatter", "configure_logging", "prefix_lines"]


def prefix_lines(cluster: str | None, text: str) -> str:
    """``text`` with ``<cluster>:`` before every line (unchanged without a cluster)."""
    if not cluster:
        return text
    return "\n".join(f"{cluster}:{line}" for line in text.split("\n"))


class ClusterPrefixFormatter(logging.Formatter):
    """A stdlib formatter prefixing records about a cluster (``cluster`` or kopf's ``k8s_ref``)."""

    def format(self, record: logging.LogRecord) -> str:
        cluster = getattr(record, "cluster", None)
        if cluster is None:
            ref = getattr(record, "k8s_ref", None)
            if isinstance(ref, dict):
                cluster = ref.get("name")
        return prefix_lines(cluster, super().format(record))


class _PrefixingRenderer:
    """structlog's console renderer, prefixed with the event's ``cluster``."""

    def __init__(self) -> None:
        self._render = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)

    def __call__(self, logger: Any, name: str, event_dict: Any) -> str:
        cluster = event_dict.pop("cluster", None)
        return prefix_lines(cluster, str(self._render(logger, name, event_dict)))


def _not_kopf_chatter_about_services(record: logging.LogRecord) -> bool:
    """Drop kopf's routine per-Service lines (``Handler ... succeeded``): they would carry the
    Service's name as the prefix; the operator logs what it does under the cluster's."""
    ref = getattr(record, "k8s_ref", None)
    return not (isinstance(ref, dict) and ref.get("kind") == "Service" and record.levelno < logging.WARNING)


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send the operator's, kopf's and the library's logs to ``stream`` (stdout), prefixed."""
    output = stream if stream is not None else sys.stdout
    handler = logging.StreamHandler(output)
    handler.setFormatter(ClusterPrefixFormatter("%(asctime)s %(levelname)s -- %(message)s"))
    handler.addFilter(_not_kopf_chatter_about_services)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("asyncio", "urllib3", "kubernetes", "aiohttp"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            _PrefixingRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=output),
        cache_logger_on_first_use=True,
    )
