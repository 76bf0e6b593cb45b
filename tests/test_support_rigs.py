"""Smoke tests for the test rigs in tests/support, with no Gatehouse involved.

Each rig is exercised through the real client a Gatehouse test will use: the stripe SDK against
FakeStripe, Authlib's Flask client against the real OpenID Provider, Chromium against FakeLMS.
"""

import json
import socket
import struct
import threading

import pytest
import requests
import stripe
from authlib.integrations.flask_client import OAuth
from flask import Flask, url_for
from markupsafe import escape
from support import browser as browser_rig
from support import oidc_provider
from support.browser import LTI_CLOSE_SUBJECT, FakeLMS, launch_browser, new_context, wait_for_close
from support.fake_stripe import FakeStripe
from support.oidc_provider import OidcProvider, sign_in
from werkzeug.wrappers import Request, Response

from app.testing import LoopbackServer

needs_browser = pytest.mark.skipif(
    browser_rig.unavailable_reason() is not None, reason=str(browser_rig.unavailable_reason())
)
needs_oidc = pytest.mark.skipif(
    oidc_provider.unavailable_reason() is not None, reason=str(oidc_provider.unavailable_reason())
)

CHECKOUT_PARAMS = {
    "mode": "payment",
    "line_items": [{"price": "price_123", "quantity": 2}],
    "success_url": "http://localhost:9/done?session_id={CHECKOUT_SESSION_ID}",
    "cancel_url": "http://localhost:9/cancelled",
    "client_reference_id": "reg-123",
    "metadata": {"registration": "reg-123"},
}


@pytest.fixture
def fake_stripe():
    with FakeStripe(prices={"price_123": (1500, "usd")}) as fake:
        yield fake


@pytest.fixture(scope="module")
def browser():
    reason = browser_rig.unavailable_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    """A fresh context that blocks unpartitioned third-party cookies."""
    ctx = new_context(browser, third_party_cookies=False)
    ctx.set_default_timeout(5_000)
    yield ctx
    ctx.close()


class ToolStub:
    """A stand-in for the tool's pages, served on localhost (cross-site to the LMS on 127.0.0.1)."""

    CLOSE_PAGE = """<!doctype html><title>Tool</title>
<button id="close" onclick="(window.opener || window.parent).postMessage(
  {subject: 'org.imsglobal.lti.close'}, '*')">Done</button>"""

    def __init__(self, webhook_secret=None):
        self.webhook_secret = webhook_secret
        self.events = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        response = getattr(self, "page_" + request.path.strip("/").replace("/", "_"))(request)
        return response(environ, start_response)

    def page_close(self, request):
        return Response(self.CLOSE_PAGE, mimetype="text/html")

    def page_cookies_set(self, request):
        response = Response(
            '<!doctype html><a id="check" href="/cookies/echo">check</a>', mimetype="text/html"
        )
        response.set_cookie("part", "1", samesite="None", secure=True, partitioned=True)
        response.set_cookie("plain", "1", samesite="None", secure=True)
        return response

    def page_cookies_echo(self, request):
        names = json.dumps(sorted(request.cookies))
        return Response(
            f'<!doctype html><pre id="cookies">{escape(names)}</pre>', mimetype="text/html"
        )

    def page_done(self, request):
        return Response(
            f"<h1 id='done'>{escape(request.args['session_id'])}</h1>", mimetype="text/html"
        )

    def page_cancelled(self, request):
        return Response("<h1 id='cancelled'>Cancelled</h1>", mimetype="text/html")

    def page_webhook(self, request):
        try:
            event = stripe.Webhook.construct_event(
                request.get_data(), request.headers.get("Stripe-Signature"), self.webhook_secret
            )
        except stripe.SignatureVerificationError:
            return Response("bad signature", status=400)
        self.events.append(event)
        return Response("ok")


# --- FakeStripe with the real SDK ------------------------------------------------------------


def test_sdk_creates_and_retrieves_checkout_session(fake_stripe):
    client = stripe.StripeClient(
        fake_stripe.api_key, base_addresses={"api": fake_stripe.url}, max_network_retries=0
    )
    created = client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS)

    assert created.id.startswith("cs_test_")
    assert (created.object, created.status, created.payment_status) == (
        "checkout.session",
        "open",
        "unpaid",
    )
    assert (created.amount_total, created.currency) == (3000, "usd")
    assert created.url == f"{fake_stripe.url}/pay/{created.id}"
    assert created.client_reference_id == "reg-123"
    assert created.metadata.to_dict() == {"registration": "reg-123"}
    assert created.success_url == CHECKOUT_PARAMS["success_url"]

    sent = fake_stripe.api_requests("POST", "/v1/checkout/sessions")[0]
    assert sent.form["line_items[0][price]"] == "price_123"
    assert sent.form["metadata[registration]"] == "reg-123"
    assert sent.params["line_items"] == [{"price": "price_123", "quantity": "2"}]
    assert sent.headers["Authorization"] == f"Bearer {fake_stripe.api_key}"

    retrieved = client.v1.checkout.sessions.retrieve(created.id)
    assert retrieved.id == created.id
    assert retrieved.status == "open"


