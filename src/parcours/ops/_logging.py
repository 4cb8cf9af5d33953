"""Structured logs: one JSON object per line on stderr, carrying the request id.

Fields: ``ts`` (UTC, milliseconds), ``level``, ``logger``, ``message``, ``request_id`` (null
outside a request) and, on access lines, ``method``, ``path``, ``status``, ``duration_ms``;
``exc`` holds a traceback when there is one. Only these named fields are ever written: an
``extra=`` key outside ``LOG_FIELDS`` is dropped, so a careless call cannot put a request body
or a patient identifier in the logs through ``extra``.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from parcours.config import Settings
from parcours.ops._context import current_request_id

__all__ = ["LOG_FIELDS", "JsonFormatter", "configure_logging"]

# Extra fields a log call may attach (``logger.info(..., extra={"status": 200})``).
LOG_FIELDS = ("method", "path", "status", "duration_ms", "event_seq", "handler")

_HANDLER_NAME = "parcours-stderr"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; see the module docstring for the fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, tz=UTC)
        entry: dict[str, Any] = {
            "ts": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for name in LOG_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


class _TextFormatter(logging.Formatter):
    """For a developer's terminal (``PARCOURS_LOG_JSON=false``)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = current_request_id()
        return f"{line} [{rid}]" if rid else line


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Send every log record to stderr (or ``stream``) in the configured format and level.

    Idempotent: calling it again replaces the handler it installed. Uvicorn's own access log is
    switched off and httpx's request lines are raised to WARNING, because both write query
    strings (which may carry identifiers such as an INS); ``RequestContextMiddleware`` writes
    the access line instead. Run uvicorn with
    ``log_config=None`` so it does not install its own handlers.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.name = _HANDLER_NAME
    handler.setFormatter(
        JsonFormatter()
        if settings.log_json
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.name == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every outgoing request's full URL at INFO, query string included (a webhook
    # or directory look-up may carry an identifier there): keep only its warnings.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
