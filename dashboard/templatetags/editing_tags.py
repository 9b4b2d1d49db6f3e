"""The session page's editing panel (issue 6): lineage, checkpoints, tags and notes, and the
edit, revert, checkpoint, restore and branch actions for those allowed to use them.

An inclusion tag so the session page's own view stays as it was: the panel reads through the
editing selectors and the roles helper, like a view would.
"""

from __future__ import annotations

from typing import Any

from django import template

from sessions_api.access import roles
from sessions_api.editing import selectors as editing_selectors
from sessions_api.sessions import selectors

register = template.Library()


@register.inclusion_tag("dashboard/partials/session_manage.html", takes_context=True)
def session_manage_panel(context: template.Context, record: Any) -> dict[str, Any]:
    """Lineage, tags, notes and the Edit button (top of the side panels)."""
    return _panel_context(context, record)


@register.inclusion_tag("dashboard/partials/session_history.html", takes_context=True)
def session_history_panel(context: template.Context, record: Any) -> dict[str, Any]:
    """Revert, checkpoint, restore and branch forms, for editors (end of the side panels)."""
    return _panel_context(context, record)


def _panel_context(context: template.Context, record: Any) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    can_edit = user is not None and roles.user_can(user, roles.Capability.EDIT)
    return {
        "record": record,
        "extras": editing_selectors.session_extras(session_id=record.id),
        "versions": list(reversed(selectors.list_versions(session_id=record.id)))
        if can_edit
        else [],
        "can_edit": can_edit,
        "csrf_token": context.get("csrf_token"),
        "next_url": f"/sessions/{record.id}/",
    }
