"""What an investigator sees, measured in a real Chromium (issue 16, "What was seen").

Each test measures what a person gets: column and page widths, the number of
history entries a change adds, which control shows what after Back, where the
focus is, which options a dropdown offers. Each of them failed on the screens
before the fixes.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from dmobs.models import AuditLog
from tests.auditui.conftest import make_entry
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

PORTAL = "/portal/audit"
MANAGE = "/manage/audit"
DASHBOARD = "/dashboard/settings/audit-log"

# Horizontal overflow of the whole page (a person scrolls sideways).
PAGE_OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"

# Per diff row: the Change cell's inner width, its badge's full width, and
# whether the badge or the "Change" header breaks over several lines.
DIFF_LAYOUT = """(root) => {
  const rows = [];
  for (const tr of root.querySelectorAll("table.diff tbody tr")) {
    const badge = tr.querySelector(".badge");
    if (!badge) continue;
    const cell = badge.closest("td");
    const style = getComputedStyle(cell);
    const inner = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const line = parseFloat(getComputedStyle(badge).lineHeight) || badge.offsetHeight;
    rows.push({
      cell: inner, badge: badge.scrollWidth,
      badgeLines: Math.round(badge.getBoundingClientRect().height / line),
    });
  }
  const head = root.querySelector("table.diff thead th:nth-child(2)");
  let headLines = 0;
  if (head && head.getClientRects().length) {
    const hs = getComputedStyle(head);
    const content = head.clientHeight - parseFloat(hs.paddingTop) - parseFloat(hs.paddingBottom);
    headLines = content / parseFloat(hs.lineHeight);
  }
  // Short values ("48", "draft") never break inside a word.
  const broken = [];
  for (const val of root.querySelectorAll("table.diff code.val")) {
    const text = val.textContent;
    if (text.length <= 12 && !/\\s/.test(text)) {
      const r = document.createRange();
      r.selectNodeContents(val);
      if (r.getClientRects().length > 1) broken.push(text);
    }
  }
  return {rows, headLines, broken};
}"""


def history_length(page) -> int:
    return page.evaluate("() => history.length")


def query_of(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def settle(page) -> None:
    """Wait until htmx has no request in flight and the results are swapped in."""
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.wait_for_timeout(50)


def go(page, direction: str) -> None:
    """Back or Forward, then wait until htmx has put that URL's page back."""
    page.evaluate(
        """() => { window.__restored = false;
          document.body.addEventListener("htmx:historyRestore",
            () => { window.__restored = true; }, {once: true}); }"""
    )
    page.go_back() if direction == "back" else page.go_forward()
    page.wait_for_function("() => window.__restored === true")
    page.wait_for_timeout(50)


def set_viewport(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})


def expand_first(page):
    button = page.locator("tr.entry .expand").first
    button.click()
    detail = page.locator(f"#{button.get_attribute('aria-controls')}")
    detail.locator("table.diff").first.wait_for()
    return detail


@pytest.mark.parametrize("width", [390, 1440])
def test_diff_columns_and_page_width_are_measured(page, browser_world, width):
    long_entry = make_entry(
        tenant=browser_world.tenants["globex"],
        actor=("human", "u-gloria", "Gloria Globex"),
        created_at=datetime.now(UTC) - timedelta(seconds=5),
        rng=random.Random(3),
        action="updated",
        before={"status": "draft", "limit": 12, "blob": "y", "k" * 200: 1},
        after={"status": "done", "limit": 48, "blob": "x" * 3000, "k" * 200: 2},
        description="A long value " + "z" * 600,
    )
    long_entry.save()
    set_viewport(page, width)
    sign_in(page, "rita", PORTAL)
    assert page.evaluate(PAGE_OVERFLOW) <= 0

    # The expanded row of the entry with a long value, then an ordinary one.
    for row_id in (long_entry.pk, None):
        button = (
            page.locator(f"#entry-{row_id} .expand")
            if row_id
            else page.locator("tr.entry .expand").nth(3)
        )
        button.click()
        detail = page.locator(f"#{button.get_attribute('aria-controls')}")
        detail.locator("table.diff").first.wait_for()
        layout = detail.evaluate(DIFF_LAYOUT)
        assert layout["rows"], layout
        for row in layout["rows"]:
            assert row["cell"] >= row["badge"], layout
            assert row["badgeLines"] == 1, layout
        assert layout["headLines"] < 1.6, layout
        assert not layout["broken"], layout
        assert page.evaluate(PAGE_OVERFLOW) <= 0, f"page overflows at {width}px"

    # The entry's own page, with the same long unbroken value.
    page.goto(f"{PORTAL}/{long_entry.pk}/")
    page.locator(".entry-detail table.diff").first.wait_for()
    layout = page.locator(".entry-detail").evaluate(DIFF_LAYOUT)
    for row in layout["rows"]:
        assert row["cell"] >= row["badge"], layout
    assert not layout["broken"], layout
    assert page.evaluate(PAGE_OVERFLOW) <= 0, f"the entry's page overflows at {width}px"


