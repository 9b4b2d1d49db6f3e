"""The audit log page: every edit, revert, checkpoint, branch, delete and refused attempt,
filterable by session, user (or API key), action and time. Everyone signed in reads it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.defaults import permission_denied as django_permission_denied

from dashboard.forms.query import AuditFilterForm
from dashboard.views.common import query_without
from sessions_api.access import roles
from sessions_api.editing import selectors as editing_selectors
from sessions_api.errors import InvalidQuery

ACTIONS = list(editing_selectors.AUDIT_ACTIONS)
PAGE = 50


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    form.is_valid()
    filters = form.filters()
    problem = form.problem()
    cursor = form.cleaned_data.get("cursor") or None
    page = editing_selectors.AuditPage(items=[])
    if not problem:
        try:
            page = editing_selectors.list_audit(filters=filters, cursor=cursor, limit=PAGE)
        except InvalidQuery as exc:
            problem = exc.message
    return render(
        request,
        "dashboard/audit.html",
        {
            "nav": "audit",
            "page": page,
            "filters": filters,
            "since_text": form.data.get("since", ""),
            "until_text": form.data.get("until", ""),
            "actions": ACTIONS,
            "actors": editing_selectors.audit_actor_choices(),
            "base_query": query_without(request, "cursor"),
            "first_page": cursor is None,
            "problem": problem,
        },
        status=400 if problem else 200,
    )


def permission_denied(request: HttpRequest, exception: PermissionDenied) -> HttpResponse:
    """The 403 answer (config.urls handler403): a refused dashboard action is recorded in the
    audit log unless the view recorded it itself, then Django's 403 page."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        match = getattr(request, "resolver_match", None)
        session_id = match.kwargs.get("session_id") if match else None
        roles.record_request_refusal(
            request,
            attempted=f"{request.method} {request.path[:200]}",
            message=str(exception)[:500] or "permission denied",
            session_id=str(session_id) if session_id else None,
        )
    return django_permission_denied(request, exception)
