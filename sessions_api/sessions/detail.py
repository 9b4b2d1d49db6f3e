"""One session's page around its timeline: the side panels (steps, logs, warnings, state,
files), where a document position sits in the timeline, the stored body pretty-printed, and
the diff of two versions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache

from sessions_api import jsondiff
from sessions_api.sessions import selectors
from sessions_api.sessions.records import SessionRecord

# A stored version never changes, so what is derived from it is cached without invalidation.
# Caching the small page-sized results (not just the whole parsed session) keeps a warm page of
# a 10,000-message session as cheap as a short one: no large object is unpickled per request.
DERIVED_CACHE_SECONDS = 3600


def _cached(key: str, build: Callable[[], Any]) -> Any:
    value = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, timeout=DERIVED_CACHE_SECONDS)
    return value


# How long a request waits for another request that is building the same expensive value,
# checking the cache every SINGLE_FLIGHT_POLL_SECONDS, before it builds the value itself.
SINGLE_FLIGHT_WAIT_SECONDS = 5.0
SINGLE_FLIGHT_POLL_SECONDS = 0.05


def _cached_once(key: str, build: Callable[[], Any]) -> Any:
    """``_cached`` for values that cost real CPU: while one request builds ``key`` (marked in
    the cache, so across processes when the cache is shared), the others wait for its result
    instead of each building it too. Many people opening one heavy page cost one build."""
    value = cache.get(key)
    if value is not None:
        return value
    marker = f"{key}:building"
    building_here = cache.add(marker, 1, timeout=int(SINGLE_FLIGHT_WAIT_SECONDS * 2))
    if not building_here:
        deadline = time.monotonic() + SINGLE_FLIGHT_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(SINGLE_FLIGHT_POLL_SECONDS)
            value = cache.get(key)
            if value is not None:
                return value
            if cache.get(marker) is None:
                break  # the builder failed or gave up: build it here
    try:
        value = build()
        cache.set(key, value, timeout=DERIVED_CACHE_SECONDS)
        return value
    finally:
        if building_here:
            cache.delete(marker)


def event_index_of_seq(
    *, record: SessionRecord, seq: int, version: int | None = None
) -> int | None:
    """Where in the timeline the first event of document position ``seq`` is."""
    number = version or record.version

    def build() -> dict[int, int]:
        positions: dict[int, int] = {}
        for event in selectors.get_parsed_version(record=record, version=number).events:
            if event.get("seq") is not None:
                positions.setdefault(event["seq"], event["index"])
            # A paired tool result has no event of its own: it lives in its call.
            if event.get("kind") == "tool_call" and event.get("result_seq") is not None:
                positions.setdefault(event["result_seq"], event["index"])
        return positions

    return _cached(f"dash:positions:v1:{record.id}:{number}", build).get(seq)


@dataclass(frozen=True)
class StepView:
    name: str
    order: int
    level: int
    flow: str | None
    active: bool | None
    model: str | None
    model_params: Any
    state: Any
    saved_at: datetime | None


@dataclass(frozen=True)
class LogView:
    level: str
    message: str
    timestamp: datetime | None
    extra: Any


@dataclass(frozen=True)
class SessionPanels:
    steps: list[StepView]
    logs: list[LogView]
    logs_total: int
    warnings: list[dict[str, str]]
    state: Any
    context: Any
    metadata: dict[str, Any]
    flows: list[dict[str, Any]]
    models: list[str]
    # Files that travel with a session (AgentFlow notes and artifacts), from its metadata.
    notes: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]


# Metadata keys shown in their own panels rather than in the raw metadata dump.
_FILE_METADATA_KEYS = ("notes", "artifacts")


def session_panels(
    *, record: SessionRecord, version: int | None = None, max_logs: int = 500
) -> SessionPanels:
    """The side panels of the session page: steps with their state, logs, parse warnings."""
    number = version or record.version
    # The panels are pickled: the key's version changes whenever their classes change shape
    # or module, so an old entry is never read as the new classes.
    return _cached(
        f"dash:panels:v3:{record.id}:{number}:{max_logs}",
        lambda: _build_panels(record, number, max_logs),
    )


def _build_panels(record: SessionRecord, version: int, max_logs: int) -> SessionPanels:
    parsed = selectors.get_parsed_version(record=record, version=version)
    session = parsed.session
    steps = sorted(session.steps, key=lambda s: (s.order, s.name))
    logs = list(session.logs)
    return SessionPanels(
        steps=[
            StepView(
                name=s.name,
                order=s.order,
                level=s.level,
                flow=s.flow,
                active=s.is_active,
                model=s.model,
                model_params=s.model_params,
                state=s.state,
                saved_at=s.saved_at,
            )
            for s in steps
        ],
        logs=[
            LogView(level=e.level.value, message=e.message, timestamp=e.timestamp, extra=e.extra)
            for e in logs[:max_logs]
        ],
        logs_total=len(logs),
        warnings=parsed.warnings,
        state=session.state,
        context=session.context,
        metadata={k: v for k, v in session.metadata.items() if k not in _FILE_METADATA_KEYS},
        flows=list(session.flows),
        models=session.models,
        notes=_dicts(session.metadata.get("notes")),
        artifacts=_dicts(session.metadata.get("artifacts")),
    )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


@dataclass(frozen=True)
class PrettyBody:
    text: str
    size_bytes: int
    truncated: bool
    is_json: bool


def pretty_body(*, session_id: str, version: int, max_chars: int = 2_000_000) -> PrettyBody:
    """A stored body, pretty-printed (2-space JSON) and cut at ``max_chars``."""
    body = selectors.get_raw_body(session_id=session_id, version=version)
    text, is_json = _pretty(body)
    return PrettyBody(
        text=text[:max_chars],
        size_bytes=len(body),
        truncated=len(text) > max_chars,
        is_json=is_json,
    )


def _pretty(body: bytes) -> tuple[str, bool]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return body.decode("utf-8", errors="replace"), False
    return jsondiff.pretty(value), True


@dataclass(frozen=True)
class VersionDiff:
    a: int
    b: int
    lines: list[jsondiff.DiffLine]
    added: int
    removed: int
    truncated: bool
    # Over the diff budget: the page offers both versions to download instead.
    too_large: bool = False


def diff_versions(
    *, session_id: str, a: int, b: int, context: int = 3, max_lines: int = 5000
) -> VersionDiff:
    """A unified diff of two versions' pretty-printed JSON, within the diff budget (a pair
    over it is ``too_large``). Versions never change, so the answer is cached: many people
    viewing one hostile pair cost one diff, not one each."""

    def build() -> VersionDiff:
        left = _pretty(selectors.get_raw_body(session_id=session_id, version=a))[0]
        right = _pretty(selectors.get_raw_body(session_id=session_id, version=b))[0]
        diff = jsondiff.line_diff(
            left.splitlines(),
            right.splitlines(),
            before_label=f"v{a}",
            after_label=f"v{b}",
            context=context,
            max_lines=max_lines,
        )
        return VersionDiff(
            a=a,
            b=b,
            lines=diff.lines,
            added=diff.added,
            removed=diff.removed,
            truncated=diff.truncated,
            too_large=diff.too_large,
        )

    return _cached_once(f"dash:diff:v1:{session_id}:{a}:{b}:{context}:{max_lines}", build)
