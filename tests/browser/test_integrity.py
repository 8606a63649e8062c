"""The "Verify integrity" screen in a real Chromium: a tenant admin follows the
link from her list, verifies, and after a change made behind the app's back
sees exactly that entry named, with no horizontal overflow."""

from __future__ import annotations

from tests.browser.conftest import sign_in
from tests.integrity_helpers import digest_entry_ids, seal, tamper_for, use_key


def test_sarah_verifies_acme_and_sees_a_changed_entry(page, browser_world, monkeypatch):
    use_key(monkeypatch)
    seal()
    sign_in(page, "sarah", "/dashboard/settings/audit-log")
    page.click("a.integrity-link")
    page.wait_for_url("**/dashboard/settings/audit-log/integrity")
    page.click("button:has-text('Verify integrity')")
    result = page.locator(".integrity-result")
    result.wait_for()
    assert "Verified through" in result.inner_text()

    acme = browser_world.tenants["acme"].ref_id
    changed = digest_entry_ids(1, acme)[0]
    tamper_for().change_description(changed, "Nothing happened here")
    page.click("button:has-text('Verify integrity')")
    page.locator(".integrity-result.failed").wait_for()
    group = page.locator('[data-kind="changed"]')
    assert "Changed entries: 1" in group.inner_text()
    assert changed in group.inner_text()
    # Nothing spills out sideways, even with 24-digit ids and long messages.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.evaluate("document.documentElement.clientWidth")
    group.locator("a").first.click()
    page.wait_for_url(f"**/{changed}/")
    assert "Nothing happened here" in page.locator(".entry-detail").inner_text()
