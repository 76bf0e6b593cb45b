"""Every page passes axe-core's checks in real Chromium: at 480 and 1280 px, in the light and the
dark colour scheme, and the pages an LMS frames inside a cross-site iframe (the LMS on
127.0.0.1, Gatehouse on localhost), as admins and learners meet them.

axe-core comes from npm (tests/support/axe, installed by `make test-deps`) and is injected into
each page. A page is loaded once and checked at every width and scheme by resizing the viewport
and switching `prefers-color-scheme`, so the table stays fast. A new page is one row in PAGES.
"""

import functools
import re
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from support import browser as browser_rig
from support import required
from support.browser import FakeLMS, launch_browser, new_context
from support.fake_stripe import FakeStripe
from test_console import HASH, OWNER, PASSWORD, failed_attempt, unknown_attempt

from app import create_app
from app.testing import LoopbackServer
from app.web.login import hash_password

AXE = Path(__file__).parent / "support" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def unavailable_reason() -> str | None:
    """Return why these checks cannot run here (no Chromium, or axe-core not installed)."""
    if browser_rig.unavailable_reason() is not None:
        return browser_rig.unavailable_reason()
    return required(None if AXE.exists() else f"{AXE} is missing: run `make test-deps`")


pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))

WIDTHS = (480, 1280)
SCHEMES = ("light", "dark")
# WCAG 2.0 and 2.1, levels A and AA, plus axe's best practices (landmarks, one h1, headings in
# order, …). No rule is switched off.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
STRIPE_KEY = "sk_test_gatehouse_axe"
ADMIN, ADMIN_PASSWORD = "admin@school.example", "correct horse battery"
STAFF = "staff@tool.example"  # signed in to the console but not an owner: the forbidden page
TIMEOUT = 15_000
LEARNER = {
    "https://purl.imsglobal.org/spec/lti/claim/roles": [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
    ]
}


class Site:
    """Two Gatehouses on localhost (one without gates, one with sign-in, terms and payment),
    the LMS simulator and a fake LMS page on 127.0.0.1, and browser contexts to visit them."""

    def __init__(self, chromium, tmp, simulator_class):
        self.stripe = FakeStripe(api_key=STRIPE_KEY, webhook_secret="whsec_axe").__enter__()
        terms = tmp / "terms.md"
        terms.write_text("# Terms of use\n\nUse the tool **fairly**.\n")
        base = {
            "tool": {"name": "Quiz Tool", "description": "Auto-graded quizzes."},
            "security": {"allow_insecure_platforms": True},
            "limits": {"enabled": False},
            "registration": {"auto_activate": True},
        }
        gated = {
            **base,
            "registration": {"gates": ["signin", "terms", "payment"]},
            "gates": {
                "terms": {"version": "2026-11", "path": str(terms)},
                "payment": {"price_id": "price_123", "api_base": self.stripe.url},
            },
        }
        self.plain = self._serve(base, tmp / "plain.db")
        self.gated = self._serve(gated, tmp / "gated.db")
        store = self.plain.app.extensions["gatehouse.store"]
        self.store = store
        owner = store.create_account(OWNER, "Olive Owner", HASH)
        store.set_owner(owner.id, True)
        store.create_account(STAFF, "Sam Staff", HASH)
        self.gated.app.extensions["gatehouse.store"].create_account(
            ADMIN, "Ada Admin", hash_password(ADMIN_PASSWORD)
        )
        self.lms = FakeLMS().start()
        self.sims = []
        self.simulator_class = simulator_class
        self.moodle = self.simulator("moodle")
        self.chromium = chromium
        self.contexts = []
        self.anonymous = self.context()
        self.owner = self.signed_in(OWNER)
        self.staff = self.signed_in(STAFF)
        self.fill_console()

    def _serve(self, settings, db):
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": f"sqlite:///{db}",
                "SECRET_KEY": "test-secret",
                "SETTINGS": settings,
            }
        )
        server = LoopbackServer(app, "localhost").__enter__()
        server.app = app
        return server

    def simulator(self, profile):
        sim = self.simulator_class(profile=profile)
        sim.start()
        self.sims.append(sim)
        return sim

    def context(self, **options):
        ctx = new_context(self.chromium, third_party_cookies=False, **options)
        ctx.set_default_timeout(TIMEOUT)
        self.contexts.append(ctx)
        return ctx.new_page()

    def signed_in(self, email):
        page = self.context()
        page.goto(self.plain.url + "/console/login")
        page.locator("#email").fill(email)
        page.locator("#password").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        page.wait_for_load_state()
        return page

    def fill_console(self):
        """Registrations of each kind, an API key and an invitation: every list has rows."""
        report = self.moodle.register(self.plain.url + "/lti/register")
        assert report.ok, report.render()
        self.moodle_client_id = report.client_id
        self.platform = self.store.find_platform(self.moodle.issuer, report.client_id)
        self.failed = failed_attempt(self.store, '{"errors": [{"message": "no"}]}')
        self.unknown = unknown_attempt(self.store)
        self.invitation = self.store.create_invitation("Springfield University", 5, None)
        self.store.record_launch(self.platform.id)

    def close(self):
        for ctx in self.contexts:
            ctx.close()
        for sim in self.sims:
            sim.stop()
        self.lms.stop()
        self.plain.__exit__(None, None, None)
        self.gated.__exit__(None, None, None)
        self.stripe.__exit__(None, None, None)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from app.simulator import Simulator

    with sync_playwright() as playwright, pytest.MonkeyPatch.context() as env:
        env.setenv("STRIPE_SECRET_KEY", STRIPE_KEY)
        env.setenv("STRIPE_WEBHOOK_SECRET", "whsec_axe")
        chromium = launch_browser(playwright)
        built = Site(chromium, tmp_path_factory.mktemp("axe"), Simulator)
        yield built
        built.close()
        chromium.close()


