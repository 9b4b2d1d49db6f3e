"""Refusals are DomainErrors with stable codes; the API turns each code into one status."""

from __future__ import annotations

import pytest

from sessions_api import errors
from sessions_api.api.errors import STATUS_BY_CODE, domain_error_answer, status_for


def _fixed_code_classes() -> list[type[errors.DomainError]]:
    found, todo = [], [errors.DomainError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if isinstance(cls.__dict__.get("code"), str) and not cls.__name__.startswith("_"):
            found.append(cls)
    return found


@pytest.mark.parametrize("cls", _fixed_code_classes(), ids=lambda cls: cls.__name__)
def test_every_fixed_code_has_a_status_in_the_table(cls):
    assert cls.code in STATUS_BY_CODE


def test_a_refusal_answers_the_house_shape_with_its_status():
    refusal = errors.InvalidDocument("not an array", path="/messages", code="wrong_type")
    status, body, headers = domain_error_answer(refusal)
    assert (status, headers) == (422, {})
    assert body == {"code": "wrong_type", "message": refusal.message, "path": "/messages"}


def test_a_stale_version_is_a_failed_precondition_with_the_current_etag():
    conflict = errors.VersionConflict(expected_version=2, current_version=3, diff=[])
    status, body, headers = domain_error_answer(conflict)
    assert status == 412 and headers == {"ETag": '"3"'}
    assert body["code"] == "precondition_failed" and body["path"] == "If-Match"
    assert body["details"]["current_etag"] == '"3"'


def test_dependency_failures_say_when_to_retry():
    assert domain_error_answer(errors.StoreUnavailable("connection refused"))[0] == 503
    assert domain_error_answer(errors.StoreUnavailable())[2] == {"Retry-After": "5"}
    limited = errors.RateLimited(limit=10, window=60, retry_after=7)
    assert domain_error_answer(limited)[:3:2] == (429, {"Retry-After": "7"})


def test_internal_detail_stays_out_of_the_answer():
    unavailable = errors.StoreUnavailable("MongoDB is unreachable: 10.0.0.5:27017")
    assert "10.0.0.5" in str(unavailable)
    assert "10.0.0.5" not in repr(domain_error_answer(unavailable)[1])


def test_codes_named_by_no_class_default_to_422():
    assert status_for("missing_field") == 422


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v2/sessions", "/api/"])
def test_a_path_no_operation_serves_answers_json_not_the_dashboard_page(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"code": "not_found", "message": f"no API operation at {path}"}
