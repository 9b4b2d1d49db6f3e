"""Editing fixtures: documents per format, sessions, actors, users and clients per role."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from sessions_api.editing.values import Actor
from sessions_api.ingest import services
from tests import factories

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EDITOR = Actor(label="user:test-editor")

# One document per editable shape, with the parts the editors offer (docs/EDITING.md, "What can
# be edited, per format").
EDITABLE_FIXTURES = {
    "picoflow/v1_5_trip.json": "picoflow",
    "picoflow/v1_ext_two_flows.json": "picoflow",
    "picoflow/v1_plain_structured.json": "picoflow",
    "langchain/thread_state.json": "langchain",
    "langchain/content_blocks_envelope.json": "langchain",
    "openai_chat/generic_seed.json": "openai_chat",
    "openai_chat/responses_usage.json": "openai_chat",
    "google_adk/session_snake.json": "google_adk",
    "google_adk/session_camel.json": "google_adk",
    "falai/session_state_v2.json": "falai",
    "falai/session_state_v1.json": "falai",
    "falai/prisma_agent_session_row.json": "falai",
    "falai/export_session_messages.json": "falai",
    "agentflow/export_bundle.json": "agentflow",
    "praisonai/agent_chat_run.json": "praisonai",
    "praisonai/praison-session-trip-0001.json": "praisonai",
}
READ_ONLY_FIXTURES = {
    "anthropic/messages_transcript.json": "anthropic",
    "openai_agents/session_items_envelope.json": "openai_agents",
    "langchain/state_history.json": "langchain",
    "langchain/shapes/state_history_envelope.json": "langchain",
    "agentflow/history.json": "agentflow",
    "falai/agent_message_rows.json": "falai",
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def now() -> datetime:
    return timezone.now().replace(microsecond=0)


def picoflow_body(session_id: str = "edit-me", *, now: datetime | None = None) -> bytes:
    """A Picoflow v1.5 document with two steps (the second current), a tool call in the second,
    and a revision."""
    return factories.document(
        "picoflow",
        variant="v1.5",
        session_id=session_id,
        started=(now or timezone.now()) - timedelta(minutes=30),
        flow="TripFlow",
        steps=("Search", "Book"),
        status="running",
        model="gpt-4o",
        tool_calls=1,
    )


def openai_chat_body(session_id: str = "chat-edit-me") -> bytes:
    return json.dumps(
        {
            "session_id": session_id,
            "variables": {"plan": "basic"},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
            ],
        }
    ).encode()


def langchain_body(thread_id: str = "lc-edit-me") -> bytes:
    doc = json.loads(fixture_bytes("langchain/thread_state.json"))
    doc["checkpoint"]["thread_id"] = thread_id
    if isinstance(doc.get("config"), dict):
        doc["config"].setdefault("configurable", {})["thread_id"] = thread_id
    return json.dumps(doc).encode()


@pytest.fixture
def ingest(db, now) -> Callable[..., str]:
    def make(body: bytes, **kwargs: Any) -> str:
        return services.ingest_document(body=body, now=kwargs.pop("at", now), **kwargs).id

    return make


@pytest.fixture
def picoflow_session(ingest, now) -> str:
    return ingest(picoflow_body(now=now))


@pytest.fixture
def chat_session(ingest) -> str:
    return ingest(openai_chat_body())


# --- users per role ---------------------------------------------------------------------------


def make_user(username: str, role: str | None) -> User:
    # No password: tests sign in with force_login (password hashing would dominate run time).
    user = User.objects.create_user(username, f"{username}@example.com")
    if role == "superuser":
        user.is_superuser = user.is_staff = True
        user.save()
    elif role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        if role == "admin":
            user.is_staff = True
            user.save()
    return user


@pytest.fixture
def user_for(db) -> Callable[[str | None], User]:
    def make(role: str | None) -> User:
        return make_user(f"u-{role or 'none'}", role)

    return make


@pytest.fixture
def client_for(user_for) -> Callable[[str | None], Client]:
    """client_for("editor") -> a logged-in client (CSRF is tested on its own)."""

    def make(role: str | None) -> Client:
        client = Client(enforce_csrf_checks=False)
        client.force_login(user_for(role))
        return client

    return make


@pytest.fixture
def editor_client(client_for) -> Client:
    return client_for("editor")