def test_sdk_errors_map_to_stripe_exceptions(fake_stripe):
    client = fake_stripe.client()
    bad_price = {**CHECKOUT_PARAMS, "line_items": [{"price": "price_nope", "quantity": 1}]}
    with pytest.raises(stripe.InvalidRequestError) as unknown_price:
        client.v1.checkout.sessions.create(params=bad_price)
    assert unknown_price.value.http_status == 400
    assert unknown_price.value.code == "resource_missing"
    assert unknown_price.value.param == "line_items[0][price]"

    with pytest.raises(stripe.InvalidRequestError) as unknown_session:
        client.v1.checkout.sessions.retrieve("cs_test_missing")
    assert (unknown_session.value.http_status, unknown_session.value.code) == (
        404,
        "resource_missing",
    )

    with pytest.raises(stripe.AuthenticationError) as bad_key:
        fake_stripe.client("sk_test_wrong").v1.checkout.sessions.create(params=CHECKOUT_PARAMS)
    assert bad_key.value.http_status == 401
    assert fake_stripe.sessions == {}


def test_signed_webhook_verifies_and_forgeries_do_not(fake_stripe):
    tool = ToolStub(webhook_secret=fake_stripe.webhook_secret)
    with LoopbackServer(tool, host="localhost") as server:
        fake_stripe.webhook_url = server.url + "/webhook"
        session = fake_stripe.client().v1.checkout.sessions.create(params=CHECKOUT_PARAMS)
        fake_stripe.complete_session(session.id)

        assert fake_stripe.send_event("checkout.session.completed", session.id) == 200
        [event] = tool.events
        assert event.type == "checkout.session.completed"
        assert event.data.object.id == session.id
        assert event.data.object.payment_status == "paid"
        assert event.data.object.client_reference_id == "reg-123"

        payload = json.dumps(fake_stripe.build_event("checkout.session.completed", session.id))
        forgeries = {
            "tampered body": (payload.replace("reg-123", "reg-999"), fake_stripe.sign(payload)),
            "wrong secret": (payload, fake_stripe.sign(payload, secret="whsec_other")),
            "stale timestamp": (payload, fake_stripe.sign(payload, timestamp=1_000_000_000)),
        }
        for name, (body, signature) in forgeries.items():
            response = requests.post(
                fake_stripe.webhook_url,
                data=body,
                headers={"Stripe-Signature": signature},
                timeout=5,
            )
            assert response.status_code == 400, name
    assert len(tool.events) == 1


@needs_browser
def test_hosted_checkout_stand_in_pays_and_cancels(fake_stripe, context):
    tool = ToolStub(webhook_secret=fake_stripe.webhook_secret)
    with LoopbackServer(tool, host="localhost") as server:
        fake_stripe.webhook_url = server.url + "/webhook"
        params = {
            **CHECKOUT_PARAMS,
            "success_url": server.url + "/done?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": server.url + "/cancelled",
        }
        client = fake_stripe.client()
        paid = client.v1.checkout.sessions.create(params=params)
        page = context.new_page()
        page.goto(paid.url)
        page.click("#pay")
        page.wait_for_selector("#done")
        assert page.url == f"{server.url}/done?session_id={paid.id}"
        assert [e.data.object.id for e in tool.events] == [paid.id]
        assert client.v1.checkout.sessions.retrieve(paid.id).payment_status == "paid"

        abandoned = client.v1.checkout.sessions.create(params=params)
        page.goto(abandoned.url)
        page.click("#cancel")
        page.wait_for_selector("#cancelled")
        assert client.v1.checkout.sessions.retrieve(abandoned.id).status == "open"
        assert len(tool.events) == 1


# --- the real OpenID Provider with Authlib's Flask client ------------------------------------


