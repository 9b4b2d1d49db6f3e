"""Headless Chromium: where it is, how it is launched, and one per module for the browser tests.

A module that drives a browser calls :func:`require_playwright` at import (it skips the module
with the reason when Chromium or Playwright is absent) and imports the ``browser`` fixture.
The screenshot script and the benchmark's browser timing launch it with :func:`launch` too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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
