"""The Alerts page's forms: a rule (one form for every event; the fields of other events are
ignored) and a mute."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms

from sessions_api.lifecycle.alerts.rules import ENDED_STATUSES, EVENTS, RuleRecord

EVENT_LABELS = {
    "session_ended": "A session ended with a status",
    "session_stuck": "A session is stuck (no update)",
    "tool_error_rate": "Tool error rate over a window",
    "session_cost": "A session's estimated cost",
}
MUTES = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1)}
MUTES["1w"] = timedelta(weeks=1)


class AlertRuleForm(forms.Form):
    name = forms.CharField(max_length=200)
    event = forms.ChoiceField(choices=[(e, EVENT_LABELS[e]) for e in EVENTS])
    # session_ended
    status = forms.MultipleChoiceField(
        choices=[(s, s) for s in ENDED_STATUSES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Ended with status",
    )
    # session_stuck
    minutes = forms.IntegerField(min_value=1, required=False, label="Stuck after (minutes)")
    # tool_error_rate
    above_percent = forms.FloatField(
        min_value=0, max_value=99.99, required=False, label="Error rate above (%)"
    )
    window_minutes = forms.IntegerField(min_value=1, required=False, label="Window (minutes)")
    min_calls = forms.IntegerField(min_value=1, required=False, label="At least (calls)")
    per_tool = forms.BooleanField(required=False, label="Each tool on its own")
    # session_cost
    above_usd = forms.FloatField(min_value=0, required=False, label="Cost above (USD)")
    # filters
    agent = forms.CharField(max_length=255, required=False)
    format = forms.CharField(max_length=255, required=False)
    model = forms.CharField(max_length=255, required=False)
    tool = forms.CharField(max_length=255, required=False)
    # destinations
    webhook_url = forms.CharField(
        max_length=2000, required=False, label="Webhook URL (Slack, Mattermost, any HTTP)"
    )
    webhook_secret = forms.CharField(
        max_length=200,
        required=False,
        label="Signing secret",
        help_text="Leave empty to keep the current one (or have one made up).",
    )
    emails = forms.CharField(max_length=2000, required=False, label="Emails (comma separated)")

    def rule_fields(self) -> dict[str, Any]:
        """The cleaned form as the rules service takes it; the service checks the rest."""
        data = self.cleaned_data
        event = data["event"]
        if event == "session_ended":
            params: dict[str, Any] = {"status": list(data.get("status") or [])}
        elif event == "session_stuck":
            params = {"minutes": data.get("minutes")}
        elif event == "tool_error_rate":
            above = data.get("above_percent")
            params = {
                "above": above / 100 if above is not None else None,
                "window_minutes": data.get("window_minutes"),
                "min_calls": data.get("min_calls"),
                "per_tool": bool(data.get("per_tool")),
            }
        else:
            params = {"above_usd": data.get("above_usd")}
        return {
            "name": data["name"],
            "event": event,
            "params": params,
            "filters": {k: data.get(k) or "" for k in ("agent", "format", "model", "tool")},
            "webhook_url": data.get("webhook_url") or "",
            "webhook_secret": data.get("webhook_secret") or None,
            "emails": data.get("emails") or "",
        }

    @classmethod
    def of(cls, rule: RuleRecord) -> AlertRuleForm:
        p = rule.params
        return cls(
            initial={
                "name": rule.name,
                "event": rule.event,
                "status": p.get("status", []),
                "minutes": p.get("minutes"),
                "above_percent": round(p["above"] * 100, 2) if "above" in p else None,
                "window_minutes": p.get("window_minutes"),
                "min_calls": p.get("min_calls"),
                "per_tool": p.get("per_tool", False),
                "above_usd": p.get("above_usd"),
                **rule.filters,
                "webhook_url": rule.webhook_url,
                "emails": ", ".join(rule.emails),
            }
        )

    @classmethod
    def blank(cls) -> AlertRuleForm:
        return cls(
            initial={
                "event": "session_ended",
                "status": ["aborted", "error"],
                "minutes": 30,
                "above_percent": 20,
                "window_minutes": 15,
                "min_calls": 10,
                "above_usd": 5,
            }
        )


class MuteForm(forms.Form):
    mute = forms.ChoiceField(choices=[(k, k) for k in MUTES] + [("off", "unmute")])

    def muted_until(self, now: datetime) -> datetime | None:
        choice = self.cleaned_data["mute"]
        return None if choice == "off" else now + MUTES[choice]
