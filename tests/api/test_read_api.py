"""GET /sessions (filters, order, keyset pages), one session, its timeline and versions, the
error shape for unknown ids, health and the OpenAPI document."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sessions_api.models import Session
from sessions_api.sessions import selectors

pytestmark = pytest.mark.django_db


def encode_cursor(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def pico(
    external_id: str,
    *,
    status: str,
    flow: str,
    model: str,
    saved: str,
    text: str,
    tool: str | None = None,
    tool_status: str = "success",
    tokens: int | None = None,
) -> bytes:
    history: list[dict[str, Any]] = [
        {"type": "human", "content": text, "id": f"Ask|{saved}|1000000001"},
    ]
    if tool:
        history += [
            {
                "type": "ai",
                "content": "",
                "id": f"Ask|{saved}|1000000002",
                "tool_calls": [{"name": tool, "args": {"q": text}, "id": f"call-{external_id}"}],
            },
            {
                "type": "tool",
                "content": f"{tool} said {tool_status}",
                "id": f"Ask|{saved}|1000000003",
                "tool_call_id": f"call-{external_id}",
                "status": tool_status,
                "name": tool,
            },
        ]
    history.append({"type": "ai", "content": f"About {text}.", "id": f"Ask|{saved}|1000000004"})
    doc: dict[str, Any] = {
        "id": external_id,
        "version": 1,
        "runStatus": status,
        "createdOn": saved,
        "saveOn": saved,
        "flows": [
            {
                "name": flow,
                "memory": [{"nameSpace": "default", "history": history}],
                "steps": [{"name": "Ask", "isActive": True, "state": {}, "modelName": model}],
            }
        ],
        "log": [],
        "error": [],
        "warn": [],
    }
    if tokens is not None:
        doc["tokens"] = {"inputTokens": tokens, "outputTokens": 1, "totalTokens": tokens + 1}
    return json.dumps(doc).encode()


def chat(external_id: str, *, user: str, saved: str, text: str) -> bytes:
    doc = {
        "session_id": external_id,
        "user": user,
        "model": "gpt-4o",
        "created_at": saved,
        "updated_at": saved,
        "messages": [
            {"role": "user", "content": text},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"q": "x"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "found it"},
            {"role": "assistant", "content": "Here."},
        ],
    }
    return json.dumps(doc).encode()


@pytest.fixture
def corpus(api) -> dict[str, str]:
    """Four sessions that differ in every filterable field; returns external id -> id."""
    bodies = {
        "list-a": pico(
            "list-a",
            status="completed",
            flow="Alpha",
            model="gemini-2.0-flash",
            saved="2025-01-10T10:00:00.000Z",
            text="apples",
            tool="lookup",
            tokens=100,
        ),
        "list-b": pico(
            "list-b",
            status="aborted",
            flow="Beta",
            model="gpt-4.1",
            saved="2025-02-10T10:00:00.000Z",
            text="bananas",
            tool="lookup",
            tool_status="error",
            tokens=300,
        ),
        "list-c": pico(
            "list-c",
            status="running",
            flow="Alpha",
            model="gpt-4.1",
            saved="2025-03-10T10:00:00.000Z",
            text="cherries",
            tokens=200,
        ),
        "list-d": chat("list-d", user="ana", saved="2025-04-10T10:00:00.000Z", text="dates"),
    }
    ids = {}
    for external_id, body in bodies.items():
        response = api.post("/sessions", body)
        assert response.status_code == 201, response.content[:400]
        ids[external_id] = response.json()["id"]
    return ids


def listed(api, **params: Any) -> list[str]:
    response = api.get("/sessions", **params)
    assert response.status_code == 200, response.content[:400]
    return [item["external_id"] for item in response.json()["items"]]


# --- filters ------------------------------------------------------------------------------


FILTER_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({}, ["list-d", "list-c", "list-b", "list-a"]),
    ({"status": "completed"}, ["list-a"]),
    ({"status": "completed,aborted"}, ["list-b", "list-a"]),
    ({"status": "unknown"}, ["list-d"]),
    ({"status": "expired"}, []),
    ({"format": "openai_chat"}, ["list-d"]),
    ({"format": "picoflow"}, ["list-c", "list-b", "list-a"]),
    ({"format": "picoflow,openai_chat"}, ["list-d", "list-c", "list-b", "list-a"]),
    ({"agent": "Alpha"}, ["list-c", "list-a"]),
    ({"agent": "alpha"}, []),
    ({"user": "ana"}, ["list-d"]),
    ({"user": "bob"}, []),
    ({"model": "gpt-4.1"}, ["list-c", "list-b"]),
    ({"model": "gemini-2.0-flash"}, ["list-a"]),
    ({"model": "gpt-4o"}, ["list-d"]),
    ({"tool": "lookup"}, ["list-b", "list-a"]),
    ({"tool": "search"}, ["list-d"]),
    ({"tool": "nope"}, []),
    ({"has_errors": "true"}, ["list-b"]),
    ({"has_errors": "false"}, ["list-d", "list-c", "list-a"]),
    ({"since": "2025-02-01T00:00:00Z"}, ["list-d", "list-c", "list-b"]),
    ({"until": "2025-03-01T00:00:00Z"}, ["list-b", "list-a"]),
    ({"since": "2025-02-01T00:00:00Z", "until": "2025-03-01T00:00:00Z"}, ["list-b"]),
    ({"since": "2025-02-10T10:00:00Z", "until": "2025-02-10T10:00:00.001Z"}, ["list-b"]),
    ({"q": "banana"}, ["list-b"]),
    ({"q": "CHERRIES"}, ["list-c"]),
    ({"q": "list-d"}, ["list-d"]),
    ({"q": "nothing like it"}, []),
    ({"agent": "Alpha", "status": "running"}, ["list-c"]),
    ({"tool": "lookup", "has_errors": "false"}, ["list-a"]),
    ({"model": "gpt-4.1", "since": "2025-03-01T00:00:00Z"}, ["list-c"]),
]


def test_each_filter_narrows(api, corpus):
    # One corpus, every case (a fixture per case would rebuild it 30 times).
    for params, expected in FILTER_CASES:
        assert listed(api, **params) == expected, params


def test_list_item_shape(api, corpus):
    item = api.get("/sessions", format="picoflow", limit=1).json()["items"][0]
    assert set(item) >= {"id", "external_id", "format", "version", "summary", "has_errors"}
    assert item["id"] == corpus["list-c"]
    assert item["summary"]["status"] == "running"
    assert item["summary"]["agent"] == "Alpha"


@pytest.mark.parametrize(
    "params",
    [{"since": "yesterday"}, {"has_errors": "maybe"}, {"limit": "ten"}],
    ids=["since", "has_errors", "limit"],
)
def test_malformed_filter_values_are_422(api, corpus, params):
    response = api.get("/sessions", **params)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert body["path"] == next(iter(params))


# --- order --------------------------------------------------------------------------------


ORDER_CASES: list[tuple[str, list[str]]] = [
    ("-updated_at", ["list-d", "list-c", "list-b", "list-a"]),
    ("updated_at", ["list-a", "list-b", "list-c", "list-d"]),
    ("-started_at", ["list-d", "list-c", "list-b", "list-a"]),
    ("started_at", ["list-a", "list-b", "list-c", "list-d"]),
    # No tokens reported sorts below every count (list-d reports none).
    ("total_tokens", ["list-d", "list-a", "list-c", "list-b"]),
    ("-total_tokens", ["list-b", "list-c", "list-a", "list-d"]),
]


def test_order(api, corpus):
    for order, expected in ORDER_CASES:
        assert listed(api, order=order) == expected, order


def test_count_orders_are_sorted(api, corpus):
    for order in (
        "message_count",
        "-message_count",
        "tool_call_count",
        "-tool_error_count",
        "error_count",
    ):
        response = api.get("/sessions", order=order)
        assert response.status_code == 200, order
        field = order.lstrip("-")
        rows = {str(s.id): getattr(s, field) for s in Session.objects.all()}
        values = [rows[item["id"]] for item in response.json()["items"]]
        assert values == sorted(values, reverse=order.startswith("-")), order
        assert len(values) == 4


def test_unknown_order_is_400(api, corpus):
    for order in ("title", "-id", "updated_at; DROP TABLE x", "--updated_at", "", "-"):
        response = api.get("/sessions", order=order)
        assert response.status_code == 400, order
        assert response.json()["code"] == "invalid_query"
        assert response.json()["path"] == "order"


def test_a_status_or_format_no_session_can_have_is_400_naming_the_choices(api, corpus):
    for param, value in (("status", "complete"), ("status", "completed,done"), ("format", "foo")):
        response = api.get("/sessions", **{param: value})
        assert response.status_code == 400, (param, value)
        body = response.json()
        assert body["code"] == "invalid_query"
        assert body["path"] == param
        assert "use one of" in body["message"]
    assert api.get("/sessions", status="completed,running").status_code == 200
    assert api.get("/sessions", format="openai_chat").status_code == 200


# --- keyset pagination --------------------------------------------------------------------


@pytest.fixture
def many(api) -> list[str]:
    """23 sessions in one batch; many share updated_at and message counts (ties)."""
    docs = [
        pico(
            f"page-{n:02d}",
            status="completed",
            flow="Pager",
            model="m",
            saved=f"2025-05-0{1 + n % 3}T00:00:00.000Z",
            text=f"page {n}",
            tool="t" if n % 2 else None,
            tokens=None if n % 4 == 0 else n % 5,
        )
        for n in range(23)
    ]
    body = b'{"documents": [' + b",".join(docs) + b"]}"
    results = api.post("/sessions/batch", body).json()["results"]
    assert all(result["ok"] for result in results)
    return [result["id"] for result in results]


@pytest.mark.parametrize(
    "order", ["-updated_at", "updated_at", "started_at", "-message_count", "total_tokens"]
)
def test_keyset_pages_return_every_session_once(api, many, order):
    for limit in (1, 4, 7):
        _page_through(api, many, order, limit)


def _page_through(api, many: list[str], order: str, limit: int) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        response = api.get("/sessions", order=order, limit=limit, cursor=cursor)
        assert response.status_code == 200, response.content[:300]
        page = response.json()
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 100, "pagination does not end"
    assert len(seen) == len(set(seen)) == len(many)
    assert set(seen) == set(many)
    assert pages == -(-len(many) // limit) or pages == -(-len(many) // limit) + 1
    # Pages concatenate to the one-page answer: the order is total and stable.
    assert seen == [
        item["id"] for item in api.get("/sessions", order=order, limit=200).json()["items"]
    ]


def test_keyset_pages_with_a_filter(api, many):
    seen, cursor = [], None
    while True:
        page = api.get("/sessions", tool="t", limit=3, cursor=cursor).json()
        seen += [item["external_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"page-{n:02d}" for n in range(23) if n % 2]


def test_a_session_updated_between_pages_is_not_duplicated_before_it(api, many):
    """Keyset paging survives writes: later pages never repeat what an earlier page showed."""
    first = api.get("/sessions", order="updated_at", limit=5).json()
    # Move one unseen session to the end of the order.
    Session.objects.filter(id=many[-1]).update(updated_at=datetime(2030, 1, 1, tzinfo=UTC))
    seen = [item["id"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/sessions", order="updated_at", limit=5, cursor=cursor).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == len(many)


def test_limit_is_capped_at_200(api, corpus):
    now = datetime(2024, 1, 1, tzinfo=UTC)
    Session.objects.bulk_create(
        [
            Session(
                format="picoflow",
                external_id=f"bulk-{n}",
                status="completed",
                started_at=now,
                updated_at=now - timedelta(seconds=n),
                first_received_at=now,
                last_received_at=now,
            )
            for n in range(205)
        ]
    )
    assert selectors.MAX_PAGE_SIZE == 200
    page = api.get("/sessions", limit=1000).json()
    assert len(page["items"]) == 200
    assert page["next_cursor"] is not None
    rest = api.get("/sessions", limit=1000, cursor=page["next_cursor"]).json()
    assert len(rest["items"]) == 209 - 200 and rest["next_cursor"] is None
    assert len(api.get("/sessions", limit=0).json()["items"]) == 1
    assert len(api.get("/sessions", limit=-5).json()["items"]) == 1


BAD_LIST_CURSORS: list[str] = [
    "!!!",
    "not base64 at all",
    "e30",  # {}
    encode_cursor(["-updated_at"]),
    encode_cursor(["updated_at", "2025-01-01T00:00:00+00:00", str(uuid.uuid4())]),
    encode_cursor(["-updated_at", 5, str(uuid.uuid4())]),
    encode_cursor(["-updated_at", "yesterday", str(uuid.uuid4())]),
    encode_cursor(["-updated_at", "2025-01-01T00:00:00+00:00", "not-a-uuid"]),
    encode_cursor(["-updated_at", "2025-01-01T00:00:00+00:00", 7]),
    encode_cursor(["-updated_at", "2025-01-01T00:00:00+00:00", None]),
    encode_cursor(["-updated_at", "2025-01-01T00:00:00+00:00", {"$gt": ""}]),
    encode_cursor(["-updated_at", "2025-01-01T00:00:00", str(uuid.uuid4())]),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "x" * 5000,
    "é",
]


def test_malformed_cursor_is_400(api, corpus):
    for cursor in BAD_LIST_CURSORS:
        response = api.get("/sessions", cursor=cursor)
        assert response.status_code == 400, (cursor, response.content[:300])
        assert response.json()["code"] == "invalid_query"
        assert response.json()["path"] == "cursor"


def test_count_order_cursor_with_a_non_integer_is_400(api, corpus):
    bad = encode_cursor(["message_count", "3", str(uuid.uuid4())])
    response = api.get("/sessions", order="message_count", cursor=bad)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_query"


# --- operator injection -------------------------------------------------------------------


# None: refused as a value no session can have (a status that is no status), not run.
INJECTIONS: list[tuple[str, list[str] | None]] = [
    ("status[$ne]=x", ["list-d", "list-c", "list-b", "list-a"]),  # unknown parameter
    ("status=$ne", None),
    ("status=%7B%22%24ne%22%3A%22x%22%7D", None),  # status={"$ne":"x"}
    ("agent[$gt]=", ["list-d", "list-c", "list-b", "list-a"]),
    ("agent=%7B%22%24gt%22%3A%22%22%7D", []),
    ("q=%7B%22%24where%22%3A%22sleep(100)%22%7D", []),
    ("q=.*", []),
    ("q[$regex]=.*", ["list-d", "list-c", "list-b", "list-a"]),
    ("tool=%24where", []),
    ("model[$in][]=gpt-4.1", ["list-d", "list-c", "list-b", "list-a"]),
    ("user=ana&user[$ne]=ana", ["list-d"]),
    ("q=%25", []),  # a literal percent, not a LIKE wildcard
    # A literal underscore, not a LIKE wildcard: only list-d has one (its tool call id, call_1).
    ("q=_", ["list-d"]),
]


def test_operator_injection_is_literal(api, corpus):
    for query, expected in INJECTIONS:
        response = api.client.get(
            f"/api/v1/sessions?{query}", headers={"Authorization": f"Bearer {api.key}"}
        )
        if expected is None:
            assert response.status_code == 400, (query, response.content[:300])
            assert response.json()["path"] == "status"
            continue
        assert response.status_code == 200, (query, response.content[:300])
        assert [item["external_id"] for item in response.json()["items"]] == expected, query


def test_nul_in_a_parameter_is_400_not_a_database_error(api, corpus):
    """PostgreSQL refuses NUL in a query parameter; nothing stored can contain one."""
    for param in ("status", "format", "agent", "user", "model", "tool", "q", "order", "cursor"):
        response = api.client.get(
            f"/api/v1/sessions?{param}=a%00b", headers={"Authorization": f"Bearer {api.key}"}
        )
        assert response.status_code == 400, (param, response.content[:300])
        assert response.json()["code"] == "invalid_query"
        assert response.json()["path"] == param


def test_has_errors_operator_is_a_validation_error_not_a_500(api, corpus):
    response = api.client.get(
        "/api/v1/sessions?has_errors=%7B%22%24ne%22%3Atrue%7D",
        headers={"Authorization": f"Bearer {api.key}"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


# --- one session --------------------------------------------------------------------------


def test_detail_has_steps_and_flows(api, seed_document):
    session_id = api.post("/sessions", seed_document).json()["id"]
    response = api.get(f"/sessions/{session_id}")
    assert response.status_code == 200
    detail = response.json()
    assert detail["id"] == session_id
    assert detail["external_id"] == "6917ad4ac3d31db001ec2393"
    assert (detail["format"], detail["format_variant"], detail["version"]) == (
        "picoflow",
        "v1-ext",
        1,
    )
    steps = [
        (step["name"], step["active"], step["state"], step["model"]) for step in detail["steps"]
    ]
    assert steps == [
        ("HelloStep", False, {"name": "Jane Smith"}, "gemini-2.0-flash"),
        ("EndStep", True, {}, "gemini-2.5-flash"),
    ]
    assert [flow["name"] for flow in detail["flows"]] == ["TutorialFlow"]
    assert detail["flows"][0]["namespaces"] == ["default"]
    assert detail["summary"]["message_count"] == 12
    assert detail["metadata"]["expiry_basis"] == "saveOn + expireAfter"
    assert detail["warnings"] == []
    assert detail["detected_by"].startswith("rule 1")


def test_timeline_pages_to_the_end_in_order(api, seed_document):
    session_id = api.post("/sessions", seed_document).json()["id"]
    whole = api.get(f"/sessions/{session_id}/timeline", limit=500).json()
    assert whole["next_cursor"] is None
    assert whole["total"] == len(whole["events"])

    events: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        response = api.get(f"/sessions/{session_id}/timeline", limit=4, cursor=cursor)
        assert response.status_code == 200
        page = response.json()
        assert page["session_id"] == session_id and page["version"] == 1
        assert page["total"] == whole["total"]
        assert len(page["events"]) <= 4
        events += page["events"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 50
    assert events == whole["events"]
    assert [event["index"] for event in events] == list(range(whole["total"]))
    assert pages == -(-whole["total"] // 4)

    messages = [event for event in events if event["kind"] == "message"]
    seqs = [event["seq"] for event in events if event["seq"] is not None]
    assert seqs == sorted(seqs)
    assert messages[0]["role"] == "system"

    calls = [event for event in events if event["kind"] == "tool_call"]
    assert len(calls) == 2
    for call in calls:
        assert call["result"] is not None
        assert call["result_seq"] is not None and call["result_seq"] > call["seq"]
        assert call["status"] in ("success", "error")
        assert call["status_source"] == "explicit"
        assert call["heuristic"] is False
    assert sorted(call["status"] for call in calls) == ["error", "success"]
    # A paired result is shown inside its call, not again as a loose event.
    assert not [event for event in events if event["kind"] == "tool_result"]


def test_timeline_cursor_stays_on_its_version(api, seed_document):
    session_id = api.post("/sessions", seed_document).json()["id"]
    first = api.get(f"/sessions/{session_id}/timeline", limit=3).json()
    changed = seed_document.replace(b'"content": "Hi"', b'"content": "Hi there"', 1)
    assert changed != seed_document
    assert api.post("/sessions", changed).json()["version"] == 2
    second = api.get(f"/sessions/{session_id}/timeline", limit=3, cursor=first["next_cursor"])
    assert second.json()["version"] == 1
    latest = api.get(f"/sessions/{session_id}/timeline", limit=500).json()
    assert latest["version"] == 2
    assert "Hi there" in [event.get("text") for event in latest["events"]]
    old = api.get(f"/sessions/{session_id}/timeline", limit=500, version=1).json()
    assert "Hi there" not in [event.get("text") for event in old["events"]]
    assert api.get(f"/sessions/{session_id}/timeline", version=3).status_code == 404


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        encode_cursor([1]),
        encode_cursor(["1", 2]),
        encode_cursor({"a": 1}),
        encode_cursor([9, 0]),
        encode_cursor([0, 0]),
        encode_cursor([1, -5]),
        encode_cursor([True, 0]),
    ],
    ids=[
        "punctuation",
        "short",
        "strings",
        "object",
        "unknown-version",
        "version-0",
        "negative-start",
        "bool",
    ],
)
def test_malformed_timeline_cursor_is_400(api, seed_document, cursor):
    session_id = api.post("/sessions", seed_document).json()["id"]
    response = api.get(f"/sessions/{session_id}/timeline", cursor=cursor)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "invalid_query"
    assert response.json()["path"] == "cursor"


def test_timeline_of_a_version_whose_body_is_gone_is_404(api, seed_document):
    """A pruned body (prune_versions, or a body the store lost) is a 404, not a 500."""
    from sessions_api.storage import get_document_store

    session_id = api.post("/sessions", seed_document).json()["id"]
    api.post("/sessions", seed_document + b" ")
    get_document_store().delete_versions(session_id=session_id, versions=[1])
    for response in (
        api.get(f"/sessions/{session_id}/timeline", version=1),
        api.get(f"/sessions/{session_id}/raw", version=1),
    ):
        assert response.status_code == 404, response.content[:300]
        assert response.json()["code"] == "not_found"
    assert api.get(f"/sessions/{session_id}/timeline").status_code == 200


def test_timeline_limit_is_capped(api, seed_document):
    session_id = api.post("/sessions", seed_document).json()["id"]
    page = api.get(f"/sessions/{session_id}/timeline", limit=10_000).json()
    assert len(page["events"]) == page["total"] <= selectors.MAX_TIMELINE_PAGE
    assert len(api.get(f"/sessions/{session_id}/timeline", limit=0).json()["events"]) == 1


def test_versions_list(api, seed_document):
    session_id = api.post("/sessions", seed_document).json()["id"]
    api.post("/sessions", seed_document + b" ")
    body = api.get(f"/sessions/{session_id}/versions").json()
    assert body["session_id"] == session_id
    assert [(v["number"], v["size_bytes"]) for v in body["versions"]] == [
        (1, len(seed_document)),
        (2, len(seed_document) + 1),
    ]
    assert all(len(v["sha256"]) == 64 and v["received_at"] for v in body["versions"])
    # How the store keeps each: v1 a compressed snapshot, v2 (one byte more) a delta of it.
    first, second = body["versions"]
    assert (first["stored_encoding"], first["stored_base_version"]) == ("zstd", None)
    assert (second["stored_encoding"], second["stored_base_version"]) == ("delta", 1)
    assert 0 < second["stored_bytes"] < first["stored_bytes"] < len(seed_document)


# --- unknown ids --------------------------------------------------------------------------


def test_unknown_ids_are_404_with_the_error_shape(api, seed_document):
    api.post("/sessions", seed_document)
    # The seed's own id (a Mongo ObjectId) names it; one digit off names nothing.
    unknown = [str(uuid.uuid4()), "not-a-uuid", "1", "x" * 300, "%24ne", "6917ad4ac3d31db001ec2394"]
    for session_id in unknown:
        for suffix in ("", "/raw", "/timeline", "/versions"):
            response = api.get(f"/sessions/{session_id}{suffix}")
            assert response.status_code == 404, (session_id, suffix)
            body = response.json()
            assert body["code"] == "not_found"
            assert isinstance(body["message"], str) and body["message"]
            assert set(body) <= {"code", "message", "path", "details"}


@pytest.mark.parametrize("session_id", ["5f0e8a52-3c1d-4b7e-9a61-0d2f4c8b7e19", "not-a-uuid"])
def test_delete_unknown_is_404(api, session_id):
    response = api.delete(f"/sessions/{session_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_unknown_api_path_is_404_json(api):
    response = api.get("/nothing-here")
    assert response.status_code == 404


# --- health and OpenAPI -------------------------------------------------------------------


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_checks_database_store_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) >= {"database", "store", "broker"}
    assert all(check["status"] == "ok" for check in body["checks"].values())


DESIGN_OPERATIONS = {
    ("post", "/api/v1/sessions"),
    ("post", "/api/v1/sessions/batch"),
    ("get", "/api/v1/sessions"),
    ("get", "/api/v1/sessions/{}"),
    ("get", "/api/v1/sessions/{}/raw"),
    ("get", "/api/v1/sessions/{}/timeline"),
    ("get", "/api/v1/sessions/{}/versions"),
    ("delete", "/api/v1/sessions/{}"),
}


def test_openapi_lists_every_design_operation(client):
    import re

    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    operations = {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert operations >= DESIGN_OPERATIONS
    list_params = {p["name"] for p in spec["paths"]["/api/v1/sessions"]["get"]["parameters"]}
    assert {
        "status",
        "format",
        "agent",
        "user",
        "model",
        "tool",
        "has_errors",
        "since",
        "until",
        "q",
        "order",
        "cursor",
        "limit",
    } <= list_params
    ingest_params = {p["name"] for p in spec["paths"]["/api/v1/sessions"]["post"]["parameters"]}
    assert {"format", "external_id"} <= ingest_params
    # Every operation declares bearer auth.
    assert spec["components"]["securitySchemes"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "delete"}:
                assert operation.get("security"), (method, path)


def test_docs_page_is_served(client):
    assert client.get("/api/v1/docs").status_code == 200
