"""Forms: parse and validate what the dashboard's query strings and the price form send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django import forms

from sessions_api.domain import SessionStatus
from sessions_api.formats import FORMAT_IDS
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
            text = value.strip()
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            try:
                parsed = datetime.fromisoformat(text) if text else None
            except ValueError:
                parsed = None
            if parsed is not None:
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return super().to_python(value)


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
    min_duration = forms.IntegerField(required=False, min_value=0)
    max_duration = forms.IntegerField(required=False, min_value=0)

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.statuses = [s for s in _csv_values(data, "status") if s in STATUSES]
        self.formats = [f for f in _csv_values(data, "format") if f in FORMAT_IDS]

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


class PriceForm(forms.Form):
    model = forms.CharField(max_length=255, help_text="Exact model name, or a prefix of it")
    input_per_mtok = forms.DecimalField(
        max_digits=12, decimal_places=4, min_value=Decimal(0), label="Input / 1M tokens"
    )
    cached_input_per_mtok = forms.DecimalField(
        max_digits=12,
        decimal_places=4,
        min_value=Decimal(0),
        required=False,
        label="Cached input / 1M tokens",
    )
    output_per_mtok = forms.DecimalField(
        max_digits=12, decimal_places=4, min_value=Decimal(0), label="Output / 1M tokens"
    )
    effective_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    currency = forms.CharField(max_length=3, initial="USD")
    notes = forms.CharField(max_length=500, required=False)

    def clean_model(self) -> str:
        model = self.cleaned_data["model"].strip()
        if not model:
            raise forms.ValidationError("Name a model.")
        return model

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise forms.ValidationError("A three-letter currency code, e.g. USD.")
        return currency
