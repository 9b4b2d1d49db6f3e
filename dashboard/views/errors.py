"""Errors and tool failures across sessions: "what broke in the last hour"."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard.forms.query import ERROR_KINDS, RANGE_PRESETS, ErrorFilterForm
from dashboard.views.common import query_without
from sessions_api.analytics import overview as analytics
from sessions_api.errors import InvalidQuery
from sessions_api.sessions import error_feed, explorer


@login_required
def errors(request: HttpRequest) -> HttpResponse:
    form = ErrorFilterForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    now = timezone.now()
    since, until, preset = form.time_window(now)
    kind = data.get("kind") or "errors"
    agent = data.get("agent") or None
    tool = data.get("tool") or None
    problem = form.problem()
    try:
        if problem:
            raise InvalidQuery(problem)
        page = error_feed.list_errors(
            since=since,
            until=until,
            agent=agent,
            tool=tool,
            kinds=ERROR_KINDS[kind],
            cursor=data.get("cursor") or None,
            limit=50,
        )
    except InvalidQuery as exc:
        problem = exc.message
        page = error_feed.list_errors(
            since=since, until=until, agent=agent, tool=tool, kinds=ERROR_KINDS[kind], limit=50
        )
    totals_since = since or now - RANGE_PRESETS["30d"]
    totals = analytics.error_totals(since=totals_since, until=until or now, agent=agent, tool=tool)
    tools = analytics.tool_stats(since=totals_since, until=until or now, agent=agent, limit=10)
    status = 400 if problem else 200
    return render(
        request,
        "dashboard/errors.html",
        {
            "nav": "errors",
            "form": form,
            "presets": list(RANGE_PRESETS),
            "preset": preset,
            "since": since,
            "until": until,
            "kind": kind,
            "page": page,
            "totals": totals,
            "failing_tools": [t for t in tools if t.errors] or tools[:5],
            "choices": explorer.filter_choices(now=now),
            "base_query": query_without(request, "cursor"),
            "problem": problem,
        },
        status=status,
    )
