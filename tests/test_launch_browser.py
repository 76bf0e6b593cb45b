"""Launches in a real browser: the simulated LMS's course page on 127.0.0.1 frames Gatehouse on
localhost (cross-site), and the launch must prove it started in that browser.

Three ways, each in its own Chromium profile: the binding cookie (third-party cookies allowed,
or blocked but `Partitioned` let through, Chromium's default), the LMS's platform storage
(cookies refused in the frame altogether, as Safari does), and a new top-level window (cookies
refused and an LMS without platform storage). Then the login CSRF attack: a state and id_token
captured by someone else, auto-submitted from a foreign page into the victim's browser.
"""

import html
import re

import pytest
from playwright.sync_api import sync_playwright
from support import browser as browser_rig
from support.browser import launch_browser, new_context
from werkzeug.wrappers import Request, Response

from app.simulator.launch import browser_session, login_destination, parse_form
from app.testing import LoopbackServer

pytestmark = pytest.mark.skipif(
    browser_rig.unavailable_reason() is not None, reason=str(browser_rig.unavailable_reason())
)

PROFILES = {
    "default": {"third_party_cookies": False},
    "third-party cookies": {"third_party_cookies": True},
    "no cookies in frames": {"third_party_cookies": False, "partitioned_cookies": False},
}


@pytest.fixture
def browser():
    """Return a function opening a fresh context of one of PROFILES; all closed afterwards."""
    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        contexts = []

        def open_context(name):
            ctx = new_context(chromium, **PROFILES[name])
            ctx.set_default_timeout(15_000)
            contexts.append(ctx)
            return ctx

        yield open_context
        for ctx in contexts:
            ctx.close()
        chromium.close()


@pytest.fixture
def gatehouse(make_app):
    app = make_app({"registration": {"auto_activate": True}})
    with LoopbackServer(app, "localhost") as server:
        server.app = app
        yield server


def storage_messages(page):
    """Return the client-side postMessages the LMS's page and its frames answered.

    Gatehouse resends put and get until answered (static/launch.js): a resend keeps its
    message_id, so each message counts once.
    """
    messages = {}
    for frame in page.frames:
        if frame.url.startswith("http://127.0.0.1"):
            for message in frame.evaluate("window.ltiMessages || []"):
                messages.setdefault((message["subject"], message["message_id"]), message)
    return list(messages.values())


def gatehouse_cookies(ctx):
    return [c for c in ctx.cookies() if c["name"].startswith("gatehouse_launch_")]


def open_course_page(ctx, sim, launch):
    page = ctx.new_page()
    page.goto(sim.launches.course_page_url(launch))
    return page


def assert_verified(frame):
    frame.locator('body[data-lti-launch="verified"]').wait_for()
    assert "Registration verified" in frame.locator("h1").inner_text()
    assert "Ada Lovelace" in frame.locator("dl.facts").inner_text()


# --- the cookie -----------------------------------------------------------------------------


@pytest.mark.parametrize("cookies", ["third-party cookies", "default"])
@pytest.mark.parametrize("profile", ["canvas", "moodle"])
def test_a_framed_launch_is_bound_by_its_cookie(browser, simulator, gatehouse, profile, cookies):
    ctx = browser(cookies)
    sim = simulator(profile)
    report = sim.register(gatehouse.url + "/lti/register")
    assert report.ok, report.render()
    page = open_course_page(ctx, sim, sim.prepare_launch(report.client_id))
    assert_verified(page.frame_locator("#tool"))
    (cookie,) = gatehouse_cookies(ctx)
    assert cookie["path"] == "/lti/launch"
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "None"
    # The cookie sufficed: the LMS's platform storage was never asked for anything.
    assert not [m for m in storage_messages(page) if "data" in m["subject"]]


# --- the LMS's platform storage -------------------------------------------------------------


