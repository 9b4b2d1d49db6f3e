"""get_document_store(): the backend named in settings.DOCUMENT_STORE, built once, or a clear
ImproperlyConfigured (Django's storage-handler pattern)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils.module_loading import import_string

from sessions_api.storage import get_document_store
from sessions_api.storage.mongo import MongoDocumentStore
from sessions_api.storage.orm import OrmDocumentStore

ORM = {"BACKEND": "sessions_api.storage.orm.OrmDocumentStore", "OPTIONS": {}}
# Nothing listens on port 1: building the store must not need a server.
MONGO = {
    "BACKEND": "sessions_api.storage.mongo.MongoDocumentStore",
    "OPTIONS": {"url": "mongodb://127.0.0.1:1/", "database": "observatory_settings_test"},
}


@pytest.fixture(autouse=True)
def fresh_store_cache() -> Iterator[None]:
    # The store is cached per process; never leak one built from overridden settings.
    get_document_store.cache_clear()
    yield
    get_document_store.cache_clear()


def test_the_configured_backend_is_built() -> None:
    backend = import_string(settings.DOCUMENT_STORE["BACKEND"])

    assert isinstance(get_document_store(), backend)


@override_settings(DOCUMENT_STORE=ORM)
def test_the_orm_backend_is_built_once_per_process() -> None:
    store = get_document_store()

    assert isinstance(store, OrmDocumentStore)
    assert get_document_store() is store


@override_settings(DOCUMENT_STORE=MONGO)
def test_the_mongo_backend_is_built_from_its_options_without_a_server() -> None:
    store = get_document_store()

    assert isinstance(store, MongoDocumentStore)
    assert store.transactional_with_index is False


@pytest.mark.parametrize("config", [None, {}, {"OPTIONS": {}}, {"BACKEND": ""}])
def test_a_missing_backend_is_improperly_configured(config: dict | None) -> None:
    with override_settings(DOCUMENT_STORE=config), pytest.raises(ImproperlyConfigured):
        get_document_store()


@pytest.mark.parametrize(
    "path",
    [
        "sessions_api.storage.no_such_module.Store",
        "sessions_api.storage.orm.NoSuchStore",
        "not_a_dotted_path",
    ],
)
def test_a_backend_path_that_does_not_import_is_improperly_configured(path: str) -> None:
    with (
        override_settings(DOCUMENT_STORE={"BACKEND": path}),
        pytest.raises(ImproperlyConfigured, match="BACKEND"),
    ):
        get_document_store()


@pytest.mark.parametrize(
    "path",
    [
        "sessions_api.errors.BodyNotFound",  # a class, but not a DocumentStore
        "sessions_api.storage.get_document_store",  # not a class at all
        "django.core.files.storage.FileSystemStorage",  # another kind of storage
    ],
)
def test_a_backend_that_is_not_a_document_store_is_improperly_configured(path: str) -> None:
    with (
        override_settings(DOCUMENT_STORE={"BACKEND": path}),
        pytest.raises(ImproperlyConfigured, match="is not a DocumentStore"),
    ):
        get_document_store()
