"""Sign-in throttling: wrong passwords are counted per account and per address, and past the
limit sign-in is locked for the rest of the window, whatever the password.

Django's cache (throttle.py), not django-axes: the counters are two cache keys, with no tables,
middleware or extra admin, and they use the same mechanism as the API's failure throttle. The
check sits in the authentication backend, so the dashboard's login, the admin's and any other
``authenticate()`` call are all covered; the login forms ask :func:`locked_for` first only to
say plainly why they refuse.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from sessions_api.access.throttle import Throttle, client_address

logger = logging.getLogger("observatory.access")


def _account_throttle() -> Throttle:
    return Throttle(
        "login-account", int(settings.LOGIN_FAILURE_LIMIT), int(settings.LOGIN_LOCKOUT_SECONDS)
    )


def _address_throttle() -> Throttle:
    return Throttle(
        "login-address",
        int(settings.LOGIN_ADDRESS_FAILURE_LIMIT),
        int(settings.LOGIN_LOCKOUT_SECONDS),
    )


def _account(username: Any) -> str:
    return str(username or "").strip().casefold()[:150]


def locked_for(request: Any, username: Any) -> int:
    """Seconds until sign-in may be tried again for ``username`` from this request's address
    (0: not locked)."""
    return max(
        _account_throttle().blocked_for(_account(username)),
        _address_throttle().blocked_for(client_address(request)) if request is not None else 0,
    )


def record_failure(request: Any, username: Any) -> None:
    account = _account(username)
    count = _account_throttle().hit(account)
    if request is not None:
        _address_throttle().hit(client_address(request))
    if count == int(settings.LOGIN_FAILURE_LIMIT):
        logger.warning("sign-in locked after %d failures", count, extra={"account": account[:60]})


def clear_failures(username: Any) -> None:
    _account_throttle().reset(_account(username))


class ThrottledModelBackend(ModelBackend):
    """Django's model backend behind the sign-in throttle."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        name = username if username is not None else kwargs.get("username")
        if locked_for(request, name):
            # PermissionDenied stops authenticate() at once: no other backend is asked.
            raise PermissionDenied("sign-in is locked for a while after too many failures")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            record_failure(request, name)
        else:
            clear_failures(name)
        return user
