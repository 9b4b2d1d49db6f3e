"""Dashboard pages: thin views over selectors."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sessions_api import selectors


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    page = selectors.list_sessions(filters=selectors.SessionFilters(), limit=20)
    return render(request, "dashboard/overview.html", {"sessions": page.items})
