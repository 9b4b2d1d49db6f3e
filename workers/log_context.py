"""Worker and beat logs in the web's format, carrying a correlation id: structured
JSON logs with a correlation id for every process, not only the web.

- Celery configures logging itself unless a ``setup_logging`` receiver exists; ours applies
  Django's ``LOGGING`` instead, so workers and beat write the same JSON lines (plain text when
  DEBUG) through the same secret-redacting filter.
- A task published while a request is being served carries that request's id in a message
  header; the worker logs the task under it, so one id follows a click on "Run now" from the
  access log to the job's own lines. A task without one (beat, the shell) is logged under its
  task id. Either way each line also names the task and its id.
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import Token
from typing import Any

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun
from django.conf import settings

from config.logging import request_id_var, task_var

#: The message header that carries the publishing request's id.
REQUEST_ID_HEADER = "observatory_request_id"

_tokens: dict[str, tuple[Token[str], Token[dict[str, str] | None]]] = {}


@setup_logging.connect
def use_django_logging(loglevel: int | str | None = None, **_: Any) -> None:
    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@before_task_publish.connect
def carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = request_id_var.get()
    if headers is not None and request_id != "-":
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@task_prerun.connect
def enter_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if not task_id:
        return
    request_id = getattr(getattr(task, "request", None), REQUEST_ID_HEADER, None) or task_id
    _tokens[task_id] = (
        request_id_var.set(str(request_id)),
        task_var.set({"task": getattr(task, "name", "?"), "task_id": task_id}),
    )


@task_postrun.connect
def leave_task_context(task_id: str | None = None, **_: Any) -> None:
    tokens = _tokens.pop(task_id or "", None)
    if tokens:
        try:
            request_id_var.reset(tokens[0])
            task_var.reset(tokens[1])
        except ValueError:  # finished in another context (a thread pool): clear instead
            request_id_var.set("-")
            task_var.set(None)
