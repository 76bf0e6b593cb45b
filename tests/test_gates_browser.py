"""The gates in a real browser: Debian Chromium through Playwright, the LMS page on 127.0.0.1
framing Gatehouse on localhost (a genuinely cross-site frame), the built-in simulator as the LMS,
the real Stripe SDK against a Stripe-compatible server, and a real OpenID Provider."""

import pytest
from playwright.sync_api import Error as PlaywrightError
from support import browser as browser_rig
from support import oidc_provider
from support.browser import FakeLMS, new_context, wait_for_close
from support.fake_stripe import FakeStripe
from support.oidc_provider import OidcProvider
from support.postgres import run_sql

from app.domain.gates import approval_of
from app.testing import LoopbackServer, free_port
from app.web.login import hash_password

pytestmark = pytest.mark.skipif(
    browser_rig.unavailable_reason() is not None, reason=str(browser_rig.unavailable_reason())
)

STRIPE_KEY = "sk_test_gatehouse_browser"
WEBHOOK_SECRET = "whsec_gatehouse_browser"
OIDC_SECRET = "oidc-client-secret"
TIMEOUT = 15_000


@pytest.fixture
def context(chromium):
    """A fresh profile: like Chromium in incognito, it blocks third-party cookies."""
    ctx = new_context(chromium, third_party_cookies=False)
    ctx.set_default_timeout(TIMEOUT)
    yield ctx
    ctx.close()


@pytest.fixture
def lms_page():
    with FakeLMS() as lms:
        yield lms


@pytest.fixture
def stripe_server():
    with FakeStripe(api_key=STRIPE_KEY, webhook_secret=WEBHOOK_SECRET) as fake:
        yield fake


class Deployment:
    """Gatehouse served on localhost with the given gates, plus its account for the admin."""

    def __init__(self, app, port):
        self.app = app
        self.store = app.extensions["gatehouse.store"]
        self.server = LoopbackServer(app, "localhost", port)
        self.url = self.server.url
        self.register_url = self.url + "/lti/register"


