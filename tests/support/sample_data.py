"""Synthetic session documents for dashboard tests and screenshots (no real data, no network).

Documents are built in the shapes the adapters read (Picoflow v1.5, OpenAI chat) and ingested
through ``services.ingest_document`` like any other document. ``manage.py load_demo`` is the
demo data set for people; this module is the small, deterministic one tests can reason about.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sessions_api.ingest import services

XSS_TEXT = '<script>alert(1)</script><img src=x onerror=alert(1)> & "quotes"'


def _iso(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


@dataclass
class ToolSpec:
    name: str
    args: dict[str, Any]
    result: str
    status: str = "success"  # success | error | none (no result)


@dataclass
class Turn:
    user: str
    reply: str | dict[str, Any]
    tools: list[ToolSpec] = field(default_factory=list)
    step: str = "MainStep"


def picoflow_document(
    *,
    session_id: str,
    flow: str,
    status: str,
    model: str,
    started: datetime,
    turns: list[Turn],
    tokens: tuple[int, int] | None = (1200, 300),
    cached: int = 0,
    errors: list[str] = (),  # type: ignore[assignment]
    warnings: list[str] = (),  # type: ignore[assignment]
    seconds_per_message: float = 4.0,
    revision: int = 1,
) -> bytes:
    """A Picoflow v1.5 document: one flow, one namespace per step, explicit timestamps."""
    clock = started
    counter = 0
    memory: dict[str, dict[str, list[dict[str, Any]]]] = {}
    steps_seen: list[str] = []

    def stamp() -> tuple[str, str]:
        nonlocal clock, counter
        clock += timedelta(seconds=seconds_per_message)
        counter += 1
        return _iso(clock), f"{3000000000 + counter}"

    for index, turn in enumerate(turns):
        if turn.step not in steps_seen:
            steps_seen.append(turn.step)
        messages = memory.setdefault(turn.step, {"messages": []})["messages"]
        if index == 0:
            ts, n = stamp()
            messages.append(
                {
                    "type": "system",
                    "content": f"You are the {flow} assistant. Be brief and use tools.",
                    "id": f"{turn.step}|{ts}|{n}",
                    "timestamp": ts,
                }
            )
        ts, n = stamp()
        messages.append(
            {"type": "human", "content": turn.user, "id": f"{turn.step}|{ts}|{n}", "timestamp": ts}
        )
        if turn.tools:
            ts, n = stamp()
            calls = []
            for k, tool in enumerate(turn.tools):
                calls.append({"name": tool.name, "args": tool.args, "id": f"call_{index}_{k}"})
            messages.append(
                {
                    "type": "ai",
                    "content": "",
                    "id": f"{turn.step}|{ts}|{n}",
                    "timestamp": ts,
                    "tool_calls": calls,
                }
            )
            for k, tool in enumerate(turn.tools):
                if tool.status == "none":
                    continue
                ts, n = stamp()
                messages.append(
                    {
                        "type": "tool",
                        "content": tool.result,
                        "id": f"{turn.step}|{ts}|{n}",
                        "timestamp": ts,
                        "tool_call_id": f"call_{index}_{k}",
                        "status": tool.status,
                        "name": tool.name,
                    }
                )
        ts, n = stamp()
        messages.append(
            {"type": "ai", "content": turn.reply, "id": f"{turn.step}|{ts}|{n}", "timestamp": ts}
        )
    doc: dict[str, Any] = {
        "id": session_id,
        "revision": revision,
        "version": 1.5,
        "runStatus": status,
        "createdOn": _iso(started),
        "saveOn": _iso(clock),
        "flow": {
            "name": flow,
            "model": {"provider": "openai", "name": model, "params": {"temperature": 0.2}},
            "context": {"config": {"locale": "en-GB"}},
            "memory": memory,
            "steps": [
                {
                    "name": step,
                    "state": {"_saveOn": _iso(clock), "turns": sum(t.step == step for t in turns)},
                }
                for step in steps_seen
            ],
            "currentStep": steps_seen[-1] if steps_seen else "MainStep",
            "sequence": [{"level": 1, "stepName": step} for step in steps_seen],
        },
        "log": [f"{flow} started", f"{len(turns)} turns"],
        "error": [
            {"timestamp": _iso(clock), "level": "error", "message": message} for message in errors
        ],
        "warn": [
            {"timestamp": _iso(clock), "level": "warn", "message": message} for message in warnings
        ],
        "debug": [],
        "verbose": [],
    }
    if tokens is not None:
        doc["tokens"] = {
            "inputTokens": tokens[0],
            "outputTokens": tokens[1],
            "totalTokens": tokens[0] + tokens[1],
            "cachedInputTokens": cached,
        }
    return json.dumps(doc).encode()


def openai_chat_document(
    *,
    conv_id: str,
    user: str,
    model: str,
    created: datetime,
    turns: list[Turn],
    tokens: tuple[int, int] = (800, 150),
) -> bytes:
    """An OpenAI chat transcript (no per-message times; tool results paired by id)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a helpful agent."}]
    for index, turn in enumerate(turns):
        messages.append({"role": "user", "content": turn.user})
        if turn.tools:
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"call_{index}_{k}",
                            "type": "function",
                            "function": {"name": t.name, "arguments": json.dumps(t.args)},
                        }
                        for k, t in enumerate(turn.tools)
                    ],
                }
            )
            for k, tool in enumerate(turn.tools):
                if tool.status != "none":
                    messages.append(
                        {
                            "role": "tool",
                            "tool_call_id": f"call_{index}_{k}",
                            "content": tool.result,
                        }
                    )
        reply = turn.reply if isinstance(turn.reply, str) else json.dumps(turn.reply)
        messages.append({"role": "assistant", "content": reply})
    doc = {
        "id": conv_id,
        "object": "chat.completion",
        "created": int(created.timestamp()),
        "model": model,
        "user": user,
        "usage": {
            "prompt_tokens": tokens[0],
            "completion_tokens": tokens[1],
            "total_tokens": tokens[0] + tokens[1],
        },
        "messages": messages,
    }
    return json.dumps(doc).encode()


