"""Shared factories: session documents written by the demo writers, and ingesting them.

``document("picoflow", variant="v1.5", turns=3, tool_calls=2, tool_errors=1)`` gives the bytes
a framework would have saved for a plain conversation of that shape; ``session(...)`` ingests
one through the real ingest service and returns its record, so every derived row exists.
Everything is deterministic: fixed ids, fixed times from ``started``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sessions_api.demo import writers
from sessions_api.demo.conversation import Conversation, ToolCall, Turn
from sessions_api.ingest import services
from sessions_api.sessions import selectors
from sessions_api.sessions.records import SessionRecord

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FORMATS = (writers.PICOFLOW, writers.OPENAI_CHAT)
PICOFLOW_VARIANTS = tuple(writers.PICOFLOW_VARIANTS)


def conversation(
    *,
    turns: int = 2,
    tool_calls: int = 0,
    tool_errors: int = 0,
    log_errors: Sequence[str] = (),
    log_warnings: Sequence[str] = (),
    status: str = "completed",
    flow: str = "FactoryFlow",
    steps: Sequence[str] = ("MainStep",),
    user: str = "ana@example.com",
    model: str = "gpt-4o-mini",
    seconds_per_message: float = 4.0,
    tokens: tuple[int, int] | None = None,
) -> Conversation:
    """A system prompt, then ``turns`` exchanges: the user asks, the assistant answers.

    The exchanges are spread over ``steps`` in order, each step with a memory namespace of its
    own and a ``turns`` count in its state. The last ``tool_calls`` exchanges call a tool
    before answering; the first ``tool_errors`` of those calls fail. ``log_errors`` and
    ``log_warnings`` are logged after the last turn. ``tokens`` is the (input, output) usage
    the document reports (default: estimated).
    """
    if not 0 <= tool_errors <= tool_calls <= turns:
        raise ValueError("need 0 <= tool_errors <= tool_calls <= turns")
    conv = Conversation(
        flow=flow,
        user=user,
        user_name=user.split("@")[0],
        step_models={"*": model, **dict.fromkeys(steps, model)},
        status=status,
        app="factory-app",
        namespace=steps[0],
        step_namespaces={step: step for step in steps},
        reported_tokens=tokens,
    )
    at = 0.0
    step = steps[0]

    def add(role: str, text: Any = "", **extra: Any) -> None:
        nonlocal at
        conv.turns.append(
            Turn(role, step, at, text, nonce=3_000_000_000 + len(conv.turns), **extra)
        )
        at += seconds_per_message

    exchanges: Counter[str] = Counter()
    conv.sequence.append((at, step))
    add("system", f"You are the {flow} assistant. Be brief and use tools.")
    for index in range(turns):
        if steps[index * len(steps) // turns] != step:
            step = steps[index * len(steps) // turns]
            conv.sequence.append((at, step))
        add("user", f"question {index}")
        calling = index - (turns - tool_calls)
        if calling >= 0:
            ok = calling >= tool_errors
            result = f'{{"answer": {index}}}' if ok else f"Error: lookup {index} timed out"
            call = ToolCall(f"call_{index}", "lookup", {"q": index}, ok=ok, result=result)
            add("assistant", calls=[call])
            add("tool", result, call=call)
        add("assistant", f"answer {index}")
        exchanges[step] += 1
        conv.state.append((conv.duration, step, "turns", exchanges[step]))
        conv.checkpoints.append(len(conv.turns))
    last = conv.duration
    conv.logs.extend((last, "error", message, {}) for message in log_errors)
    conv.logs.extend((last, "warn", message, {}) for message in log_warnings)
    return conv


def document(
    format_id: str = writers.PICOFLOW,
    *,
    variant: str = "v1.5",
    session_id: str = "factory-session",
    started: datetime = T0,
    revision: int = 1,
    expire_after: int = 86400,
    **shape: Any,
) -> bytes:
    """The document ``format_id`` saves for ``conversation(**shape)``. Picoflow takes a
    ``variant`` (v1-ext, v1-plain, v1.5): v1 writes ``expire_after``, v1.5 ``revision``."""
    return _write(
        format_id,
        conversation(**shape),
        variant=variant,
        session_id=session_id,
        started=started,
        revision=revision,
        expire_after=expire_after,
    )


def _write(
    format_id: str,
    conv: Conversation,
    *,
    variant: str,
    session_id: str,
    started: datetime,
    revision: int,
    expire_after: int,
) -> bytes:
    if format_id == writers.OPENAI_CHAT:
        return writers.write_openai_chat(conv, session_id=session_id, start=started)
    if format_id != writers.PICOFLOW:
        raise ValueError(f"the demo writers write {FORMATS}, not {format_id!r}")
    return writers.write_picoflow(
        conv,
        variant=writers.PICOFLOW_VARIANTS[variant],
        session_id=session_id,
        start=started,
        revision=revision,
        expire_after=expire_after,
    )


def ingest(
    body: bytes, *, now: datetime = T0, source: str = "api", **options: Any
) -> SessionRecord:
    """Ingest ``body`` through the ingest service (``options``: format_id, external_id) and
    return the stored session's record."""
    outcome = services.ingest_document(body=body, source=source, now=now, **options)
    record = selectors.get_session(session_id=outcome.id)
    assert record is not None
    return record


def session(
    format_id: str = writers.PICOFLOW,
    *,
    variant: str = "v1.5",
    session_id: str = "factory-session",
    started: datetime = T0,
    received: datetime | None = None,
    revision: int = 1,
    expire_after: int = 86400,
    **shape: Any,
) -> SessionRecord:
    """``document(...)`` ingested; it arrives a second after its last message unless
    ``received`` says when."""
    conv = conversation(**shape)
    body = _write(
        format_id,
        conv,
        variant=variant,
        session_id=session_id,
        started=started,
        revision=revision,
        expire_after=expire_after,
    )
    arrival = received or started + timedelta(seconds=conv.duration + 1)
    return ingest(body, now=arrival)
