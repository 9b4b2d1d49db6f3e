"""A tiny OpenAI-compatible model server on 127.0.0.1 for instrumented runs: no network, no
model. Chat completions and Responses both answer a conversation the same way: ask for the
``get_weather`` tool while the last input is not a tool result, then answer in text.

Every answer's usage is recorded in ``calls`` so a test can compare the stored session with
what the run really did.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "gpt-4o-mini-2024-07-18"


@dataclass
class Call:
    api: str  # "chat" or "responses"
    input_tokens: int
    output_tokens: int
    tool_call: str | None  # the city asked about, when the answer is a tool call


@dataclass
class FakeOpenAI:
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            number = len(self.calls) + 1
        if path.endswith("/chat/completions"):
            messages = body.get("messages") or []
            city = _city(str(messages[-1].get("content") or "")) if messages else "Paris"
            wants_tool = bool(messages) and messages[-1].get("role") != "tool"
            usage = (11 * len(messages), 7 if wants_tool else 9)
            reply = _chat_reply(number, city, wants_tool, messages, usage)
            api = "chat"
        else:
            items = body.get("input") or []
            if isinstance(items, str):
                items = [{"role": "user", "content": items}]
            last = items[-1] if items else {}
            wants_tool = last.get("type") != "function_call_output"
            city = _city(str(last.get("content") or "")) if wants_tool else ""
            usage = (13 * len(items), 5 if wants_tool else 8)
            reply = _responses_reply(number, city, wants_tool, last, usage)
            api = "responses"
        with self.lock:
            self.calls.append(Call(api, usage[0], usage[1], city if wants_tool else None))
        return reply


def _city(text: str) -> str:
    for city in ("Paris", "Oslo", "Berlin", "Lima"):
        if city in text:
            return city
    return "Paris"


def _usage_chat(usage: tuple[int, int]) -> dict[str, int]:
    return {
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
        "total_tokens": usage[0] + usage[1],
    }


def _chat_reply(number, city, wants_tool, messages, usage) -> dict[str, Any]:
    if wants_tool:
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{number}",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
                }
            ],
        }
        finish = "tool_calls"
    else:
        message = {
            "role": "assistant",
            "content": f"Here is the weather: {messages[-1]['content']}",
        }
        finish = "stop"
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 1_765_000_000 + number,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _usage_chat(usage),
    }


def _responses_reply(number, city, wants_tool, last, usage) -> dict[str, Any]:
    if wants_tool:
        output = [
            {
                "type": "function_call",
                "id": f"fc_{number}",
                "call_id": f"call_{number}",
                "name": "get_weather",
                "arguments": json.dumps({"city": city}),
                "status": "completed",
            }
        ]
    else:
        output = [
            {
                "type": "message",
                "id": f"msg_{number}",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {
                        "type": "output_text",
                        "text": f"Here is the weather: {last.get('output')}",
                        "annotations": [],
                    }
                ],
            }
        ]
    return {
        "id": f"resp_{number}",
        "object": "response",
        "created_at": 1_765_000_000 + number,
        "status": "completed",
        "model": MODEL,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": usage[0],
            "output_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            answer = json.dumps(fake.answer(self.path, body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
