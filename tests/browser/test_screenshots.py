"""PNGs of the screens for the README (``make screenshots``; skipped in the suite)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils.http import urlencode

from dmobs.models import AuditLog, Tenant
from tests.browser.conftest import sign_in

DEMO_PASSWORD = "demo-pass-2026"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.environ.get("DMOBS_SCREENSHOTS_DIR"), reason="run by `make screenshots`"
    ),
]


@pytest.fixture
def demo_data(transactional_db):
    """The demo data of `make run`, so the pictures show what a newcomer sees."""
    call_command("seed_demo", verbosity=0)


def test_screenshots(browser, live_server, demo_data):
    out = Path(os.environ["DMOBS_SCREENSHOTS_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    # The resource with the longest history among rita's entries (with diffs).
    busiest = (
        AuditLog.objects.filter(
            tenant_id__in=[t.ref_id for t in Tenant.objects.filter(slug__in=["acme", "globex"])],
            actor_type__in=["human", "agent"],
            after__isnull=False,
        )
        .values("resource_type", "resource_id")
        .annotate(n=Count("id"))
        .order_by("-n", "resource_type", "resource_id")
        .first()
    )
    history = "/portal/audit/history?" + urlencode(
        {"resource_type": busiest["resource_type"], "resource_id": busiest["resource_id"]}
    )
    expanded = "/portal/audit?tenant=globex&actor_type=human&range=all"
    # The newest entry of that view with a change to show (sign-ins have none).
    with_diff = (
        AuditLog.objects.filter(
            tenant_id=Tenant.objects.get(slug="globex").ref_id,
            actor_type="human",
            after__isnull=False,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    # The search box with qualifiers, an exclusion among them, and its help open.
    search = "/manage/audit?" + urlencode({"q": "type:human -action:logged_in -tenant:platform"})
    shots = [
        ("sarah", "/dashboard/settings/audit-log", "dashboard.png", "", 1280),
        ("rita", "/portal/audit", "portal.png", "", 1280),
        ("root", "/manage/audit", "manage.png", "", 1280),
        ("rita", expanded, "expanded-row.png", "expand", 1280),
        ("rita", expanded, "expanded-row-390.png", "expand", 390),
        ("rita", history, "resource-history.png", "", 1280),
        ("root", search, "search.png", "help", 1280),
    ]
    for username, path, name, step, width in shots:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": 860}
        )
        page = context.new_page()
        sign_in(
            page,
            username,
            "/portal/audit" if "history" in path else path.split("?")[0],
            DEMO_PASSWORD,
        )
        page.goto(path)
        if step == "help":
            page.click(".search-help summary")
            page.locator(".search-help dl").wait_for()
        if step == "expand":
            link = page.locator(f"#entry-{with_diff.pk} .expand")
            link.click()
            page.locator(f"#{link.get_attribute('aria-controls')} table.diff").first.wait_for()
            # Scroll so the expanded row and its diff fill the picture (on a phone:
            # the diff from its heading).
            page.evaluate(
                """([id, phone]) => {
                  const row = document.getElementById(id);
                  const top = phone ? row.querySelector(".detail-h") : row.previousElementSibling;
                  window.scrollTo(0, top.getBoundingClientRect().top + window.scrollY - 16);
                }""",
                [link.get_attribute("aria-controls"), width < 600],
            )
        page.screenshot(path=str(out / name))
        context.close()
    assert {s[2] for s in shots} <= {p.name for p in out.glob("*.png")}
    for shot in shots:
        width, height = png_size(out / shot[2])  # a real PNG, not an empty file
        assert width > 0 and height > 0, shot[2]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (fails on anything else)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