def test_back_and_forward_restore_every_control(page, browser_world):
    sign_in(page, "rita", PORTAL)
    start = history_length(page)

    page.select_option("#f-tenant", "globex")
    page.wait_for_url(re.compile(r"tenant=globex"))
    settle(page)
    assert history_length(page) == start + 1
    page.select_option("#f-action", "approved")
    page.wait_for_url(re.compile(r"action=approved"))
    settle(page)
    assert history_length(page) == start + 2
    filtered = page.locator("tr.entry").count()

    # Enter in the search box is one history entry, not two. (The box shows the
    # controls' filters as qualifiers: the words go after them.)
    assert page.locator("#f-q").input_value() == "action:approved tenant:globex"
    page.fill("#f-q", "action:approved tenant:globex Globex")
    page.press("#f-q", "Enter")
    page.wait_for_url(re.compile(r"q=Globex"))
    settle(page)
    page.wait_for_timeout(300)
    assert history_length(page) == start + 3

    go(page, "back")
    assert "q=" not in page.url
    assert page.locator("#f-q").input_value() == "action:approved tenant:globex"
    assert page.locator("#f-tenant").input_value() == "globex"
    assert page.locator("#f-action").input_value() == "approved"
    assert page.locator("tr.entry").count() == filtered

    go(page, "back")
    assert "action=" not in page.url
    assert page.locator("#f-tenant").input_value() == "globex"
    assert page.locator("#f-action").input_value() == ""
    assert set(page.locator("tr.entry td.col-tenant").all_inner_texts()) == {"Globex"}

    go(page, "forward")
    assert "action=approved" in page.url
    assert page.locator("#f-tenant").input_value() == "globex"
    assert page.locator("#f-action").input_value() == "approved"

    # Changing one control after Back/Forward keeps the others.
    page.select_option(
        "#f-actor", page.locator("#f-actor option[value='u-gloria']").get_attribute("value")
    )
    page.wait_for_url(re.compile(r"actor=u-gloria"))
    settle(page)
    query = query_of(page)
    assert query["tenant"] == ["globex"] and query["action"] == ["approved"]
    names = set(page.locator("tr.entry .actor-name").all_inner_texts())
    assert names == {"Gloria Globex"}
    assert set(page.locator("tr.entry td.col-tenant").all_inner_texts()) == {"Globex"}


def test_rows_expand_from_the_keyboard_and_load_more_moves_focus(page, browser_world):
    sign_in(page, "rita", f"{PORTAL}?tenant=globex&action=approved")
    button = page.locator("tr.entry .expand").first
    assert button.evaluate("el => el.tagName") == "BUTTON"
    detail_id = button.get_attribute("aria-controls")

    scroll = page.evaluate("() => window.scrollY")
    button.focus()
    page.keyboard.press("Space")
    page.locator(f"#{detail_id} table.diff").first.wait_for()
    assert button.get_attribute("aria-expanded") == "true"
    assert page.evaluate("() => window.scrollY") == scroll  # Space toggled, did not scroll
    page.keyboard.press("Space")
    page.wait_for_function("id => document.getElementById(id).hidden", arg=detail_id)
    assert button.get_attribute("aria-expanded") == "false"
    page.keyboard.press("Enter")
    page.wait_for_function("id => !document.getElementById(id).hidden", arg=detail_id)
    assert button.get_attribute("aria-expanded") == "true"

    first_page = page.eval_on_selector_all("tr.entry", "rows => rows.map(r => r.id)")
    assert len(first_page) == 50
    more = page.get_by_role("link", name="Load more")
    more.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('tr.entry').length > 50")
    settle(page)
    rows = page.eval_on_selector_all("tr.entry", "rows => rows.map(r => r.id)")
    focused_row = page.evaluate(
        "() => { const r = document.activeElement.closest('tr.entry'); return r && r.id; }"
    )
    assert focused_row == rows[50]


