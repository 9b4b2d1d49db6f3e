"""The overview: KPI tiles and charts for a time range."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard import charts
from dashboard.forms import RANGE_PRESETS, OverviewRangeForm
from sessions_api import analytics, dashboard_queries, selectors

REFRESH_SECONDS = 30


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    form = OverviewRangeForm(request.GET)
    form.is_valid()
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

    book = analytics.price_book()
    costs = analytics.cost_by_model(since=since, until=until, book=book)
    kpis = analytics.overview_kpis(since=since, until=until, costs=costs)
    chart_list = [
        charts.sessions_by_status_chart(
            analytics.sessions_by_status(since=since, until=until, granularity=granularity), rng
        ),
        charts.tokens_by_model_chart(
            analytics.tokens_by_model(since=since, until=until, granularity=granularity), rng
        ),
        charts.errors_chart(
            analytics.errors_over_time(since=since, until=until, granularity=granularity), rng
        ),
        charts.cost_by_model_chart(costs, rng),
        charts.tool_stats_chart(analytics.tool_stats(since=since, until=until), rng),
        charts.duration_chart(analytics.duration_histogram(since=since, until=until), rng),
        charts.top_keys_chart(
            analytics.top_agents(since=since, until=until), rng, param="agent", title="Top agents"
        ),
        charts.top_keys_chart(
            analytics.top_users(since=since, until=until), rng, param="user", title="Top users"
        ),
    ]
    recent = selectors.list_sessions(
        filters=selectors.SessionFilters(since=since, until=None if open_ended else until),
        limit=8,
    ).items
    latest_errors = dashboard_queries.list_errors(
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
            "kpis": kpis,
            "costs": costs,
            "charts": {chart.key: chart for chart in chart_list},
            "recent": recent,
            "latest_errors": latest_errors,
            "range_qs": urlencode(rng.params()),
            "refresh": bool(form.cleaned_data.get("refresh")) if form.is_bound else False,
            "refresh_seconds": REFRESH_SECONDS,
            "plotly_style_placeholder": charts.PLOTLY_MAPLIBRE_STYLE_ID,
        },
    )
