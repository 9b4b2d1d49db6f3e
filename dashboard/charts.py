"""Plotly figures built server-side from analytics results (the only plotly import).

Each builder returns a :class:`Chart` whose ``figure`` is plain JSON (``{"data", "layout"}``)
that a template embeds with ``json_script`` and ``static/js/charts.js`` draws with the plotly.js
we serve ourselves. Every point carries, in ``customdata``, the dashboard URL of the sessions
(or errors) behind it; a click navigates there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import plotly.graph_objects as go
from django.urls import reverse

from sessions_api.analytics.overview import (
    DurationBin,
    Granularity,
    ModelCost,
    RankedKey,
    SeriesPoint,
    TokenPoint,
    ToolStat,
    bucket_starts,
)

STATUS_COLORS = {
    "completed": "#12b76a",
    "running": "#2e90fa",
    "error": "#f04438",
    "aborted": "#f79009",
    "abandoned": "#98a2b3",
    "expired": "#d0d5dd",
    "unknown": "#667085",
}
STATUS_ORDER = ["completed", "running", "aborted", "error", "abandoned", "expired", "unknown"]
ERROR_COLORS = {
    "tool_error": "#f04438",
    "message_error": "#b42318",
    "log_error": "#fda29b",
    "log_warning": "#fdb022",
}
ERROR_LABELS = {
    "tool_error": "Tool errors",
    "message_error": "Message errors",
    "log_error": "Logged errors",
    "log_warning": "Warnings",
}
PALETTE = [
    "#6172f3",
    "#15b79e",
    "#f79009",
    "#ee46bc",
    "#2e90fa",
    "#875bf7",
    "#66c61c",
    "#ef6820",
    "#06aed4",
    "#667085",
]
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_FONT = 'Inter, ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'


# plotly.js injects the (unused) MapLibre stylesheet as an inline <style> unless an element with
# this id exists; CSP blocks that injection and logs a violation, so pages with charts carry an
# empty element with this id. The id belongs to the bundled plotly.js build: the browser tests
# fail on any CSP violation, which is how a plotly upgrade that changes it shows up.
PLOTLY_MAPLIBRE_STYLE_ID = "9f215cf04c5486422605d13261cb87401f4e7763b6296af81e98efbc0130da53"


@dataclass(frozen=True)
class ChartRange:
    since: datetime
    until: datetime
    granularity: Granularity
    # A preset range ends "now": its links leave `until` open so they keep matching.
    open_ended: bool = True

    def params(self, **extra: Any) -> dict[str, str]:
        params = {"since": _iso(self.since)}
        if not self.open_ended:
            params["until"] = _iso(self.until)
        params.update({k: str(v) for k, v in extra.items() if v is not None})
        return params


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    subtitle: str
    figure: dict[str, Any] | None  # None: nothing to draw in this range
    empty_text: str = "No data in this range"
    link: str = ""  # the page behind the whole chart

    @property
    def dom_id(self) -> str:
        return f"chart-{self.key}"

    @property
    def data_id(self) -> str:
        return f"chart-{self.key}-data"


def _iso(value: datetime) -> str:
    return (
        value.strftime("%Y-%m-%dT%H:%M:%SZ") if value.utcoffset() is not None else value.isoformat()
    )


def _label(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _link(url: str, params: dict[str, str]) -> str:
    """A page's URL with a query string. Builders reverse each page once, not once per point:
    a chart can carry hundreds of links."""
    return f"{url}?{urlencode(params)}"


def _layout(*, height: int = 260, **overrides: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "template": "none",
        "height": height,
        "margin": {"l": 44, "r": 12, "t": 8, "b": 32},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": _FONT, "size": 11, "color": "#475467"},
        "bargap": 0.25,
        "hovermode": "closest",
        "dragmode": False,
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.02,
            "yanchor": "bottom",
            "font": {"size": 11},
            "bgcolor": "rgba(0,0,0,0)",
            "traceorder": "normal",
        },
        "hoverlabel": {
            "bgcolor": "#101828",
            "bordercolor": "#101828",
            "font": {"family": _FONT, "size": 12, "color": "#ffffff"},
        },
        "xaxis": {
            "showgrid": False,
            "linecolor": "#e4e7ec",
            "tickcolor": "#e4e7ec",
            "ticks": "outside",
            "ticklen": 4,
            "automargin": True,
            "fixedrange": True,
        },
        "yaxis": {
            "gridcolor": "#f2f4f7",
            "zeroline": False,
            "rangemode": "tozero",
            "automargin": True,
            "fixedrange": True,
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


def _figure(traces: list[Any], layout: dict[str, Any]) -> dict[str, Any]:
    figure = go.Figure(data=traces, layout=layout)
    # Through plotly's own encoder, so what reaches json_script is plain JSON.
    return json.loads(figure.to_json())


def _time_axis(rng: ChartRange) -> list[datetime]:
    return bucket_starts(rng.since, rng.until, rng.granularity)


def _bucket_params(rng: ChartRange, bucket: datetime) -> dict[str, str]:
    end = bucket + _STEP[rng.granularity]
    return {"since": _iso(max(bucket, rng.since)), "until": _iso(min(end, rng.until))}


def _time_tickformat(rng: ChartRange) -> str:
    return {"minute": "%H:%M", "hour": "%b %d %H:%M", "day": "%b %d"}[rng.granularity]


def _time_bar(
    rng: ChartRange,
    buckets: list[datetime],
    *,
    name: str,
    values: dict[datetime, int],
    color: str,
    url: str,
    filters: dict[str, str],
    hovertemplate: str,
) -> Any:
    """One series of a stacked chart over time; each bar links to ``url`` for its bucket with
    ``filters``."""
    return go.Bar(
        name=name,
        x=[_label(b) for b in buckets],
        y=[values.get(b, 0) for b in buckets],
        marker={"color": color},
        customdata=[_link(url, {**_bucket_params(rng, b), **filters}) for b in buckets],
        hovertemplate=hovertemplate,
    )


def _stacked_time_layout(rng: ChartRange) -> dict[str, Any]:
    return _layout(barmode="stack", xaxis={"type": "date", "tickformat": _time_tickformat(rng)})


def sessions_by_status_chart(points: list[SeriesPoint], rng: ChartRange) -> Chart:
    sessions_url = reverse("dashboard:sessions")
    buckets = _time_axis(rng)
    counts: dict[str, dict[datetime, int]] = defaultdict(dict)
    for point in points:
        counts[point.key][point.bucket] = point.count
    traces = []
    for status in sorted(counts, key=lambda s: STATUS_ORDER.index(s) if s in STATUS_ORDER else 99):
        traces.append(
            _time_bar(
                rng,
                buckets,
                name=status,
                values=counts[status],
                color=STATUS_COLORS.get(status, "#98a2b3"),
                url=sessions_url,
                filters={"status": status},
                hovertemplate=f"{status}<br>%{{x}}<br>%{{y}} sessions<extra></extra>",
            )
        )
    layout = _stacked_time_layout(rng)
    return Chart(
        key="sessions",
        title="Sessions by status",
        subtitle="by start",
        figure=_figure(traces, layout) if points else None,
        link=_link(sessions_url, rng.params()),
    )


def tokens_by_model_chart(points: list[TokenPoint], rng: ChartRange) -> Chart:
    sessions_url = reverse("dashboard:sessions")
    buckets = _time_axis(rng)
    per_model: dict[str, dict[datetime, int]] = defaultdict(dict)
    for point in points:
        per_model[point.model][point.bucket] = point.total_tokens
    ranked = sorted(per_model, key=lambda m: -sum(per_model[m].values()))
    traces = []
    for index, model in enumerate(ranked):
        link_model = None if model.startswith("(") else model
        traces.append(
            _time_bar(
                rng,
                buckets,
                name=_escape(model),
                values=per_model[model],
                color=PALETTE[index % len(PALETTE)],
                url=sessions_url,
                filters={"model": link_model} if link_model else {},
                hovertemplate="%{fullData.name}<br>%{x}<br>%{y:,} tokens<extra></extra>",
            )
        )
    layout = _stacked_time_layout(rng)
    layout["yaxis"]["tickformat"] = "~s"
    return Chart(
        key="tokens",
        title="Token spend by model",
        subtitle="total tokens, stacked",
        figure=_figure(traces, layout) if points else None,
        link=_link(sessions_url, rng.params()),
    )


def cost_by_model_chart(costs: list[ModelCost], rng: ChartRange) -> Chart:
    sessions_url = reverse("dashboard:sessions")
    priced = [c for c in costs if c.cost is not None][:10]
    priced.reverse()  # largest on top in a horizontal bar chart
    trace = go.Bar(
        orientation="h",
        y=[_escape(c.model) for c in priced],
        x=[float(c.cost or Decimal(0)) for c in priced],
        text=[_money(c.cost) for c in priced],
        textposition="outside",
        cliponaxis=False,
        marker={"color": "#6172f3"},
        customdata=[_link(sessions_url, rng.params(model=c.model)) for c in priced],
        hovertemplate="%{y}<br>est. $%{x:,.4f}<extra></extra>",
        showlegend=False,
    )
    layout = _layout(
        height=max(160, 44 + 28 * len(priced)),
        showlegend=False,
        margin={"l": 8, "r": 56, "t": 4, "b": 28},
        xaxis={"showgrid": True, "gridcolor": "#f2f4f7", "tickprefix": "$", "ticks": ""},
        yaxis={"gridcolor": "rgba(0,0,0,0)"},
    )
    return Chart(
        key="cost",
        title="Estimated cost by model",
        subtitle="est. from the price table",
        figure=_figure([trace], layout) if priced else None,
        empty_text="No priced usage in this range (add prices on the Prices page)",
        link=reverse("dashboard:prices"),
    )


def tool_stats_chart(stats: list[ToolStat], rng: ChartRange) -> Chart:
    sessions_url = reverse("dashboard:sessions")
    errors_url = reverse("dashboard:errors")
    rows = list(reversed(stats))
    names = [_escape(s.name) for s in rows]
    ok = go.Bar(
        name="ok / other",
        orientation="h",
        y=names,
        x=[s.calls - s.errors for s in rows],
        marker={"color": "#84adff"},
        customdata=[_link(sessions_url, rng.params(tool=s.name)) for s in rows],
        hovertemplate="%{y}<br>%{x} calls without error<extra></extra>",
    )
    failed = go.Bar(
        name="errors",
        orientation="h",
        y=names,
        x=[s.errors for s in rows],
        marker={"color": "#f04438"},
        text=[f"{s.error_rate:.0%}" if s.errors else "" for s in rows],
        textposition="outside",
        cliponaxis=False,
        customdata=[
            _link(errors_url, {**rng.params(tool=s.name), "kind": "tool_error"}) for s in rows
        ],
        hovertemplate="%{y}<br>%{x} errors (%{text})<extra></extra>",
    )
    layout = _layout(
        barmode="stack",
        height=max(160, 60 + 26 * len(rows)),
        margin={"l": 8, "r": 40, "t": 8, "b": 28},
        xaxis={"showgrid": True, "gridcolor": "#f2f4f7", "ticks": ""},
        yaxis={"gridcolor": "rgba(0,0,0,0)"},
    )
    return Chart(
        key="tools",
        title="Tool calls by tool",
        subtitle="error rate at the end of each bar",
        figure=_figure([ok, failed], layout) if rows else None,
        link=_link(errors_url, {**rng.params(), "kind": "tool_error"}),
    )


def errors_chart(points: list[SeriesPoint], rng: ChartRange) -> Chart:
    errors_url = reverse("dashboard:errors")
    buckets = _time_axis(rng)
    per_kind: dict[str, dict[datetime, int]] = defaultdict(dict)
    for point in points:
        per_kind[point.key][point.bucket] = point.count
    traces = []
    for kind in [k for k in ERROR_LABELS if k in per_kind]:
        traces.append(
            _time_bar(
                rng,
                buckets,
                name=ERROR_LABELS[kind],
                values=per_kind[kind],
                color=ERROR_COLORS[kind],
                url=errors_url,
                filters={"kind": kind},
                hovertemplate=f"{ERROR_LABELS[kind]}<br>%{{x}}<br>%{{y}}<extra></extra>",
            )
        )
    layout = _stacked_time_layout(rng)
    return Chart(
        key="errors",
        title="Errors and warnings",
        subtitle="when they happened",
        figure=_figure(traces, layout) if points else None,
        empty_text="No errors or warnings in this range",
        link=_link(errors_url, {**rng.params(), "kind": "all"}),
    )


def top_keys_chart(rows: list[RankedKey], rng: ChartRange, *, param: str, title: str) -> Chart:
    sessions_url = reverse("dashboard:sessions")
    ordered = list(reversed(rows))
    color = "#15b79e" if param == "agent" else "#875bf7"
    traces = [
        go.Bar(
            name="sessions",
            orientation="h",
            y=[_escape(r.key) for r in ordered],
            x=[r.sessions - r.with_errors for r in ordered],
            marker={"color": color},
            customdata=[_link(sessions_url, rng.params(**{param: r.key})) for r in ordered],
            hovertemplate="%{y}<br>%{x} sessions without errors<extra></extra>",
        ),
        go.Bar(
            name="with errors",
            orientation="h",
            y=[_escape(r.key) for r in ordered],
            x=[r.with_errors for r in ordered],
            marker={"color": "#fda29b"},
            customdata=[
                _link(sessions_url, rng.params(**{param: r.key, "has_errors": "true"}))
                for r in ordered
            ],
            hovertemplate="%{y}<br>%{x} sessions with errors<extra></extra>",
        ),
    ]
    layout = _layout(
        barmode="stack",
        height=max(160, 60 + 26 * len(ordered)),
        margin={"l": 8, "r": 16, "t": 8, "b": 28},
        xaxis={"showgrid": True, "gridcolor": "#f2f4f7", "ticks": ""},
        yaxis={"gridcolor": "rgba(0,0,0,0)"},
    )
    return Chart(
        key=f"top_{param}",
        title=title,
        subtitle="sessions in range",
        figure=_figure(traces, layout) if rows else None,
        empty_text=f"No sessions name a {param} in this range",
        link=_link(sessions_url, rng.params()),
    )


def duration_chart(bins: list[DurationBin], rng: ChartRange) -> Chart:
    sessions_url = reverse("dashboard:sessions")
    trace = go.Bar(
        x=[b.label for b in bins],
        y=[b.count for b in bins],
        marker={"color": "#6172f3"},
        customdata=[
            _link(
                sessions_url,
                rng.params(
                    min_duration=b.min_seconds or None,
                    max_duration=b.max_seconds,
                ),
            )
            for b in bins
        ],
        hovertemplate="%{x}<br>%{y} sessions<extra></extra>",
        showlegend=False,
    )
    layout = _layout(showlegend=False, xaxis={"type": "category"})
    return Chart(
        key="duration",
        title="Session duration",
        subtitle="last activity minus start",
        figure=_figure([trace], layout) if any(b.count for b in bins) else None,
        link=_link(sessions_url, rng.params()),
    )


def _money(value: Decimal | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:,.4f}"


def _escape(text: str) -> str:
    """Plotly renders a small HTML subset in hover templates and names: keep data as text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
