"""Helpers for the hostile-document tests: what is stored, and how a rejection must look."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sessions_api.models import (
    DocumentBody,
    DocumentVersion,
    ModelUsage,
    Session,
    SessionError,
    ToolCallRecord,
)

ERROR_KEYS = {"code", "message", "path", "details"}


def count_stored() -> dict[str, int]:
    """Every table an ingest writes to: a rejection must leave all of them unchanged."""
    return {
        model.__name__: model.objects.count()
        for model in (
            Session,
            DocumentVersion,
            DocumentBody,
            ToolCallRecord,
            SessionError,
            ModelUsage,
        )
    }


@pytest.fixture
def stored() -> Callable[[], dict[str, int]]:
    return count_stored


@pytest.fixture
def reject(api) -> Callable[..., dict[str, Any]]:
    """Post a body, assert the exact error answer and that nothing at all was stored."""

    def check(
        body: bytes,
        status: int,
        code: str,
        *,
        path: str | None = None,
        endpoint: str = "/sessions",
        content_type: str = "application/json",
        **params: Any,
    ) -> dict[str, Any]:
        before = count_stored()
        response = api.post(endpoint, body, content_type=content_type, **params)
        assert response.status_code == status, response.content[:600]
        assert response["Content-Type"].startswith("application/json")
        error = response.json()
        assert set(error) <= ERROR_KEYS, error
        assert error["code"] == code, error
        assert isinstance(error["message"], str) and error["message"], error
        if path is not None:
            assert error.get("path") == path, error
        assert count_stored() == before, "a rejected document left rows behind"
        return error

    return check
