"""API key authentication with scopes (Authorization: Bearer <key>), over access.keys.

``request.auth`` is the caller's :class:`~sessions_api.access.keys.KeyRecord`.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from sessions_api.access import keys
from sessions_api.access.keys import KeyRecord
from sessions_api.access.throttle import Throttle, client_address
from sessions_api.api import ratelimit
from sessions_api.errors import RateLimited


def _failure_throttle() -> Throttle:
    """Failed authentications (unknown, malformed, revoked keys) per address and minute."""
    return Throttle("api-auth", int(settings.API_AUTH_FAILURE_LIMIT), 60)


class ApiKeyAuth(HttpBearer):
    """Accepts a key that holds ``scope`` (or `admin`, which holds every scope)."""

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> KeyRecord | None:
        throttle = _failure_throttle()
        address = client_address(request)
        # Past the limit even a good key waits: guessing must not learn which one was good.
        wait = throttle.blocked_for(address)
        if wait:
            raise RateLimited(
                limit=throttle.limit,
                window=throttle.window_seconds,
                retry_after=wait,
                message=f"too many failed authentications from this address; retry in {wait} s",
            )
        key = keys.authenticate(token=token)
        if key is None:
            throttle.hit(address)
            return None
        if not key.holds(self.scope):
            raise AuthorizationError(message=f"this API key lacks the {self.scope!r} scope")
        ratelimit.check(key.id)  # RateLimited: a 429 with Retry-After
        return keys.record_use(key=key, now=timezone.now())


INGEST = ApiKeyAuth("ingest")
READ = ApiKeyAuth("read")
WRITE = ApiKeyAuth("write")
ADMIN = ApiKeyAuth("admin")