# --- how to reach each page: a function of the site returning the Page or Frame to check ---


def top(page, url, wait="h1"):
    page.goto(url)
    page.locator(wait).first.wait_for()
    return page


def framed(page, lms, url, wait="h1"):
    """Open the fake LMS page that frames url; return the frame once it shows `wait`."""
    page.goto(lms.page_url(url, "iframe"))
    return tool_frame(page, wait)


def tool_frame(page, wait="h1"):
    frame = page.locator("#tool").element_handle().content_frame()
    frame.locator(wait).first.wait_for()
    return frame


def register_in_frame(site, server, sim=None, update=None):
    sim = sim or site.simulator("moodle")
    page = site.anonymous
    return framed(page, site.lms, sim.initiation_url(server.url + "/lti/register", update))


def gate(site, steps):
    """Start a registration on the gated Gatehouse and pass the first `steps` gates."""
    frame = register_in_frame(site, site.gated)
    if steps >= 1:
        frame.locator("#email").fill(ADMIN)
        frame.locator("#password").fill(ADMIN_PASSWORD)
        frame.locator("#signin").click()
        frame.locator("#accept").wait_for()
    if steps >= 2:
        frame.locator("#accept").check()
        frame.locator("#signer_name").fill("Ada Admin")
        frame.locator("#accept-terms").click()
        frame.locator("#pay").wait_for()
    return frame


def rid_of(frame):
    return re.search(r"/lti/register/([^/?]+)", frame.url).group(1)


def signup(site):
    frame = gate(site, 0)
    return framed(site.anonymous, site.lms, f"{site.gated.url}/lti/register/{rid_of(frame)}/signup")


def cookies_blocked(site):
    """A gate form posted without its session (and so without a valid CSRF token)."""
    page = top(site.anonymous, site.gated.url + "/")
    page.evaluate(
        """(action) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = action;
            document.body.append(form);
            form.submit();
        }""",
        site.gated.url + "/lti/register/no-such-registration/signin",
    )
    page.wait_for_url("**/signin")
    page.locator("h1").wait_for()
    return page


