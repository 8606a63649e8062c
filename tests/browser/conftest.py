"""Headless Chromium (Debian's) driven by Playwright against pytest-django's live server.

Every response gets a strict Content-Security-Policy added on the way to the
browser (no 'unsafe-inline', no 'unsafe-eval'), and a test fails on any CSP
violation or page error: the screens must work under the policy the security
work will ship.
"""

from __future__ import annotations

import os
import random
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from dmobs.models import AuditLog
from tests.auditui.conftest import PASSWORD, build_world, make_entry

# Playwright's sync API runs an event loop in this thread; Django's ORM calls
# from the test body are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    if not executable:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_world(transactional_db):
    """The test world plus enough recent Globex approvals to need "Load more"."""
    world = build_world()
    rng = random.Random(11)
    now = datetime.now(UTC)
    extra = [
        make_entry(
            tenant=world.tenants["globex"],
            actor=rng.choice(
                [("human", "u-gloria", "Gloria Globex"), ("agent", "agent-globex", "Globex Agent")]
            ),
            created_at=now - timedelta(hours=3 * i + 1),
            rng=rng,
            action="approved",
        )
        for i in range(70)
    ]
    AuditLog.objects.bulk_create(extra)
    world.entries += extra
    return world


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    problems: list[str] = []

    def add_csp(route):
        # Redirects are the browser's to follow, so it sees the real URLs.
        response = route.fetch(max_redirects=0)
        headers = {**response.headers, "content-security-policy": STRICT_CSP}
        route.fulfill(response=response, headers=headers)

    context.route(f"{live_server.url}/**", add_csp)
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert not problems, problems


def sign_in(page, username: str, path: str, password: str = PASSWORD) -> None:
    page.goto(path)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}*")