@pytest.mark.parametrize("profile", ["canvas", "moodle"])
def test_without_cookies_in_the_frame_the_lms_platform_storage_binds_the_launch(
    browser, simulator, gatehouse, profile
):
    ctx = browser("no cookies in frames")
    sim = simulator(profile)
    report = sim.register(gatehouse.url + "/lti/register")
    launch = sim.prepare_launch(report.client_id)
    page = open_course_page(ctx, sim, launch)
    assert_verified(page.frame_locator("#tool"))
    assert gatehouse_cookies(ctx) == []  # the browser kept no cookie of Gatehouse's
    messages = storage_messages(page)
    # Login and launch page each: capabilities, then put (login) or get (launch).
    subjects = sorted(m["subject"] for m in messages)
    assert subjects == ["lti.capabilities", "lti.capabilities", "lti.get_data", "lti.put_data"]
    assert {m["origin"] for m in messages} == {gatehouse.url}
    (put,) = [m for m in messages if m["subject"] == "lti.put_data"]
    (get,) = [m for m in messages if m["subject"] == "lti.get_data"]
    assert put["key"] == get["key"] and put["key"].startswith("gatehouse-launch-")
    # Canvas keeps the values in its forwarding frame; the others in the course page itself.
    frame = "post_message_forwarding" if profile == "canvas" else "_parent"
    assert launch.storage_target == frame


def test_the_lms_refuses_platform_storage_to_another_origin(browser, simulator, gatehouse):
    """The simulator's storage is a real platform side: a foreign origin gets wrong_origin."""
    ctx = browser("default")
    sim = simulator("moodle")
    report = sim.register(gatehouse.url + "/lti/register")
    launch = sim.prepare_launch(report.client_id)
    page = open_course_page(ctx, sim, launch)
    assert_verified(page.frame_locator("#tool"))
    answer = page.evaluate(
        """() => new Promise((resolve) => {
            window.addEventListener("message", (e) => {
                if (e.data && e.data.subject === "lti.get_data.response") resolve(e.data);
            });
            window.postMessage({subject: "lti.get_data", key: "k", message_id: "m1"}, "*");
        })"""
    )
    assert answer["error"]["code"] == "wrong_origin"


# --- a new window ---------------------------------------------------------------------------


def test_without_cookies_or_platform_storage_the_launch_continues_in_a_new_window(
    browser, simulator, gatehouse
):
    ctx = browser("no cookies in frames")
    sim = simulator("moodle")
    report = sim.register(gatehouse.url + "/lti/register")
    launch = sim.prepare_launch(report.client_id, storage_target=None)
    page = open_course_page(ctx, sim, launch)
    frame = page.frame_locator("#tool")
    button = frame.locator("#open-launch-window")
    button.wait_for()
    assert "Continue in a new window" in frame.locator("#login-new-window h1").inner_text()
    with ctx.expect_page() as opened:
        button.click()
    window = opened.value
    assert_verified(window)
    assert "opened in a new window" in frame.locator("#login-window-opened").inner_text()
    (cookie,) = gatehouse_cookies(ctx)  # first-party in the new window
    assert cookie["path"] == "/lti/launch"


# --- the attack: a captured launch submitted into another browser ---------------------------


class ForeignSite:
    """A page on another origin (127.0.0.1, its own port) that auto-submits a captured launch.

    `/top` submits it into the whole window; `/framed` into an iframe of its own, and answers
    every client-side postMessage with the captured platform storage value, pretending to be
    the LMS.
    """

    def __init__(self, action: str, fields: dict[str, str], value: str = ""):
        self.action, self.fields, self.value = action, fields, value
        self.server = LoopbackServer(self._wsgi, "127.0.0.1", name="foreign-site")

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        framed = request.path == "/framed"
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in self.fields.items()
        )
        target = ' target="victim"' if framed else ""
        frame = '<iframe name="victim" id="victim" width="800" height="600"></iframe>'
        value = html.escape(self.value)
        script = (
            "window.addEventListener('message', (e) => { const m = e.data || {};"
            " if (typeof m.subject !== 'string') return;"
            " e.source.postMessage({subject: m.subject + '.response', message_id: m.message_id,"
            " key: m.key, value: document.body.dataset.value, supported_messages: ["
            "{subject: 'lti.put_data'}, {subject: 'lti.get_data'}]}, '*'); });"
            if framed
            else ""
        )
        body = (
            f'<!doctype html><html><body data-value="{value}"><h1>Free quiz answers</h1>'
            f"{frame if framed else ''}"
            f'<form id="f" method="post" action="{html.escape(self.action)}"{target}>{inputs}'
            "</form><script>" + script + "document.getElementById('f').submit();</script>"
            "</body></html>"
        )
        return Response(body, mimetype="text/html")(environ, start_response)

    def url(self, path: str) -> str:
        return self.server.url + path