def test_unknown_parameters_are_a_400_naming_them(page, browser_world):
    sign_in(page, "root", MANAGE)
    # Through the browser's own request context (signed in; a 400 page load
    # would count as a console error in the page fixture).
    response = page.request.get(f"{MANAGE}?resource_idd=st_1&action=approved&colour=red")
    assert response.status == 400
    text = response.text()
    assert "&#x27;colour&#x27;, &#x27;resource_idd&#x27;" in text
    # The entry's page and the export say so as well.
    entry = browser_world.entries[0]
    response = page.request.get(f"{MANAGE}/{entry.pk}/?sort=asc")
    assert response.status == 400 and "&#x27;sort&#x27;" in response.text()
    response = page.request.get(f"{MANAGE}/export?format=csv&colour=red")
    assert response.status == 400 and "&#x27;colour&#x27;" in response.text()
    # A known parameter is not refused: resource_id filters.
    response = page.request.get(f"{MANAGE}?resource_id=nothing-has-this-id")
    assert response.status == 200 and "No entries match these filters." in response.text()


def test_actor_options_name_their_tenant_and_follow_the_tenant_filter(page, browser_world):
    rng = random.Random(5)
    now = datetime.now(UTC)
    same_name = [
        make_entry(
            tenant=browser_world.tenants[slug],
            actor=("agent", f"agent-analytics-{slug}", "Analytics Agent"),
            created_at=now - timedelta(minutes=i + 1),
            rng=rng,
        )
        for i, slug in enumerate(("acme", "globex", "initech"))
    ]
    AuditLog.objects.bulk_create(same_name)
    sign_in(page, "root", MANAGE)
    labels = page.locator("#f-actor option:not([value=''])").all_inner_texts()
    assert len(labels) == len(set(labels)), "two actors look the same"
    analytics = [label for label in labels if label.startswith("Analytics Agent")]
    assert len(analytics) == 3
    assert any("Globex" in label for label in analytics)

    # Tenant Globex: only Globex's actors are offered.
    page.select_option("#f-tenant", "globex")
    page.wait_for_url(re.compile(r"tenant=globex"))
    settle(page)
    offered = page.evaluate(
        """() => Array.from(document.querySelectorAll('#f-actor option'))
             .filter(o => o.value && !o.hidden && !o.disabled).map(o => o.value)"""
    )
    assert "agent-analytics-globex" in offered
    assert "agent-analytics-acme" not in offered and "agent-analytics-initech" not in offered
    assert offered and all(
        v in ("u-gloria", "agent-globex", "system-globex", "agent-analytics-globex")
        for v in offered
    )

    # An actor chosen in another tenant is dropped when the tenant changes.
    page.select_option("#f-tenant", "")
    settle(page)
    page.select_option("#f-actor", "agent-analytics-acme")
    page.wait_for_url(re.compile(r"actor=agent-analytics-acme"))
    settle(page)
    page.select_option("#f-tenant", "globex")
    page.wait_for_url(re.compile(r"tenant=globex"))
    settle(page)
    assert "actor" not in query_of(page)
    assert page.locator("tr.entry").count() > 0


def test_dates_and_period_agree(page, browser_world):
    sign_in(page, "rita", PORTAL)
    assert "Last 30 days" in page.locator("#results-status").inner_text()
    day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    page.fill("#f-from", day)
    page.locator("#f-from").dispatch_event("change")
    page.wait_for_url(re.compile(r"from="))
    settle(page)
    # The Period no longer claims a preset, and the status says which days are shown.
    period = page.locator("#f-range")
    assert period.evaluate("el => el.options[el.selectedIndex].text") == "Custom dates"
    assert "range" not in query_of(page)
    assert day in page.locator("#results-status").inner_text()
    # Picking a preset again clears From/To.
    page.select_option("#f-range", "7d")
    page.wait_for_url(re.compile(r"range=7d"))
    settle(page)
    assert page.locator("#f-from").input_value() == ""
    assert "from" not in query_of(page)
    assert "Last 7 days" in page.locator("#results-status").inner_text()


def test_back_link_of_an_entry_keeps_the_filters(page, browser_world):
    sign_in(page, "rita", f"{PORTAL}?tenant=globex&action=approved")
    page.locator("tr.entry a.permalink").first.click()
    page.wait_for_url(re.compile(r"/portal/audit/[0-9a-f]+/"))
    assert page.locator("h1").inner_text() == "Audit entry"
    page.locator("p.back a").click()
    page.wait_for_url(re.compile(r"/portal/audit\?"))
    query = query_of(page)
    assert query["tenant"] == ["globex"] and query["action"] == ["approved"]
    assert page.locator("#f-tenant").input_value() == "globex"
    assert page.locator("#f-action").input_value() == "approved"


