"""Dashboard fixtures: a small known data set, logged-in clients per role, a price table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from sessions_api.analytics import pricing
from sessions_api.ingest import services
from sessions_api.sessions import selectors
from tests.support import sample_data
from tests.support.sample_data import ToolSpec, Turn


@dataclass
class KnownData:
    now: datetime
    a: str  # completed TripFlow on gpt-4o, one tool error
    b: str  # aborted SupportFlow on claude-sonnet-4, a logged error
    c: str  # openai_chat for user ana on gpt-4o-2024-08-06 (priced by the gpt-4o prefix)
    old: str  # ten days old: outside every "last 24h" aggregate


def ingest(body: bytes, now: datetime) -> str:
    return services.ingest_document(body=body, source="demo", now=now).id


def make_known_data(now: datetime) -> KnownData:
    a = ingest(
        sample_data.picoflow_document(
            session_id="known-a",
            flow="TripFlow",
            status="completed",
            model="gpt-4o",
            started=now - timedelta(hours=2),
            turns=[
                Turn(
                    user="Hotel and weather for Lisbon",
                    reply="Found hotels; the weather service failed.",
                    tools=[
                        ToolSpec("search_hotels", {"city": "Lisbon"}, '{"hotels": 3}'),
                        ToolSpec("get_weather", {"city": "Lisbon"}, "timeout", status="error"),
                    ],
                )
            ],
            tokens=(1000, 200),
            cached=400,
            seconds_per_message=10,
        ),
        now,
    )
    b = ingest(
        sample_data.picoflow_document(
            session_id="known-b",
            flow="SupportFlow",
            status="aborted",
            model="claude-sonnet-4",
            started=now - timedelta(minutes=30),
            turns=[Turn(user="Where is my order?", reply="Let me check.")],
            tokens=(2000, 500),
            errors=["upstream model returned 500"],
            warnings=["retrying"],
            seconds_per_message=5,
        ),
        now,
    )
    c = ingest(
        sample_data.openai_chat_document(
            conv_id="known-c",
            user="ana",
            model="gpt-4o-2024-08-06",
            created=now - timedelta(hours=3),
            turns=[Turn(user="Hi", reply="Hello!")],
            tokens=(800, 150),
        ),
        now - timedelta(minutes=1),
    )
    old = ingest(
        sample_data.picoflow_document(
            session_id="known-old",
            flow="TripFlow",
            status="completed",
            model="gpt-4o",
            started=now - timedelta(days=10),
            turns=[Turn(user="old", reply="old")],
            tokens=(5000, 5000),
        ),
        now,
    )
    return KnownData(now=now, a=a, b=b, c=c, old=old)


def ingest_two_versions(session_id: str, now: datetime) -> Iterator[str]:
    """A running session saved twice: version 1 holds one turn, version 2 adds a second
    ("second question"); yields the session's id after each save."""
    turns = [Turn("first question", "first answer")]
    for revision, extra in ((1, []), (2, [Turn("second question", "second answer")])):
        body = sample_data.picoflow_document(
            session_id=session_id,
            flow="F",
            status="running",
            model="gpt-4o",
            started=now - timedelta(minutes=10),
            turns=turns + extra,
            revision=revision,
        )
        yield services.ingest_document(body=body, now=now).id


def seed_test_prices() -> None:
    for model, inp, cached, out in (
        ("gpt-4o", "2.50", "1.25", "10.00"),
        ("claude-sonnet-4", "3.00", "0.30", "15.00"),
    ):
        pricing.save_price(
            model=model,
            input_per_mtok=Decimal(inp),
            cached_input_per_mtok=Decimal(cached),
            output_per_mtok=Decimal(out),
            effective_from=date(2025, 1, 1),
        )


@pytest.fixture
def now() -> datetime:
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def known(db, now) -> KnownData:
    seed_test_prices()
    return make_known_data(now)


def _user(username: str, *, group: str | None = None, superuser: bool = False) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", "pw-for-tests-123")
    if superuser:
        user.is_superuser = user.is_staff = True
        user.save()
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def viewer(db) -> User:
    return _user("vera", group="viewer")


@pytest.fixture
def admin_user(db) -> User:
    return _user("adam", group="admin")


@pytest.fixture
def viewer_client(viewer) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def admin_client_(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def record_of(session_id: str):
    return selectors.get_session(session_id=session_id)
