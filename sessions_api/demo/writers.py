"""One writer per format id: a conversation in, the bytes that framework would have saved out.

Writers are pure: the same conversation and arguments give the same bytes. They write only
the shapes the adapters read (sessions_api/formats/); key order and JSON layout are part of
the output, since the demo data set is pinned byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sessions_api.demo.conversation import Conversation, Turn

PICOFLOW, OPENAI_CHAT = "picoflow", "openai_chat"


def iso(moment: datetime) -> str:
    """Millisecond UTC time as the frameworks write it: 2026-03-02T10:00:00.000Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def provider_of(model: str) -> str:
    if model.startswith("claude"):
        return "anthropic"
    if model.startswith("gemini"):
        return "google"
    return "openai"


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.start = start

    def iso(self, offset: float) -> str:
        return iso(self.start + timedelta(seconds=offset))


# --- Picoflow ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PicoflowVariant:
    """How one Picoflow engine generation saves a session.

    v1 documents hold a list of flows, each with a list of memory namespaces; v1.5 holds one
    flow whose memory is keyed by namespace, stamps every message, structures its log entries
    and carries a revision instead of an expiry.
    """

    name: str
    version: float  # the document's own "version" field: 1 or 1.5
    # Exported with mongoexport: extended JSON ($oid, $date), one line per document.
    mongo_export: bool = False
    # The namespace the main conversation is kept in, where the engine fixes one.
    main_namespace: str | None = None

    @property
    def v15(self) -> bool:
        return self.version == 1.5


V1_EXT = PicoflowVariant("v1-ext", 1, mongo_export=True, main_namespace="default")
V1_PLAIN = PicoflowVariant("v1-plain", 1)
V1_5 = PicoflowVariant("v1.5", 1.5)
PICOFLOW_VARIANTS = {variant.name: variant for variant in (V1_EXT, V1_PLAIN, V1_5)}

_MESSAGE_TYPES = {"system": "system", "user": "human", "assistant": "ai", "tool": "tool"}
_LOG_LEVELS = ("log", "error", "warn", "debug", "verbose")
_SURVEY_STEP = "AskStep"


def write_picoflow(
    conversation: Conversation,
    *,
    variant: PicoflowVariant,
    session_id: str,
    start: datetime,
    saved_turns: int | None = None,
    final: bool = True,
    revision: int = 1,
    expire_after: int = 86400,
    survey_nonce: int | None = None,
) -> bytes:
    """The Picoflow document saved after the first ``saved_turns`` turns (default: all).

    A save before the ``final`` one is still running. ``revision`` is written by v1.5,
    ``expire_after`` by v1; ``survey_nonce`` adds the CSAT survey flow a v1 engine runs after a
    completed conversation (the digits ending its message id).
    """
    clock = _Clock(start)
    turns = conversation.turns[:saved_turns]
    upto = turns[-1].at + 0.01
    status = conversation.status if final else "running"
    active = None if status == "completed" else turns[-1].step

    namespaces: dict[str, list[dict[str, Any]]] = {}
    for turn in turns:
        namespace = conversation.step_namespaces.get(turn.step) or (
            variant.main_namespace or conversation.namespace
        )
        namespaces.setdefault(namespace, []).append(
            _picoflow_message(turn, clock, variant, user_name=conversation.user_name.lower())
        )
    parts = _PicoflowParts(
        conversation=conversation,
        variant=variant,
        clock=clock,
        upto=upto,
        status=status,
        active=active,
        namespaces=namespaces,
        tokens=conversation.tokens(turns),
    )
    if variant.v15:
        return _picoflow_v15(parts, session_id=session_id, revision=revision)
    survey = survey_nonce if status == "completed" else None
    return _picoflow_v1(parts, session_id=session_id, expire_after=expire_after, survey=survey)


