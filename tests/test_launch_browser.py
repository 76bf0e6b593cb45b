"""A launch in a real browser: the simulated LMS's course page on 127.0.0.1 frames Gatehouse on
localhost (cross-site) in a fresh Chromium profile, which blocks third-party cookies."""

import pytest
from playwright.sync_api import sync_playwright
from support import browser as browser_rig
from support.browser import launch_browser, new_context

from app.testing import LoopbackServer

pytestmark = pytest.mark.skipif(
    browser_rig.unavailable_reason() is not None, reason=str(browser_rig.unavailable_reason())
)


@pytest.fixture
def context():
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        ctx = new_context(browser, third_party_cookies=False)
        ctx.set_default_timeout(15_000)
        yield ctx
        ctx.close()
        browser.close()


@pytest.mark.parametrize("profile", ["canvas", "moodle"])
def test_launch_in_a_cross_site_frame_without_third_party_cookies(
    context, simulator, make_app, profile
):
    app = make_app({"registration": {"auto_activate": True}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator(profile)
        report = sim.register(server.url + "/lti/register")
        assert report.ok, report.render()
        launch = sim.prepare_launch(report.client_id)
        page = context.new_page()
        page.goto(sim.launches.course_page_url(launch))
        frame = page.frame_locator("#tool")
        frame.locator('body[data-lti-launch="verified"]').wait_for()
        assert "Registration verified" in frame.locator("h1").inner_text()
        assert "Ada Lovelace" in frame.locator("dl.facts").inner_text()
        # Nothing depended on a cookie: Gatehouse set none in this browser.
        assert [c for c in context.cookies() if c["domain"] == "localhost"] == []
