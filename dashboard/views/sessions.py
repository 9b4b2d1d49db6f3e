"""The session explorer (list, exports) and one session (timeline, panels, raw, versions)."""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import BadRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import get_template, render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET

from dashboard.forms.common import range_problem
from dashboard.forms.query import (
    PAGE_SIZES,
    RANGE_PRESETS,
    STATUSES,
    SessionFilterForm,
    SessionPageForm,
)
from dashboard.spreadsheet import csv_cell
from dashboard.views.common import query_without
from sessions_api.access import roles
from sessions_api.analytics import pricing
from sessions_api.editing import selectors as editing_selectors
from sessions_api.errors import AmbiguousSessionId, BodyNotFound, InvalidDocument, InvalidQuery
from sessions_api.formats import FORMAT_IDS
from sessions_api.search import finding, matching
from sessions_api.search.query import parse_query
from sessions_api.sessions import selectors
from sessions_api.sessions.detail import (
    diff_versions,
    event_index_of_seq,
    pretty_body,
    session_panels,
)
from sessions_api.sessions.explorer import (
    EXPORT_MAX_ROWS,
    ExplorerPage,
    explorer_page,
    export_pages,
    filter_choices,
)
from sessions_api.sessions.records import SessionRecord, VersionRecord

TIMELINE_PAGE = 200
EVENTS_HTML_CACHE_SECONDS = 3600
# Columns the explorer can sort on: label -> order field (cost is not an index column).
SORTABLE = {
    "updated": "updated_at",
    "started": "started_at",
    "messages": "message_count",
    "tools": "tool_call_count",
    "errors": "error_count",
    "tokens": "total_tokens",
}


def _parse_filters(request: HttpRequest) -> tuple[SessionFilterForm, Any, str]:
    form = SessionFilterForm(request.GET)
    form.is_valid()
    now = timezone.now()
    filters = form.filters(now)
    _, _, preset = form.time_window(now)
    return form, filters, preset


@login_required
@require_GET
def explorer(request: HttpRequest) -> HttpResponse:
    form, filters, preset = _parse_filters(request)
    data = form.cleaned_data
    order = data.get("order") or "-updated_at"
    problem = form.problem()
    try:
        if problem:
            raise InvalidQuery(problem)
        page = explorer_page(
            filters=filters,
            order=order,
            cursor=data.get("cursor") or None,
            limit=data.get("limit") or 50,
            min_duration_s=data.get("min_duration"),
            max_duration_s=data.get("max_duration"),
        )
    except InvalidQuery as exc:
        problem = exc.message
        page = ExplorerPage(items=[], next_cursor=None, prev_cursor=None)
    costs = pricing.session_costs(sessions={r.id: r.summary.started_at for r in page.items})
    found = matching.first_matches([r.id for r in page.items], parse_query(filters.q))
    rows = [{"record": r, "cost": costs.get(r.id), "match": found.get(r.id)} for r in page.items]
    active_filters = _active_filters(form, filters, preset)
    context = {
        "nav": "sessions",
        "form": form,
        "filters": filters,
        "rows": rows,
        "page": page,
        "order": order,
        "sort_links": _sort_links(request, order),
        "statuses": STATUSES,
        "formats": FORMAT_IDS,
        "presets": list(RANGE_PRESETS),
        "preset": preset,
        "page_sizes": PAGE_SIZES,
        "choices": filter_choices(),
        "active_filters": active_filters,
        "base_query": query_without(request, "cursor"),
        "export_query": query_without(request, "cursor", "limit"),
        "export_limit": EXPORT_MAX_ROWS,
        "problem": problem,
    }
    return render(request, "dashboard/sessions.html", context, status=400 if problem else 200)


def _sort_links(request: HttpRequest, order: str) -> dict[str, dict[str, str]]:
    links = {}
    current = order.lstrip("-")
    base = query_without(request, "order", "cursor")
    for label, field_name in SORTABLE.items():
        if current == field_name:
            new_order = field_name if order.startswith("-") else f"-{field_name}"
            state = "desc" if order.startswith("-") else "asc"
        else:
            new_order, state = f"-{field_name}", ""
        query = f"{base}&order={new_order}" if base else f"order={new_order}"
        links[label] = {"href": f"?{query}", "state": state}
    return links


