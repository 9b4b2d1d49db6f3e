"""Who may do what, for dashboard users and API keys alike.

- ``read``: roles viewer, editor, admin; key scope ``read``. Every page and GET.
- ``edit``: roles editor, admin; key scope ``write``. State, status, expiry, hold, tags, notes,
  reverts, checkpoints, restores, branches.
- ``admin``: role admin (or a superuser); key scope ``admin``. Deleting, purging and other
  jobs, API keys, prices.

A signed-in user in no group reads (the dashboard has always let any signed-in user read).
``admin`` holds every capability, for users and for keys. Every refusal is recorded in the
audit log (action ``refused``) before the caller answers 403.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone

from sessions_api.editing.audit import record_refusal
from sessions_api.editing.values import Actor
from sessions_api.models import ApiKey

VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"
ROLES = (VIEWER, EDITOR, ADMIN)


class Capability(StrEnum):
    READ = "read"
    EDIT = "edit"
    ADMIN = "admin"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    VIEWER: frozenset({Capability.READ}),
    EDITOR: frozenset({Capability.READ, Capability.EDIT}),
    ADMIN: frozenset({Capability.READ, Capability.EDIT, Capability.ADMIN}),
}
# The API key scope that grants each capability (`admin` grants all of them).
SCOPE_FOR: dict[Capability, str] = {
    Capability.READ: "read",
    Capability.EDIT: "write",
    Capability.ADMIN: "admin",
}
_RANK = {VIEWER: 0, EDITOR: 1, ADMIN: 2}


def user_role(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The strongest role a user holds; None when signed out."""
    if not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return ADMIN
    groups = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))  # type: ignore[attr-defined]
    return max(groups, key=_RANK.__getitem__) if groups else VIEWER


def user_can(user: AbstractBaseUser | AnonymousUser, capability: Capability) -> bool:
    role = user_role(user)
    return role is not None and capability in ROLE_CAPABILITIES[role]


def key_can(scopes: list[str], capability: Capability) -> bool:
    return "admin" in scopes or SCOPE_FOR[capability] in scopes


def actor_for_user(user: AbstractBaseUser | AnonymousUser) -> Actor:
    if not user.is_authenticated:
        return Actor(label="anonymous")
    return Actor(label=f"user:{user.get_username()}", user_id=user.pk)


def actor_for_key(key: Any) -> Actor:
    """An API key (a ``keys.KeyRecord``, what the API's auth puts on ``request.auth``) as an
    actor."""
    return Actor(label=f"key:{key.name} ({key.prefix})")


def require_user(
    request: HttpRequest,
    capability: Capability,
    *,
    attempted: str,
    session_id: str | None = None,
) -> Actor:
    """The request's user as an actor when they hold ``capability``; else the refusal is
    recorded and PermissionDenied raised (a 403)."""
    user = request.user
    if user_can(user, capability):
        return actor_for_user(user)
    message = f"{capability.value} permission required (role: {user_role(user) or 'none'})"
    record_request_refusal(request, attempted=attempted, message=message, session_id=session_id)
    raise PermissionDenied(f"Your role may not do this: {message}.")


def record_request_refusal(
    request: HttpRequest, *, attempted: str, message: str, session_id: str | None = None
) -> None:
    """Record a refused dashboard request once (a 403 handler may see it again)."""
    if getattr(request, "_refusal_recorded", False):
        return
    request._refusal_recorded = True  # type: ignore[attr-defined]
    record_refusal(
        actor=actor_for_user(request.user),
        attempted=attempted,
        message=message,
        now=timezone.now(),
        session_id=session_id,
        details={"method": request.method, "path": request.path[:300]},
    )


def record_key_refusal(
    request: HttpRequest, *, token: str, scope: str, session_id: str | None = None
) -> None:
    """Record an API call refused for a missing scope (the key itself was valid)."""
    parts = token.split("_")
    key = ApiKey.objects.filter(prefix=parts[1]).first() if len(parts) >= 3 else None
    record_refusal(
        actor=actor_for_key(key) if key is not None else Actor(label="key:unknown"),
        attempted=f"{request.method} {request.path[:200]}",
        message=f"the API key lacks the {scope!r} scope",
        now=timezone.now(),
        session_id=session_id,
        details={"method": request.method, "path": request.path[:300], "scope": scope},
    )
