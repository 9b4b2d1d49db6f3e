"""The smallest Picoflow v1.5 document the adapter reads as a whole session: one step named
``Step`` whose memory holds the messages, and empty logs. The job tests, the live-process
tests and the soak each fill it with their own messages."""

from __future__ import annotations

from typing import Any


def picoflow_v15(
    *,
    session_id: str,
    messages: list[dict[str, Any]],
    created: str,
    saved: str,
    flow: str,
    model: str,
    status: str = "running",
    **extra: Any,
) -> dict[str, Any]:
    """The document; ``created`` and ``saved`` are Picoflow timestamps (ISO text), ``extra``
    adds top-level keys (``tokens``, ``revision``)."""
    return {
        "id": session_id,
        "version": 1.5,
        "runStatus": status,
        "createdOn": created,
        "saveOn": saved,
        "flow": {
            "name": flow,
            "model": {"provider": "openai", "name": model},
            "memory": {"Step": {"messages": messages}},
            "steps": [{"name": "Step", "state": {}}],
            "currentStep": "Step",
        },
        "log": [],
        "error": [],
        "warn": [],
        "debug": [],
        "verbose": [],
        **extra,
    }
