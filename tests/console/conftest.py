"""Browser fixtures: Playwright driving Debian's Chromium (never a downloaded browser), headless.

A missing Chromium is a failure, not a skip: `.ci/run` installs it (apt-get install -y chromium).

The browser is started per test module and stopped after it (not per session, as pytest-playwright's own
``browser`` fixture would): Playwright's sync API keeps an event loop running in this thread while it is
started, and the rest of the suite calls ``asyncio.run``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("WIO_TEST_CHROMIUM") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium") or "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory):
    """Take a full-page screenshot (every run: a page that cannot be drawn fails the test) into pytest's
    temporary directory; with WIO_UPDATE_SCREENSHOTS=1, also into docs/screenshots/ (README.md's
    pictures), so an ordinary test run leaves the working tree as it was."""
    taken = tmp_path_factory.mktemp("screenshots")
    update = os.environ.get("WIO_UPDATE_SCREENSHOTS") == "1"

    def take(page, name: str) -> None:
        path = taken / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.read_bytes().startswith(b"\x89PNG"), f"screenshot {name} is not a PNG"
        if update:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / path.name)
    return take
