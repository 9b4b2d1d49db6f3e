"""Liveness and readiness: /healthz answers while the process runs; /readyz checks each
dependency (database, document store, broker) and says which one is down."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from sessions_api import health


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    report = health.check_dependencies()
    response = JsonResponse(report, status=200 if report["status"] == "ok" else 503)
    if report["status"] != "ok":
        response["Retry-After"] = "5"
    return response
