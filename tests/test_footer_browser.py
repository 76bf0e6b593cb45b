"""The footer's "Copy details" and the copy buttons in real Chromium (Playwright, Debian's
chromium): the Clipboard API at the top level, the execCommand fallback inside an LMS's
cross-site frame that grants no clipboard-write, and "press Ctrl+C" when both are refused; and
ids on one line in a 480 px wide dialog.

Gatehouse is served on localhost, the fake LMS page on 127.0.0.1 (two sites), the simulated
LMSes on 127.0.0.1 (tests/support/browser.py)."""

import pytest
from support import browser as browser_rig
from support.browser import FakeLMS, new_context
from werkzeug.security import generate_password_hash

from app.testing import LoopbackServer
from app.web.footer import REFERENCE_LENGTH

pytestmark = pytest.mark.skipif(
    browser_rig.unavailable_reason() is not None, reason=str(browser_rig.unavailable_reason())
)

TIMEOUT = 15_000
CONTACTS = {"tool": {"contacts": ["help@quiz.example"]}}
# Canvas numbers its developer keys (10000000000042); Moodle makes random 15-character ids.
CANVAS_CLIENT_ID = "10000000000042"
MOODLE_CLIENT_ID = "aBcD3fGh1jKlMn0"
PASSWORD = "correct horse battery"
HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


@pytest.fixture
def context(chromium):
    """A fresh profile whose pages may read and write the clipboard (the tests read it back)."""
    ctx = new_context(chromium, third_party_cookies=False)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    ctx.set_default_timeout(TIMEOUT)
    yield ctx
    ctx.close()


@pytest.fixture
def gatehouse(make_app):
    app = make_app(CONTACTS)
    with LoopbackServer(app, "localhost") as server:
        server.app = app
        server.store = app.extensions["gatehouse.store"]
        server.register_url = server.url + "/lti/register"
        yield server


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def copied_status(button):
    """Return the live region that answers `button` (the [data-copy-status] after it)."""
    return button.locator("xpath=following-sibling::*[@data-copy-status][1]")


def test_copy_details_and_the_client_id_reach_the_clipboard(context, gatehouse, simulator):
    page = context.new_page()
    page.goto(simulator("canvas").initiation_url(gatehouse.register_url))
    page.locator("h1.ok").wait_for()
    registration = gatehouse.store.list_registrations()[0][0]

    details = page.get_by_role("button", name="Copy details")
    status = copied_status(details)
    assert status.get_attribute("aria-live") == "polite"
    details.click()
    status.filter(has_text="Copied").wait_for()
    text = clipboard(page)
    assert text.startswith("Tool: Quiz Tool\nPage: Registration complete\n")
    assert f"Reference: {registration.id[:REFERENCE_LENGTH]}\n" in text
    assert "LMS: Canvas" in text
    assert registration.id not in text

    page.get_by_text("Registration details").click()
    copy_id = page.get_by_role("button", name="Copy the Client ID")
    copy_id.click()
    copied_status(copy_id).filter(has_text="Copied").wait_for()
    assert clipboard(page) == registration.client_id
    assert page.locator("footer a[href^='mailto:help@quiz.example']").inner_text() == (
        "help@quiz.example"
    )


def test_inside_a_cross_site_frame_without_clipboard_write_the_copy_falls_back(context, gatehouse):
    with FakeLMS() as lms:
        page = context.new_page()
        page.goto(lms.page_url(gatehouse.register_url, "iframe"))
        frame = page.frame_locator("#tool")
        frame.locator("#registration-url").wait_for()
        refused = frame.locator("body").evaluate(
            "() => navigator.clipboard.writeText('x').then(() => 'granted', () => 'refused')"
        )
        assert refused == "refused"  # the LMS's iframe has no allow="clipboard-write"

        copy_url = frame.get_by_role("button", name="Copy the registration URL")
        copy_url.click()
        copied_status(copy_url).filter(has_text="Copied").wait_for()
        assert clipboard(page) == gatehouse.register_url
        assert copy_url.evaluate("button => document.activeElement === button")

        frame.get_by_role("button", name="Copy details").click()
        frame.locator("footer [data-copy-status]").filter(has_text="Copied").wait_for()
        assert "Tool: Quiz Tool\nPage: The registration URL of Quiz Tool\n" in clipboard(page)


def test_when_every_way_to_copy_is_refused_the_details_are_selected_for_ctrl_c(context, gatehouse):
    # A browser that refuses execCommand("copy") as well (some do in frames): the init script
    # runs in every frame, before the page's own scripts.
    context.add_init_script("document.execCommand = () => false;")
    with FakeLMS() as lms:
        page = context.new_page()
        page.goto(lms.page_url(gatehouse.register_url, "iframe"))
        frame = page.frame_locator("#tool")
        frame.get_by_role("button", name="Copy details").click()
        frame.locator("footer [data-copy-status]").filter(has_text="Ctrl+C").wait_for()
        details = frame.locator("#page-details")
        assert details.is_visible()
        selected = details.evaluate(
            "area => [document.activeElement === area, area.selectionStart,"
            " area.selectionEnd, area.value.length]"
        )
        assert selected[:2] == [True, 0]
        assert selected[2] == selected[3] > 0


def one_line(locator) -> bool:
    """True when the element's box is one line of its text high (it did not wrap)."""
    return locator.evaluate(
        """el => {
          const style = getComputedStyle(el);
          const line = parseFloat(style.lineHeight);
          const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
          const border = parseFloat(style.borderTopWidth) + parseFloat(style.borderBottomWidth);
          return Math.abs(el.getBoundingClientRect().height - (line + padding + border)) < 1;
        }"""
    )


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("client_id", [CANVAS_CLIENT_ID, MOODLE_CLIENT_ID])
def test_client_ids_stay_on_one_line_in_a_480px_dialog(chromium, gatehouse, client_id):
    store = gatehouse.store
    platform = store.create_platform(
        {
            "issuer": "https://school.example",
            "client_id": client_id,
            "authorization_endpoint": "https://school.example/auth",
            "token_endpoint": "https://school.example/token",
            "jwks_uri": "https://school.example/jwks",
            "name": "School",
        },
        active=True,
    )
    store.add_deployment(platform.id, "1:" + "f" * 40)
    owner = store.create_account("owner@tool.example", "Olive Owner", HASH)
    store.set_owner(owner.id, True)
    ctx = chromium.new_context(viewport={"width": 480, "height": 800})
    try:
        page = ctx.new_page()
        page.goto(gatehouse.url + "/console/login")
        page.locator("#email").fill("owner@tool.example")
        page.locator("#password").fill(PASSWORD)
        page.locator("#signin").click()
        page.wait_for_url("**/console/**")
        page.goto(f"{gatehouse.url}/console/platforms/{platform.id}")
        shown = page.locator("#client-id")
        assert shown.inner_text() == client_id
        assert one_line(shown)
        assert page_width(page) <= 480
        # A table squeezes its columns to their narrowest: an id must not give way mid-word.
        page.goto(f"{gatehouse.url}/console/platforms")
        listed = page.locator("table code").filter(has_text=client_id)
        assert listed.inner_text() == client_id
        assert one_line(listed)
        assert page_width(page) <= 480
        for path in ("/", "/lti/register"):
            page.goto(gatehouse.url + path)
            assert one_line(page.locator("#registration-url"))
            assert page_width(page) <= 480
    finally:
        ctx.close()
