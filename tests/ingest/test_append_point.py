"""A save read from the append point of its session's latest version gives what the whole path
gives: the same stored rows, summary and timeline, the same append point for the new version,
the same refusal (code and message) for a document the whole decode refuses, and bodies that
read back byte for byte, stored without reading the version before."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import mongomock
import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions_api.errors import DomainError
from sessions_api.formats import parse_document
from sessions_api.formats.decoding import decode_document_laid_out
from sessions_api.formats.growing import GROWING_FORMATS
from sessions_api.ingest import appending, services
from sessions_api.models import DocumentVersion, Session
from sessions_api.storage import get_document_store
from tests.ingest.test_incremental_properties import T0, assert_matches_whole_parse, turn


@pytest.fixture(autouse=True)
def every_size_appends(monkeypatch):
    """Small documents read from an append point too (in production they take the whole path,
    which is cheaper for them)."""
    monkeypatch.setattr(appending, "MIN_BYTES", 0)


@pytest.fixture
def appended(monkeypatch):
    """How many saves were read from an append point, and how many tried to."""
    count = {"tried": 0, "read": 0}
    real = appending.continue_from

    def counting(*args, **kwargs):
        result = real(*args, **kwargs)
        count["tried"] += 1
        count["read"] += result is not None
        return result

    monkeypatch.setattr(appending, "continue_from", counting)
    return count


def chat_body(
    key: str,
    messages: list[dict[str, Any]],
    *,
    after: dict[str, Any] | None = None,
    indent: int | None = None,
    ascii_only: bool = True,
) -> bytes:
    doc = {"id": key, "model": "gpt-4.1", "messages": messages, **(after or {})}
    return json.dumps(doc, indent=indent, ensure_ascii=ascii_only).encode()


def save(body: bytes, minute: int, **kwargs: Any):
    return services.ingest_document(body=body, now=T0 + timedelta(minutes=minute), **kwargs)


def whole_point(body: bytes, *, detected: bool = True) -> dict[str, Any] | None:
    """The append point the whole path records for ``body`` (which knows no message offsets)."""
    laid_out = decode_document_laid_out(body, services.decode_limits())
    point = appending.digest_and_point(
        body, laid_out, GROWING_FORMATS["openai_chat"], detected=detected
    )[1]
    return None if point is None else json.loads(point)


def prepare_whole(body: bytes) -> None:
    services._prepare_document(
        body=body, format_id=None, external_id=None, received_at=T0, incremental_allowed=False
    )


def stored_point(session_id: str, body: bytes) -> dict[str, Any] | None:
    """The latest version's append point, its message offsets checked against ``body`` (each
    starts the message it names) and then left out, as the whole path cannot know them."""
    row = Session.objects.get(id=session_id)
    text = DocumentVersion.objects.get(session=row, number=row.latest_version).append_point
    if text is None:
        return None
    point = json.loads(text)
    doc = json.loads(body)
    messages = doc if isinstance(doc, list) else doc["messages"]
    first = point["messages"] - len(point["recent"])
    for index, offset in enumerate(point["recent"], start=first):
        value, _ = json.JSONDecoder().raw_decode(body[offset:].decode())
        assert value == messages[index], f"message {index} at byte {offset}"
    return {**point, "recent": []}


def assert_reads_back(session_id: str, bodies: list[bytes]) -> None:
    store = get_document_store()
    for number, body in enumerate(bodies, start=1):
        assert store.get(session_id=session_id, version=number) == body, f"v{number}"


@pytest.mark.django_db
def test_a_growing_chat_is_read_from_its_append_points_and_matches_the_whole_path(appended):
    messages: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}]
    bodies = []
    for number in range(8):
        messages += turn(number, calls=number % 3, failing=number % 4 == 1)
        body = chat_body("point-1", messages, after={"usage": {"prompt_tokens": number}})
        outcome = save(body, number)
        bodies.append(body)
        assert_matches_whole_parse(outcome.id, body)
        assert stored_point(outcome.id, body) == whole_point(body)
    assert appended == {"tried": 7, "read": 7}
    assert_reads_back(outcome.id, bodies)


@pytest.mark.django_db
def test_a_save_read_from_an_append_point_does_not_read_the_version_before(appended, monkeypatch):
    messages = turn(0, calls=1)
    first = chat_body("point-no-read", messages)
    outcome = save(first, 0)
    reads = []
    store = get_document_store()
    real_get = type(store).get

    def counting_get(self, **kwargs):
        reads.append(kwargs)
        return real_get(self, **kwargs)

    monkeypatch.setattr(type(store), "get", counting_get)
    second = chat_body("point-no-read", [*messages, *turn(1, calls=2)])
    save(second, 1)
    monkeypatch.undo()

    assert appended["read"] == 1 and reads == []
    assert_reads_back(outcome.id, [first, second])


@pytest.mark.django_db
def test_with_the_mongo_store_a_save_read_from_a_point_is_kept_as_a_delta(appended):
    options = {"url": "mongodb://127.0.0.1:1", "database": "t", "client": mongomock.MongoClient()}
    backend = {"BACKEND": "sessions_api.storage.mongo.MongoDocumentStore", "OPTIONS": options}
    with override_settings(DOCUMENT_STORE=backend):
        store = get_document_store()
        messages: list[dict[str, Any]] = []
        bodies = []
        for number in range(3):
            messages += turn(number, calls=1)
            bodies.append(chat_body("point-mongo", messages, after={"usage": {"n": number}}))
            outcome = save(bodies[-1], number)

        assert appended == {"tried": 2, "read": 2}
        links = store._read_links(outcome.id, low=1, high=3)
        assert [links[n].encoding for n in (1, 2, 3)] == ["zstd", "delta", "delta"]
        assert_reads_back(outcome.id, bodies)


@pytest.mark.django_db
@pytest.mark.parametrize("offsets_known", [True, False])
def test_a_call_answered_by_an_appended_message_reads_the_earlier_messages_it_needs(
    appended, monkeypatch, offsets_known
):
    messages = turn(0, calls=1)
    outcome = save(chat_body("point-pending", messages), 0)
    pending = turn(1, calls=2, answered=False)[:2]
    body = chat_body("point-pending", messages + pending)
    save(body, 1)
    if not offsets_known:  # a version stored whole, or another release's point
        DocumentVersion.objects.filter(session_id=outcome.id, number=2).update(
            append_point=json.dumps(whole_point(body))
        )
    decoded = []
    real_load = appending.EarlierOnDemand._load

    def load(self, index=0):
        before = self._loaded_from
        real_load(self, index)
        decoded.append(before - self._loaded_from)

    monkeypatch.setattr(appending.EarlierOnDemand, "_load", load)
    answers = [
        {"role": "tool", "tool_call_id": "call_1_0", "content": "Error: no"},
        {"role": "tool", "tool_call_id": "call_1_1", "content": "{}"},
    ]
    body = chat_body("point-pending", messages + pending + answers)
    save(body, 2)

    assert appended == {"tried": 2, "read": 2}
    # From the message with the pending calls on, or every earlier message.
    assert sum(decoded) == (1 if offsets_known else len(messages + pending))
    assert_matches_whole_parse(outcome.id, body)


@pytest.mark.django_db
def test_an_edited_earlier_message_takes_the_whole_path(appended):
    messages = turn(0, calls=1) + turn(1, calls=0)
    outcome = save(chat_body("point-edit", messages), 0)
    edited = [dict(messages[0], content="edited"), *messages[1:], *turn(2, calls=1)]
    body = chat_body("point-edit", edited)
    save(body, 1)

    assert appended == {"tried": 1, "read": 0}
    assert_matches_whole_parse(outcome.id, body)
    assert stored_point(outcome.id, body) == whole_point(body)


@pytest.mark.django_db
def test_a_forced_format_reads_from_the_point_and_records_it_as_not_detected(appended):
    messages = turn(0, calls=1)
    outcome = save(chat_body("point-forced", messages), 0, format_id="openai_chat")
    body = chat_body("point-forced", [*messages, *turn(1, calls=1)])
    save(body, 1, format_id="openai_chat")
    auto = chat_body("point-forced", [*messages, *turn(1, calls=1), *turn(2, calls=0)])
    save(auto, 2)  # the point of a forced version does not vouch for detection

    assert appended == {"tried": 2, "read": 1}
    assert_matches_whole_parse(outcome.id, auto)
    assert stored_point(outcome.id, auto) == whole_point(auto)


@pytest.mark.django_db
def test_a_bare_list_with_an_external_id_reads_from_its_point(appended):
    messages = turn(0, calls=1)
    outcome = save(json.dumps(messages, indent=1).encode(), 0, external_id="point-bare")
    body = json.dumps([*messages, *turn(1, calls=2)], indent=1).encode()
    save(body, 1, external_id="point-bare")

    assert appended == {"tried": 1, "read": 1}
    assert_matches_whole_parse(outcome.id, body)
    assert stored_point(outcome.id, body) == whole_point(body)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "appended_message, root_after",
    [
        ({"role": "agent", "content": "the generic transcript's assistant"}, {}),
        ({"role": "wizard", "content": "an unknown role"}, {}),
        ({"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n"}]}, {}),
        ({"role": "user", "content": "hi"}, {"system": "Anthropic's top-level prompt"}),
        ({"role": "user", "content": "hi"}, {"variables": {"step": 2}}),
        ({"role": "user", "content": "hi"}, {"session_id": "another id after the messages"}),
        ({"role": "user", "content": "hi"}, {"model": "another model after the messages"}),
        ({"role": "assistant", "content": "timed", "timestamp": "2026-03-01T12:00:00Z"}, {}),
    ],
)
def test_what_may_change_detection_or_context_gives_the_whole_paths_answer(
    appended_message, root_after
):
    messages = turn(0, calls=1)
    first = save(chat_body("point-detect", messages), 0)
    body = chat_body("point-detect", [*messages, appended_message], after=root_after)
    outcome = save(body, 1)

    detection, _ = parse_document(json.loads(body))
    row = Session.objects.get(id=outcome.id)
    assert (row.format, outcome.created) == (detection.format_id, outcome.id != first.id)
    assert outcome.detected_by == detection.rule
    assert_matches_whole_parse(outcome.id, body)


# --- refusals ----------------------------------------------------------------------------------

DEEP = "[" * 70 + "]" * 70


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tail",
    [
        ', {"role": "user", "content": "a", "content": "b"}]}',  # duplicate key in a message
        ', {"role": "user", "content": NaN}]}',
        ', {"role": "user", "content": "x", "n": 99999999999999999999}]}',
        ', {"role": "user", "content": "x"},]}',  # [m,]
        ' {"role": "user", "content": "x"}]}',  # no comma
        ', {"role": "user", "content": "\\ud800"}]}',
        ', {"role": "user", "content": "\\u0000"}]}',
        ', {"role": "user", "content": "x", "deep": ' + DEEP + "}]}",
        '], "id": "point-hostile"}',  # the array closed twice
        '], "model": "gpt-4.1"}',  # a root key of the prefix again
        '], "usage": {}, "usage": {}}',
        '], "usage": 1}}',
        '], "usage": 1} []',
        ', {"role": "user", "content": "x"}',  # truncated
        ', {"role": "user", "content": "\xff"}]}',
        ', {"role": "user", "content": "x"}}]',
    ],
)
def test_a_hostile_tail_is_refused_as_the_whole_decode_refuses_it(tail, appended):
    messages = turn(0, calls=1)
    body = chat_body("point-hostile", messages)
    outcome = save(body, 0)
    prefix = body[: body.rindex(b"}]") + 1]
    hostile = prefix + tail.encode("utf-8", "surrogatepass").replace(b"\xc3\xbf", b"\xff")

    with pytest.raises(DomainError) as whole:
        prepare_whole(hostile)
    with pytest.raises(DomainError) as refused:
        save(hostile, 1)

    assert (refused.value.code, str(refused.value)) == (whole.value.code, str(whole.value))
    assert getattr(refused.value, "path", None) == getattr(whole.value, "path", None)
    assert appended["read"] == 0
    assert Session.objects.get(id=outcome.id).latest_version == 1


@pytest.mark.django_db
@pytest.mark.parametrize("bare_list", [False, True])
def test_an_appended_message_as_deep_as_the_limit_allows_is_read_from_the_point(
    settings_override, appended, bare_list
):
    settings_override(INGEST_MAX_DEPTH=8)
    messages = turn(0, calls=1)
    # Messages sit two levels deep in an object's array, one in a bare list.
    nested: Any = "deepest"
    for _ in range(8 - (3 if not bare_list else 2)):
        nested = [nested]
    deep = {"role": "user", "content": "x", "nested": nested}

    def body_of(items: list[dict[str, Any]]) -> bytes:
        return json.dumps(items).encode() if bare_list else chat_body("point-deep", items)

    outcome = save(body_of(messages), 0, external_id="point-deep")
    body = body_of([*messages, deep])
    save(body, 1, external_id="point-deep")
    too_deep = body_of([*messages, deep, {**deep, "nested": [nested]}])
    with pytest.raises(DomainError) as refused:
        save(too_deep, 2, external_id="point-deep")

    assert appended == {"tried": 2, "read": 1}
    assert refused.value.code == "too_deep"
    assert_matches_whole_parse(outcome.id, body)


@pytest.mark.django_db
def test_appended_messages_over_the_value_limit_are_refused_as_a_whole_decode_refuses_them(
    settings_override, appended
):
    messages = turn(0, calls=1)
    body = chat_body("point-nodes", messages)
    outcome = save(body, 0)
    nodes = decode_document_laid_out(body).nodes
    settings_override(INGEST_MAX_NODES=nodes + 8)
    within = chat_body("point-nodes", [*messages, {"role": "user", "content": "x"}])
    save(within, 1)  # 3 more values
    over = chat_body("point-nodes", [*messages, *[{"role": "user", "content": "x"}] * 3])

    with pytest.raises(DomainError) as refused:
        save(over, 2)

    assert refused.value.code == "too_many_values"
    assert appended == {"tried": 2, "read": 1}
    assert Session.objects.get(id=outcome.id).latest_version == 2


@pytest.fixture
def settings_override(settings):
    def override(**values: Any) -> None:
        for name, value in values.items():
            setattr(settings, name, value)

    return override


# --- random growth -----------------------------------------------------------------------------

MESSAGE = st.one_of(
    st.builds(
        lambda role, text: {"role": role, "content": text},
        st.sampled_from(["user", "assistant", "system", "developer"]),
        st.text(max_size=12),
    ),
    st.builds(
        lambda n: {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": f"c{n}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        st.integers(0, 4),
    ),
    st.builds(
        lambda n, text: {"role": "tool", "tool_call_id": f"c{n}", "content": text},
        st.integers(0, 4),
        st.sampled_from(["ok", "Error: no", "{}"]),
    ),
    st.just({"role": "agent", "content": "generic"}),
    st.just({"role": "assistant", "content": "m", "model": "other-model"}),
    st.just({"role": "assistant", "content": "u", "usage": {"prompt_tokens": 3}}),
    st.just({"role": "stranger", "content": "unknown role"}),
)
STEPS = st.lists(
    st.tuples(
        st.lists(MESSAGE, max_size=4),  # appended messages
        st.sampled_from(["none", "usage", "title-after", "edit"]),
        st.sampled_from([None, 0, 2]),  # indent
        st.booleans(),  # ensure_ascii
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.django_db
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_random_growth_reads_as_the_whole_path_reads(steps):
    key = f"point-random-{abs(hash(repr(steps)))}"
    existing = Session.objects.filter(external_id=key).first()
    if existing is not None:
        services.delete_session(session_id=str(existing.id))
    messages: list[dict[str, Any]] = [{"role": "user", "content": "start é"}]
    bodies: list[bytes] = []
    session_id = None
    for minute, (added, change, indent, ascii_only) in enumerate(
        [([], "none", None, True), *steps]
    ):
        messages = messages + added
        after: dict[str, Any] = {}
        if change == "usage":
            after = {"usage": {"prompt_tokens": len(messages), "completion_tokens": 1}}
        elif change == "title-after":
            after = {"title": f"title {len(messages)} ✓"}
        elif change == "edit":
            messages = [{**messages[0], "content": f"edited {minute}"}, *messages[1:]]
        body = chat_body(key, messages, after=after, indent=indent, ascii_only=ascii_only)
        try:
            outcome = save(body, minute)
        except DomainError as refused:  # a NUL, or no format's document any more
            with pytest.raises(DomainError) as whole:
                prepare_whole(body)
            assert (refused.code, str(refused)) == (whole.value.code, str(whole.value))
            return
        if session_id is not None and outcome.id != session_id:
            return  # detected as another format: another session, nothing to compare
        session_id = outcome.id
        if outcome.changed:
            bodies.append(body)
        assert_matches_whole_parse(outcome.id, body)
        assert stored_point(outcome.id, body) == whole_point(body)
    assert_reads_back(session_id, bodies)
