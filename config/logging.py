"""Structured logs: one JSON object per line, each carrying the request's correlation id.

``config.middleware.RequestIdMiddleware`` puts the id of the request being served into
``request_id_var``; :class:`RequestContextFilter` copies it onto every log record, and
:class:`JsonFormatter` writes the record as one line of JSON with whatever ``extra={...}``
fields the call passed. Settings wire both (LOG_FORMAT=json is the default when DJANGO_DEBUG=0;
plain text otherwise). Outside a request the id is ``-``, except in a Celery task: it logs under
the id of the request that queued it, or else its own task id, and adds ``task`` and
``task_id`` (workers/log_context.py).

The filter also redacts secrets that must never reach a log: API keys
(``so_<prefix>_<secret>`` keeps only its prefix) and passwords inside URLs
(``scheme://user:password@host``).
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
#: ``{"task": name, "task_id": id}`` while a Celery task runs (workers/log_context.py).
task_var: ContextVar[dict[str, str] | None] = ContextVar("task", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "", None, None)))
    | {"message", "asctime", "request_id", "taskName", "request", "server_time"}
)

# Both patterns are linear: no nested quantifiers, so no input can make them backtrack.
_API_KEY = re.compile(r"\b(so_[0-9a-f]{6,32}_)[A-Za-z0-9_-]{8,}")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]{0,200}:)[^@\s]{1,500}@")
_DSN_PASSWORD = re.compile(r"\b(password|passwd|pwd)=[^\s&;]{1,500}", re.I)


def _install_record_factory() -> None:
    """Tag every record with the current request id when it is created (so handlers of any
    kind, pytest's caplog included, see it); idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, "observatory_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        record.request_id = request_id_var.get()
        task = task_var.get()
        if task:
            record.__dict__.update(task)
        return record

    factory.observatory_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()


def redact(text: str) -> str:
    """``text`` with API key secrets and URL passwords replaced by ``***``."""
    if "so_" in text:
        text = _API_KEY.sub(r"\1***", text)
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1***@", text)
    if "=" in text:
        text = _DSN_PASSWORD.sub(r"\1=***", text)
    return text


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` to every record and redacts secrets from its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs 4xx answers (django.request) after the middleware chain has returned,
        # with the request attached: take the id from it.
        from_request = getattr(getattr(record, "request", None), "request_id", None)
        if from_request:
            record.request_id = from_request
        elif not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: leave the record as it is
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extra, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
