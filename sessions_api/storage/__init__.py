"""Document body storage behind one small interface; see README.md beside this file."""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from sessions_api.formats.decoding import DecodeLimits, decode_document
from sessions_api.storage.base import BodyKey, Compaction, DocumentStore, StoredBody
from sessions_api.storage.codec import CorruptBody

__all__ = [
    "BodyKey",
    "Compaction",
    "CorruptBody",
    "DocumentStore",
    "StoredBody",
    "decode_stored_body",
    "get_document_store",
    "load_stored_document",
]


@cache
def get_document_store() -> DocumentStore:
    """The configured store, built once per process (Django's storage-handler pattern)."""
    config = getattr(settings, "DOCUMENT_STORE", None) or {}
    backend_path = config.get("BACKEND")
    if not backend_path:
        raise ImproperlyConfigured("settings.DOCUMENT_STORE needs a BACKEND dotted path")
    try:
        backend_class = import_string(backend_path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"DOCUMENT_STORE BACKEND {backend_path!r}: {exc}") from exc
    if not (isinstance(backend_class, type) and issubclass(backend_class, DocumentStore)):
        raise ImproperlyConfigured(f"{backend_path!r} is not a DocumentStore")
    if inspect.isabstract(backend_class):
        raise ImproperlyConfigured(f"{backend_path!r} is abstract; name a concrete backend")
    try:
        return backend_class(**config.get("OPTIONS", {}))
    except TypeError as exc:
        raise ImproperlyConfigured(f"DOCUMENT_STORE OPTIONS for {backend_path!r}: {exc}") from exc


@receiver(setting_changed)
def _forget_store_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    # override_settings(DOCUMENT_STORE=...) in tests must take effect.
    if setting == "DOCUMENT_STORE":
        get_document_store.cache_clear()


def decode_stored_body(body: bytes) -> Any:
    """The JSON value of a stored body (or of one an edit is about to store).

    Stored bodies passed the ingest limits on the way in, and an edited body is checked by
    ingest again before it is stored; they are decoded here with generous limits, so a later
    tightening of the ingest limits never makes history unreadable.
    """
    limits = DecodeLimits(max_bytes=max(len(body), 1), max_depth=10_000, max_nodes=10**9)
    return decode_document(body, limits)


def load_stored_document(*, session_id: str, version: int) -> Any:
    """The JSON value of one stored version; ``BodyNotFound`` when its body is not stored."""
    return decode_stored_body(get_document_store().get(session_id=session_id, version=version))
