#!/usr/bin/env python
"""Regenerate docs/screenshots/: start the app on a throwaway DATA_DIR with demo data, log in
with headless Chromium and capture every dashboard page.

    .venv/bin/python tests/support/screenshots.py [--out docs/screenshots] [--chromium PATH]

Needs Playwright for Python (a dev dependency) and a Chromium binary (Debian's `chromium`).
The app runs as a child process on 127.0.0.1 with SQLite under a temporary folder; nothing
touches your own database. Tooling for the docs, not part of the product.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Run as a script: make the project importable (the child also configures Django itself).
sys.path.insert(0, str(ROOT))
USERNAME = "demo-admin"
PASSWORD = "screenshots-only-password-1"
VIEWPORT = {"width": 1440, "height": 900}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    # Internal: run inside the child environment to migrate and load the demo data.
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare:
        _prepare()
        return
    if not Path(args.chromium).exists():
        sys.exit(f"no Chromium at {args.chromium} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("Playwright for Python is needed: pip install -e '.[dev]'")
    from tests.support.chromium import launch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="observatory-shots-") as data_dir:
        env = {
            **os.environ,
            "DATA_DIR": data_dir,
            "DATABASE_URL": "",
            "SESSION_STORE": "orm",
            "REDIS_URL": "",
            "DJANGO_DEBUG": "1",
        }
        print(f"preparing demo data in {data_dir} ...")
        subprocess.run([sys.executable, __file__, "--prepare"], env=env, check=True)
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(base + "/healthz")
            with sync_playwright() as playwright:
                browser = launch(playwright, args.chromium)
                try:
                    _capture(browser, base, out)
                finally:
                    browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"screenshots written to {out}")


def _capture(browser, base: str, out: Path) -> None:
    page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
    page.goto(base + "/accounts/login/")
    _shot(page, out, "login")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")

    page.goto(base + "/?range=24h")
    page.wait_for_selector(".js-plotly-plot svg.main-svg")
    page.wait_for_load_state("networkidle")
    _shot(page, out, "overview")
    _shot(page, out, "overview-full", full_page=True)

    page.goto(base + "/sessions/?range=7d")
    _shot(page, out, "sessions")

    page.goto(base + "/sessions/?has_errors=true&tool=&order=-tool_call_count")
    page.click("#sessions-table tbody tr:first-child a.session-link")
    page.wait_for_selector("#events .ev")
    _shot(page, out, "session-detail")
    detail_url = page.url.split("?")[0].split("#")[0]
    error_tool = page.locator(".ev-tool.status-error").first
    if error_tool.count():
        error_tool.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -200)")
        _shot(page, out, "session-tool-error")
    page.goto(detail_url + "raw/")
    _shot(page, out, "session-raw")
    # The diff view, on the session made with two versions in _prepare.
    page.goto(base + "/sessions/?q=pf-versions-demo")
    page.click("#sessions-table tbody tr:first-child a.session-link")
    page.wait_for_selector("#events .ev")
    page.goto(page.url.split("?")[0].split("#")[0] + "versions/")
    _shot(page, out, "session-versions")

    page.goto(base + "/errors/?range=7d")
    _shot(page, out, "errors")
    page.goto(base + "/prices/")
    _shot(page, out, "prices")
    page.close()


def _shot(page, out: Path, name: str, *, full_page: bool = False) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"  {path} ({path.stat().st_size // 1024} KB)")


def _prepare() -> None:
    """Runs in the child environment: schema, demo data, prices, a login."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_demo")
    _add_versions_and_edge_cases()
    call_command("seed_prices")
    user_model = get_user_model()
    if not user_model.objects.filter(username=USERNAME).exists():
        user_model.objects.create_superuser(USERNAME, "demo@example.com", PASSWORD)


def _add_versions_and_edge_cases() -> None:
    """A session with two versions (for the diff view) beside whatever the demo holds."""
    from django.utils import timezone

    from sessions_api.ingest import services
    from tests.support import sample_data

    now = timezone.now()
    turns = [
        sample_data.Turn(
            user="Find a hotel in Lisbon for three nights",
            reply="Searching now.",
            tools=[
                sample_data.ToolSpec(
                    name="search_hotels",
                    args={"city": "Lisbon", "nights": 3},
                    result="search backend returned 503",
                    status="error",
                )
            ],
        )
    ]
    started = now - timedelta(minutes=20)
    for revision, extra in ((1, []), (2, [sample_data.Turn(user="Try again", reply="Found 12.")])):
        body = sample_data.picoflow_document(
            session_id="pf-versions-demo",
            flow="HotelFlow",
            status="running" if revision == 1 else "completed",
            model="gpt-4o",
            started=started,
            turns=turns + extra,
            revision=revision,
            seconds_per_message=20,
        )
        services.ingest_document(body=body, source="demo", now=now)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    sys.exit(f"the app did not come up at {url}")


if __name__ == "__main__":
    main()
