"""PNGs of the screens for the README (``make screenshots``; skipped in the suite)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command

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
    shots = [
        ("sarah", "/dashboard/settings/audit-log", "dashboard.png", False),
        ("rita", "/portal/audit", "portal.png", False),
        ("root", "/manage/audit", "manage.png", False),
        ("rita", "/portal/audit?tenant=globex&actor_type=human", "expanded-row.png", True),
    ]
    for username, path, name, expand in shots:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 860}
        )
        page = context.new_page()
        sign_in(page, username, path.split("?")[0], DEMO_PASSWORD)
        page.goto(path)
        if expand:
            link = page.locator("tr.entry a.expand").nth(1)
            link.click()
            page.locator(f"#{link.get_attribute('aria-controls')} table.diff").first.wait_for()
            # Scroll so the expanded row and its diff fill the picture.
            page.evaluate(
                "id => window.scrollTo(0, document.getElementById(id).previousElementSibling"
                ".getBoundingClientRect().top + window.scrollY - 16)",
                link.get_attribute("aria-controls"),
            )
        page.screenshot(path=str(out / name))
        context.close()
    assert {s[2] for s in shots} <= {p.name for p in out.glob("*.png")}
    for shot in shots:
        assert png_size(out / shot[2])[1] == 860, shot[2]  # a real PNG, the viewport's height


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (fails on anything else)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