def _active_filters(form: SessionFilterForm, filters: Any, preset: str) -> list[dict[str, str]]:
    """Chips for the filters in force, each with the link that removes it."""
    chips = []
    params = form.data
    for name in ("agent", "user", "model", "tool", "q", "has_errors"):
        value = form.cleaned_data.get(name)
        if value:
            chips.append({"label": name.replace("_", " "), "value": str(value), "param": name})
    if filters.status:
        chips.append({"label": "status", "value": ", ".join(filters.status), "param": "status"})
    if filters.format:
        chips.append({"label": "format", "value": ", ".join(filters.format), "param": "format"})
    if (
        form.cleaned_data.get("min_duration") is not None
        or form.cleaned_data.get("max_duration") is not None
    ):
        low = form.cleaned_data.get("min_duration") or 0
        high = form.cleaned_data.get("max_duration")
        chips.append(
            {
                "label": "duration",
                "value": f"{low}s to {high}s" if high is not None else f"≥ {low}s",
                "param": "min_duration,max_duration",
            }
        )
    if preset:
        value = preset if preset != "custom" else "custom range"
        chips.append({"label": "time", "value": value, "param": "range,since,until"})
    for chip in chips:
        remaining = params.copy()
        for name in chip["param"].split(","):
            remaining.pop(name, None)
        remaining.pop("cursor", None)
        chip["remove"] = "?" + remaining.urlencode()
    return chips


# --- exports ------------------------------------------------------------------------------------

EXPORT_FIELDS = [
    "id",
    "external_id",
    "format",
    "status",
    "agent",
    "user",
    "title",
    "models",
    "started_at",
    "updated_at",
    "expires_at",
    "version",
    "message_count",
    "tool_call_count",
    "tool_error_count",
    "error_count",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "estimated_cost_usd",
]


def _export_rows(request: HttpRequest) -> Iterator[dict[str, Any]]:
    """The export's rows. Every parameter is checked, and the first page read, before this
    returns: a refusal is a 400 before anything streams, never a file that stops midway."""
    form, filters, _ = _parse_filters(request)
    if problem := form.problem():
        raise InvalidQuery(problem)
    data = form.cleaned_data
    pages = export_pages(
        filters=filters,
        order=data.get("order") or "-updated_at",
        min_duration_s=data.get("min_duration"),
        max_duration_s=data.get("max_duration"),
    )
    first = next(pages, None)
    return _export_items(pages, first)


def _export_items(
    pages: Iterator[list[SessionRecord]], first: list[SessionRecord] | None
) -> Iterator[dict[str, Any]]:
    if first is None:
        return
    book = pricing.price_book()
    for records in itertools.chain([first], pages):
        costs = pricing.session_costs(
            sessions={r.id: r.summary.started_at for r in records}, book=book
        )
        for record in records:
            yield _export_item(record, costs.get(record.id))


def _export_item(record: SessionRecord, cost: pricing.CostEstimate | None) -> dict[str, Any]:
    s = record.summary
    amount = cost.amount if cost is not None else None
    return {
        "id": record.id,
        "external_id": record.external_id,
        "format": record.format,
        "status": s.status,
        "agent": s.agent or "",
        "user": s.user or "",
        "title": record.title,
        "models": s.models,
        "started_at": s.started_at,
        "updated_at": s.updated_at,
        "expires_at": s.expires_at,
        "version": record.version,
        "message_count": s.message_count,
        "tool_call_count": s.tool_call_count,
        "tool_error_count": s.tool_error_count,
        "error_count": record.error_count,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "total_tokens": s.total_tokens,
        "estimated_cost_usd": str(amount.quantize(Decimal("0.000001"))) if amount else None,
    }


class _Echo:
    def write(self, value: str) -> str:
        return value


def _stamp() -> str:
    return timezone.now().strftime("%Y%m%d-%H%M%S")


@login_required
@require_GET
def export_csv(request: HttpRequest) -> HttpResponse:
    writer = csv.writer(_Echo())
    try:
        rows = _export_rows(request)
    except InvalidQuery as exc:
        return _export_refused(exc)

    def lines() -> Iterator[str]:
        yield writer.writerow(EXPORT_FIELDS)
        for item in rows:
            yield writer.writerow([csv_cell(item[name]) for name in EXPORT_FIELDS])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sessions-{_stamp()}.csv"'
    return response


