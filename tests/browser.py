"""Headless Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by
Playwright for Python (no browser download). Missing pieces fail the test, never skip it.
Screenshots are kept under ``$AIRFLOW_MLOPS_ARTIFACTS`` (default ``var/test-artifacts``)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_mlops.demo.environment import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
INSTALL_HINT = (
    "install them with `make /usr/bin/chromium` (apt-get install chromium, as root) and "
    "`.venv/bin/pip install -e '.[dev]'` (playwright; no `playwright install` needed)"
)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium, closed on exit; a test failure naming what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"Playwright for Python is not installed: {INSTALL_HINT}.")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL_HINT}.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def keep(screenshot: Path) -> Path:
    """Copy a screenshot to the artifacts folder; where it went."""
    folder = Path(os.environ.get("AIRFLOW_MLOPS_ARTIFACTS", REPO / "var" / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(screenshot, folder / screenshot.name))
