"""The page that ends the LMS dialog: closes at once only when there is nothing to act on.

Simulated LMSes on 127.0.0.1, Gatehouse served for real on localhost; the browser tests run Debian
Chromium with a fake LMS page framing Gatehouse, as Moodle does.
"""

import html
import re

import pytest
import requests
from support import browser as browser_rig
from support.browser import FakeLMS, new_context, wait_for_close

from app.lti.constants import Scope
from app.testing import LoopbackServer

NRPS = Scope.NRPS_MEMBERSHIP.value
TIMEOUT = 15_000


def text_of(markup):
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def visible_text(response):
    """Return what the admin reads without expanding any collapsed <details> block."""
    return text_of(re.sub(r"<details[^>]*>.*?</details>", "", response.text, flags=re.S))


def close_mode(response):
    return re.search(r'data-lti-close="([^"]+)"', response.text).group(1)


def test_a_new_moodle_registration_waits_for_done_with_the_activate_step(live, simulator):
    response = requests.get(simulator("moodle").initiation_url(live.register_url), timeout=30)
    assert response.status_code == 200
    assert close_mode(response) == "after-reading"
    visible = visible_text(response)
    assert "Quiz Tool is now registered with Moodle." in visible
    assert "Click Activate on its card" in visible
    assert "Done, back to Moodle" in visible


def test_a_moodle_update_with_nothing_to_act_on_closes_at_once(make_app, simulator):
    app = make_app({"registration": {"auto_activate": True}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("moodle")
        first = sim.register(server.url + "/lti/register")
        again = requests.get(
            sim.initiation_url(server.url + "/lti/register", update_client_id=first.client_id),
            timeout=30,
        )
    assert again.status_code == 200
    assert close_mode(again) == "auto"
    visible = visible_text(again)
    assert "the existing registration was updated" in visible
    assert "Activate" not in visible  # Moodle keeps an updated tool's state
    assert "kept it as it was" in visible
    assert "Done, back to Moodle" not in visible
    assert "The tool's owner has nothing left to approve" in visible


def test_canvas_closes_at_once_even_with_services_not_granted(live, simulator):
    # Canvas shows its own review the moment the close message arrives.
    sim = simulator("canvas", withhold_scopes=[NRPS])
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert response.status_code == 200
    assert close_mode(response) == "auto"


def test_routine_adjustments_are_one_collapsed_neutral_line(live, simulator):
    response = requests.get(simulator("canvas").initiation_url(live.register_url), timeout=30)
    assert response.status_code == 200
    # The Canvas placement Gatehouse fills in from its own defaults is no warning to read.
    assert "data-registration-differences" not in response.text
    assert "Placed the LtiResourceLinkRequest" not in visible_text(response)
    collapsed = re.search(
        r'<details class="adjusted"[^>]*>\s*<summary>(.*?)</summary>(.*?)</details>',
        response.text,
        flags=re.S,
    )
    assert collapsed is not None
    assert text_of(collapsed.group(1)) == "Adjusted for Canvas (1)"
    assert "Placed the LtiResourceLinkRequest message in link_selection" in text_of(
        collapsed.group(2)
    )


def test_services_not_granted_are_named_plainly_with_where_to_grant_them(live, simulator):
    sim = simulator("moodle", withhold_scopes=[NRPS])
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert close_mode(response) == "after-reading"
    visible = visible_text(response)
    assert "Moodle did not grant 1 of the 3 services the tool asked for" in visible
    assert "Course members (names and roles)" in visible
    assert "To grant it: In Site administration → Plugins → Activity modules → External tool" in (
        visible
    )
    assert "choose what it may use under Services" in visible


def test_the_close_page_says_the_owner_still_has_to_approve(live, simulator):
    response = requests.get(simulator("generic").initiation_url(live.register_url), timeout=30)
    assert 'data-owner-approval="pending"' in response.text
    assert "The tool's owner still has to approve this registration" in visible_text(response)


def test_the_close_page_says_when_the_owner_has_nothing_left_to_approve(make_app, simulator):
    app = make_app({"registration": {"auto_activate": True}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("generic")
        response = requests.get(sim.initiation_url(server.url + "/lti/register"), timeout=30)
    assert 'data-owner-approval="done"' in response.text
    visible = visible_text(response)
    assert "The tool's owner has nothing left to approve" in visible
    assert "still has to approve" not in visible


# --- in a real browser, framed the way Moodle frames it ----------------------------------------

browser_only = pytest.mark.skipif(
    browser_rig.unavailable_reason() is not None, reason=str(browser_rig.unavailable_reason())
)


@pytest.fixture
def lms_page(chromium):
    context = new_context(chromium, third_party_cookies=False)
    with FakeLMS() as lms:
        yield lms, context.new_page()
    context.close()


@browser_only
def test_the_dialog_stays_open_until_done_posts_the_close_message(live, simulator, lms_page):
    lms, page = lms_page
    page.goto(lms.page_url(simulator("moodle").initiation_url(live.register_url)))
    frame = page.frame_locator("#tool")
    frame.get_by_text("What Moodle still needs").wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(1_000)  # close.js has run: nothing was posted on load
    assert page.evaluate("window.received") == []
    frame.get_by_role("button", name="Done, back to Moodle").click()
    messages = wait_for_close(page, TIMEOUT)
    assert {"subject": "org.imsglobal.lti.close"} in [m["data"] for m in messages]


@browser_only
def test_done_cannot_be_clicked_before_its_script_listens(live, simulator, lms_page):
    # On a slow connection or a busy machine the button shows before close.js has run: a click
    # then did nothing and the dialog stayed open. It waits, disabled, for the script.
    lms, page = lms_page
    held = []
    page.route("**/static/close.js*", lambda route: held.append(route))
    # Not until "load": the frame's load waits for the held script.
    url = lms.page_url(simulator("moodle").initiation_url(live.register_url))
    page.goto(url, wait_until="domcontentloaded")
    done = page.frame_locator("#tool").get_by_role("button", name="Done, back to Moodle")
    done.wait_for(timeout=TIMEOUT)
    assert held, "the close page did not ask for its script"
    assert done.is_disabled()
    held[0].continue_()
    done.click(timeout=TIMEOUT)  # once the script has enabled it
    messages = wait_for_close(page, TIMEOUT)
    assert [m["data"] for m in messages].count({"subject": "org.imsglobal.lti.close"}) == 1


@browser_only
def test_the_dialog_closes_at_once_for_canvas(live, simulator, lms_page):
    lms, page = lms_page
    # Even with a service not granted: Canvas's own review, shown next, lists the scopes.
    sim = simulator("canvas", withhold_scopes=[NRPS])
    page.goto(lms.page_url(sim.initiation_url(live.register_url)))
    messages = wait_for_close(page, TIMEOUT)
    assert {"subject": "org.imsglobal.lti.close"} in [m["data"] for m in messages]