def window_done(site):
    frame = gate(site, 2)
    return top(site.anonymous, f"{site.gated.url}/lti/register/{rid_of(frame)}/payment/cancelled")


def close_update(site):
    """In its own tab: in a frame the update's close page tells the LMS to close at once."""
    url = site.moodle.initiation_url(site.plain.url + "/lti/register", site.moodle_client_id)
    return top(site.anonymous, url)


def launch(site, **options):
    page = site.anonymous
    page.goto(
        site.moodle.launches.course_page_url(
            site.moodle.prepare_launch(site.moodle_client_id, **options)
        )
    )
    return tool_frame(page, "body[data-lti-launch] h1")


def setting_up(site):
    sim = site.simulator("canvas")
    report = sim.register(site.plain.url + "/lti/register")
    assert report.ok, report.render()
    platform = site.store.find_platform(sim.issuer, report.client_id)
    site.store.update_platform(platform.id, {"active": False})
    page = site.anonymous
    page.goto(sim.launches.course_page_url(sim.prepare_launch(report.client_id)))
    return tool_frame(page)


def login_page(site):
    """The launch's login page as served: its script, which would go on to the LMS at once,
    is answered empty here."""
    page = site.context()
    empty = {"body": "", "content_type": "text/javascript"}
    page.route("**/static/launch.js", lambda route: route.fulfill(**empty))
    page.goto(site.moodle.prepare_launch(site.moodle_client_id).login_url)
    page.locator("#login-working h1").wait_for()
    return page


def login_new_window(site):
    """No cookies in the frame and no platform storage: the login page asks for a new window."""
    page = new_context(site.chromium, third_party_cookies=False, partitioned_cookies=False)
    site.contexts.append(page)
    page = page.new_page()
    launch = site.moodle.prepare_launch(site.moodle_client_id, storage_target=None)
    page.goto(site.moodle.launches.course_page_url(launch))
    return tool_frame(page, "#open-launch-window")


def working(site):
    """A registration being sent to the LMS (claimed by another request) shows "Registering"."""
    frame = gate(site, 0)
    rid = rid_of(frame)
    assert site.gated.app.extensions["gatehouse.store"].claim_for_registering(rid, {}, [])
    page = site.context()
    # Held there: the page asks for the status and reloads while registering; left unanswered.
    page.route("**/status", lambda route: None)
    return framed(page, site.lms, f"{site.gated.url}/lti/register/{rid}")


def storage_page(site):
    """The launch page that asks the LMS's platform storage (no cookie in the frame), held
    there: its script is answered empty (the login page's, the same file, runs as usual)."""
    ctx = new_context(site.chromium, third_party_cookies=False, partitioned_cookies=False)
    ctx.set_default_timeout(TIMEOUT)
    site.contexts.append(ctx)
    page = ctx.new_page()

    def script(route):
        if route.request.frame.url.endswith("/lti/launch"):
            route.fulfill(body="", content_type="text/javascript")
        else:
            route.continue_()

    page.route("**/static/launch.js", script)
    launch = site.moodle.prepare_launch(site.moodle_client_id)
    page.goto(site.moodle.launches.course_page_url(launch))
    return tool_frame(page, "body[data-lti-launch-storage] h1")


def console(path, who="owner"):
    return lambda site: top(getattr(site, who), site.plain.url + "/console" + path)


def console_form(path, fill, submit="button.primary", wait="h1"):
    def visit(site):
        page = top(site.owner, site.plain.url + "/console" + path)
        for selector, value in fill.items():
            page.locator(selector).fill(value)
        page.locator(submit).click()
        page.wait_for_load_state()
        page.locator(wait).first.wait_for()
        return page

    return visit


