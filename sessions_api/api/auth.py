"""API key authentication with scopes (Authorization: Bearer <key>)."""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from sessions_api.models import ApiKey
from sessions_api.services import hash_api_key

# last_used_at is advisory: write it at most once a minute per key, not on every request.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuth(HttpBearer):
    """Accepts a key that holds ``scope`` (or `admin`, which holds every scope)."""

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        parts = token.split("_")
        if len(parts) < 3 or parts[0] != "so" or len(token) > 200:
            return None
        key = ApiKey.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
        if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(token)):
            return None
        if self.scope not in key.scopes and "admin" not in key.scopes:
            raise AuthorizationError(message=f"this API key lacks the {self.scope!r} scope")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key


INGEST = ApiKeyAuth("ingest")
READ = ApiKeyAuth("read")
WRITE = ApiKeyAuth("write")
ADMIN = ApiKeyAuth("admin")
