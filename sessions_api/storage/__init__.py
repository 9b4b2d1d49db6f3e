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

from sessions_api.storage.base import DocumentStore

__all__ = ["DocumentStore", "get_document_store"]


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
