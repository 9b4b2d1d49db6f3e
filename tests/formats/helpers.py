"""What the format adapter tests share: the fixtures and their manifest, small document helpers,
and the checks every adapter's tests make (detection boundaries, odd shapes, the API answer).

Import what a test module uses by name (``from helpers import load, codes``): the tests in this
folder are not a package, so pytest puts the folder on ``sys.path``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sessions_api.domain import ParsedSession, Session
from sessions_api.formats import registry
from sessions_api.formats.base import FormatAdapter, InvalidDocument
from sessions_api.sessions.timeline import build_timeline

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
SCRIPT = "<script>alert(1)</script>"
NON_ASCII = "Grüße, 東京, émoji 🚀"

# What parsing an arbitrary JSON value may raise (any other failure is a bug).
ODD_SHAPE_ERROR_CODES = frozenset({"wrong_type", "missing_field", "out_of_range"})

# The settings of the "odd shapes never crash detection or parsing" property tests.
ODD_SHAPE_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Small arbitrary JSON values for property tests.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


# --- fixtures -------------------------------------------------------------------------------


def load(path: str) -> Any:
    """A fixture document by its path below tests/fixtures (as the manifest names it)."""
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def is_shape_fixture(entry: dict[str, Any]) -> bool:
    """A ``<format>/shapes/`` fixture: one document showing one shape a library writes, with
    counts of its own kind (test_library_shapes.py checks them), not a format's main scenario."""
    return entry["path"].split("/")[1:2] == ["shapes"]


def manifest_entries(format_id: str, *, json_only: bool = False) -> list[dict[str, Any]]:
    """The manifest's entries of one format's main scenario, in manifest order (``json_only``:
    documents only, not folders); the ``shapes/`` fixtures are left out."""
    return [
        entry
        for entry in MANIFEST["fixtures"]
        if entry["format_id"] == format_id
        and not is_shape_fixture(entry)
        and (not json_only or entry["path"].endswith(".json"))
    ]


def manifest_entry(path: str) -> dict[str, Any]:
    """The manifest's entry for the fixture at ``path``."""
    return next(entry for entry in MANIFEST["fixtures"] if entry["path"] == path)


def other_format_fixtures(format_id: str) -> list[str]:
    """Paths of the manifest's JSON documents of every other format, in manifest order."""
    return [
        entry["path"]
        for entry in MANIFEST["fixtures"]
        if entry["format_id"] != format_id and entry["path"].endswith(".json")
    ]


def fixture_documents(*, skip_parts: Iterable[str] = ("generate",)) -> list[tuple[str, Any]]:
    """(path, document) of every JSON fixture on disk but the manifest, in path order, leaving
    out files below a folder named in ``skip_parts``."""
    skip = set(skip_parts)
    docs = []
    for path in sorted(FIXTURES.rglob("*.json")):
        if path.name == "manifest.json" or skip & set(path.parts):
            continue
        docs.append((path.relative_to(FIXTURES).as_posix(), json.loads(path.read_bytes())))
    return docs


# --- documents and results ------------------------------------------------------------------


def codes(parsed: ParsedSession) -> list[str]:
    """The warning codes of a parse, in order."""
    return [warning.code for warning in parsed.warnings]


def strings_in(value: Any) -> Iterator[str]:
    """Every string (keys too) anywhere inside a JSON-like value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)


def set_path(doc: Any, path: str, value: Any) -> Any:
    """Set the node at a JSON-pointer-like ``path`` (digits, optionally negative, index lists) to
    ``value`` in place; returns ``doc``."""
    *parents, last = [int(p) if p.lstrip("-").isdigit() else p for p in path.strip("/").split("/")]
    target = doc
    for part in parents:
        target = target[part]
    target[last] = value
    return doc


def rejection(parse: Callable[[Any], Any], doc: Any) -> tuple[str, str]:
    """(code, path) of the InvalidDocument that ``parse(doc)`` must raise."""
    with pytest.raises(InvalidDocument) as raised:
        parse(doc)
    return raised.value.code, raised.value.path


def assert_wrong_type_at(parse: Callable[[Any], Any], doc: Any, path: str) -> None:
    """``parse(doc)`` refuses the document as ``wrong_type`` at ``path``, and its message names
    the path."""
    with pytest.raises(InvalidDocument) as raised:
        parse(doc)
    assert (raised.value.code, raised.value.path) == ("wrong_type", path)
    assert path in raised.value.message


def timeline_texts(session: Session) -> list[str]:
    """Every string the timeline shows as a message text or as a tool result."""
    texts = []
    for event in build_timeline(session):
        for key in ("text", "result"):
            if isinstance(event.get(key), str):
                texts.append(event[key])
    return texts


# --- checks every adapter's tests make ------------------------------------------------------


def assert_message_texts_in_timeline(
    session: Session,
    coverage: dict[str, Any],
    *,
    check_markup: bool = True,
    check_non_ascii: bool = True,
) -> None:
    """Every message text is in the timeline (as a text or a tool result), and so is what the
    manifest's ``coverage`` says the fixture holds: script markup, a text over 5 KB, non-ASCII
    text (``check_markup``/``check_non_ascii`` off: the fixture has no messages to show it)."""
    shown = timeline_texts(session)
    for message in session.messages:
        if message.content_text:
            assert message.content_text in shown, message.seq
    if coverage["script_markup"] and check_markup:
        assert any(SCRIPT in text for text in shown)
    if coverage["message_over_5kb"]:
        assert any(len(text.encode("utf-8")) > 5000 for text in shown)
    if coverage["non_ascii"] and check_non_ascii:
        assert any(not text.isascii() for text in shown)


def assert_no_other_fixture_detects_as(
    format_id: str, *, skip_parts: Iterable[str] = ("generate",)
) -> None:
    """No fixture of another format (its folder names the format) is detected as ``format_id``."""
    for name, doc in fixture_documents(skip_parts=skip_parts):
        if name.startswith(f"{format_id}/"):
            continue
        try:
            detected = registry.detect_format(doc).format_id
        except registry.UnknownFormat:
            continue
        assert detected != format_id, name


def assert_folder_detects_as_its_format(folder: str) -> None:
    """Every JSON fixture in ``tests/fixtures/<folder>`` is still detected as ``folder``."""
    for path in sorted((FIXTURES / folder).glob("*.json")):
        assert registry.detect_format(load(f"{folder}/{path.name}")).format_id == folder


def assert_odd_shape_is_handled(
    adapter: FormatAdapter, doc: Any, error_codes: Iterable[str] = ODD_SHAPE_ERROR_CODES
) -> None:
    """Every rule answers a bool for ``doc``; parsing it succeeds or raises InvalidDocument with
    one of ``error_codes``."""
    for rule in adapter.rules:
        assert rule.matches(doc) in (True, False)
    try:
        adapter.parse(doc)
    except InvalidDocument as exc:
        assert exc.code in error_codes


def ingest(api: Any, body: Any, format_id: str) -> dict[str, Any]:
    """POST ``body`` to /sessions, check it is created (201) as ``format_id``; the answer."""
    response = api.post("/sessions", body)
    assert response.status_code == 201, response.content[:500]
    answer = response.json()
    assert answer["format"] == format_id
    return answer


def assert_refuses_several_sessions(api: Any, body: Any) -> None:
    """A document holding several sessions is a 422 that points to import_sessions."""
    answer = api.post("/sessions", body)

    assert answer.status_code == 422
    assert answer.json()["code"] == "multiple_sessions"
    assert "import_sessions" in answer.json()["message"]