def capture_launch(sim, client_id, **options):
    """Log in as the attacker outside any browser; stop before the LMS's form is submitted.

    Return the form (action, fields) and the platform storage value of the attacker's login.
    """
    attacker = browser_session()
    login = attacker.get(sim.prepare_launch(client_id, **options).login_url, timeout=10)
    value = re.search(r'data-storage-value="([^"]+)"', login.text).group(1)
    form = parse_form(attacker.get(login_destination(login), timeout=10).text)
    return form, value


@pytest.mark.parametrize("storage", ["_parent", None], ids=["storage-offered", "no-storage"])
def test_a_captured_launch_auto_submitted_from_a_foreign_page_is_refused(
    browser, simulator, gatehouse, storage
):
    sim = simulator("moodle")
    report = sim.register(gatehouse.url + "/lti/register")
    (action, fields), _value = capture_launch(sim, report.client_id, storage_target=storage)
    victim = browser("third-party cookies")
    page = victim.new_page()
    with ForeignSite(action, fields) as site:
        page.goto(site.url("/top"))
        refused = page.locator('body[data-lti-error="launch-not-bound"]')
        refused.wait_for()
        assert page.locator("h1").inner_text() == "The tool could not be opened"
        assert "browser that started" in page.locator("p.lead").inner_text()
        # The rule is folded under "Technical details" until the person opens it.
        details = page.locator("details[data-technical-details]")
        assert not details.locator("code").is_visible()
        details.locator("summary").click()
        assert details.locator("code").inner_text() == "launch-not-bound"
    assert (
        gatehouse.app.extensions["gatehouse.store"]
        .find_platform(sim.issuer, report.client_id)
        .last_launch_at
        is None
    )


def test_a_foreign_page_cannot_supply_the_platform_storage_value(browser, simulator, gatehouse):
    """The attacker knows its own login's storage value; neither route lets it in.

    Framed, the foreign page answers the launch page's postMessages with the value, but they
    do not come from the LMS's origin; posted straight to /lti/launch/verify, the proof comes
    from another site.
    """
    sim = simulator("moodle")
    report = sim.register(gatehouse.url + "/lti/register")
    (action, fields), value = capture_launch(sim, report.client_id)
    victim = browser("no cookies in frames")
    page = victim.new_page()
    with ForeignSite(action, fields, value) as site:
        page.goto(site.url("/framed"))
        frame = page.frame_locator("#victim")
        frame.locator('body[data-lti-error="launch-not-bound"]').wait_for()
        technical = frame.locator("details[data-technical-details] p").first
        assert "LMS's platform storage failed" in technical.text_content()
    verify = {**fields, "lti_storage_value": value}
    with ForeignSite(action + "/verify", verify) as site:
        page.goto(site.url("/top"))
        page.locator('body[data-lti-error="launch-not-bound"]').wait_for()
        technical = page.locator("details[data-technical-details] p").first
        assert "from another site (cross-site)" in technical.text_content()
    assert (
        gatehouse.app.extensions["gatehouse.store"]
        .find_platform(sim.issuer, report.client_id)
        .last_launch_at
        is None
    )
