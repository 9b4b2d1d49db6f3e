"""An agent loop against the Session Observatory: load the session, append a turn, save with
If-Match, and on a 412 reload and re-apply the turn (never overwriting someone else's save).

    export OBSERVATORY_URL=http://127.0.0.1:8000
    export OBSERVATORY_API_KEY=$(python manage.py create_api_key --name demo-agent \\
        --scopes ingest,read,write | tail -n 1)
    python clients/python/example_agent_loop.py --create picoflow --turns 3 --simulate-conflict

``--session ID`` continues an existing session instead of creating one. ``--create`` needs the
``ingest`` scope as well. The "model" here is a stub that answers in the framework's message
shape; a real agent calls its model where ``reply_to`` is.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from session_observatory_client import (
    LoadedSession,
    Patch,
    PreconditionFailed,
    SessionObservatoryClient,
)

QUESTIONS = [
    "Which hotels are near the old town?",
    "Is breakfast included?",
    "Book the second one for two nights, please.",
    "Can you send me the confirmation?",
]


def now_iso() -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_document(kind: str) -> dict[str, Any]:
    """A fresh session document in the framework's own shape."""
    session_id = f"example-agent-{uuid.uuid4().hex[:12]}"
    if kind == "openai_chat":
        return {
            "session_id": session_id,
            "variables": {"turns": 0},
            "messages": [{"role": "system", "content": "You are a travel assistant."}],
        }
    stamp = now_iso()
    return {
        "id": session_id,
        "revision": 1,
        "version": 1.5,
        "runStatus": "running",
        "createdOn": stamp,
        "saveOn": stamp,
        "flow": {
            "name": "ExampleFlow",
            "model": {"provider": "openai", "name": "gpt-4o-mini", "params": {}},
            "context": {"config": None},
            "memory": {"Chat": {"messages": []}},
            "steps": [{"name": "Chat", "state": {"_saveOn": stamp, "turns": 0}}],
            "currentStep": "Chat",
            "sequence": [{"level": 1, "stepName": "Chat"}],
        },
        "log": [],
        "error": [],
        "warn": [],
        "debug": [],
        "verbose": [],
    }


def reply_to(question: str) -> str:
    return f"(stub model) You asked: {question!r}. Here is my answer."


def turn_messages(kind: str, question: str, answer: str) -> list[dict[str, Any]]:
    """One user message and the reply, in the session format's own message shape."""
    if kind == "openai_chat":
        return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    if kind == "langchain":
        return [{"type": "human", "content": question}, {"type": "ai", "content": answer}]
    # Picoflow: LangChain-serialised messages with "<step>|<ISO time>|<10 digits>" ids.
    stamp = now_iso()
    return [
        {"type": "human", "content": question, "id": picoflow_id(stamp), "timestamp": stamp},
        {"type": "ai", "content": answer, "id": picoflow_id(stamp), "timestamp": stamp},
    ]


def picoflow_id(stamp: str, step: str = "Chat") -> str:
    return f"{step}|{stamp}|{random.randrange(10**9, 10**10)}"


def turns_so_far(session: LoadedSession, kind: str) -> int:
    doc = session.document
    if kind == "openai_chat":
        return int((doc.get("variables") or {}).get("turns", 0))
    if kind == "picoflow" and isinstance(doc.get("flow"), dict):
        for step in doc["flow"].get("steps", []):
            if step.get("name") == doc["flow"].get("currentStep"):
                return int((step.get("state") or {}).get("turns", 0))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url", default=os.environ.get("OBSERVATORY_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--api-key", default=os.environ.get("OBSERVATORY_API_KEY", ""))
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--session", help="the id of an existing session to continue")
    group.add_argument("--create", choices=["picoflow", "openai_chat"], help="start a new one")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument(
        "--simulate-conflict",
        action="store_true",
        help="let a second writer save between our load and our save, to show the 412 retry",
    )
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("pass --api-key or set OBSERVATORY_API_KEY")
    client = SessionObservatoryClient(args.base_url, args.api_key)

    if args.create:
        created = client.ingest(new_document(args.create))
        session_id = created["id"]
        print(f"created session {session_id} ({created['format']}, version {created['version']})")
    else:
        session_id = args.session
    kind = client.session(session_id)["format"]
    if kind not in ("picoflow", "openai_chat", "langchain"):
        print(f"this example speaks picoflow, openai_chat and langchain, not {kind}")
        return 2

    for turn in range(1, args.turns + 1):
        question = QUESTIONS[(turn - 1) % len(QUESTIONS)]
        answer = reply_to(question)
        for attempt in range(1, 6):
            session = client.load(session_id)
            done = turns_so_far(session, kind)
            print(f"turn {turn}: loaded version {session.version} (ETag {session.etag})")
            if args.simulate_conflict and turn == 1 and attempt == 1:
                other = client.append(
                    session_id,
                    etag=session.etag,
                    reason="another writer (simulated)",
                    state={"note_from_other_writer": "hello"},
                )
                print(f"  another writer saved version {other.version} meanwhile")
            patch = Patch(
                messages=turn_messages(kind, question, answer),
                state={"turns": done + 1, "last_question": question},
            )
            try:
                saved = client.patch(
                    session_id, patch, etag=session.etag, reason=f"agent turn {turn}"
                )
            except PreconditionFailed as conflict:
                changed = [op.get("path") for op in (conflict.diff or [])][:5]
                print(
                    f"  412: the session is at {conflict.current_etag} now "
                    f"(changed: {', '.join(changed) or 'unknown'}); reloading and re-applying"
                )
                continue
            print(f"  saved version {saved.version} (ETag {saved.etag}, audit #{saved.audit_id})")
            break
        else:
            print("gave up after 5 conflicts in a row")
            return 1

    # Finish with a whole-document save (PUT) guarded by If-Match, as an agent that keeps its
    # own copy of the document would.
    final = client.load(session_id)
    document = final.document
    if kind == "picoflow":
        document["runStatus"] = "completed"
        document["revision"] = int(document.get("revision") or 0) + 1
        document["saveOn"] = now_iso()
    elif kind == "openai_chat":
        document.setdefault("variables", {})["finished"] = True
    saved = client.save(session_id, document, etag=final.etag, reason="agent finished")
    print(f"final PUT: version {saved.version} (changed={saved.changed})")
    history = client.audit(session_id, limit=10)
    print("audit log, newest first:")
    for entry in history:
        when, action, actor = entry["created_at"], entry["action"], entry["actor"]
        print(f"  {when}  {action:<14} {actor:<32} {entry['reason']}")
    print(f"done: {args.base_url}/sessions/{session_id}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
