"""The Alerts page: rules with their delivery health, the notifications they sent (linking to
the sessions), and for admins create, edit, mute, delete and "send a test". Thin: writes are
lifecycle.alerts services, reads its selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.forms.alerts import EVENT_LABELS, AlertRuleForm, MuteForm
from dashboard.views.common import is_dashboard_admin
from sessions_api.errors import AlertNotFound, InvalidAlertRule, InvalidQuery
from sessions_api.lifecycle.alerts import evaluate, rules, selectors

# Notification status -> the pill style the stylesheet already has.
PILLS = {"delivered": "completed", "pending": "running", "sending": "running", "failed": "error"}


@login_required
@require_http_methods(["GET", "POST"])
def alerts_page(request: HttpRequest) -> HttpResponse:
    can_edit = is_dashboard_admin(request.user)
    form = AlertRuleForm.blank()
    if request.method == "POST":
        _require_admin(request)
        form = AlertRuleForm(request.POST)
        if form.is_valid():
            try:
                rule = rules.create_rule(**form.rule_fields())
            except InvalidAlertRule as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Created the rule “{rule.name}”.")
                return redirect("dashboard:alerts")
    return _page(request, form=form, can_edit=can_edit, editing=None)


@login_required
@require_http_methods(["GET", "POST"])
def edit_alert(request: HttpRequest, rule_id: int) -> HttpResponse:
    _require_admin(request)
    rule = _rule(rule_id)
    if request.method == "POST":
        form = AlertRuleForm(request.POST)
        if form.is_valid():
            try:
                rules.update_rule(rule_id=rule.id, **form.rule_fields())
            except InvalidAlertRule as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Saved the rule “{form.cleaned_data['name']}”.")
                return redirect("dashboard:alerts")
    else:
        form = AlertRuleForm.of(rule)
    return _page(request, form=form, can_edit=True, editing=rule)


@login_required
@require_POST
def mute_alert(request: HttpRequest, rule_id: int) -> HttpResponse:
    _require_admin(request)
    rule = _rule(rule_id)
    form = MuteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how long to mute the rule.")
        return redirect("dashboard:alerts")
    until = form.muted_until(timezone.now())
    rules.update_rule(rule_id=rule.id, muted_until=until)
    if until is None:
        messages.success(request, f"“{rule.name}” notifies again.")
    else:
        messages.success(request, f"“{rule.name}” is muted until {until:%Y-%m-%d %H:%M} UTC.")
    return redirect("dashboard:alerts")


@login_required
@require_POST
def delete_alert(request: HttpRequest, rule_id: int) -> HttpResponse:
    _require_admin(request)
    rule = _rule(rule_id)
    rules.delete_rule(rule_id=rule.id)
    messages.success(request, f"Deleted the rule “{rule.name}” and its history.")
    return redirect("dashboard:alerts")


@login_required
@require_POST
def test_alert(request: HttpRequest, rule_id: int) -> HttpResponse:
    _require_admin(request)
    rule = _rule(rule_id)
    evaluate.send_test(rule_id=rule.id)
    messages.success(
        request,
        f"A test notification of “{rule.name}” is on its way; its delivery shows below.",
    )
    return redirect(f"{reverse('dashboard:alerts')}?rule={rule.id}")


def _page(
    request: HttpRequest, *, form: AlertRuleForm, can_edit: bool, editing: rules.RuleRecord | None
) -> HttpResponse:
    rule_filter = request.GET.get("rule") or ""
    try:
        rule_id = int(rule_filter) if rule_filter else None
        history = selectors.notifications(
            rule_id=rule_id, cursor=request.GET.get("cursor") or None, limit=50
        )
    except (ValueError, InvalidQuery):
        rule_id, history = None, selectors.notifications(limit=50)
    health = selectors.rules_with_health()
    return render(
        request,
        "dashboard/alerts.html",
        {
            "nav": "alerts",
            "rules": health,
            "now": timezone.now(),
            "history": history,
            "rule_filter": rule_id,
            "rule_filter_name": next((h.rule.name for h in health if h.rule.id == rule_id), ""),
            "can_edit": can_edit,
            "form": form,
            "editing": editing,
            "secret": selectors.webhook_secret(rule_id=editing.id) if editing else "",
            "event_labels": EVENT_LABELS,
            "pills": PILLS,
            "mutes": ("1h", "4h", "1d", "1w"),
        },
        status=400 if request.method == "POST" else 200,
    )


def _rule(rule_id: int) -> rules.RuleRecord:
    try:
        return rules.get_rule(rule_id=rule_id)
    except AlertNotFound:
        raise Http404("no such alert rule") from None


def _require_admin(request: HttpRequest) -> None:
    if not is_dashboard_admin(request.user):
        raise PermissionDenied("Only admins can change alert rules.")
