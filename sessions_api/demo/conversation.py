"""The conversation every demo writer reads: turns on a time axis, tool calls, steps, state, logs.

A scenario script (``scenarios.py``) or a test factory fills one in; a writer (``writers.py``)
turns it into the document a framework would save. Times are seconds after the conversation
started, so one conversation can be written at any start time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCall:
    id: str
    name: str
    args: dict[str, Any]
    ok: bool = True
    result: str = ""


@dataclass
class Turn:
    role: str  # system | user | assistant | tool
    step: str
    at: float  # seconds after the conversation started
    text: Any = ""  # str, or a dict for a structured-output step
    calls: list[ToolCall] = field(default_factory=list)
    call: ToolCall | None = None  # for a tool turn: the call it answers
    # Fixed when the turn is made, so every saved version carries the same message id.
    nonce: int = 0
    stop_tool: bool = False


@dataclass
class Conversation:
    flow: str
    user: str
    user_name: str
    step_models: dict[str, str]  # "*": the flow's own model; a step may use another
    turns: list[Turn] = field(default_factory=list)
    # (at, step): step activations in order, repeats allowed
    sequence: list[tuple[float, str]] = field(default_factory=list)
    # (at, step, key, value): collected step state
    state: list[tuple[float, str, str, Any]] = field(default_factory=list)
    # (at, level, message, extra)
    logs: list[tuple[float, str, str, dict[str, Any]]] = field(default_factory=list)
    # turn count after each finished exchange: where an earlier save may cut the document
    checkpoints: list[int] = field(default_factory=list)
    status: str = "completed"
    app: str = ""
    namespace: str = "default"  # the memory namespace a step's messages go to ...
    step_namespaces: dict[str, str] = field(default_factory=dict)  # ... unless named here
    csat_survey: bool = False  # a short survey follows a completed run (v1-ext writes it)
    context_window: int = 60  # messages each model call reads (the engine trims memory)
    # What the document reports as (input, output) tokens; None: estimated from the text.
    reported_tokens: tuple[int, int] | None = None

    @property
    def flow_model(self) -> str:
        return self.step_models["*"]

    @property
    def duration(self) -> float:
        return self.turns[-1].at if self.turns else 0.0

    def namespace_of(self, step: str) -> str:
        return self.step_namespaces.get(step, self.namespace)

    def tokens(self, turns: list[Turn]) -> tuple[int, int]:
        """(input, output) tokens of a document holding ``turns``."""
        if self.reported_tokens is not None:
            return self.reported_tokens
        return estimate_usage(turns, window=self.context_window)


def _tokens_of(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4) + 4


def estimate_usage(turns: list[Turn], *, window: int = 60) -> tuple[int, int]:
    """(input, output) tokens: each model call reads the recent context and writes its turn."""
    context: list[int] = []
    inp = out = 0
    for turn in turns:
        size = _tokens_of(turn.text) + sum(_tokens_of(c.args) + 8 for c in turn.calls)
        if turn.role == "assistant":
            inp += 350 + sum(context[-window:])  # tool schemas + the window the engine keeps
            out += size
        context.append(size)
    return inp, out
