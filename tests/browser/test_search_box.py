"""The search box with qualifiers and the filter controls stay in step, in a real
Chromium (issue 16, item 2): typing qualifiers sets the controls, changing a
control rewrites the box, and Back/Forward restores both, one history entry per
change. The help popover is a <details> element (no script, CSP holds)."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_investigator import (
    PAGE_OVERFLOW,
    PORTAL,
    go,
    history_length,
    query_of,
    settle,
)

pytestmark = pytest.mark.browser


def test_qualifiers_and_controls_follow_each_other(page, browser_world):
    sign_in(page, "rita", PORTAL)
    start = history_length(page)

    # Typing qualifiers: the controls follow, the URL is the controls' own.
    page.fill("#f-q", 'tenant:globex action:approved actor:"u-gloria"')
    page.press("#f-q", "Enter")
    page.wait_for_url(re.compile(r"action=approved"))
    settle(page)
    assert query_of(page) == {
        "action": ["approved"],
        "actor": ["u-gloria"],
        "tenant": ["globex"],
        "range": ["30d"],
    }
    assert history_length(page) == start + 1
    assert page.locator("#f-tenant").input_value() == "globex"
    assert page.locator("#f-action").input_value() == "approved"
    assert page.locator("#f-actor").input_value() == "u-gloria"
    assert page.locator("#f-q").input_value() == "action:approved actor:u-gloria tenant:globex"
    assert set(page.locator("tr.entry .actor-name").all_inner_texts()) == {"Gloria Globex"}

    # Changing a control rewrites the box.
    page.select_option("#f-actor", "")
    page.wait_for_url(lambda url: "actor=" not in url)
    settle(page)
    page.wait_for_function("() => document.querySelector('#f-q').value.indexOf('actor:') < 0")
    assert page.locator("#f-q").input_value() == "action:approved tenant:globex"
    assert history_length(page) == start + 2

    # Removing a qualifier from the box clears its control; words search the text.
    page.fill("#f-q", "tenant:globex Globex")
    page.press("#f-q", "Enter")
    page.wait_for_url(re.compile(r"q=Globex"))
    settle(page)
    assert query_of(page) == {"tenant": ["globex"], "q": ["Globex"], "range": ["30d"]}
    assert page.locator("#f-action").input_value() == ""
    assert page.locator("#f-q").input_value() == "tenant:globex Globex"
    page.wait_for_timeout(300)
    assert history_length(page) == start + 3

    # Back and Forward: box and controls both say what the URL says.
    go(page, "back")
    assert page.locator("#f-q").input_value() == "action:approved tenant:globex"
    assert page.locator("#f-action").input_value() == "approved"
    assert page.locator("#f-actor").input_value() == ""
    go(page, "back")
    assert page.locator("#f-q").input_value() == "action:approved actor:u-gloria tenant:globex"
    assert page.locator("#f-actor").input_value() == "u-gloria"
    go(page, "forward")
    assert page.locator("#f-q").input_value() == "action:approved tenant:globex"
    assert page.locator("#f-actor").input_value() == ""


def test_a_mistyped_qualifier_is_named_and_the_help_opens(page, browser_world):
    sign_in(page, "rita", PORTAL)
    # Through the browser's request context (a 400 inside the page would count as
    # a console error in the page fixture); the page shows the same body.
    response = page.request.get(f"{PORTAL}?q=acter%3Au-gloria", headers={"HX-Request": "true"})
    assert response.status == 400
    assert "did you mean `actor:`?" in response.text()
    page.click(".search-help summary")
    assert page.locator(".search-help dl").is_visible()
    assert "created:2026-11-01..2026-11-15" in page.locator(".search-help").inner_text()
    assert "-action:logged_in" in page.locator(".search-help").inner_text()


@pytest.mark.parametrize("width", [390, 1440])
def test_the_search_help_opens_over_the_results_within_the_screen(page, browser_world, width):
    """A popover: the filters and the results do not move when it opens, and it fits
    the viewport (no sideways scrolling on a phone)."""
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, "rita", PORTAL)
    table_top = "() => document.querySelector('table.entries').getBoundingClientRect().top"
    before = page.evaluate(table_top)
    page.click(".search-help summary")
    panel = page.locator(".search-help-panel")
    assert panel.is_visible()
    assert page.evaluate(table_top) == before
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    assert page.evaluate(PAGE_OVERFLOW) <= 0


def test_a_negated_qualifier_leaves_entries_out_and_survives_the_controls(page, browser_world):
    """``-action:approved``: no approved row, the URL says ``not_action``, a chip
    removes it, changing a control keeps it, and Back brings it back."""
    sign_in(page, "rita", PORTAL)
    start = history_length(page)
    assert "approved" in page.locator("tr.entry .col-what a.tag").all_inner_texts()

    page.fill("#f-q", "tenant:globex -action:approved")
    page.press("#f-q", "Enter")
    page.wait_for_url(re.compile(r"not_action=approved"))
    settle(page)
    assert query_of(page) == {"not_action": ["approved"], "tenant": ["globex"], "range": ["30d"]}
    actions = page.locator("tr.entry .col-what a.tag").all_inner_texts()
    assert actions and "approved" not in actions
    assert page.locator("#f-q").input_value() == "-action:approved tenant:globex"
    chip = page.locator(".chip", has_text="Not action")
    assert " ".join(chip.inner_text().split()) == "Not action: approved ×"

    # A control changed afterwards keeps the exclusion (box and URL).
    page.select_option("#f-tenant", "")
    page.wait_for_url(lambda url: "tenant=" not in url)
    settle(page)
    page.wait_for_function("() => document.querySelector('#f-q').value.indexOf('tenant:') < 0")
    assert query_of(page) == {"not_action": ["approved"], "range": ["30d"]}
    assert page.locator("#f-q").input_value() == "-action:approved"
    assert "approved" not in page.locator("tr.entry .col-what a.tag").all_inner_texts()

    # The chip's remove link (a plain link) drops it; Back restores it, box included.
    page.locator(".chip", has_text="Not action").locator("a.chip-remove").click()
    page.wait_for_url(lambda url: "not_action" not in url)
    settle(page)
    assert page.locator("#f-q").input_value() == ""
    assert "approved" in page.locator("tr.entry .col-what a.tag").all_inner_texts()
    assert history_length(page) == start + 3
    page.go_back()
    page.wait_for_url(re.compile(r"not_action=approved"))
    settle(page)
    assert page.locator("#f-q").input_value() == "-action:approved"
    assert "approved" not in page.locator("tr.entry .col-what a.tag").all_inner_texts()
