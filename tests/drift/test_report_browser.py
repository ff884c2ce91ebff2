"""The HTML drift report in real headless Chromium: no console errors, charts laid out.

Uses Debian's ``/usr/bin/chromium`` through Playwright for Python (no browser download).
Fails, never skips, when either is missing. The full-page screenshot is kept as an artifact
(tests/browser.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_mlops.drift.report import render_html
from tests.browser import chromium, keep
from tests.drift.test_report import realistic_report

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.browser
def test_html_report_opens_in_chromium_without_errors(tmp_path: Path) -> None:
    report = realistic_report()
    page_path = tmp_path / "drift_report.html"
    page_path.write_text(render_html(report), encoding="utf-8")
    screenshot = tmp_path / "drift_report.png"
    errors: list[str] = []

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_path.as_uri(), wait_until="load")
        title = page.title()
        sizes = page.eval_on_selector_all(
            "svg", "svgs => svgs.map(s => [s.clientWidth, s.clientHeight])"
        )
        page_width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(screenshot), full_page=True)

    assert errors == []
    assert title == "Drift report: customer_features 2026-01-04"
    assert len(sizes) == len(report["columns"]) + 1
    assert all(width > 0 and height > 0 for width, height in sizes), sizes
    assert page_width <= 1280, "the report scrolls sideways at 1280 px"
    assert screenshot.stat().st_size > 10_000
    keep(screenshot)
