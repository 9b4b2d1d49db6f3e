"""What a durable 2xx costs: ingest throughput with SQLite ``synchronous=FULL`` (the embedded
store's setting: a commit is on disk before the answer) against ``NORMAL`` (a commit may be lost
to an OS crash or power cut, though never corrupted).

Each mode runs in a fresh process with its own DATA_DIR: migrate, then ingest ``--documents``
chat transcripts one ingest (one transaction, one commit) at a time through
``services.ingest_document``, as the API does. ``python -m bench.durability [--documents N]
[--runs R] [--out PATH]`` prints, and writes as JSON, the median documents per second of each
mode and the cost of FULL in percent. Results: docs/BENCHMARKS.md, "Durability".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, write_json


def _one_mode(mode: str, documents: int) -> float:
    """In this process: documents per second with the connection at ``synchronous=mode``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.datagen import chat_document
    from sessions_api.ingest import services

    call_command("migrate", verbosity=0, interactive=False)
    bodies = [
        chat_document(messages=12, session_id=f"durability-{n:06d}", seed=n)
        for n in range(documents)
    ]
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA synchronous={mode}")
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == {"NORMAL": 1, "FULL": 2}[mode]
    start = time.perf_counter()
    for body in bodies:
        services.ingest_document(body=body)
    return documents / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.durability")
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "durability.json")
    parser.add_argument("--child", choices=["NORMAL", "FULL"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps({"docs_per_s": _one_mode(args.child, args.documents)}))
        return 0
    rates: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
    for _ in range(args.runs):
        for mode in rates:  # interleaved, so machine load drifts hit both alike
            with tempfile.TemporaryDirectory(prefix="bench-durability-") as data_dir:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.durability",
                        "--child",
                        mode,
                        "--documents",
                        str(args.documents),
                    ],
                    cwd=ROOT,
                    env={**os.environ, "DATA_DIR": data_dir, "REDIS_URL": "", "DATABASE_URL": ""},
                    check=True,
                    capture_output=True,
                    text=True,
                )
                rates[mode].append(json.loads(out.stdout.strip().splitlines()[-1])["docs_per_s"])
    normal = statistics.median(rates["NORMAL"])
    full = statistics.median(rates["FULL"])
    result = {
        "documents": args.documents,
        "runs": args.runs,
        "docs_per_s_normal_runs": [round(r, 1) for r in rates["NORMAL"]],
        "docs_per_s_full_runs": [round(r, 1) for r in rates["FULL"]],
        "docs_per_s_normal": round(normal, 1),
        "docs_per_s_full": round(full, 1),
        "full_cost_percent": round(100 * (1 - full / normal), 1),
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
