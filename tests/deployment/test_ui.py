"""The Airflow UI of the real stack in headless Chromium: log in, trigger
``daily_customer_features`` for a chosen day through the trigger form's date picker, see
the run succeed; and find the provider's connection type, with its fields, in the form."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from tests.browser import chromium, keep
from tests.deployment.conftest import customers_on, unpause, wait_for_run

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Page

pytestmark = [pytest.mark.deployment, pytest.mark.browser]

PARTITION = "2026-01-24"
TIMEOUT_MS = 30_000


@contextmanager
def _signed_in(base_url: str, password: str) -> Iterator[Page]:
    """A UI page signed in as admin through the login form."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{base_url}/")
        page.wait_for_url("**/auth/login**")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)
        yield page


def test_a_run_triggered_from_the_ui_form_publishes_the_chosen_day(
    base_url, admin_password, api, store, tmp_path: Path
):
    unpause(api, "daily_customer_features")
    screenshot = tmp_path / "ui_trigger_run_succeeded.png"
    with _signed_in(base_url, admin_password) as page:
        page.goto(f"{base_url}/dags/daily_customer_features")
        page.get_by_role("button", name="Trigger Dag").click()
        form = page.get_by_role("dialog")
        # the date param's label is not linked to its input: find the field by its title
        form.locator("div").filter(has_text="Partition date").locator("input[type=date]").last.fill(
            PARTITION
        )
        form.get_by_role("button", name="Trigger", exact=True).click()

        # the UI opens the new run's page
        page.wait_for_url("**/dags/daily_customer_features/runs/**")
        runs = api.get(
            "/dags/daily_customer_features/dagRuns",
            params={"order_by": "-run_after", "limit": 1},
        ).json()["dag_runs"]
        run = runs[0]
        assert run["triggered_by"] == "ui"
        assert run["conf"] == {"partition": PARTITION}
        assert wait_for_run(api, "daily_customer_features", run["dag_run_id"]) == "success"

        page.reload()
        page.get_by_text("Success", exact=True).first.wait_for()
        page.screenshot(path=str(screenshot), full_page=True)
    keep(screenshot)

    manifest = store.manifest("customer_features", PARTITION)
    assert manifest["lineage"]["run_id"] == run["dag_run_id"]
    assert manifest["row_count"] == customers_on(PARTITION)


@pytest.mark.parametrize(
    ("connection_type", "fields"),
    [
        (
            "Feature Store",
            ["Store root", "Versions kept per partition", "Retention grace (seconds)"],
        ),
        ("Model Registry", ["Registry root", "On library version mismatch"]),
    ],
)
def test_the_connection_form_offers_the_provider_types_and_fields(
    base_url, admin_password, connection_type, fields, tmp_path: Path
):
    screenshot = tmp_path / f"ui_connection_{connection_type.replace(' ', '_').lower()}.png"
    with _signed_in(base_url, admin_password) as page:
        page.goto(f"{base_url}/connections")
        page.get_by_role("button", name="Add Connection").click()
        form = page.get_by_role("dialog")
        form.get_by_role("combobox").click()
        page.keyboard.type(connection_type)
        page.get_by_role("option", name=connection_type, exact=True).click()
        form.get_by_text("Extra Fields", exact=True).click()
        for label in fields:
            form.get_by_text(label, exact=True).wait_for()
        page.screenshot(path=str(screenshot), full_page=True)
    keep(screenshot)