def big_picoflow_document(*, session_id: str, messages: int, started: datetime) -> bytes:
    """A long conversation (about ``messages`` messages) for paging tests."""
    turns = []
    for index in range(max(1, messages // 2)):
        turns.append(Turn(user=f"question number {index}", reply=f"answer number {index}"))
    return picoflow_document(
        session_id=session_id,
        flow="LongFlow",
        status="running",
        model="gpt-4.1-mini",
        started=started,
        turns=turns,
        seconds_per_message=1.0,
    )


# --- a varied data set --------------------------------------------------------------------------

AGENTS = ("TripFlow", "SupportFlow", "ResearchFlow", "BillingFlow", "HotelFlow")
MODELS = ("gpt-4.1-mini", "gpt-4o", "claude-sonnet-4", "gpt-5-mini", "gemini-2.5-flash")
USERS = ("ana", "bo", "chen", "dara", "eli", "fatima")
TOOLS = {
    "search_hotels": ({"city": "Lisbon", "nights": 3}, '{"hotels": 12, "cheapest_eur": 89}'),
    "get_weather": ({"city": "Oslo", "day": "tomorrow"}, '{"forecast": "rain", "high_c": 9}'),
    "lookup_order": ({"order_id": "A-1042"}, '{"status": "shipped", "eta": "2 days"}'),
    "web_search": ({"query": "EU AI act timeline"}, "Top result: the act applies from 2026."),
    "send_email": ({"to": "ops@example.com", "subject": "Refund"}, '{"queued": true}'),
    "book_train": ({"from": "Paris", "to": "Oslo"}, '{"booking": "ZX81"}'),
}
TOOL_ERRORS = {
    "search_hotels": "search backend returned 503",
    "get_weather": "Error: weather service timed out after 10s",
    "lookup_order": "order A-1042 not found",
    "web_search": "rate limited (429), retry after 30s",
    "send_email": "SMTP relay refused the message",
    "book_train": "payment declined",
}
QUESTIONS = (
    "Find me a hotel in Lisbon for three nights in June.",
    "What's the weather in Oslo tomorrow?",
    "Where is my order A-1042?",
    "Summarise the EU AI act timeline for me.",
    "Please email ops about the refund.",
    "Book the cheapest train from Paris to Oslo.",
)


def varied_documents(*, now: datetime, count: int = 60, seed: int = 7) -> list[bytes]:
    """``count`` documents spread over the last week (denser recently), mixed statuses,
    models, tools and errors. Deterministic for a given seed and ``now``."""
    rng = random.Random(seed)
    documents = []
    for index in range(count):
        age = timedelta(hours=rng.random() ** 2 * 24 * 7)
        pace = rng.choice([2, 5, 15, 40, 120])
        # Leave room for every message before `now` (at most ~32 messages per document).
        started = now - age - timedelta(seconds=pace * 34)
        agent = AGENTS[index % len(AGENTS)]
        model = rng.choice(MODELS)
        status = rng.choices(["completed", "running", "aborted", "error"], weights=[70, 12, 8, 10])[
            0
        ]
        if age > timedelta(hours=6) and status == "running":
            status = "completed"
        turns = []
        for t in range(rng.randint(1, 5)):
            tools = []
            for name in rng.sample(sorted(TOOLS), k=rng.choice([0, 1, 1, 2])):
                args, result = TOOLS[name]
                failed = rng.random() < (0.35 if status == "aborted" else 0.08)
                tools.append(
                    ToolSpec(
                        name=name,
                        args=args,
                        result=TOOL_ERRORS[name] if failed else result,
                        status="error" if failed else "success",
                    )
                )
            question = rng.choice(QUESTIONS)
            reply: str | dict[str, Any] = "Done. " + "Here is what I found. " * rng.randint(1, 4)
            if rng.random() < 0.1:
                reply = {"summary": "structured answer", "items": [1, 2, 3], "ok": True}
            turns.append(
                Turn(user=question, reply=reply, tools=tools, step=("PlanStep", "ActStep")[t % 2])
            )
        input_tokens = rng.randint(400, 9000)
        output_tokens = rng.randint(80, 2500)
        if index % 4 == 3:
            documents.append(
                openai_chat_document(
                    conv_id=f"chat-{seed}-{index:04d}",
                    user=rng.choice(USERS),
                    model=model,
                    created=started,
                    turns=turns,
                    tokens=(input_tokens, output_tokens),
                )
            )
            continue
        errors = ["upstream model returned 500"] if status == "aborted" else []
        warnings = ["model retry attempt 1"] if rng.random() < 0.2 else []
        documents.append(
            picoflow_document(
                session_id=f"pf-{seed}-{index:04d}",
                flow=agent,
                status=status,
                model=model,
                started=started,
                turns=turns,
                tokens=(input_tokens, output_tokens),
                cached=input_tokens // 3 if rng.random() < 0.4 else 0,
                errors=errors,
                warnings=warnings,
                seconds_per_message=pace,
            )
        )
    return documents


def load_varied(*, now: datetime, count: int = 60, seed: int = 7) -> int:
    """Ingest :func:`varied_documents`; returns how many were stored."""
    for body in varied_documents(now=now, count=count, seed=seed):
        services.ingest_document(body=body, source="demo", now=now)
    return count
