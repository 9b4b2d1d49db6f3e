"""The demo data set: which sessions, when they arrived, and every version each one saved.

``generate_documents`` is pure: for a fixed ``seed`` and ``now`` it returns the same documents,
byte for byte (stdlib ``random.Random(seed)`` only, no clock, no uuid4). It writes raw documents
in the shapes the real frameworks save (Picoflow v1-ext / v1-plain / v1.5, and OpenAI chat
transcripts), spread over the last ``days`` days so the dashboard looks alive:

- customer support, travel booking and incident triage flows, and data-analysis chats, with
  tool calls that succeed and fail, step state, several models, tokens, expiry and log entries;
- Picoflow sessions mostly completed, some aborted, some running (a few active in the last hour);
- a few long sessions (200+ messages), one of about 2,000 messages, some non-ASCII text, and one
  session whose messages carry HTML/JS payloads (the UI must show them as text);
- some sessions saved two or three times (a shorter document, then a longer one with the same
  id), so version lists are not trivial.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sessions_api.demo import writers
from sessions_api.demo.conversation import Conversation
from sessions_api.demo.scenarios import converse, message_nonce, seeded_uuid

DEFAULT_COUNT = 300
DEFAULT_DAYS = 14
DEFAULT_SEED = 1729

V1_EXT, V1_PLAIN, V1_5 = (writers.V1_EXT.name, writers.V1_PLAIN.name, writers.V1_5.name)
CHAT = "chat-completions"


@dataclass(frozen=True)
class DemoDocument:
    """One document as a client would send it, and when it would have arrived."""

    body: bytes
    format_id: str
    variant: str
    key: str  # the session's own id inside the document
    received_at: datetime
    scenario: str


@dataclass(frozen=True)
class _Plan:
    scenario: str
    variant: str
    status: str
    length: int  # exchanges after the opening
    fresh: bool = False  # running and active in the last hour
    versions: int = 1
    special: str = ""


def _plans(rng: random.Random, count: int) -> list[_Plan]:
    specials = [
        _Plan("support", V1_PLAIN, "completed", 2, special="xss"),
        _Plan("triage", V1_5, "running", 0, fresh=True, special="alert-stream"),
        _Plan("analysis", CHAT, "completed", 48, versions=2, special="long"),
        _Plan("support", V1_EXT, "completed", 55, special="long"),
        _Plan("booking", V1_5, "running", 60, fresh=True, special="long"),
        _Plan("booking", V1_EXT, "running", 3, fresh=True),
        _Plan("support", V1_PLAIN, "running", 2, fresh=True, versions=2),
        _Plan("analysis", CHAT, "completed", 3, versions=3),
    ]
    plans = specials[:count]
    while len(plans) < count:
        roll = rng.random()
        if roll < 0.38:
            variant, scenario = (
                CHAT,
                rng.choice(["analysis"] * 4 + ["support"] * 3 + ["booking"] * 3),
            )
        else:
            variant = rng.choice([V1_EXT, V1_PLAIN, V1_PLAIN, V1_5, V1_5])
            scenario = rng.choice(["support"] * 4 + ["booking"] * 3 + ["triage"] * 3)
        status = rng.choices(["completed", "running", "aborted"], weights=[75, 12, 13])[0]
        if variant == CHAT:
            status = "completed"  # transcripts have no status; "aborted" scripts still apply
            if rng.random() < 0.1:
                status = "aborted"
        length = rng.choice([0, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 8, 12])
        versions = rng.choices([1, 2, 3], weights=[80, 14, 6])[0]
        plans.append(
            _Plan(
                scenario,
                variant,
                status,
                length,
                fresh=status == "running" and rng.random() < 0.25,
                versions=versions,
            )
        )
    return plans


def generate_documents(
    *,
    now: datetime,
    count: int = DEFAULT_COUNT,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
) -> list[DemoDocument]:
    """Every version of every demo session, oldest arrival first. Pure: same arguments, same
    bytes."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rng = random.Random(seed)
    window = timedelta(days=days).total_seconds()
    documents: list[DemoDocument] = []
    for plan in _plans(rng, count):
        conv = converse(
            rng,
            scenario=plan.scenario,
            status=plan.status,
            exchanges=plan.length,
            special=plan.special,
        )
        duration = conv.duration
        if plan.fresh:
            end = now - timedelta(seconds=rng.uniform(60, 55 * 60))
        else:
            # Busier in working hours: pick a day, then an hour weighted toward 8-19 UTC.
            day = rng.randrange(days)
            hour = rng.choices(range(24), weights=[1] * 7 + [4] * 12 + [2] * 5)[0]
            base = (now - timedelta(days=day)).replace(hour=hour, minute=0, second=0, microsecond=0)
            end = base + timedelta(seconds=rng.uniform(0, 3600) + duration)
            latest = now - timedelta(minutes=70 if plan.status == "running" else 3)
            earliest = now - timedelta(seconds=window) + timedelta(seconds=duration)
            while end > latest:  # that hour has not come yet today: take it a day earlier
                end -= timedelta(days=1)
            end = min(max(end, earliest), latest)
        start = end - timedelta(seconds=duration)
        start = start.replace(microsecond=start.microsecond // 1000 * 1000)

        session_id = (
            str(seeded_uuid(rng)) if plan.variant in (V1_5, CHAT) else rng.randbytes(12).hex()
        )
        if plan.variant == CHAT:
            session_id = "conv_" + session_id.replace("-", "")[:24]
        elif plan.variant != V1_5:
            # An ObjectId: creation time in its first 4 bytes.
            session_id = f"{int(start.timestamp()):08x}" + session_id[8:]
        final_revision = rng.randrange(plan.versions + 2, 40)
        expire_after = rng.choice([50000, 50000, 86400, 604800, 2592000])
        model_dump = rng.random() < 0.5

        cuts = _version_cuts(rng, conv, plan.versions)
        for n, cut in enumerate(cuts, start=1):
            final = n == len(cuts)
            if plan.variant == CHAT:
                body = writers.write_openai_chat(
                    conv, session_id=session_id, start=start, saved_turns=cut, model_dump=model_dump
                )
            else:
                survey = (
                    final
                    and conv.csat_survey
                    and plan.variant == V1_EXT
                    and conv.status == "completed"
                )
                body = writers.write_picoflow(
                    conv,
                    variant=writers.PICOFLOW_VARIANTS[plan.variant],
                    session_id=session_id,
                    start=start,
                    saved_turns=cut,
                    final=final,
                    revision=final_revision - (len(cuts) - n),
                    expire_after=expire_after,
                    survey_nonce=message_nonce(rng) if survey else None,
                )
            last = start + timedelta(seconds=conv.turns[cut - 1].at)
            received = min(
                last
                + timedelta(
                    seconds=rng.uniform(0.2, 2.0) + (2 if final and conv.csat_survey else 0)
                ),
                now,
            )
            documents.append(
                DemoDocument(
                    body=body,
                    format_id=writers.OPENAI_CHAT if plan.variant == CHAT else writers.PICOFLOW,
                    variant=plan.variant,
                    key=session_id,
                    received_at=received,
                    scenario=plan.special or plan.scenario,
                )
            )
    documents.sort(key=lambda d: d.received_at)
    return documents


def _version_cuts(rng: random.Random, conv: Conversation, versions: int) -> list[int]:
    total = len(conv.turns)
    earlier = sorted({c for c in conv.checkpoints if 2 < c < total})
    picks = sorted(rng.sample(earlier, min(versions - 1, len(earlier))))
    return [*picks, total]