def test_super_admin_picks_platform_as_tenant(page, browser_world):
    sign_in(page, "root", MANAGE)
    page.select_option("#f-tenant", "platform")
    page.wait_for_url(re.compile(r"tenant=platform"))
    settle(page)
    tenants = set(page.locator("tr.entry td.col-tenant").all_inner_texts())
    assert tenants == {"Platform"}
    recent = AuditLog.objects.filter(
        tenant_id=None, created_at__gte=datetime.now(UTC) - timedelta(days=30)
    ).count()
    assert recent and page.locator("tr.entry").count() == min(50, recent)


def test_no_export_links_without_results(page, browser_world):
    sign_in(page, "rita", PORTAL)
    assert page.get_by_role("link", name="CSV").count() == 1
    page.fill("#f-q", "nothing-matches-this")
    page.press("#f-q", "Enter")
    page.wait_for_url(re.compile(r"q=nothing"))
    settle(page)
    assert "0" in page.locator("#results-status").inner_text()
    assert page.get_by_role("link", name="CSV").count() == 0
    assert page.get_by_role("link", name="NDJSON").count() == 0


def test_member_subtitle_says_own_actions(page, browser_world, settings):
    settings.DMOBS_MEMBERS_SEE_OWN_ACTIONS = True
    sign_in(page, "james", DASHBOARD)
    sub = page.locator(".sub").inner_text()
    assert "Every change in your tenant" not in sub
    assert "Your own actions" in sub and "Acme" in sub


def test_only_the_status_is_a_live_region(page, browser_world):
    sign_in(page, "rita", PORTAL)

    def live_regions():
        return page.evaluate(
            """() => Array.from(document.querySelectorAll('[aria-live], [role=status]'))
                 .map(el => ({text: el.innerText, table: !!el.querySelector('table, tr')}))"""
        )

    regions = live_regions()
    assert regions and not any(r["table"] for r in regions), regions
    assert any(re.search(r"\d+ entries", r["text"]) for r in regions), regions
    page.select_option("#f-tenant", "globex")
    page.wait_for_url(re.compile(r"tenant=globex"))
    settle(page)
    regions = live_regions()
    assert not any(r["table"] for r in regions), regions
    status = page.locator("#results-status")
    assert status.get_attribute("role") == "status" or status.get_attribute("aria-live")


# --- Investigating: click-to-filter and chips, a resource's history, the live tail


def entry_ids(page) -> list[str]:
    return page.eval_on_selector_all("tr.entry", "rows => rows.map(r => r.id.slice(6))")


def test_click_to_filter_and_chips(page, browser_world):
    sign_in(page, "rita", f"{PORTAL}?tenant=globex")
    page.locator("tr.entry a.actor").first.click()
    page.wait_for_url(re.compile(r"actor="))
    query = query_of(page)
    actor = query["actor"][0]
    assert query["tenant"] == ["globex"]
    assert page.locator("#f-actor").input_value() == actor
    # Every row is that actor's (one id, whatever name it used).
    links = page.eval_on_selector_all("tr.entry a.actor", "els => els.map(a => a.href)")
    assert links and all(parse_qs(urlsplit(link).query)["actor"] == [actor] for link in links)

    action = page.locator("tr.entry a.tag").first.inner_text()
    page.locator("tr.entry a.tag").first.click()
    page.wait_for_url(re.compile(r"action="))
    assert query_of(page)["action"] == [action] and query_of(page)["actor"] == [actor]
    assert page.locator("#f-action").input_value() == action
    assert set(page.locator("tr.entry .tag").all_inner_texts()) == {action}

    # From an expanded row: its resource, in one click.
    detail = expand_first(page)
    detail.locator("a.filter-resource").click()
    page.wait_for_url(re.compile(r"resource_id="))
    labels = page.locator(".chip .chip-label").all_inner_texts()
    assert labels == ["Tenant:", "Actor:", "Action:", "Resource:"]
    resource = page.locator(".chip .chip-value").nth(3).inner_text()

    # A chip's × removes that filter and keeps the others.
    page.locator(".chip", has_text="Actor:").locator("a.chip-remove").click()
    page.wait_for_url(lambda url: "actor=" not in url)
    query = query_of(page)
    assert query["tenant"] == ["globex"] and query["action"] == [action]
    assert f"{query['resource_type'][0]}/{query['resource_id'][0]}" == resource
    assert page.locator("#f-actor").input_value() == ""
    assert page.locator(".chip .chip-label").all_inner_texts() == [
        "Tenant:",
        "Action:",
        "Resource:",
    ]


