"""bin/run, the README's first command: its help, and the demo served in production mode."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _with_ctrl_c(*command: str) -> list[str]:
    """``command`` started with SIGINT at its default, as from a terminal. A test run launched
    in the background of a non-interactive shell ignores SIGINT, every process it starts
    inherits that, and bash can neither trap nor reset a signal ignored on entry: bin/run would
    never see the Ctrl-C these tests send."""
    restore = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", restore, *command]


def test_bin_run_help_exits_zero_from_any_directory(tmp_path):
    done = subprocess.run(
        [str(ROOT / "bin" / "run"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "--reset-demo" in done.stdout
    assert "PORT" in done.stdout
    assert not (tmp_path / "var").exists()


@pytest.mark.slow
@pytest.mark.parallel_safe  # it checks what bin/run does, not how fast
def test_bin_run_serves_the_demo_in_production_mode_and_stops_its_children(tmp_path):
    """The README's first command, end to end: it comes up on the given port with DEBUG off and a
    generated secret kept private, answers, and Ctrl-C (SIGINT) leaves no process behind."""
    import os
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(DATA_DIR=str(tmp_path / "data"), PORT=str(port), PYTHONUNBUFFERED="1")
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(
        _with_ctrl_c(str(ROOT / "bin" / "run"), "--no-install"),
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while "is running" not in (tmp_path / "run.log").read_text():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.5)
        secret = tmp_path / "data" / "secret-key"
        assert secret.stat().st_mode & 0o777 == 0o600
        assert len(secret.read_text().strip()) >= 50
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:
            assert answer.status == 200
        # DEBUG off: an unknown page is the plain 404, not Django's debug page.
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/no-such-page/", timeout=10)
        assert missing.value.code == 404
        assert b"Django tried these URL patterns" not in missing.value.read()
        # Plain HTTP on loopback: no redirect to https, cookies usable without TLS.
        with urllib.request.urlopen(f"{base}/accounts/login/", timeout=10) as login:
            assert login.url.startswith("http://")
            assert "secure" not in (login.headers.get("Set-Cookie") or "").lower()
        web_log = (tmp_path / "data" / "log" / "web.log").read_text()
        assert '"logger":"observatory.access"' in web_log
        # The generated admin password is printed at creation, and example prices seeded.
        password = (tmp_path / "data" / "demo-admin-password").read_text().strip()
        assert f"password: {password}" in (tmp_path / "run.log").read_text()
        with sqlite3.connect(tmp_path / "data" / "observatory.sqlite3") as db:
            assert db.execute("SELECT count(*) FROM sessions_api_modelprice").fetchone()[0] > 0
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        log.close()
    assert proc.returncode == 0
    run_dir = tmp_path / "data"
    leftover = subprocess.run(
        ["pgrep", "-f", str(run_dir)], capture_output=True, text=True
    ).stdout.split()
    assert leftover == [], leftover

    # A second start never prints the password again: it says where it is kept.
    again_log = tmp_path / "again.log"
    with again_log.open("w") as out:
        again = subprocess.Popen(
            _with_ctrl_c(str(ROOT / "bin" / "run"), "--no-install"),
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 240
            while "is running" not in again_log.read_text():
                assert again.poll() is None, again_log.read_text()
                assert time.monotonic() < deadline, again_log.read_text()
                time.sleep(0.5)
        finally:
            os.killpg(again.pid, signal.SIGINT)
            again.wait(timeout=60)
    text = again_log.read_text()
    assert password not in text and "demo-admin-password" in text