@pytest.fixture
def gatehouse(make_app, monkeypatch, tmp_path, stripe_server):
    monkeypatch.setenv("STRIPE_SECRET_KEY", STRIPE_KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("GATEHOUSE_OIDC_CLIENT_SECRET", OIDC_SECRET)
    terms = tmp_path / "terms.md"
    terms.write_text("# Terms of use\n\nUse the tool **fairly**.\n")
    servers = []

    def start(gates, oidc=None, port=None, **config):
        settings = {
            "registration": {"gates": list(gates)},
            "gates": {
                "terms": {"version": "2026-11", "path": str(terms)},
                "payment": {"price_id": "price_123", "api_base": stripe_server.url},
                "signin": {"oidc": oidc or {}},
            },
        }
        app = make_app(settings, **config)
        app.extensions["gatehouse.store"].create_account(
            "admin@school.example", "Ada Admin", hash_password("correct horse battery")
        )
        deployment = Deployment(app, port or free_port())
        deployment.server.__enter__()
        servers.append(deployment.server)
        stripe_server.webhook_url = deployment.url + "/webhooks/stripe"
        return deployment

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def open_in_lms(context, lms, sim, gatehouse, mode="iframe"):
    """Open the LMS page, which frames (or opens) Gatehouse's registration URL."""
    page = context.new_page()
    url = sim.initiation_url(gatehouse.register_url)
    page.goto(lms.page_url(url, mode))
    return page, page.frame_locator("#tool")


def click_done(where, lms="Moodle"):
    """Click Done on a close page that holds the dialog (a new tool waits for steps in the LMS).

    In a tab or window the LMS opened, Done closes that very page, sometimes before Playwright
    has finished the click: that is the button working (callers then check the close message).
    """
    try:
        where.get_by_role("button", name=f"Done, back to {lms}").click()
    except PlaywrightError as exc:
        if "closed" not in str(exc):
            raise


def sign_in(frame):
    frame.locator("#email").fill("admin@school.example")
    frame.locator("#password").fill("correct horse battery")
    frame.locator("#signin").click()


def accept_terms(frame):
    frame.locator("#accept").check()
    frame.locator("#signer_name").fill("Ada Admin")
    frame.locator("#accept-terms").click()


def pay(page, frame, button="#pay"):
    """Click Pay in the frame; in Checkout's window, press the given button."""
    with page.context.expect_page() as opened:
        frame.locator("#pay").click()
    checkout = opened.value
    checkout.wait_for_load_state()
    checkout.locator(button).click()
    return checkout


def test_all_three_gates_inside_the_lms_frame_then_the_dialog_closes(
    context, lms_page, gatehouse, simulator, stripe_server
):
    deployment = gatehouse(["signin", "terms", "payment"])
    sim = simulator("canvas")
    page, frame = open_in_lms(context, lms_page, sim, deployment)

    frame.get_by_text("Step 1 of 3: Sign in").wait_for()
    sign_in(frame)
    frame.get_by_text("Step 2 of 3: Terms").wait_for()
    assert frame.locator(".terms strong").inner_text() == "fairly"
    assert frame.locator("#signer_name").input_value() == "Ada Admin"
    accept_terms(frame)
    frame.get_by_text("Step 3 of 3: Payment").wait_for()
    assert sim.records == []  # nothing reached the LMS before the gates were passed
    checkout = pay(page, frame)
    checkout.wait_for_event("close", timeout=TIMEOUT)

    messages = wait_for_close(page, TIMEOUT)
    assert {"origin": deployment.url, "data": {"subject": "org.imsglobal.lti.close"}} in messages

    (platform,) = deployment.store.list_platforms()[0]
    approval = approval_of(deployment.store, platform.registration_id)
    assert approval["account"].email == "admin@school.example"
    assert approval["terms"].version == "2026-11"
    assert approval["payment"].status == "paid"
    assert (approval["payment"].amount, approval["payment"].currency) == (1500, "usd")
    assert sim.posts_for(sim.records[0].token) == 1
    (created,) = stripe_server.api_requests("POST", "/v1/checkout/sessions")
    assert created.params["client_reference_id"] == platform.registration_id
    assert created.params["line_items"] == [{"price": "price_123", "quantity": "1"}]


def test_terms_alone_inside_the_lms_frame_then_the_dialog_closes(
    context, lms_page, gatehouse, simulator
):
    deployment = gatehouse(["terms"])
    sim = simulator("moodle")
    page, frame = open_in_lms(context, lms_page, sim, deployment)
    frame.get_by_text("Step 1 of 1: Terms").wait_for()
    frame.locator("#accept-terms").click()  # nothing filled in: each error next to its field
    assert frame.locator("#accept-error").inner_text() == "Tick the box to accept the terms."
    assert frame.locator("#email-error").inner_text() == "Type your e-mail address."
    assert frame.locator("#email").get_attribute("aria-describedby") == "email-error"
    frame.locator("#accept").check()
    frame.locator("#signer_name").fill("Ada Admin")
    frame.locator("#email").fill("ada@school.example")
    frame.locator("#accept-terms").click()

    click_done(frame)
    messages = wait_for_close(page, TIMEOUT)
    assert {"origin": deployment.url, "data": {"subject": "org.imsglobal.lti.close"}} in messages
    (platform,) = deployment.store.list_platforms()[0]
    approval = approval_of(deployment.store, platform.registration_id)
    assert approval["account"] is None
    assert (approval["terms"].email, approval["terms"].signer_name) == (
        "ada@school.example",
        "Ada Admin",
    )
    assert approval["terms"].version == "2026-11"
    assert approval["terms"].user_agent and "Chrome" in approval["terms"].user_agent
    assert sim.posts_for(sim.records[0].token) == 1


def test_payment_cancelled_then_paid(context, lms_page, gatehouse, simulator, stripe_server):
    deployment = gatehouse(["payment"])
    sim = simulator("moodle")
    page, frame = open_in_lms(context, lms_page, sim, deployment)
    frame.get_by_text("Step 1 of 1: Payment").wait_for()

    cancelled = pay(page, frame, button="#cancel")
    cancelled.get_by_text("Payment cancelled").wait_for()
    frame.locator("#payment-cancelled-live").wait_for(state="visible")
    cancelled.close()
    (rid,) = [r.id for r in deployment.store.list_registrations()[0]]
    assert [p.status for p in deployment.store.payments_for(rid)] == ["cancelled"]
    assert deployment.store.get_registration(rid).state == "pending"

    pay(page, frame)
    click_done(frame)
    wait_for_close(page, TIMEOUT)
    statuses = sorted(p.status for p in deployment.store.payments_for(rid))
    assert statuses == ["cancelled", "paid"]
    assert deployment.store.get_registration(rid).state == "completed"


def test_paid_without_a_webhook_is_confirmed_by_retrieving_the_session(
    context, lms_page, gatehouse, simulator, stripe_server
):
    stripe_server.send_webhook_on_pay = False
    deployment = gatehouse(["payment"])
    sim = simulator("generic")
    page, frame = open_in_lms(context, lms_page, sim, deployment)
    checkout = pay(page, frame)
    checkout.wait_for_event("close", timeout=TIMEOUT)
    wait_for_close(page, TIMEOUT)
    assert stripe_server.deliveries == []
    retrievals = [r for r in stripe_server.api_requests("GET") if "/checkout/" in r.path]
    assert retrievals  # the server-side retrieval
    (platform,) = deployment.store.list_platforms()[0]
    assert approval_of(deployment.store, platform.registration_id)["payment"].status == "paid"


def without_partitioned_cookies(gatehouse):
    """Gatehouse with sign-in and terms gates, seen by a browser that blocks third-party cookies
    and has no partitioned ones (older Safari): its LMS frame gets no cookies."""
    return gatehouse(["signin", "terms"], SESSION_COOKIE_PARTITIONED=False)


def gates_in_a_new_window(context, lms_page, deployment, sim):
    """Start a registration in the LMS frame, and pass the gates in the window its "Continue in a
    new window" opens; return (page, frame, window), that window showing the summary."""
    page, frame = open_in_lms(context, lms_page, sim, deployment)
    frame.locator("#cookie-fallback").wait_for(state="visible")
    with page.context.expect_page() as opened:
        frame.locator("#continue-in-new-window").click()
    window = opened.value
    window.wait_for_load_state()
    window.locator("#email").fill("admin@school.example")
    window.locator("#password").fill("correct horse battery")
    window.locator("#signin").click()
    window.locator("#accept").check()
    window.locator("#signer_name").fill("Ada Admin")
    window.locator("#accept-terms").click()
    return page, frame, window


def assert_closed_once(page, deployment):
    """The LMS page got the LTI close message from Gatehouse exactly once."""
    messages = wait_for_close(page, TIMEOUT)
    close = {"origin": deployment.url, "data": {"subject": "org.imsglobal.lti.close"}}
    assert messages.count(close) == 1, messages


def test_blocked_cookies_finish_in_a_new_window_and_the_dialog_still_closes(
    context, lms_page, gatehouse, simulator
):
    sim = simulator("moodle")
    deployment = without_partitioned_cookies(gatehouse)
    page, _, window = gates_in_a_new_window(context, lms_page, deployment, sim)
    # The summary is read in that window (Moodle has steps left); its Done tells the LMS.
    with window.expect_event("close", timeout=TIMEOUT):
        click_done(window)
    assert_closed_once(page, deployment)
    (registration,) = deployment.store.list_registrations()[0]
    assert registration.state == "completed"
    assert sim.posts_for(sim.records[0].token) == 1


def test_a_new_windows_done_reaches_the_lms_while_the_frame_moves_between_pages(
    context, lms_page, gatehouse, simulator
):
    # Gatehouse's page in the LMS frame, polling, moves on to its own summary when the window
    # finishes. Held between two documents (its new page committed, its script not yet run), it
    # cannot pass a message on: the window tells the LMS directly.
    deployment = without_partitioned_cookies(gatehouse)
    held = []

    def hold_the_frames_summary_script(route):
        # Only the frame's summary asks for it after the registration completed.
        in_frame = route.request.frame.parent_frame is not None
        registrations = deployment.store.list_registrations()[0]
        if in_frame and any(r.state == "completed" for r in registrations):
            held.append(route)
        else:
            route.continue_()

    context.route("**/static/close.js*", hold_the_frames_summary_script)
    page, _, window = gates_in_a_new_window(context, lms_page, deployment, simulator("moodle"))
    for _ in range(TIMEOUT // 50):  # until the frame's summary has started, its script held
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the frame never moved on to its summary"
    with window.expect_event("close", timeout=TIMEOUT):
        click_done(window)
    assert_closed_once(page, deployment)
    for route in held:
        try:
            route.continue_()
        except PlaywrightError:  # the LMS removed the frame when the message arrived
            pass


def test_a_new_window_finishing_for_canvas_leaves_the_close_message_to_the_frame(
    context, lms_page, gatehouse, simulator
):
    # Canvas shows its own review next, so the summary does not wait for Done: the window hurries
    # Gatehouse's frame on and closes, and the frame, reaching the same summary, tells Canvas.
    deployment = without_partitioned_cookies(gatehouse)
    page, _, window = gates_in_a_new_window(context, lms_page, deployment, simulator("canvas"))
    if not window.is_closed():  # Playwright notes a close while a call of ours is running
        window.wait_for_event("close", timeout=TIMEOUT)
    assert_closed_once(page, deployment)
    (registration,) = deployment.store.list_registrations()[0]
    assert registration.state == "completed"


def test_in_frame_form_without_cookies_offers_the_new_window(
    context, lms_page, gatehouse, simulator
):
    deployment = gatehouse(["signin"], SESSION_COOKIE_PARTITIONED=False)
    sim = simulator("generic")
    page, frame = open_in_lms(context, lms_page, sim, deployment)
    sign_in(frame)  # submitted anyway: the CSRF check cannot pass without the cookie
    frame.get_by_text("Your browser blocked this form").wait_for()
    assert frame.locator("#continue-in-new-window").is_visible()
    (registration,) = deployment.store.list_registrations()[0]
    assert registration.account_id is None


@pytest.mark.skipif(
    oidc_provider.unavailable_reason() is not None, reason=str(oidc_provider.unavailable_reason())
)
def test_sign_in_with_an_openid_provider(context, lms_page, gatehouse, simulator):
    port = free_port()
    redirect_uri = f"http://localhost:{port}/lti/signin/oidc/callback"
    with OidcProvider("gatehouse", OIDC_SECRET, redirect_uri, host="127.0.0.1") as idp:
        deployment = gatehouse(
            ["signin"],
            oidc={
                "server_metadata_url": idp.metadata_url,
                "client_id": "gatehouse",
                "label": "Example SSO",
            },
            port=port,
        )
        sim = simulator("moodle")
        page, frame = open_in_lms(context, lms_page, sim, deployment)
        with page.context.expect_page() as opened:
            frame.get_by_text("Sign in with Example SSO").click()
        window = opened.value
        window.wait_for_load_state()
        idp.sign_in(window, "alice")
        window.wait_for_event("close", timeout=TIMEOUT)
        click_done(page.frame_locator("#tool"))
        wait_for_close(page, TIMEOUT)
    account = deployment.store.find_account_by_email("alice@example.org")
    assert account.oidc_subject == "alice" and account.name == "User alice"
    (registration,) = deployment.store.list_registrations()[0]
    assert registration.account_id == account.id
    assert registration.state == "completed"


@pytest.fixture
def sso(context, lms_page, gatehouse, simulator):
    """Start a real OpenID Provider with the given accounts, and a deployment signing in with it.

    Returns (idp, deployment, page, window): the LMS page and the provider's sign-in window.
    """
    reason = oidc_provider.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    providers = []

    def start(accounts):
        port = free_port()
        redirect_uri = f"http://localhost:{port}/lti/signin/oidc/callback"
        idp = OidcProvider(
            "gatehouse", OIDC_SECRET, redirect_uri, host="127.0.0.1", accounts=accounts
        ).start()
        providers.append(idp)
        deployment = gatehouse(
            ["signin"],
            oidc={
                "server_metadata_url": idp.metadata_url,
                "client_id": "gatehouse",
                "label": "Example SSO",
            },
            port=port,
        )
        page, frame = open_in_lms(context, lms_page, simulator("moodle"), deployment)
        with page.context.expect_page() as opened:
            frame.get_by_text("Sign in with Example SSO").click()
        window = opened.value
        window.wait_for_load_state()
        return idp, deployment, page, window

    yield start
    for idp in providers:
        idp.stop()


def test_openid_sign_in_joins_a_local_account_with_a_verified_email(sso):
    idp, deployment, page, window = sso(
        {"ada-sso": {"email": "Admin@School.example", "email_verified": True}}
    )
    local = deployment.store.find_account_by_email("admin@school.example")
    idp.sign_in(window, "ada-sso")
    window.wait_for_event("close", timeout=TIMEOUT)
    click_done(page.frame_locator("#tool"))
    wait_for_close(page, TIMEOUT)
    account = deployment.store.find_account_by_email("admin@school.example")
    assert account.id == local.id and account.oidc_subject == "ada-sso"
    (registration,) = deployment.store.list_registrations()[0]
    assert registration.account_id == local.id
    assert registration.state == "completed"


@pytest.mark.parametrize(
    ("claims", "owner", "explained"),
    [
        ({"email_verified": False}, False, "did not confirm that this e-mail address is verified"),
        ({}, True, "is an owner account of this tool"),  # verified, but an owner's
    ],
    ids=["unverified-email", "owner-account"],
)
def test_openid_sign_in_never_takes_over_a_local_account(sso, claims, owner, explained):
    idp, deployment, page, window = sso(
        {"mallory": {"email": "admin@school.example", "name": "Mallory", **claims}}
    )
    local = deployment.store.find_account_by_email("admin@school.example")
    if owner:
        deployment.store.set_owner(local.id, True)
    idp.sign_in(window, "mallory")
    # Back on the sign-in page in this window, saying why and what to do.
    notice = window.locator("#oidc-refused")
    notice.wait_for()
    assert explained in notice.inner_text()
    assert "admin@school.example" in notice.inner_text()
    assert "Sign in below" in notice.inner_text()
    assert window.locator("#email").is_visible()
    account = deployment.store.find_account_by_email("admin@school.example")
    assert (account.oidc_issuer, account.oidc_subject) == (None, None)
    assert deployment.store.find_oidc_account(idp.issuer, "mallory") is None
    (registration,) = deployment.store.list_registrations()[0]
    assert registration.account_id is None and registration.state == "pending"
    # Doing what the page says finishes the registration, and the LMS dialog closes.
    window.locator("#email").fill("admin@school.example")
    window.locator("#password").fill("correct horse battery")
    window.locator("#signin").click()
    click_done(window)  # the flow ended in this window: its summary is read here
    wait_for_close(page, TIMEOUT)
    assert deployment.store.get_registration(registration.id).account_id == local.id


def test_brightspace_new_tab_closes_through_the_opener(context, lms_page, gatehouse, simulator):
    deployment = gatehouse(["signin"])
    sim = simulator("brightspace")
    page = context.new_page()
    page.goto(lms_page.page_url(sim.initiation_url(deployment.register_url), "window"))
    with page.context.expect_page() as opened:
        page.locator("#open").click()
    tab = opened.value
    tab.wait_for_load_state()
    tab.locator("#email").fill("admin@school.example")
    tab.locator("#password").fill("correct horse battery")
    tab.locator("#signin").click()
    click_done(tab, "Brightspace")  # Brightspace keeps new tools disabled: steps to read first
    messages = wait_for_close(page, TIMEOUT)
    assert {"origin": deployment.url, "data": {"subject": "org.imsglobal.lti.close"}} in messages
    platforms, _total = deployment.store.list_platforms()
    assert platforms[0].product_family_code == "desire2learn"


def test_skipping_a_gate_by_url_lands_on_the_gate(context, gatehouse, simulator):
    deployment = gatehouse(["signin", "terms"])
    sim = simulator("generic")
    page = context.new_page()
    page.goto(sim.initiation_url(deployment.register_url))
    page.locator("#email").wait_for()
    rid = page.url.rsplit("/", 2)[-2]
    page.goto(f"{deployment.url}/lti/register/{rid}/terms")
    assert page.url.endswith(f"/lti/register/{rid}/signin")
    page.goto(f"{deployment.url}/lti/register/{rid}/payment")
    assert page.locator("h1").inner_text() == "This page does not exist"
    run_sql(
        deployment.store,
        "UPDATE registrations SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
        [rid],
    )
    page.goto(f"{deployment.url}/lti/register/{rid}/signin")
    assert "This registration has ended" in page.locator("h1").inner_text()
    assert "start the registration again from your LMS" in page.content()
    assert sim.records == []


def test_external_pre_approval_closes_from_gatehouses_origin(
    context, lms_page, make_app, simulator
):
    """The owner's page takes over mid-registration, completes through the API with a real
    HTTP client, and sends the frame back to Gatehouse, whose page closes the LMS dialog."""
    import requests
    from werkzeug.utils import redirect
    from werkzeug.wrappers import Request, Response

    from app.domain import apikeys

    state = {}

    def owner_app(environ, start_response):
        request = Request(environ)
        auth = {"Authorization": f"Bearer {state['key']}"}
        if request.method == "GET":
            rid = request.args["registrationId"]
            info = requests.get(
                f"{state['gatehouse']}/api/registrations/{rid}", headers=auth, timeout=10
            ).json()
            page = (
                f"<h1>Approve {info['familyCode']} at {info['url']}?</h1>"
                f"<form method=post><input type=hidden name=rid value={rid}>"
                "<button id=approve>Approve</button></form>"
            )
            response = Response(page, mimetype="text/html")
        else:
            rid = request.form["rid"]
            done = requests.post(
                f"{state['gatehouse']}/api/registrations/{rid}/complete",
                headers=auth,
                json={"platformName": "Approved by owner"},
                timeout=30,
            ).json()
            response = redirect(done["redirectUrl"])
        return response(environ, start_response)

    with LoopbackServer(owner_app, host="127.0.0.1") as owner:
        port = free_port()
        app = make_app({"registration": {"pre_approval_url": owner.url + "/approve"}})
        state["key"] = apikeys.create(app.extensions["gatehouse.store"], "owner")[1]
        with LoopbackServer(app, "localhost", port) as server:
            state["gatehouse"] = server.url
            sim = simulator("canvas")
            page = context.new_page()
            page.goto(lms_page.page_url(sim.initiation_url(server.url + "/lti/register")))
            frame = page.frame_locator("#tool")
            frame.get_by_text("Approve canvas at").wait_for()
            frame.locator("#approve").click()
            messages = wait_for_close(page, TIMEOUT)
    assert {"origin": server.url, "data": {"subject": "org.imsglobal.lti.close"}} in messages
    (platform,) = app.extensions["gatehouse.store"].list_platforms()[0]
    assert platform.name == "Approved by owner"


def test_a_stripe_outage_releases_the_waiting_frame_then_a_retry_pays(
    context, lms_page, gatehouse, simulator, stripe_server
):
    deployment = gatehouse(["payment"])
    sim = simulator("moodle")
    page, frame = open_in_lms(context, lms_page, sim, deployment)
    frame.locator("#price-amount").wait_for()
    assert frame.locator("#price-amount").inner_text() == "$15.00"
    assert frame.locator("#price-cadence").inner_text() == "one-off"

    stripe_server.outage = True
    with page.context.expect_page() as opened:
        frame.locator("#pay").click()
    popup = opened.value
    popup.wait_for_load_state()
    assert popup.locator("h1").inner_text() == (
        "Payment is unavailable right now; nothing was charged."
    )
    assert "APIError" not in popup.content()
    assert popup.locator("#retry").inner_text() == "Try again"
    # The frame stops waiting, says so, and offers to try again.
    frame.locator("#payment-unavailable-live").wait_for(state="visible")
    assert frame.locator("#waiting").is_hidden()
    assert frame.locator("#pay").inner_text() == "Try again"
    popup.close()

    stripe_server.outage = False
    checkout = pay(page, frame)
    checkout.wait_for_event("close", timeout=TIMEOUT)
    click_done(frame)  # a new Moodle tool waits for Activate: the summary holds the dialog
    wait_for_close(page, TIMEOUT)
    (rid,) = [r.id for r in deployment.store.list_registrations()[0]]
    assert sorted(p.status for p in deployment.store.payments_for(rid)) == [
        "paid",
        "unavailable",
    ]


def test_close_buttons_show_only_inside_a_dialog(context, lms_page, gatehouse):
    deployment = gatehouse([])
    broken = deployment.register_url + "?registration_token=abc"  # no openid_configuration
    page = context.new_page()
    page.goto(broken)
    page.locator("h1").wait_for()
    assert page.locator("[data-lti-close-button]").count() == 1
    assert page.locator("[data-lti-close-button]").is_hidden()  # nothing to close

    framed = context.new_page()
    framed.goto(lms_page.page_url(broken, "iframe"))
    frame = framed.frame_locator("#tool")
    frame.locator("[data-lti-close-button]").wait_for(state="visible")
    frame.locator("[data-lti-close-button]").click()
    messages = wait_for_close(framed, TIMEOUT)
    assert {"origin": deployment.url, "data": {"subject": "org.imsglobal.lti.close"}} in messages


def test_the_registration_url_opened_in_a_browser_explains_itself(context, lms_page, gatehouse):
    deployment = gatehouse([])
    page = context.new_page()
    response = page.goto(deployment.register_url)
    assert response.status == 200
    assert "LTI registration URL" in page.locator("h1").inner_text()
    assert page.locator("h1.bad").count() == 0
    assert page.locator("body").get_attribute("data-register-about") == "page"
    assert page.locator("#registration-url").inner_text() == deployment.register_url
    assert page.get_by_role("button", name="Close").count() == 0

    framed = context.new_page()
    framed.goto(lms_page.page_url(deployment.register_url, "iframe"))
    frame = framed.frame_locator("#tool")
    frame.locator("#registration-url").wait_for()
    assert frame.locator("body").get_attribute("data-register-about") == "frame"
