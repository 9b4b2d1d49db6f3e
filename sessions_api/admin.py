"""The Django admin for admins (role ``admin`` or superuser, and ``is_staff`` to sign in).

Sessions are edited here through the same editing services as the dashboard (reason and
expected version required, new version in the framework's shape, audited); nothing is saved
with a plain ``Model.save()``. The audit log and checkpoints are read-only; API keys can be
revoked. Deleting sessions is done on the dashboard (it deletes the bodies too). Alert rules
are saved through the same rules service as the API and the Alerts page; their notifications
and delivery attempts are read-only.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from sessions_api.access import keys, roles
from sessions_api.editing import annotations, document
from sessions_api.editing import selectors as editing_selectors
from sessions_api.editing.audit import MAX_REASON_CHARS
from sessions_api.editing.values import EditRequest
from sessions_api.errors import (
    EditError,
    InvalidAlertRule,
    InvalidDocument,
    NotEditable,
    NotFound,
    RejectedDocument,
    RevisionConflict,
)
from sessions_api.formats.decoding import decode_document
from sessions_api.lifecycle.alerts import rules as alert_rules
from sessions_api.models import (
    AlertDeliveryAttempt,
    AlertNotification,
    AlertRule,
    ApiKey,
    AuditEntry,
    Checkpoint,
    Session,
)


def _is_admin(request: HttpRequest) -> bool:
    return roles.user_can(request.user, roles.Capability.ADMIN)


class AdminOnly(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SessionEditForm(forms.ModelForm):
    expected_version = forms.IntegerField(widget=forms.HiddenInput)
    expected_index_revision = forms.IntegerField(widget=forms.HiddenInput, required=False)
    reason = forms.CharField(
        max_length=MAX_REASON_CHARS, help_text="Required: shown in the audit log."
    )
    hold = forms.BooleanField(required=False, label="On hold")
    tags_text = forms.CharField(required=False, label="Tags", help_text="Comma separated.")
    notes_text = forms.CharField(required=False, label="Notes", widget=forms.Textarea)
    part = forms.ChoiceField(label="Part to edit", required=False)
    value = forms.CharField(
        required=False,
        label="New value (JSON)",
        widget=forms.Textarea(
            attrs={"rows": 16, "class": "vLargeTextField", "spellcheck": "false"}
        ),
        help_text="Leave as is to keep the part unchanged.",
    )

    class Meta:
        model = Session
        fields: list[str] = []

    requested_part: str | None = None  # ?part= on the change page (SessionAdmin.get_form)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        row = self.instance
        view = (
            editing_selectors.editor_view(session_id=str(row.pk), part=self.requested_part)
            if row.pk
            else None
        )
        self.fields["part"].choices = [(p.key, p.label) for p in (view.parts if view else [])]
        if view is not None:
            self.fields["part"].help_text = format_html(
                "The value below is this part. To edit another, open it: {}",
                format_html_join(
                    ", ", '<a href="?part={}">{}</a>', ((p.key, p.label) for p in view.parts)
                ),
            )
        if view is not None:
            # Set even when bound: changed_data compares against these.
            self.initial.update(
                expected_version=view.version,
                expected_index_revision=row.index_revision,
                hold=row.on_hold,
                tags_text=", ".join(row.tags or []),
                notes_text=row.notes,
                part=view.part,
                value=json.dumps(view.value, indent=2, ensure_ascii=False),
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("expected_version") not in (None, self.instance.latest_version):
            raise forms.ValidationError(
                f"The session changed meanwhile (now version {self.instance.latest_version}); "
                "reload the page and apply your change again."
            )
        if data.get("expected_index_revision") not in (None, self.instance.index_revision):
            raise forms.ValidationError(
                "The session's hold, tags or notes changed meanwhile; "
                "reload the page and apply your change again."
            )
        if "value" in self.changed_data:
            try:
                data["parsed_value"] = decode_document((data.get("value") or "").encode())
            except RejectedDocument as exc:
                self.add_error("value", f"Not valid JSON: {exc.message}")
        return data


@admin.register(Session)
class SessionAdmin(AdminOnly):
    form = SessionEditForm
    list_display = ("external_id", "format", "status", "latest_version", "on_hold", "updated_at")
    list_filter = ("format", "status", "on_hold")
    search_fields = ("external_id",)
    ordering = ("-updated_at",)
    fieldsets = (
        (None, {"fields": ("reason", "expected_version", "expected_index_revision")}),
        ("Index", {"fields": ("hold", "tags_text", "notes_text")}),
        ("Document", {"fields": ("part", "value")}),
        (
            "Read only",
            {
                "fields": (
                    "id",
                    "format",
                    "external_id",
                    "status",
                    "latest_version",
                    "expires_at",
                    "parent_session",
                    "branched_from_version",
                )
            },
        ),
    )
    readonly_fields = (
        "id",
        "format",
        "external_id",
        "status",
        "latest_version",
        "expires_at",
        "parent_session",
        "branched_from_version",
    )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_admin(request)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"requested_part": request.GET.get("part")})

    def save_model(self, request: HttpRequest, obj: Session, form: Any, change: bool) -> None:
        """Every change goes through an editing service (never ``obj.save()``)."""
        data = form.cleaned_data
        edit = EditRequest(
            session_id=str(obj.pk),
            actor=roles.actor_for_user(request.user),
            reason=data["reason"],
            now=timezone.now(),
            expected_version=data["expected_version"],
            expected_index_revision=data.get("expected_index_revision"),
        )
        try:
            # Each index save moves the revision on: the next one starts from there.
            if "hold" in form.changed_data:
                done = document.set_hold(edit=edit, on_hold=data["hold"])
                edit = replace(edit, expected_index_revision=done.index_revision)
            if "tags_text" in form.changed_data:
                done = annotations.set_tags(edit=edit, tags=(data["tags_text"] or "").split(","))
                edit = replace(edit, expected_index_revision=done.index_revision)
            if "notes_text" in form.changed_data:
                annotations.set_notes(edit=edit, notes=data["notes_text"] or "")
            if "parsed_value" in data:
                if data["part"] == editing_selectors.DOCUMENT_PART:
                    body = (data["value"] or "").encode("utf-8")
                    document.save_document(edit=edit, body=body)
                else:
                    document.edit_state(edit=edit, part=data["part"], value=data["parsed_value"])
        except (
            EditError,
            NotFound,
            NotEditable,
            InvalidDocument,
            RejectedDocument,
            RevisionConflict,
        ) as exc:
            request._edit_failed = True  # type: ignore[attr-defined]
            self.message_user(request, f"Not saved: {exc}", level=messages.ERROR)

    def response_change(self, request: HttpRequest, obj: Session) -> HttpResponse:
        if getattr(request, "_edit_failed", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return None  # the audit log records the change, with its reason and diff


@admin.register(AuditEntry)
class AuditEntryAdmin(AdminOnly):
    list_display = (
        "created_at",
        "actor_label",
        "action",
        "session_external_id",
        "from_version",
        "to_version",
        "reason",
    )
    list_filter = ("action",)
    search_fields = ("actor_label", "session_external_id", "session_key", "reason")
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEntry._meta.fields]


@admin.register(Checkpoint)
class CheckpointAdmin(AdminOnly):
    list_display = ("name", "session", "version", "created_by_label", "created_at")
    search_fields = ("name", "session__external_id")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Checkpoint._meta.fields]


@admin.register(ApiKey)
class ApiKeyAdmin(AdminOnly):
    list_display = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    actions = ("revoke_keys",)
    exclude = ("key_hash",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in ApiKey._meta.fields if f.name != "key_hash"]

    @admin.action(description="Revoke the selected API keys")
    def revoke_keys(self, request: HttpRequest, queryset: Any) -> None:
        revoked = sum(keys.revoke_api_key(key_id=key.id, now=timezone.now()) for key in queryset)
        self.message_user(request, f"Revoked {revoked} key(s).")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Needed for the revoke action; every field stays read-only.
        return _is_admin(request)


# --- alerts -------------------------------------------------------------------------------------


class AlertRuleAdminForm(forms.ModelForm):
    # The rules service checks the URL (http(s), ALERT_WEBHOOK_ALLOWED_HOSTS).
    webhook_url = forms.CharField(required=False, max_length=2000)

    class Meta:
        model = AlertRule
        fields = (
            "name",
            "event",
            "params",
            "filters",
            "webhook_url",
            "webhook_secret",
            "emails",
            "muted_until",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            event = data.get("event") or ""
            data["params"] = alert_rules.clean_params(event, data.get("params"))
            data["filters"] = alert_rules.clean_filters(data.get("filters"))
            data["webhook_url"] = alert_rules.clean_webhook_url(data.get("webhook_url"))
            data["emails"] = alert_rules.clean_emails(data.get("emails"))
        except InvalidAlertRule as exc:
            raise forms.ValidationError(exc.message) from None
        if not data["webhook_url"] and not data["emails"]:
            raise forms.ValidationError("A rule needs a webhook URL or email addresses.")
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(AdminOnly):
    form = AlertRuleAdminForm
    list_display = ("name", "event", "webhook_url", "muted_until", "updated_at")
    list_filter = ("event",)
    search_fields = ("name", "webhook_url")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _is_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_admin(request)

    def save_model(self, request: HttpRequest, obj: AlertRule, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data.get(name) for name in AlertRuleAdminForm.Meta.fields}
        if change:
            saved = alert_rules.update_rule(rule_id=obj.pk, **fields)
        else:
            saved = alert_rules.create_rule(**fields)
        obj.pk = saved.id
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: AlertRule) -> None:
        alert_rules.delete_rule(rule_id=obj.pk)


class AlertDeliveryAttemptInline(admin.TabularInline):
    model = AlertDeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "channel", "ok", "http_status", "error", "duration_ms")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AlertNotification)
class AlertNotificationAdmin(AdminOnly):
    list_display = ("created_at", "rule", "kind", "status", "attempts", "session_external_id")
    list_filter = ("status", "kind", "rule")
    search_fields = ("session_external_id", "text")
    inlines = (AlertDeliveryAttemptInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AlertNotification._meta.fields]
