"""The overview: KPI tiles and charts for a time range."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard import charts
from dashboard.forms.query import RANGE_PRESETS, OverviewRangeForm
from sessions_api.analytics import overview as analytics
from sessions_api.sessions import error_feed, selectors

REFRESH_SECONDS = 30


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    form = OverviewRangeForm(request.GET)
    form.is_valid()
    problem = form.problem()  # an out-of-range time: named, and the default range shown
    now = timezone.now()
    since, until, preset = form.time_window(now)
    open_ended = until is None
    until = until or now
    since = since or until - timedelta(hours=24)
    if since >= until:
        since = until - timedelta(hours=1)
    granularity = analytics.granularity_for(since, until)
    rng = charts.ChartRange(
        since=since, until=until, granularity=granularity, open_ended=open_ended
    )

    figures = analytics.overview(since=since, until=until, granularity=granularity)
    chart_list = [
        # Session charts count the sessions that started in the range (what the rollups hold).
        replace(
            charts.sessions_by_status_chart(figures.sessions_by_status, rng),
            subtitle="sessions started, by start time",
        ),
        replace(
            charts.tokens_by_model_chart(figures.tokens_by_model, rng),
            subtitle="tokens of sessions started, by start time",
        ),
        charts.errors_chart(figures.errors_over_time, rng),
        replace(
            charts.cost_by_model_chart(figures.costs, rng),
            subtitle="sessions started in range, est. from the price table",
        ),
        charts.tool_stats_chart(figures.tool_stats, rng),
        replace(
            charts.duration_chart(figures.duration_histogram, rng),
            subtitle="sessions started in range: last activity minus start",
        ),
        replace(
            charts.top_keys_chart(figures.top_agents, rng, param="agent", title="Top agents"),
            subtitle="sessions started in range",
        ),
        replace(
            charts.top_keys_chart(figures.top_users, rng, param="user", title="Top users"),
            subtitle="sessions started in range",
        ),
    ]
    recent = selectors.list_sessions(
        filters=selectors.SessionFilters(since=since, until=None if open_ended else until),
        limit=8,
    ).items
    latest_errors = error_feed.list_errors(
        since=since, until=until, kinds=["tool_error", "message_error", "log_error"], limit=6
    ).items
    return render(
        request,
        "dashboard/overview.html",
        {
            "nav": "overview",
            "form": form,
            "presets": list(RANGE_PRESETS),
            "preset": preset or "24h",
            "since": since,
            "until": until,
            "open_ended": open_ended,
            "granularity": granularity,
            "kpis": figures.kpis,
            "costs": figures.costs,
            "freshness": figures.freshness,
            "charts": {chart.key: chart for chart in chart_list},
            "recent": recent,
            "latest_errors": latest_errors,
            "range_qs": urlencode(rng.params()),
            "refresh": bool(form.cleaned_data.get("refresh")) if form.is_bound else False,
            "refresh_seconds": REFRESH_SECONDS,
            "plotly_style_placeholder": charts.PLOTLY_MAPLIBRE_STYLE_ID,
            "problem": problem,
        },
        status=400 if problem else 200,
    )
