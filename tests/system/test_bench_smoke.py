"""The benchmark suite's smoke mode: every benchmark runs tiny and writes its JSON.

Nothing about time is asserted (benchmarks, not timed tests). The smoke run
starts its own gunicorn on 127.0.0.1 and a temporary DATA_DIR, and stops it by PID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12")
KEYS = {
    "benchmark",
    "title",
    "target",
    "runs",
    "median",
    "p50",
    "p95",
    "p99",
    "peak_rss_mb",
    "ratios",
    "target_met",
    "machine",
    "git_commit",
}

# Nothing here is timed, so it may run beside other tests (bin/test runs it on both cores).
pytestmark = [pytest.mark.slow, pytest.mark.parallel_safe]


def test_smoke_run_writes_every_benchmark(tmp_path):
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The bench makes its own databases: never the suite's (bin/test runs it with
    # DATABASE_URL pointing at PostgreSQL on its second pass).
    for name in (
        "DJANGO_SETTINGS_MODULE",
        "DATA_DIR",
        "DATABASE_URL",
        "SESSION_STORE",
        "REDIS_URL",
        "MONGODB_URL",
    ):
        env.pop(name, None)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    summaries = list(out.glob("*.summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["smoke"] is True
    assert summary["failures"] == {}
    for key in BENCHMARKS:
        files = list(out.glob(f"*.{key}.json"))
        assert len(files) == 1, f"{key} wrote no JSON"
        data = json.loads(files[0].read_text())
        missing = KEYS - data.keys()
        assert not missing, f"{key} lacks {sorted(missing)}"
        assert data["benchmark"] == key
        assert data["machine"]["cores"]
        assert isinstance(data["target_met"], dict) and data["target_met"]
