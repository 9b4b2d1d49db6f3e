"""API keys: create, revoke, and authenticate a bearer token to a :class:`KeyRecord`.

A key is ``so_<prefix>_<secret>``; only its SHA-256 is stored, and it is shown once. A verified
key is remembered in the default cache for ``API_KEY_CACHE_SECONDS`` (5 s; 0 turns it off),
under the hash of the token: the database lookup was a sixth of the CPU of a whole ingest
request. A revoked, edited or deleted key is forgotten at once (:func:`forget_api_key`, also on
every saved or deleted ApiKey row, see apps.py): in every process when the cache is shared, as
Redis is; with the per-process cache of the embedded setup, the other web processes refuse it
within those seconds. Unknown and wrong keys are never remembered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone

from sessions_api.models import ApiKey

API_SCOPES = ("ingest", "read", "write", "admin")
_TOKEN_PREFIX = "so"
_TOKEN_MAX_CHARS = 200
# last_used_at is advisory: write it at most once a minute per key, not on every request.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class KeyRecord:
    """A live API key as the API sees it (never the secret, never the row)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    key_hash: str
    last_used_at: datetime | None

    def holds(self, scope: str) -> bool:
        """``admin`` holds every scope."""
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class NewApiKey:
    id: int
    name: str
    scopes: list[str]
    key: str  # shown once, never stored


def create_api_key(*, name: str, scopes: list[str]) -> NewApiKey:
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(API_SCOPES)}")
    prefix = secrets.token_hex(6)
    key = f"{_TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey.objects.create(
        name=name, prefix=prefix, key_hash=hash_api_key(key), scopes=sorted(set(scopes))
    )
    return NewApiKey(id=row.id, name=row.name, scopes=row.scopes, key=key)


def revoke_api_key(*, key_id: int, now: datetime | None = None) -> bool:
    revoked = bool(
        ApiKey.objects.filter(id=key_id, revoked_at__isnull=True).update(
            revoked_at=now or timezone.now()
        )
    )
    key_hash = ApiKey.objects.filter(id=key_id).values_list("key_hash", flat=True).first()
    if key_hash is not None:
        forget_api_key(key_hash)
    return revoked


def authenticate(*, token: str) -> KeyRecord | None:
    """The unrevoked key ``token`` is, or None for a malformed, unknown or wrong token."""
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != _TOKEN_PREFIX or len(token) > _TOKEN_MAX_CHARS:
        return None
    digest = hash_api_key(token)
    if _cache_seconds():
        try:
            remembered = cache.get(auth_cache_key(digest))
        except Exception:
            remembered = None  # the cache is down: ask the database
        if isinstance(remembered, KeyRecord):
            return remembered
    row = ApiKey.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    key = _record(row)
    _remember(key)
    return key


def record_use(*, key: KeyRecord, now: datetime) -> KeyRecord:
    """``key`` with its last use at ``now``, written at most once a minute per key."""
    if key.last_used_at is not None and now - key.last_used_at <= _LAST_USED_RESOLUTION:
        return key
    try:
        with transaction.atomic():
            ApiKey.objects.filter(pk=key.id).update(last_used_at=now)
    except DatabaseError:
        return key  # advisory: a read-only database must still serve reads
    used = dataclasses.replace(key, last_used_at=now)
    _remember(used)
    return used


def hash_api_key(key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def auth_cache_key(key_hash: str) -> str:
    """Where a verified key is remembered for a few seconds (v2: it holds a KeyRecord)."""
    return f"apikey:v2:{key_hash}"


def forget_api_key(key_hash: str) -> None:
    """Drop a key from the auth's cache, so a revocation or a scope change applies from the
    next request on (when the cache is down, after at most API_KEY_CACHE_SECONDS)."""
    with contextlib.suppress(Exception):
        cache.delete(auth_cache_key(key_hash))


def _record(row: ApiKey) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(row.scopes),
        key_hash=row.key_hash,
        last_used_at=row.last_used_at,
    )


def _remember(key: KeyRecord) -> None:
    seconds = _cache_seconds()
    if seconds:
        # A cache that cannot store only costs the next request a lookup.
        with contextlib.suppress(Exception):
            cache.set(auth_cache_key(key.key_hash), key, timeout=seconds)


def _cache_seconds() -> float:
    return max(0.0, float(getattr(settings, "API_KEY_CACHE_SECONDS", 5)))