@dataclass(frozen=True)
class _PicoflowParts:
    """What both document layouts are assembled from."""

    conversation: Conversation
    variant: PicoflowVariant
    clock: _Clock
    upto: float  # the save time, as an offset
    status: str
    active: str | None
    namespaces: dict[str, list[dict[str, Any]]]
    tokens: tuple[int, int]

    def date(self, offset: float) -> Any:
        text = self.clock.iso(offset)
        return {"$date": text} if self.variant.mongo_export else text

    def steps(self) -> list[dict[str, Any]]:
        conv, variant = self.conversation, self.variant
        names: list[str] = []
        for at, step in conv.sequence:
            if at <= self.upto and step not in names:
                names.append(step)
        steps = []
        for step in names:
            state: dict[str, Any] = {}
            saved = None
            for at, owner, key, value in conv.state:
                if owner == step and at <= self.upto:
                    state[key] = value
                    saved = at
            saved = saved if saved is not None else next(a for a, s in conv.sequence if s == step)
            state["_saveOn"] = self.date(saved)
            model = conv.step_models[step]
            if variant.v15:
                entry: dict[str, Any] = {"name": step, "state": state}
                if model != conv.flow_model:
                    entry["model"] = {
                        "provider": provider_of(model),
                        "name": model,
                        "params": {"temperature": 0.2},
                    }
            else:
                entry = {
                    "name": step,
                    "isActive": step == self.active,
                    "state": state,
                    "modelName": model,
                }
                if variant.mongo_export:
                    entry["temperature"] = -1 if model.startswith("gemini") else 0.2
                else:
                    entry["modelParamsName"] = model
                    entry["modelParams"] = (
                        {"reasoning": {"effort": "low"}}
                        if model == "gpt-4.1"
                        else {"temperature": 0.3}
                    )
            steps.append(entry)
        return steps

    def logs(self) -> dict[str, list[Any]]:
        logs: dict[str, list[Any]] = {level: [] for level in _LOG_LEVELS}
        for at, level, message, extra in self.conversation.logs:
            if at > self.upto:
                continue
            if self.variant.v15:
                logs[level].append(
                    {"timestamp": self.clock.iso(at), "level": level, "message": message, **extra}
                )
            else:
                logs[level].append(message)
        return logs


def _picoflow_message(
    turn: Turn, clock: _Clock, variant: PicoflowVariant, *, user_name: str
) -> dict[str, Any]:
    kind = _MESSAGE_TYPES[turn.role]
    msg: dict[str, Any] = {
        "type": kind,
        "content": turn.text,
        "id": f"{turn.step}|{clock.iso(turn.at)}|{turn.nonce}",
    }
    if variant.v15:
        msg["timestamp"] = clock.iso(turn.at)
        if kind == "human":
            msg["name"] = user_name
    if kind == "human":
        msg["additional_kwargs"] = {"direct": False}
    elif kind == "ai" and turn.calls:
        msg["tool_calls"] = [{"name": c.name, "args": c.args, "id": c.id} for c in turn.calls]
    elif kind == "tool" and turn.call is not None:
        if turn.stop_tool:
            msg["additional_kwargs"] = {"stopTool": True}
        msg["tool_call_id"] = turn.call.id
        msg["status"] = "success" if turn.call.ok else "error"
        msg["name"] = turn.call.name
    return msg


def _picoflow_v15(parts: _PicoflowParts, *, session_id: str, revision: int) -> bytes:
    conv, clock = parts.conversation, parts.clock
    flow_model = conv.flow_model
    memory: dict[str, Any] = {}
    for namespace, messages in parts.namespaces.items():
        memory[namespace] = {"messages": messages}
        if len(messages) > 120:  # the engine summarises long memory and keeps the recent part
            memory[namespace]["summary"] = (
                f"{len(messages) - 40} earlier messages summarised: alerts triaged and "
                "routed; no open sev1."
            )
            memory[namespace]["summarizedThroughId"] = messages[-41]["id"]
    inp, out = parts.tokens
    reasoning = out // 5 if flow_model == "gpt-4.1" else 0
    entry_step = conv.sequence[0][1] if conv.sequence else None
    doc: dict[str, Any] = {
        "id": session_id,
        "revision": revision,
        "version": 1.5,
        "runStatus": parts.status,
        "createdOn": clock.iso(0),
        "saveOn": clock.iso(parts.upto),
        "flow": {
            "name": conv.flow,
            "model": {
                "provider": provider_of(flow_model),
                "name": flow_model,
                "params": {"temperature": 0.2},
                "retryAttempts": 2,
            },
            "context": {"config": {"locale": "en-GB", "channel": "web"}},
            "memory": memory,
            "steps": parts.steps(),
            "currentStep": parts.active,
            "sequence": [
                {"level": 1 if step == entry_step else 2, "stepName": step}
                for at, step in conv.sequence
                if at <= parts.upto
            ],
        },
        "tokens": {
            "inputTokens": inp,
            "outputTokens": out + reasoning,
            "totalTokens": inp + out + reasoning,
            "reasoningTokens": reasoning,
            "visibleOutputTokens": out,
            "cachedInputTokens": int(inp * 0.55),
            "cacheCreationInputTokens": 1024 if flow_model.startswith("claude") else 0,
        },
        **parts.logs(),
    }
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


