"""The one NinjaAPI of the project: routers per area, errors mapped once, orjson rendering."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.renderers import BaseRenderer

from sessions_api.api.errors import install_error_handlers
from sessions_api.api.sessions import router as sessions_router


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        return orjson.dumps(data, option=orjson.OPT_UTC_Z, default=_fallback)


def _fallback(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialise {type(value).__name__}")


api = NinjaAPI(
    title="Session Observatory API",
    version="1",
    description="Ingest, read and manage AI-agent session documents.",
    renderer=OrjsonRenderer(),
    urls_namespace="api",
)
install_error_handlers(api)
api.add_router("", sessions_router)
api.add_router("", "sessions_api.api.documents.router")  # agents load and save their session
api.add_router("", "sessions_api.api.editing.router")  # audit, checkpoints, restore, branch
api.add_router("", "sessions_api.api.alerts.router")  # alert rules and their notifications
