"""The correlation id of every request.

``X-Request-ID`` from the client or the load balancer is kept when it is a short token of safe
characters; otherwise a new one is made. It is set on the response, on ``request.request_id``,
and in ``config.logging.request_id_var`` for every log line written while the request is
served; the API's 500 answer quotes it as ``details.correlation_id``.

With ACCESS_LOG on (the default when DJANGO_DEBUG=0) each request also writes one access line
to the ``observatory.access`` logger: method, path (never the query string, which may carry
search terms), status, duration and the request id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config.logging import request_id_var

HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
access_logger = logging.getLogger("observatory.access")


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.access_log = bool(getattr(settings, "ACCESS_LOG", False))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SAFE_ID.fullmatch(incoming) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            if self.access_log:
                access_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path[:300],
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path[:300],
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            return response
        finally:
            request_id_var.reset(token)