def make_relying_party():
    """Build a tiny Authlib RP; the provider is registered once its URL is known."""
    app = Flask("relying_party")
    app.secret_key = "test-only-rp-secret"
    oauth = OAuth(app)

    @app.route("/login")
    def login():
        return oauth.idp.authorize_redirect(url_for("callback", _external=True))

    @app.route("/callback")
    def callback():
        token = oauth.idp.authorize_access_token()
        userinfo = oauth.idp.userinfo(token=token)
        return (
            f"<dl><dt>email</dt><dd id='email'>{escape(userinfo['email'])}</dd>"
            f"<dt>name</dt><dd id='name'>{escape(userinfo['name'])}</dd>"
            f"<dt>sub</dt><dd id='sub'>{escape(token['userinfo']['sub'])}</dd>"
            f"<dt>in ID token</dt><dd id='id-token-claims'>"
            f"{escape(' '.join(sorted(token['userinfo'])))}</dd></dl>"
        )

    return app, oauth


@needs_browser
@needs_oidc
def test_authlib_code_flow_against_real_provider(context):
    app, oauth = make_relying_party()
    with LoopbackServer(app, host="127.0.0.1") as rp:
        with OidcProvider("gatehouse-rp", "rp-secret", rp.url + "/callback") as op:
            oauth.register(
                "idp",
                client_id="gatehouse-rp",
                client_secret="rp-secret",
                server_metadata_url=op.metadata_url,
                client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
            )
            page = context.new_page()
            page.goto(rp.url + "/login")
            assert page.url.startswith(op.issuer + "/interaction/")
            sign_in(page, "alice")

            assert page.url.startswith(rp.url + "/callback?")
            assert page.text_content("#email") == "alice@example.org"
            assert page.text_content("#name") == "User alice"
            assert page.text_content("#sub") == "alice"
            # The provider keeps email out of the ID token: RP code must ask UserInfo.
            assert "email" not in page.text_content("#id-token-claims").split()


def test_oidc_provider_explains_missing_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(oidc_provider.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(oidc_provider, "OIDC_DIR", tmp_path)  # a folder with no node_modules
    with pytest.raises(oidc_provider.OidcProviderError, match="npm ci --prefix tests/support/oidc"):
        OidcProvider("c", "s", "http://127.0.0.1:9/cb").start()


# --- FakeLMS: the LTI close message, iframe and new window -----------------------------------


@needs_browser
def test_fake_lms_iframe_receives_close_from_cross_site_tool(context):
    with FakeLMS() as lms, LoopbackServer(ToolStub(), host="localhost") as tool:
        page = context.new_page()
        page.goto(lms.page_url(tool.url + "/close", "iframe"))
        page.frame_locator("#tool").locator("#close").click()

        messages = wait_for_close(page)
        assert messages == [{"origin": tool.url, "data": {"subject": LTI_CLOSE_SUBJECT}}]
        assert page.locator("#tool").count() == 0  # removed, as Moodle does


@needs_browser
def test_fake_lms_window_receives_close_from_popup(context):
    with FakeLMS() as lms, LoopbackServer(ToolStub(), host="localhost") as tool:
        page = context.new_page()
        page.goto(lms.page_url(tool.url + "/close", "window"))
        with context.expect_page() as opened:
            page.click("#open")
        popup = opened.value
        popup.wait_for_load_state()
        assert popup.url == tool.url + "/close"
        popup.click("#close")

        messages = wait_for_close(page)
        assert messages == [{"origin": tool.url, "data": {"subject": LTI_CLOSE_SUBJECT}}]


@needs_browser
@pytest.mark.parametrize(
    ("third_party_cookies", "returned"),
    [(False, ["part"]), (True, ["part", "plain"])],
    ids=["3pc-blocked", "3pc-allowed"],
)
def test_cookies_in_cross_site_iframe(browser, third_party_cookies, returned):
    ctx = new_context(browser, third_party_cookies=third_party_cookies)
    try:
        with FakeLMS() as lms, LoopbackServer(ToolStub(), host="localhost") as tool:
            page = ctx.new_page()
            page.goto(lms.page_url(tool.url + "/cookies/set", "iframe"))
            frame = page.frame_locator("#tool")
            frame.locator("#check").click()
            assert json.loads(frame.locator("#cookies").text_content()) == returned
    finally:
        ctx.close()


def test_loopback_server_closes_a_response_whose_client_reset_the_connection():
    # A browser cancels a script when the LMS removes the frame. werkzeug's clean-up after a
    # response reads what is left of the request, which raises on a reset connection, and it
    # closed the response only after that: a static file stayed open until garbage collection.
    closed = threading.Event()

    class Body:
        def __iter__(self):
            yield b"console.log('ok');"

        def close(self):
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/javascript")])
        return Body()

    with LoopbackServer(app) as server:
        client = socket.create_connection(("127.0.0.1", server.port))
        client.sendall(b"GET /copy.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(1024).startswith(b"HTTP/1.1 200")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # a reset, as a cancelled request's connection ends
        assert closed.wait(5), "the response was never closed"