def _picoflow_v1(
    parts: _PicoflowParts, *, session_id: str, expire_after: int, survey: int | None
) -> bytes:
    conv, variant = parts.conversation, parts.variant
    export = variant.mongo_export
    flow: dict[str, Any] = {
        "name": conv.flow,
        "memory": [
            {"nameSpace": namespace, "history": history}
            for namespace, history in parts.namespaces.items()
        ],
        "steps": parts.steps(),
        "context": {"config": {"store": "north", "channel": "web"} if export else None},
    }
    if export:
        flow["temperature"] = -1
    else:
        flow["sequence"] = [step for at, step in conv.sequence if at <= parts.upto]
    flows = [flow]
    saved = parts.upto
    if survey is not None:
        saved = parts.upto + 2
        flows.append(_survey_flow(parts, at=saved, nonce=survey))
    inp, out = parts.tokens
    doc = {
        "_id": {"$oid": session_id} if export else session_id,
        "id": session_id,
        "version": 1,
        "runStatus": parts.status,
        "createdOn": parts.date(0),
        "saveOn": parts.date(saved),
        "expireAfter": expire_after,
        "tokens": {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out},
        "flows": flows,
        **parts.logs(),
    }
    if export:  # mongoexport writes one line per document
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


def _survey_flow(parts: _PicoflowParts, *, at: float, nonce: int) -> dict[str, Any]:
    clock = parts.clock
    return {
        "name": "SurveyFlow",
        "memory": [
            {
                "nameSpace": "survey",
                "history": [
                    {
                        "type": "ai",
                        "content": "How would you rate this conversation from 1 to 5?",
                        "id": f"{_SURVEY_STEP}|{clock.iso(at)}|{nonce}",
                    }
                ],
            }
        ],
        "steps": [
            {
                "name": _SURVEY_STEP,
                "isActive": True,
                "state": {"_saveOn": parts.date(at)},
                "modelName": "gpt-4o-mini",
                "temperature": -1,
            }
        ],
        "context": {"config": None},
    }


# --- OpenAI chat ------------------------------------------------------------------------------


def write_openai_chat(
    conversation: Conversation,
    *,
    session_id: str,
    start: datetime,
    saved_turns: int | None = None,
    model: str | None = None,
    model_dump: bool = False,
) -> bytes:
    """The chat-completions transcript after the first ``saved_turns`` turns (default: all).

    ``model_dump`` writes assistant messages as ``ChatCompletionMessage.model_dump()`` does,
    with every optional key.
    """
    turns = conversation.turns[:saved_turns]
    messages: list[dict[str, Any]] = []
    for turn in turns:
        if turn.role in ("system", "user"):
            messages.append({"role": turn.role, "content": turn.text})
        elif turn.role == "tool" and turn.call is not None:
            messages.append({"role": "tool", "tool_call_id": turn.call.id, "content": turn.text})
        else:
            text = turn.text if isinstance(turn.text, str) else json.dumps(turn.text)
            msg: dict[str, Any] = {"role": "assistant", "content": text or None}
            if model_dump:
                msg.update(refusal=None, annotations=[], audio=None, function_call=None)
            if turn.calls:
                msg["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {
                            "name": c.name,
                            "arguments": json.dumps(c.args, ensure_ascii=False),
                        },
                    }
                    for c in turn.calls
                ]
            elif model_dump:
                msg["tool_calls"] = None
            messages.append(msg)
    inp, out = conversation.tokens(turns)
    doc = {
        "id": session_id,
        "model": model or conversation.flow_model,
        "user": conversation.user,
        "created": int(start.timestamp()),
        "metadata": {"app": conversation.app, "env": "production"},
        "messages": messages,
        "usage": {
            "prompt_tokens": inp,
            "completion_tokens": out,
            "total_tokens": inp + out,
            "prompt_tokens_details": {"cached_tokens": int(inp * 0.4) // 128 * 128},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
