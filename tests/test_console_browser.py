"""Every console page in real Chromium at 480 px wide: nothing wider than the phone."""

import pytest
from playwright.sync_api import sync_playwright
from support import browser as browser_rig
from support.browser import launch_browser, new_context
from test_console import HASH, OWNER, PASSWORD, add_platform, failed_attempt, unknown_attempt

pytestmark = pytest.mark.skipif(
    browser_rig.unavailable_reason() is not None, reason=str(browser_rig.unavailable_reason())
)
WIDTH = 480
LONG = "deployment-" + "x" * 120  # an id with no place to break


@pytest.fixture
def phone():
    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        context = new_context(
            chromium, third_party_cookies=False, viewport={"width": WIDTH, "height": 800}
        )
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()
        chromium.close()


def owner(store):
    account = store.create_account(OWNER, "Olive Owner", HASH)
    store.set_owner(account.id, True)


def some_of_everything(store, live, simulator):
    """Fill the console with real registrations, long ids, failures, audit lines, launches."""
    platforms = []
    for profile in ("moodle", "canvas", "brightspace"):
        sim = simulator(profile)
        report = sim.register(live.register_url)
        assert report.ok
        platforms.append(store.find_platform(sim.issuer, report.client_id))
    moodle = platforms[0]
    store.add_deployment(moodle.id, LONG, active=False, source="launch")
    for _ in range(3):
        store.record_launch(moodle.id)
    add_platform(store, 9, name="A platform with a rather long name " * 3, client_id="c" * 90)
    failed = failed_attempt(store, '{"errors": [{"message": "' + "y" * 300 + '"}]}')
    unknown = unknown_attempt(store)
    for n in range(30):
        store.audit(
            "api key ci", "platform.updated", "platform", moodle.id, {"fields": [LONG], "n": n}
        )
    store.create_invitation("Springfield University " * 4, 5, None)
    return moodle, failed, unknown


def test_every_console_page_fits_480_px(phone, app, store, live, simulator):
    owner(store)
    moodle, failed, unknown = some_of_everything(store, live, simulator)
    phone.goto(live.url + "/console/login")
    phone.locator("#email").fill(OWNER)
    phone.locator("#password").fill(PASSWORD)
    phone.locator("button[type=submit]").click()
    phone.wait_for_url(live.url + "/console/")
    pages = [
        "/console/",
        "/console/?days=90",
        "/console/registrations",
        f"/console/registrations/{failed.id}",
        f"/console/registrations/{unknown.id}",
        f"/console/registrations/{moodle.registration_id}",
        "/console/platforms",
        f"/console/platforms/{moodle.id}",
        f"/console/platforms/{moodle.id}/edit",
        f"/console/platforms/{moodle.id}/delete",
        "/console/audit",
        "/console/api-keys",
        "/console/invitations",
        "/console/how-to-register",
    ]
    widths = {}
    for path in pages:
        response = phone.goto(live.url + path)
        assert response.status == 200, path
        widths[path] = phone.evaluate("document.documentElement.scrollWidth")
    assert widths == dict.fromkeys(pages, WIDTH)


def test_the_audit_log_reads_as_sentences_on_a_phone(phone, app, store, live):
    owner(store)
    platform = add_platform(store)
    for n in range(30):
        store.audit(
            "api key ci",
            "platform.updated",
            "platform",
            platform.id,
            {"fields": ["name", "token_endpoint"], "n": n},
        )
    phone.goto(live.url + "/console/login")
    phone.locator("#email").fill(OWNER)
    phone.locator("#password").fill(PASSWORD)
    phone.locator("button[type=submit]").click()
    phone.wait_for_url(live.url + "/console/")
    phone.goto(live.url + "/console/audit")
    first = phone.locator("tr[data-audit]").first
    assert first.locator("pre").is_hidden()  # the JSON waits behind its toggle
    # 25 lines, each a few lines of text: a page, not the 22,000 px of raw JSON it was.
    height = phone.evaluate("document.documentElement.scrollHeight")
    assert height < 25 * 200, height
    first.locator("summary").click()
    assert first.locator("pre").is_visible()
    assert '"email": "owner@tool.example"' in first.locator("pre").inner_text()


def test_a_long_id_in_an_audit_sentence_does_not_push_the_table_out_of_its_box(
    phone, app, store, live
):
    owner(store)
    platform = add_platform(store)
    store.audit("api key ci", "deployment.added", "platform", platform.id, {"deploymentId": LONG})
    phone.set_viewport_size({"width": 1280, "height": 800})
    phone.goto(live.url + "/console/login")
    phone.locator("#email").fill(OWNER)
    phone.locator("#password").fill(PASSWORD)
    phone.locator("button[type=submit]").click()
    phone.wait_for_url(live.url + "/console/")
    phone.goto(live.url + "/console/audit")
    box = phone.locator(".table-wrap")
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth"), "the audit table scrolls sideways"
    assert phone.get_by_text(f"added deployment {LONG[:20]}").is_visible()
