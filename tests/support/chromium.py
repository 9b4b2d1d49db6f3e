"""Headless Chromium: where it is, how it is launched, and one per module for the browser tests.

A module that drives a browser calls :func:`require_playwright` at import (it skips the module
with the reason when Chromium or Playwright is absent) and imports the ``browser`` fixture.
The screenshot script and the benchmark's browser timing launch it with :func:`launch` too;
:func:`watched_page` is a signed-in page that fails the test on any script problem, and
:func:`signed_in_page` one for a new user of a group.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright: Any, executable: Path | str = CHROMIUM) -> Any:
    """A headless Chromium from a started Playwright, without the sandbox or any background
    traffic (updates, sync), so runs on a build machine are quiet and comparable."""
    return playwright.chromium.launch(executable_path=str(executable), args=ARGS)


@contextmanager
def watched_page(
    browser: Any,
    *,
    base_url: str,
    session_cookie: str,
    viewport: dict[str, int],
    expected_console_errors: tuple[str, ...] = (),
) -> Iterator[Any]:
    """A page signed in with ``session_cookie`` that records every dialog, page error, console
    error and Content Security Policy report in ``page.problems``, and fails the test at the
    end if there was any. ``expected_console_errors``: texts of console errors a test causes on
    purpose (Chromium logs any 4xx document as one). ``page.base`` is ``base_url``."""
    context = browser.new_context(viewport=viewport)
    context.add_cookies([{"name": "sessionid", "value": session_cookie, "url": base_url}])
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(msg: Any) -> None:
        expected = any(text in msg.text for text in expected_console_errors)
        if (msg.type == "error" and not expected) or "Content Security Policy" in msg.text:
            problems.append(f"console: {msg.text}")

    page.on("console", on_console)
    page.problems = problems
    page.base = base_url
    yield page
    context.close()
    assert problems == [], problems


@contextmanager
def signed_in_page(
    browser: Any,
    live_server: Any,
    *,
    username: str,
    group: str,
    height: int = 900,
    expected_console_errors: tuple[str, ...] = (),
) -> Iterator[Any]:
    """A :func:`watched_page` on ``live_server`` signed in as a new user of ``group`` (viewer,
    editor or admin), 1440 pixels wide."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user = User.objects.create_user(username, f"{username}@example.com", "pw-for-tests-123")
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    client = Client()
    client.force_login(user)
    with watched_page(
        browser,
        base_url=live_server.url,
        session_cookie=client.cookies["sessionid"].value,
        viewport={"width": 1440, "height": height},
        expected_console_errors=expected_console_errors,
    ) as page:
        yield page


def require_playwright() -> ModuleType:
    """Playwright's sync API, or a skip of the calling module that says what is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM}", allow_module_level=True)
    return pytest.importorskip(
        "playwright.sync_api", reason="browser tests need Playwright for Python"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself are still synchronous and safe.
    sync_api = require_playwright()
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            launched = launch(playwright)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
