"""What the dashboard's pages read from their query strings. Anything unreadable counts as
absent (the page shows its default), except where a page says what was wrong."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django import forms

from dashboard.forms.common import (
    BoundedIntegerField,
    check_moment_range,
    parse_moment,
    range_problem,
)
from sessions_api.domain import SessionStatus
from sessions_api.editing.selectors import AuditFilters
from sessions_api.sessions.selectors import ORDER_FIELDS, SessionFilters

RANGE_PRESETS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
STATUSES = [s.value for s in SessionStatus]
ORDERS = [f"-{name}" for name in ORDER_FIELDS] + list(ORDER_FIELDS)
PAGE_SIZES = (25, 50, 100, 200)
ERROR_KINDS = {
    "errors": ["tool_error", "message_error", "log_error"],
    "all": [],
    "tool_error": ["tool_error"],
    "message_error": ["message_error"],
    "log_error": ["log_error"],
    "log_warning": ["log_warning"],
}

_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


class _AwareDateTimeField(forms.DateTimeField):
    """ISO 8601 (what the API takes) or a datetime-local value; naive means UTC."""

    input_formats = _DATETIME_FORMATS

    def to_python(self, value):
        if isinstance(value, str):
            parsed = parse_moment(value)
            if parsed is not None:
                return parsed
        return super().to_python(value)

    def validate(self, value):
        super().validate(value)
        if value is not None:
            check_moment_range(value)


def _csv_values(data, name: str) -> list[str]:
    """``?status=a,b`` (the API's form) and ``?status=a&status=b`` (checkboxes) alike."""
    values: list[str] = []
    for raw in data.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return list(dict.fromkeys(values))


class RangeMixin(forms.Form):
    range = forms.ChoiceField(
        choices=[("", "Any time"), *((k, k) for k in RANGE_PRESETS), ("custom", "Custom")],
        required=False,
    )
    since = _AwareDateTimeField(required=False)
    until = _AwareDateTimeField(required=False)

    default_range = ""

    def time_window(self, now: datetime) -> tuple[datetime | None, datetime | None, str]:
        """(since, until, the preset in force or "custom" or "")."""
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        preset = data.get("range") or ""
        if since or until:
            return since, until, "custom"
        if preset in RANGE_PRESETS:
            return now - RANGE_PRESETS[preset], None, preset
        if preset == "" and self.default_range:
            return now - RANGE_PRESETS[self.default_range], None, self.default_range
        return None, None, ""

    def problem(self) -> str:
        """The out-of-range parameter, named; the page answers 400 with it ("" when none)."""
        return range_problem(self)


class SessionFilterForm(RangeMixin):
    """The explorer's query string: the REST list's parameters plus the dashboard's own."""

    agent = forms.CharField(required=False, max_length=255)
    user = forms.CharField(required=False, max_length=255)
    model = forms.CharField(required=False, max_length=255)
    tool = forms.CharField(required=False, max_length=255)
    has_errors = forms.ChoiceField(
        choices=[("", "Any"), ("true", "With errors"), ("false", "Without errors")],
        required=False,
    )
    q = forms.CharField(required=False, max_length=200)
    order = forms.ChoiceField(choices=[(o, o) for o in ORDERS], required=False)
    cursor = forms.CharField(required=False, max_length=1000)
    limit = forms.TypedChoiceField(
        choices=[(str(n), str(n)) for n in PAGE_SIZES], coerce=int, required=False, empty_value=50
    )
    min_duration = BoundedIntegerField(required=False, min_value=0)
    max_duration = BoundedIntegerField(required=False, min_value=0)

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        # Kept as given: a value no session can have (a typo in a bookmarked URL) is refused by
        # the list, in the API's words, rather than dropped, which would list every session.
        self.statuses = _csv_values(data, "status")
        self.formats = _csv_values(data, "format")

    def filters(self, now: datetime) -> SessionFilters:
        data = self.cleaned_data
        since, until, _ = self.time_window(now)
        has_errors = {"true": True, "false": False}.get(data.get("has_errors") or "")
        return SessionFilters(
            status=self.statuses,
            format=self.formats,
            agent=data.get("agent") or None,
            user=data.get("user") or None,
            model=data.get("model") or None,
            tool=data.get("tool") or None,
            has_errors=has_errors,
            since=since,
            until=until,
            q=data.get("q") or None,
        )


class OverviewRangeForm(RangeMixin):
    default_range = "24h"
    refresh = forms.BooleanField(required=False)


class ErrorFilterForm(RangeMixin):
    default_range = "24h"
    agent = forms.CharField(required=False, max_length=255)
    tool = forms.CharField(required=False, max_length=255)
    kind = forms.ChoiceField(
        choices=[
            ("errors", "Errors"),
            ("all", "Errors and warnings"),
            ("tool_error", "Tool errors"),
            ("message_error", "Message errors"),
            ("log_error", "Logged errors"),
            ("log_warning", "Warnings"),
        ],
        required=False,
    )
    cursor = forms.CharField(required=False, max_length=1000)


class SessionPageForm(forms.Form):
    """One session's pages: which version, where the timeline window starts (or the message it
    is around) and its size, and two versions to compare."""

    version = BoundedIntegerField(required=False, min_value=0)
    start = BoundedIntegerField(required=False, min_value=0)
    around = BoundedIntegerField(required=False, min_value=0)
    # A timeline event to open the page at (a search result's link), and the find box's text.
    event = BoundedIntegerField(required=False, min_value=0)
    find = forms.CharField(required=False, max_length=200)
    limit = BoundedIntegerField(required=False, min_value=0)
    a = BoundedIntegerField(required=False, min_value=0)
    b = BoundedIntegerField(required=False, min_value=0)

    def number(self, name: str) -> int | None:
        return self.cleaned_data.get(name)

    def version_of(self, latest: int) -> int:
        """The version asked for when the session has it, else the latest."""
        version = self.cleaned_data.get("version")
        return version if version and 1 <= version <= latest else latest


class AuditFilterForm(forms.Form):
    """The audit log's filters, taken as typed (ids and names are matched exactly)."""

    session = forms.CharField(required=False, strip=False)
    actor = forms.CharField(required=False, strip=False)
    action = forms.CharField(required=False, strip=False)
    since = forms.CharField(required=False, strip=False)
    until = forms.CharField(required=False, strip=False)
    cursor = forms.CharField(required=False, strip=False)

    def clean_since(self) -> datetime | None:
        return _audit_moment(self.cleaned_data["since"])

    def clean_until(self) -> datetime | None:
        return _audit_moment(self.cleaned_data["until"])

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            session=data.get("session") or None,
            actor=data.get("actor") or None,
            action=data.get("action") or None,
            since=data.get("since"),
            until=data.get("until"),
        )

    def problem(self) -> str:
        """What is wrong with the time range, said once; "" when nothing is."""
        if problem := range_problem(self):
            return problem
        for name in ("since", "until"):
            if name in self.errors:
                return self.errors[name][0]
        return ""


def _audit_moment(text: str) -> datetime | None:
    if not text.strip():
        return None
    moment = parse_moment(text)
    if moment is None:
        shown = text.strip()[:40]
        raise forms.ValidationError(f"{shown!r} is not a date and time (use YYYY-MM-DDTHH:MM, UTC)")
    return check_moment_range(moment)


class JobHistoryForm(forms.Form):
    """The Jobs page's history: one job's runs or all, and the page before a run id."""

    job = forms.ChoiceField(required=False)
    before = BoundedIntegerField(required=False)

    def __init__(self, data, *, job_names: Iterable[str]) -> None:
        super().__init__(data)
        self.fields["job"].choices = [("", "All jobs"), *((name, name) for name in job_names)]
