"""The screens in a real browser: filters with pushed URLs, row expansion, load more."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def entry_ids(page) -> list[str]:
    return page.eval_on_selector_all("tr.entry", "rows => rows.map(r => r.id)")


def test_rita_filters_expands_loads_more_and_reloads(page, browser_world):
    sign_in(page, "rita", "/portal/audit")
    assert page.locator("h1").inner_text() == "Audit log"
    assert page.locator("th.col-tenant").count() == 1

    # Filter by tenant, then by action: each change swaps the results and pushes the URL.
    with page.expect_response(re.compile(r"/portal/audit\?.*tenant=globex")):
        page.select_option("#f-tenant", "globex")
    page.wait_for_url(re.compile(r"tenant=globex"))
    with page.expect_response(re.compile(r"/portal/audit\?.*action=approved")):
        page.select_option("#f-action", "approved")
    page.wait_for_url(re.compile(r"action=approved"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["tenant"] == ["globex"] and query["action"] == ["approved"]
    assert "q" not in query  # empty fields are not pushed

    tenants = page.locator("tr.entry td.col-tenant").all_inner_texts()
    assert tenants and set(tenants) == {"Globex"}
    assert set(page.locator("tr.entry .tag").all_inner_texts()) == {"approved"}
    first_page = entry_ids(page)
    assert len(first_page) == 50

    # Expand the first row: the detail with its diff appears in place.
    link = page.locator("tr.entry .expand").first
    assert link.get_attribute("aria-expanded") == "false"
    link.click()
    detail = page.locator(f"#{link.get_attribute('aria-controls')}")
    detail.locator("table.diff").first.wait_for()
    assert link.get_attribute("aria-expanded") == "true"
    assert detail.is_visible()
    assert detail.locator("tr.diff-changed").count() >= 1
    assert "••••••" in detail.inner_text()  # settings.api_key is masked
    assert "sk-test" not in detail.inner_text()
    assert detail.get_by_role("link", name="Open trace").count() == 1

    # From the keyboard: Enter on the focused button collapses and expands again.
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "id => document.getElementById(id).hidden", arg=link.get_attribute("aria-controls")
    )
    assert link.get_attribute("aria-expanded") == "false"
    page.keyboard.press("Enter")
    detail.wait_for(state="visible")
    assert link.get_attribute("aria-expanded") == "true"

    # Load more appends the next keyset page without touching the URL.
    url_before = page.url
    with page.expect_response(re.compile(r"cursor=")):
        page.get_by_role("link", name="Load more").click()
    page.wait_for_function("() => document.querySelectorAll('tr.entry').length > 50")
    all_ids = entry_ids(page)
    assert all_ids[:50] == first_page
    assert len(all_ids) == len(set(all_ids))
    assert page.url == url_before

    # Reloading the pushed URL gives the same view.
    page.reload()
    assert entry_ids(page) == first_page
    assert page.locator("#f-tenant").input_value() == "globex"
    assert page.locator("#f-action").input_value() == "approved"


def test_sarah_sees_the_dashboard(page, browser_world):
    sign_in(page, "sarah", "/dashboard/settings/audit-log")
    assert page.locator(".sub").inner_text().endswith("Acme")
    assert page.locator("th.col-tenant").count() == 0
    assert page.locator("#f-tenant").count() == 0
    rows = page.locator("tr.entry")
    assert rows.count() > 0
    # Sarah is in Europe/Berlin: times carry the offset, the tooltip says UTC.
    offset = rows.first.locator(".offset").inner_text()
    assert offset in ("UTC+01:00", "UTC+02:00")
    assert rows.first.locator("time").get_attribute("title").endswith("UTC")

    sarah_id = browser_world.users["sarah"].ref_id
    with page.expect_response(re.compile(r"actor=")):
        page.select_option("#f-actor", sarah_id)
    page.wait_for_url(re.compile(rf"actor={sarah_id}"))
    names = page.locator("tr.entry .actor-name").all_inner_texts()
    assert names and set(names) == {"Sarah Admin"}

    page.locator("tr.entry .expand").first.click()
    page.locator("tr.detail-row:not([hidden]) .entry-detail").wait_for()
    # The row's own page is the same content without JavaScript.
    href = page.locator("tr.entry a.permalink").first.get_attribute("href")
    page.goto(href)
    assert page.locator("h1").inner_text() == "Audit entry"
    assert page.locator(".entry-detail table.diff").count() >= 1
