"""What several dashboard views share: who counts as an admin, and links that replace part of
the current query string."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, QueryDict

ADMIN_GROUP = "admin"


def is_dashboard_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Superusers and members of the `admin` group may change the price table and run jobs."""
    if not user.is_authenticated:
        return False
    return bool(user.is_superuser or user.groups.filter(name=ADMIN_GROUP).exists())


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string minus some parameters (for links that replace them)."""
    params: QueryDict = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()