@login_required
@require_GET
def export_json(request: HttpRequest) -> HttpResponse:
    try:
        rows = _export_rows(request)
    except InvalidQuery as exc:
        return _export_refused(exc)

    def chunks() -> Iterator[str]:
        yield "["
        first = True
        for item in rows:
            yield ("" if first else ",\n") + json.dumps(item, cls=DjangoJSONEncoder)
            first = False
        yield "]\n"

    response = StreamingHttpResponse(chunks(), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="sessions-{_stamp()}.json"'
    return response


def _export_refused(exc: InvalidQuery) -> HttpResponse:
    return HttpResponse(
        f"Export refused: {exc.message}\n", status=400, content_type="text/plain; charset=utf-8"
    )


# --- one session --------------------------------------------------------------------------------


def _record_or_404(session_id: str) -> SessionRecord:
    try:
        record = selectors.get_session(session_id=str(session_id))
    except AmbiguousSessionId:
        record = None
    if record is None:
        raise Http404("no such session")
    return record


@login_required
@require_GET
def by_external_id(request: HttpRequest, external_id: str) -> HttpResponse:
    """``/sessions/<the agent's own session id>/``: to the session it names, or to the sessions
    list searching for it when several formats use that id."""
    records = selectors.sessions_with_external_id(external_id=external_id)
    if not records:
        raise Http404("no such session")
    if len(records) == 1:
        return redirect("dashboard:session", session_id=records[0].id)
    return redirect(f"{reverse('dashboard:sessions')}?{urlencode({'q': external_id})}")


def _cost(record: SessionRecord) -> pricing.CostEstimate:
    return pricing.session_costs(sessions={record.id: record.summary.started_at})[record.id]


def _page_params(request: HttpRequest) -> SessionPageForm:
    form = SessionPageForm(request.GET)
    form.is_valid()  # unreadable numbers are left out of cleaned_data: the defaults apply
    if problem := range_problem(form):
        raise BadRequest(problem)
    return form


EVENTS_TEMPLATE = "dashboard/partials/timeline_events.html"


@functools.cache
def _events_template_rev() -> str:
    """A digest of the events partial, so rendered windows cached by an older template (in a
    shared cache, across a deploy) are never served by a newer one."""
    source = get_template(EVENTS_TEMPLATE).template.source
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def _events_html(record: SessionRecord, window: selectors.TimelineWindow) -> SafeString:
    """A timeline window rendered by the events partial (autoescaped), cached per (session,
    version, window): a stored version never changes, and rendering 200 events costs more than
    all the rest of the session page (the long-session benchmark in bench/ measures it)."""
    key = ":".join(
        (
            "dash:events-html:v1",
            record.id,
            str(window.version),
            f"{window.start}-{window.end}",
            _events_template_rev(),
            timezone.get_current_timezone_name(),  # the partial formats times in it
        )
    )
    html = cache.get(key)
    # The template's own autoescaped output keeps its SafeString type through the cache's pickle;
    # anything else (a miss, a value of another type) is rendered again, never trusted.
    if not isinstance(html, SafeString):
        html = render_to_string(EVENTS_TEMPLATE, {"events": window.events})
        cache.set(key, html, timeout=EVENTS_HTML_CACHE_SECONDS)
    return html


@login_required
@require_GET
def detail(request: HttpRequest, session_id: str) -> HttpResponse:
    record = _record_or_404(session_id)
    if record.id != str(session_id):  # a UUID that is the agent's own id: to the session's own
        return redirect("dashboard:session", session_id=record.id)
    params = _page_params(request)
    version = params.version_of(record.version)
    start = params.number("start") or 0
    around = params.number("around")
    event = params.number("event")
    find_text = (params.cleaned_data.get("find") or "").strip()
    problem = ""
    window = panels = found = None
    try:
        # Panels first: on the first view of a version they parse it, and that parse also
        # caches the timeline's pages, which the window then reads (one parse, not two).
        panels = session_panels(record=record, version=version)
        if around is not None:
            index = event_index_of_seq(record=record, seq=around, version=version)
            if index is not None:
                start = max(0, index - 20)
        if event is not None:
            start = max(0, event - 20)
        if find_text:
            found = finding.find_in_version(record=record, version=version, text=find_text)
        window = selectors.get_timeline_window(
            record=record, version=version, start=start, limit=TIMELINE_PAGE
        )
    except (BodyNotFound, InvalidDocument) as exc:
        problem = f"This version's document could not be read: {exc}"
    return render(
        request,
        "dashboard/session_detail.html",
        {
            "nav": "sessions",
            "tab": "timeline",
            "record": record,
            "s": record.summary,
            "version": version,
            "window": window,
            "events_html": _events_html(record, window) if window else "",
            "panels": panels,
            "cost": _cost(record),
            "around": around,
            "event": event,
            "find": find_text,
            "found": found,
            "versions_count": record.version,
            "problem": problem,
            "page_size": TIMELINE_PAGE,
            **_editing_panels(request, record),
        },
    )


def _editing_panels(request: HttpRequest, record: SessionRecord) -> dict[str, Any]:
    """What the page's two editing panels show, read once: lineage, tags, notes and checkpoints
    for everyone; for those who may edit, the versions that revert, checkpoint and branch offer
    (newest first), and where those forms come back to."""
    can_edit = roles.user_can(request.user, roles.Capability.EDIT)
    versions = selectors.list_versions(session_id=record.id) if can_edit else []
    return {
        "extras": editing_selectors.session_extras(session_id=record.id),
        "can_edit": can_edit,
        "versions": list(reversed(versions)),
        "next_url": reverse("dashboard:session", args=[record.id]),
    }


@login_required
@require_GET
def timeline_fragment(request: HttpRequest, session_id: str) -> JsonResponse:
    """A window of timeline events as rendered HTML (escaped by the template) plus where it
    sits, for the page's "load more" / "load earlier"."""
    record = _record_or_404(session_id)
    params = _page_params(request)
    version = params.version_of(record.version)
    limit = params.number("limit") or TIMELINE_PAGE
    start = params.number("start") or 0
    window = selectors.get_timeline_window(
        record=record, version=version, start=start, limit=min(limit, TIMELINE_PAGE)
    )
    html = _events_html(record, window)
    return JsonResponse(
        {
            "version": window.version,
            "start": window.start,
            "end": window.end,
            "total": window.total,
            "html": html,
        }
    )


def _version_body(
    request: HttpRequest, session_id: str, *, read: Callable[..., Any]
) -> tuple[SessionRecord, int, Any]:
    """The session, the version the request asks for (default: the latest) and that version's
    body as ``read(session_id=, version=)`` gives it; 404 when the body is missing."""
    record = _record_or_404(session_id)
    version = _page_params(request).version_of(record.version)
    try:
        body = read(session_id=record.id, version=version)
    except BodyNotFound:
        raise Http404("this version's body is missing from the store") from None
    return record, version, body


@login_required
@require_GET
def raw(request: HttpRequest, session_id: str) -> HttpResponse:
    record, version, body = _version_body(request, session_id, read=pretty_body)
    return render(
        request,
        "dashboard/session_raw.html",
        {
            "nav": "sessions",
            "tab": "raw",
            "record": record,
            "s": record.summary,
            "version": version,
            "body": body,
            "versions": selectors.list_versions(session_id=record.id),
            "versions_count": record.version,
            "cost": _cost(record),
        },
    )


@login_required
@require_GET
def raw_download(request: HttpRequest, session_id: str) -> HttpResponse:
    """The stored bytes as an attachment (never rendered inline by the browser)."""
    record, version, body = _version_body(request, session_id, read=selectors.get_raw_body)
    response = HttpResponse(body, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="session-{record.id}-v{version}.json"'
    return response


@login_required
@require_GET
def versions(request: HttpRequest, session_id: str) -> HttpResponse:
    record = _record_or_404(session_id)
    version_list = selectors.list_versions(session_id=record.id)
    numbers = [v.number for v in version_list]
    params = _page_params(request)
    a, b = params.number("a"), params.number("b")
    if len(numbers) >= 2 and a is None and b is None:
        a, b = numbers[-2], numbers[-1]
    diff = None
    problem = ""
    if a is not None and b is not None:
        if a in numbers and b in numbers:
            try:
                diff = diff_versions(session_id=record.id, a=a, b=b)
            except BodyNotFound:
                problem = "A version's body is missing from the store."
        else:
            problem = "Pick two existing versions."
    return render(
        request,
        "dashboard/session_versions.html",
        {
            "nav": "sessions",
            "tab": "versions",
            "record": record,
            "s": record.summary,
            "version": record.version,
            "versions": list(reversed(version_list)),
            "a": a,
            "b": b,
            "diff": diff,
            "problem": problem,
            "versions_count": record.version,
            "cost": _cost(record),
            "received_bytes": sum(v.size_bytes for v in version_list),
            "stored_bytes": _total_stored(version_list),
        },
    )


def _total_stored(version_list: list[VersionRecord]) -> int | None:
    """What every version takes in the store together; None unless the store says for each."""
    sizes = [v.stored_bytes for v in version_list]
    return sum(sizes) if sizes and None not in sizes else None
