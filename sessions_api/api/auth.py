"""API key authentication with scopes (Authorization: Bearer <key>)."""

from __future__ import annotations

import contextlib
import hmac
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from sessions_api.api import ratelimit
from sessions_api.ingest.services import api_key_cache_key, hash_api_key
from sessions_api.models import ApiKey

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
        key = _live_key(token, prefix=parts[1])
        if key is None:
            return None
        if self.scope not in key.scopes and "admin" not in key.scopes:
            raise AuthorizationError(message=f"this API key lacks the {self.scope!r} scope")
        ratelimit.check(key.pk)  # RateLimited: a 429 with Retry-After
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
            try:
                with transaction.atomic():
                    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            except DatabaseError:
                pass  # advisory: a read-only database must still serve reads
            else:
                key.last_used_at = now
                _remember(key)
        return key


def _live_key(token: str, *, prefix: str) -> ApiKey | None:
    """The unrevoked key ``token`` is, or None.

    A verified key is remembered in the default cache for ``API_KEY_CACHE_SECONDS`` (5 s; 0
    turns it off), under the hash of the token: the database lookup was a sixth of the CPU of
    a whole ingest request. A revoked, edited or deleted key is forgotten at once
    (``services.forget_api_key``, also on every saved ApiKey row): in every process when the
    cache is shared, as Redis is; with the per-process cache of the embedded setup, the other
    web processes refuse it within those seconds. Unknown and wrong keys are never remembered.
    """
    digest = hash_api_key(token)
    if _cache_seconds():
        try:
            key = cache.get(api_key_cache_key(digest))
        except Exception:
            key = None  # the cache is down: ask the database
        if key is not None:
            return key
    key = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        return None
    _remember(key)
    return key


def _remember(key: ApiKey) -> None:
    seconds = _cache_seconds()
    if seconds:
        # A cache that cannot store only costs the next request a lookup.
        with contextlib.suppress(Exception):
            cache.set(api_key_cache_key(key.key_hash), key, timeout=seconds)


def _cache_seconds() -> float:
    return max(0.0, float(getattr(settings, "API_KEY_CACHE_SECONDS", 5)))


INGEST = ApiKeyAuth("ingest")
READ = ApiKeyAuth("read")
WRITE = ApiKeyAuth("write")
ADMIN = ApiKeyAuth("admin")