PAGES = {
    "home": lambda site: top(site.anonymous, site.plain.url + "/"),
    "register about": lambda site: top(site.anonymous, site.plain.url + "/lti/register"),
    "404": lambda site: top(site.anonymous, site.plain.url + "/no/such/page"),
    "404 framed": lambda site: framed(
        site.anonymous, site.lms, site.plain.url + "/lti/register/nothing-here"
    ),
    "405": lambda site: top(site.anonymous, site.plain.url + "/webhooks/stripe"),
    "gate sign-in": lambda site: gate(site, 0),
    "gate sign-up": signup,
    "gate terms": lambda site: gate(site, 1),
    "gate payment": lambda site: gate(site, 2),
    "gate working": working,
    "gate cookies blocked": cookies_blocked,
    "gate window done": window_done,
    "close page new": lambda site: register_in_frame(site, site.plain),
    "close page update": close_update,
    "registration error": lambda site: framed(
        site.anonymous,
        site.lms,
        site.plain.url
        + "/lti/register?openid_configuration=http://127.0.0.1:9/config&registration_token=t",
    ),
    "launch verified (staff)": lambda site: launch(site),
    "launch connected (learner)": lambda site: launch(site, claims=LEARNER),
    "launch setting up": setting_up,
    "launch error": lambda site: framed(site.anonymous, site.lms, site.plain.url + "/lti/login"),
    "launch login": login_page,
    "launch login, new window": login_new_window,
    "launch storage": storage_page,
    "console login": lambda site: top(site.anonymous, site.plain.url + "/console/login"),
    "console home": console("/"),
    "console registrations": console("/registrations"),
    "console registration completed": lambda site: console(
        f"/registrations/{site.platform.registration_id}"
    )(site),
    "console registration failed": lambda site: console(f"/registrations/{site.failed.id}")(site),
    "console registration unknown": lambda site: console(f"/registrations/{site.unknown.id}")(site),
    "console platforms": console("/platforms"),
    "console platform": lambda site: console(f"/platforms/{site.platform.id}")(site),
    "console platform edit": lambda site: console(f"/platforms/{site.platform.id}/edit")(site),
    "console platform delete": lambda site: console(f"/platforms/{site.platform.id}/delete")(site),
    "console api keys": console("/api-keys"),
    "console api key created": console_form("/api-keys", {"#name": "CI back end"}),
    "console api key revoke": lambda site: revoke_key(site),
    "console invitations": console("/invitations"),
    "console invitation revoke": lambda site: console(f"/invitations/{site.invitation.id}/revoke")(
        site
    ),
    "console audit": console("/audit"),
    "console how to register": console("/how-to-register"),
    "console forbidden": console("/", who="staff"),
}


def revoke_key(site):
    page = console_form("/api-keys", {"#name": "To revoke"})(site)
    page = top(site.owner, site.plain.url + "/console/api-keys")
    page.locator("a.button.danger").first.click()
    page.wait_for_url("**/revoke")
    return page


@functools.cache
def axe_source() -> str:
    return AXE.read_text()


# The page currently loaded, so the next width or scheme of the same page reuses it.
shown = {"name": None, "target": None}


def target_for(site, name):
    if shown["name"] != name:
        shown["name"], shown["target"] = None, None
        shown["target"] = PAGES[name](site)
        shown["name"] = name
    return shown["target"]


def readable(violations) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {' '.join(node['target'])}: {node['failureSummary']}")
            lines.append(f"      {node['html'][:200]}")
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("name", "width", "scheme"),
    [(name, width, scheme) for name in PAGES for width in WIDTHS for scheme in SCHEMES],
)
def test_axe_finds_no_violation(site, name, width, scheme):
    """Check the page in its width and colour scheme with every chosen axe-core rule."""
    target = target_for(site, name)
    page = getattr(target, "page", target)
    page.set_viewport_size({"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)
    # The scheme reaches the checked document, framed or not (else dark would go unchecked).
    assert target.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (
        scheme == "dark"
    )
    if not target.evaluate("typeof window.axe !== 'undefined'"):
        target.evaluate(axe_source())
    results = target.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: "
        "['violations']})",
        AXE_TAGS,
    )
    if results["violations"]:
        where = f"{name} at {width} px, {scheme}: {target.url}"
        pytest.fail(f"{where}\n{readable(results['violations'])}", pytrace=False)