def test_history_of_a_resource(page, browser_world):
    rng = random.Random(8)
    now = datetime.now(UTC)
    steps = [
        make_entry(
            tenant=browser_world.tenants["globex"],
            actor=("agent", "agent-globex", "Globex Planner Agent"),
            created_at=now - timedelta(minutes=10 - i),
            rng=rng,
            action="updated",
            resource_type="agent_config",
            resource_id="ac_9",
            resource_name="Planner config",
            before={"model": f"v{i}", "temperature": i},
            after={"model": f"v{i + 1}", "temperature": i + 1},
        )
        for i in range(5)
    ]
    AuditLog.objects.bulk_create(steps)
    for width in (1440, 390):
        set_viewport(page, width)
        if width == 1440:
            sign_in(page, "rita", f"{PORTAL}?tenant=globex")
        else:
            page.goto(f"{PORTAL}?tenant=globex")
        detail = expand_first(page)  # the newest entry: the last step
        detail.get_by_role("link", name="History of this resource").click()
        page.wait_for_url(re.compile(r"/portal/audit/history\?"))
        assert page.locator("h1").inner_text() == "History of this resource"
        shown = page.eval_on_selector_all("li.step", "els => els.map(e => e.id.slice(5))")
        assert shown == [e.pk for e in steps]  # oldest first
        first = page.locator("li.step").first
        assert first.locator("tr.diff-changed").count() == 2
        assert "v0" in first.inner_text() and "v1" in first.inner_text()
        assert page.evaluate(PAGE_OVERFLOW) <= 0


def test_live_tail_inserts_new_entries_on_top_and_waits_while_one_is_open(
    page, browser_world, settings
):
    settings.DMOBS_LIVE_TAIL_SECONDS = 0.3
    settings.DMOBS_LIVE_TAIL_SETTLE_SECONDS = 0
    sign_in(page, "rita", f"{PORTAL}?tenant=globex")
    toggle = page.locator("#live-toggle")
    assert toggle.is_visible() and toggle.get_attribute("aria-pressed") == "false"
    assert not page.locator(".live-twin").is_visible()  # the twin is for no JavaScript
    before = entry_ids(page)
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"

    def add(n: int, *, same_time: bool = False) -> list[AuditLog]:
        at = datetime.now(UTC)
        entries = [
            make_entry(
                tenant=browser_world.tenants["globex"],
                actor=("human", "u-gloria", "Gloria Globex"),
                created_at=at if same_time else at + timedelta(milliseconds=i),
                rng=random.Random(n),
            )
            for i in range(n)
        ]
        AuditLog.objects.bulk_create(entries)
        return sorted(entries, key=lambda e: (e.created_at, e.pk), reverse=True)

    first = add(3)
    page.wait_for_function("n => document.querySelectorAll('tr.entry').length === n", arg=53)
    assert entry_ids(page) == [e.pk for e in first] + before
    assert page.locator("#live-notice").inner_text() == "3 new entries"

    second = add(2, same_time=True)
    page.wait_for_function("n => document.querySelectorAll('tr.entry').length === n", arg=55)
    page.wait_for_timeout(700)  # more polls: nothing repeated
    ids = entry_ids(page)
    assert ids == [e.pk for e in second] + [e.pk for e in first] + before
    assert len(ids) == len(set(ids))
    assert page.locator("#live-notice").inner_text() == "5 new entries"

    # Reading an expanded row pauses the tail; closing it resumes without a gap.
    button = page.locator("tr.entry .expand").nth(4)
    button.click()
    page.locator(f"#{button.get_attribute('aria-controls')} table.diff").first.wait_for()
    third = add(1)
    page.wait_for_timeout(1200)
    assert len(entry_ids(page)) == 55
    assert "paused" in page.locator("#live-notice").inner_text()
    button.click()
    page.wait_for_function("n => document.querySelectorAll('tr.entry').length === n", arg=56)
    assert entry_ids(page)[0] == third[0].pk
    assert page.locator("#live-notice").inner_text() == "6 new entries"

    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    add(1)
    page.wait_for_timeout(800)
    assert len(entry_ids(page)) == 56
