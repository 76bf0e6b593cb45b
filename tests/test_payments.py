"""The payment gate's server side: Checkout creation, signed webhooks, server-side retrieval.

The real Stripe SDK talks to a Stripe-compatible server on loopback; webhooks are signed with
the SDK's own signature helper."""

import json
import re
import time

import pytest
import stripe
from support.fake_stripe import FakeStripe, unreachable_url

from app.domain import payments
from app.domain.gates import approval_of
from app.web.login import hash_password

BASE = "https://localhost"
KEY = "sk_test_payments"
SECRET = "whsec_payments"
OWNER_PASSWORD = "correct horse battery"


@pytest.fixture
def stripe_server():
    with FakeStripe(api_key=KEY, webhook_secret=SECRET) as fake:
        yield fake


@pytest.fixture
def make_owner_console():
    """Return a test client signed in to the console as an owner of `app`."""

    def sign_in(app):
        store = app.extensions["gatehouse.store"]
        account = store.create_account("owner@tool.example", "O", hash_password(OWNER_PASSWORD))
        store.set_owner(account.id, True)
        client = app.test_client()
        page = client.get("/console/login", base_url=BASE).get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        signed_in = client.post(
            "/console/login",
            base_url=BASE,
            data={"email": "owner@tool.example", "password": OWNER_PASSWORD, "csrf_token": token},
        )
        assert signed_in.status_code == 302

        class Console:
            def get(self, path):
                return client.get(path, base_url=BASE)

        return Console()

    return sign_in


@pytest.fixture
def paying(make_app, monkeypatch, stripe_server, simulator):
    monkeypatch.setenv("STRIPE_SECRET_KEY", KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)

    class Flow:
        def __init__(
            self, price="price_123", gates=("payment",), mode="payment", api_base=None, **config
        ):
            api_base = api_base or stripe_server.url
            self.app = make_app(
                {
                    "registration": {"gates": list(gates)},
                    "gates": {"payment": {"price_id": price, "api_base": api_base, "mode": mode}},
                    **config,
                }
            )
            self.client = self.app.test_client()
            self.store = self.app.extensions["gatehouse.store"]
            self.sim = simulator("generic")
            url = self.sim.initiation_url(BASE + "/lti/register").replace(BASE, "")
            self.rid = self.client.get(url, base_url=BASE).headers["Location"].rsplit("/", 1)[-1]

        def get(self, path):
            return self.client.get(path, base_url=BASE)

        def sign_in(self, email, password):
            page = self.get(f"/lti/register/{self.rid}/signin").get_data(as_text=True)
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            return self.client.post(
                f"/lti/register/{self.rid}/signin",
                base_url=BASE,
                data={"email": email, "password": password, "csrf_token": token},
            )

        def checkout(self):
            response = self.get(f"/lti/register/{self.rid}/payment/checkout")
            assert response.status_code == 303, response.get_data(as_text=True)
            return response.headers["Location"].rsplit("/", 1)[-1]

        def webhook(self, event, secret=SECRET, timestamp=None, tamper=False):
            payload = json.dumps(event)
            signature = stripe_server.sign(payload, secret, timestamp)
            if tamper:
                payload = payload.replace('"paid"', '"unpaid"')
            return self.client.post(
                "/webhooks/stripe",
                data=payload,
                base_url=BASE,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            )

        @property
        def statuses(self):
            return [p.status for p in self.store.payments_for(self.rid)]

    return Flow


def test_checkout_session_is_created_for_the_registration(paying, stripe_server):
    flow = paying()
    page = flow.get(f"/lti/register/{flow.rid}/payment").get_data(as_text=True)
    assert "Step 1 of 1: Payment" in page
    assert f'href="/lti/register/{flow.rid}/payment/checkout" target="_blank"' in page
    session_id = flow.checkout()
    (request,) = stripe_server.api_requests("POST", "/v1/checkout/sessions")
    params = request.params
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert params["mode"] == "payment"
    assert params["client_reference_id"] == flow.rid
    assert params["success_url"] == (
        f"{BASE}/lti/register/{flow.rid}/payment/return?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert params["cancel_url"] == f"{BASE}/lti/register/{flow.rid}/payment/cancelled"
    (payment,) = flow.store.payments_for(flow.rid)
    assert (payment.session_id, payment.status) == (session_id, "open")
    assert (payment.amount, payment.currency) == (1500, "usd")


def test_a_signed_webhook_marks_paid_and_the_registration_completes(paying, stripe_server):
    flow = paying()
    session_id = flow.checkout()
    stripe_server.complete_session(session_id)
    response = flow.webhook(stripe_server.build_event("checkout.session.completed", session_id))
    assert response.status_code == 200
    assert flow.statuses == ["paid"]
    assert flow.get(f"/lti/register/{flow.rid}/status").get_json()["next"] is None
    done = flow.get(f"/lti/register/{flow.rid}")
    assert 'data-lti-close="auto"' in done.get_data(as_text=True)
    assert "$15.00 (paid)" in done.get_data(as_text=True)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"amount_total": 100, "amount_subtotal": 100}, "amount 100 instead of 1500"),
        ({"currency": "eur"}, "currency eur instead of usd"),
        (
            {"metadata": {"gatehouse_price": "price_cheap"}},
            "price price_cheap instead of price_123",
        ),
        (
            {"line_items": {"object": "list", "data": [{"price": {"id": "price_cheap"}}]}},
            "price price_cheap instead of price_123",
        ),
    ],
    ids=["amount", "currency", "price", "line-item-price"],
)
def test_a_paid_session_unlike_the_one_created_is_a_mismatch_never_paid(
    paying, stripe_server, make_owner_console, change, why
):
    flow = paying()
    session_id = flow.checkout()
    (request,) = stripe_server.api_requests("POST", "/v1/checkout/sessions")
    assert request.params["metadata"]["gatehouse_price"] == "price_123"
    assert flow.store.payments_for(flow.rid)[0].price_id == "price_123"
    stripe_server.complete_session(session_id)
    stripe_server.sessions[session_id].update(change)  # Stripe charged something else
    response = flow.webhook(stripe_server.build_event("checkout.session.completed", session_id))
    assert response.status_code == 200  # acknowledged: Stripe must not retry
    (payment,) = flow.store.payments_for(flow.rid)
    assert payment.status == "mismatch" and why in payment.mismatch
    assert flow.get(f"/lti/register/{flow.rid}/status").get_json()["next"] == "payment"
    # The window's return says so too, and a repeated event changes nothing.
    back = flow.get(f"/lti/register/{flow.rid}/payment/return?session_id={session_id}")
    assert "does not match what this registration costs" in back.get_data(as_text=True)
    flow.webhook(stripe_server.build_event("checkout.session.completed", session_id))
    assert flow.statuses == ["mismatch"]
    page = make_owner_console(flow.app).get(f"/console/registrations/{flow.rid}")
    assert "not settled: " + why in page.get_data(as_text=True)


def test_a_matching_session_still_settles_with_the_price_asked(paying, stripe_server):
    flow = paying()
    session_id = flow.checkout()
    stripe_server.complete_session(session_id)
    flow.webhook(stripe_server.build_event("checkout.session.completed", session_id))
    (payment,) = flow.store.payments_for(flow.rid)
    assert (payment.status, payment.mismatch, payment.price_id) == ("paid", None, "price_123")


@pytest.mark.parametrize(
    "forgery",
    [{"secret": "whsec_wrong"}, {"timestamp": int(time.time()) - 3600}, {"tamper": True}],
)
def test_unverifiable_webhooks_are_refused(paying, stripe_server, forgery):
    flow = paying()
    session_id = flow.checkout()
    stripe_server.complete_session(session_id)
    event = stripe_server.build_event("checkout.session.completed", session_id)
    response = flow.webhook(event, **forgery)
    assert response.status_code == 400
    assert flow.statuses == ["open"]


def test_a_webhook_without_a_signature_is_refused(paying):
    flow = paying()
    response = flow.client.post("/webhooks/stripe", data="{}", base_url=BASE)
    assert response.status_code == 400


def test_the_return_url_alone_proves_nothing(paying, stripe_server):
    flow = paying()
    session_id = flow.checkout()
    # Not paid at Stripe: visiting the success URL does not mark it paid.
    page = flow.get(f"/lti/register/{flow.rid}/payment/return?session_id={session_id}")
    assert "has not confirmed the payment yet" in page.get_data(as_text=True)
    assert flow.statuses == ["open"]
    stripe_server.complete_session(session_id)
    page = flow.get(f"/lti/register/{flow.rid}/payment/return?session_id={session_id}")
    assert "Payment received" in page.get_data(as_text=True)
    assert flow.statuses == ["paid"]


def test_a_foreign_session_id_is_refused(paying, stripe_server):
    flow = paying()
    flow.checkout()
    other = paying()
    foreign = other.checkout()
    response = flow.get(f"/lti/register/{flow.rid}/payment/return?session_id={foreign}")
    assert response.status_code == 400
    assert other.statuses == ["open"]


@pytest.mark.parametrize(
    "late",
    [
        ("checkout.session.completed", {"status": "complete", "payment_status": "unpaid"}),
        ("checkout.session.async_payment_failed", {"payment_status": "unpaid"}),
        ("checkout.session.expired", {"status": "expired", "payment_status": "unpaid"}),
    ],
)
def test_a_late_event_never_turns_a_paid_payment_back(paying, stripe_server, late):
    flow = paying()
    session_id = flow.checkout()
    event_type, session = late
    # Built before the customer paid, delivered after: Stripe does not order its events.
    stale = stripe_server.build_event(event_type, session_id)
    stale["data"]["object"].update(session)
    stripe_server.complete_session(session_id)
    paid = stripe_server.build_event("checkout.session.completed", session_id)
    assert flow.webhook(paid).status_code == 200
    assert flow.statuses == ["paid"]
    assert flow.webhook(stale).status_code == 200
    assert flow.statuses == ["paid"]
    assert flow.get(f"/lti/register/{flow.rid}/status").get_json()["next"] is None


def test_a_payment_moves_forward_from_open(paying, stripe_server):
    flow = paying()
    session_id = flow.checkout()
    unpaid = stripe_server.build_event("checkout.session.completed", session_id)
    unpaid["data"]["object"].update(status="complete", payment_status="unpaid")
    assert flow.webhook(unpaid).status_code == 200
    assert flow.statuses == ["open"]  # an async payment method: not paid yet
    stripe_server.complete_session(session_id)
    event = stripe_server.build_event("checkout.session.async_payment_succeeded", session_id)
    assert flow.webhook(event).status_code == 200
    assert flow.statuses == ["paid"]


def test_failed_async_payment_does_not_pass_the_gate(paying, stripe_server):
    flow = paying()
    session_id = flow.checkout()
    event = stripe_server.build_event("checkout.session.async_payment_failed", session_id)
    assert flow.webhook(event).status_code == 200
    assert flow.statuses == ["failed"]
    assert flow.get(f"/lti/register/{flow.rid}").headers["Location"].endswith("/payment")


def test_events_for_unknown_sessions_are_acknowledged_and_ignored(paying, stripe_server):
    flow = paying()
    # A session opened at Stripe by something else, even one naming this registration.
    foreign = stripe_server.client().v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": "price_123", "quantity": 1}],
            "success_url": "https://elsewhere.example/ok",
            "client_reference_id": flow.rid,
        }
    )
    stripe_server.complete_session(foreign.id)
    event = stripe_server.build_event("checkout.session.completed", foreign.id)
    assert flow.webhook(event).status_code == 200
    assert flow.statuses == []
    assert flow.get(f"/lti/register/{flow.rid}/status").get_json()["next"] == "payment"


@pytest.mark.parametrize("configured", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_without_a_webhook_secret_every_event_is_refused(
    paying, stripe_server, monkeypatch, caplog, configured
):
    flow = paying()
    session_id = flow.checkout()
    stripe_server.complete_session(session_id)
    if configured is None:
        monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    else:
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", configured)
    payload = json.dumps(stripe_server.build_event("checkout.session.completed", session_id))
    # Signed with an empty key: all a forger would need if it were accepted.
    forged = stripe.WebhookSignature.generate_signature_header(payload, "")
    for signature in (forged, stripe_server.sign(payload)):
        response = flow.client.post(
            "/webhooks/stripe",
            data=payload,
            base_url=BASE,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )
        assert response.status_code == 503
        body = response.get_json()
        assert body["error"] == "webhook secret not configured"
        assert "STRIPE_WEBHOOK_SECRET is not set" in body["message"]
    assert flow.statuses == ["open"]
    assert flow.get(f"/lti/register/{flow.rid}/status").get_json()["state"] == "pending"
    assert "STRIPE_WEBHOOK_SECRET is not set" in caplog.text


def test_the_payment_records_the_approving_account(paying, stripe_server):
    flow = paying(gates=("signin", "payment"))
    account = flow.store.create_account(
        "payer@school.example", "Pat Payer", hash_password("correct horse battery")
    )
    assert flow.sign_in("payer@school.example", "correct horse battery").status_code == 302
    session_id = flow.checkout()
    (request,) = stripe_server.api_requests("POST", "/v1/checkout/sessions")
    assert request.params["customer_email"] == "payer@school.example"
    (payment,) = flow.store.payments_for(flow.rid)
    assert (payment.session_id, payment.account_id) == (session_id, account.id)
    stripe_server.complete_session(session_id)
    flow.webhook(stripe_server.build_event("checkout.session.completed", session_id))
    done = flow.get(f"/lti/register/{flow.rid}").get_data(as_text=True)
    assert 'data-lti-close="auto"' in done
    approval = approval_of(flow.store, flow.rid)
    assert approval["account"].id == account.id
    assert approval["payment"].account_id == account.id


def test_subscription_mode_opens_a_subscription_checkout(paying, stripe_server):
    flow = paying(mode="subscription")
    session_id = flow.checkout()
    (request,) = stripe_server.api_requests("POST", "/v1/checkout/sessions")
    assert request.params["mode"] == "subscription"
    assert stripe_server.sessions[session_id]["mode"] == "subscription"
    (payment,) = flow.store.payments_for(flow.rid)
    assert (payment.mode, payment.status) == ("subscription", "open")
    session = stripe_server.complete_session(session_id)
    assert session["subscription"].startswith("sub_test_")
    assert (
        flow.webhook(
            stripe_server.build_event("checkout.session.completed", session_id)
        ).status_code
        == 200
    )
    assert flow.statuses == ["paid"]
    assert 'data-lti-close="auto"' in flow.get(f"/lti/register/{flow.rid}").get_data(as_text=True)


def test_cancel_returns_to_the_payment_page(paying):
    flow = paying()
    flow.checkout()
    page = flow.get(f"/lti/register/{flow.rid}/payment/cancelled").get_data(as_text=True)
    assert "Payment cancelled" in page
    assert f'href="/lti/register/{flow.rid}/payment"' in page
    assert flow.statuses == ["cancelled"]
    again = flow.get(f"/lti/register/{flow.rid}/payment").get_data(as_text=True)
    assert "The payment was cancelled. You can try again." in again


def test_stripe_errors_are_shown_plainly_and_logged_with_details(paying, caplog):
    flow = paying(price="price_missing")
    response = flow.get(f"/lti/register/{flow.rid}/payment/checkout")
    assert response.status_code == 502
    text = page_text(response)
    assert "Payment is unavailable right now; nothing was charged." in text
    assert "Try again" in text
    assert f'href="/lti/register/{flow.rid}/payment/checkout"' in response.get_data(as_text=True)
    assert "InvalidRequestError" not in text and "price_missing" not in text
    assert KEY not in text
    (line,) = [r for r in caplog.records if "Checkout Session" in r.getMessage()]
    message = line.getMessage()
    assert "InvalidRequestError" in message and "No such price: 'price_missing'" in message
    assert re.search(r"Stripe request id: req_\w+", message)
    assert line.request_id == response.headers["X-Request-ID"]
    assert KEY not in caplog.text and SECRET not in caplog.text
    assert flow.statuses == ["unavailable"]  # nothing charged, and the waiting frame is told


def page_text(response):
    return re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))


def test_unreachable_stripe_releases_the_waiting_frame_with_a_retry(paying, caplog):
    flow = paying(api_base=unreachable_url())
    before = flow.get(f"/lti/register/{flow.rid}/payment")
    assert before.status_code == 200
    assert "The price shows on Stripe's payment page" in page_text(before)
    response = flow.get(f"/lti/register/{flow.rid}/payment/checkout")
    assert response.status_code == 502
    text = page_text(response)
    assert "<h1" in response.get_data(as_text=True)
    assert "Payment is unavailable right now; nothing was charged." in text
    assert "APIConnectionError" not in text and "ConnectionPool" not in text
    assert "APIConnectionError" in caplog.text  # the details are in the log
    status = flow.get(f"/lti/register/{flow.rid}/status").get_json()
    assert (status["state"], status["next"], status["payment"]) == (
        "pending",
        "payment",
        "unavailable",
    )
    # The frame (reloaded, or told by flow.js) says so and offers to try again.
    page = page_text(flow.get(f"/lti/register/{flow.rid}/payment"))
    assert "Payment is unavailable right now; nothing was charged." in page
    assert "Try again" in page


def test_a_retry_after_an_outage_opens_checkout(paying, stripe_server):
    flow = paying()
    stripe_server.outage = True
    assert flow.get(f"/lti/register/{flow.rid}/payment/checkout").status_code == 502
    stripe_server.outage = False
    session_id = flow.checkout()
    assert flow.statuses == ["open", "unavailable"]
    status = flow.get(f"/lti/register/{flow.rid}/status").get_json()
    assert (status["payment"], status["payment_session"]) == ("open", session_id)


@pytest.mark.parametrize(
    ("price", "amount", "cadence"),
    [
        ((1500, "usd"), "$15.00", "one-off"),
        ((1500, "jpy"), "¥1,500", "one-off"),  # zero-decimal: 1500 is 1,500 yen
        ((12345, "kwd"), "KWD\xa012.345", "one-off"),  # three decimals
        ((2000, "eur", "month"), "€20.00", "per month"),
        ((12000, "gbp", "year"), "£120.00", "per year"),
        ((5000, "usd", "month", 3), "$50.00", "every 3 months"),
    ],
)
def test_the_payment_page_shows_the_price_from_stripe(
    paying, stripe_server, price, amount, cadence
):
    stripe_server.prices["price_shown"] = price
    flow = paying(price="price_shown")
    page = flow.get(f"/lti/register/{flow.rid}/payment").get_data(as_text=True)
    assert f'<strong id="price-amount">{amount}</strong>' in page
    assert f'<span id="price-cadence">{cadence}</span>' in page


def test_the_price_is_read_once_per_few_minutes(paying, stripe_server):
    flow = paying()
    now = [1000.0]
    flow.app.extensions["gatehouse.prices"] = payments.PriceCache(clock=lambda: now[0])
    for _ in range(3):
        assert "$15.00" in flow.get(f"/lti/register/{flow.rid}/payment").get_data(as_text=True)
    assert len(stripe_server.api_requests("GET", "/v1/prices/price_123")) == 1
    stripe_server.prices["price_123"] = (1800, "usd")
    now[0] += payments.PRICE_TTL + 1
    assert "$18.00" in flow.get(f"/lti/register/{flow.rid}/payment").get_data(as_text=True)
    assert len(stripe_server.api_requests("GET", "/v1/prices/price_123")) == 2


def test_a_price_stripe_cannot_give_leaves_the_page_working(paying, stripe_server, caplog):
    stripe_server.outage = True
    flow = paying()
    response = flow.get(f"/lti/register/{flow.rid}/payment")
    assert response.status_code == 200
    text = page_text(response)
    assert "The price shows on Stripe's payment page before you pay." in text
    assert "Pay with Stripe" in text
    assert "APIError" in caplog.text and "price_123" in caplog.text
    # A failure is remembered briefly: an outage does not make every view wait for Stripe.
    asked = len(stripe_server.api_requests("GET", "/v1/prices/price_123"))
    assert asked >= 1
    flow.get(f"/lti/register/{flow.rid}/payment")
    assert len(stripe_server.api_requests("GET", "/v1/prices/price_123")) == asked


def test_every_stripe_call_gives_up_within_the_deadline(paying, stripe_server):
    stripe_server.delay = 4
    flow = paying(outbound={"deadline": 0.3})
    started = time.monotonic()
    page = flow.get(f"/lti/register/{flow.rid}/payment")
    checkout = flow.get(f"/lti/register/{flow.rid}/payment/checkout")
    elapsed = time.monotonic() - started
    assert "The price shows on Stripe's payment page" in page_text(page)
    assert checkout.status_code == 502
    # Two calls, each tried twice (max_network_retries=1) for 0.3 s plus a short back-off; the
    # fake answers after 4 s, so without the timeouts this would take 16 s.
    assert elapsed < 4, elapsed


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1500, "usd", "$15.00"),
        (1500, "jpy", "¥1,500"),
        (50000, "krw", "₩50,000"),
        (500, "isk", "ISK\xa05"),  # Stripe keeps ISK two-decimal in its API
        (None, "usd", "amount pending"),
    ],
)
def test_amounts_are_formatted_with_stripes_exponents(amount, currency, shown):
    assert payments.format_amount(amount, currency) == shown


def test_the_console_shows_amounts_with_their_currency_s_decimals():
    # The console once divided every amount by 100: 1500 JPY read "15.00 JPY".
    from app.web.templating import money

    assert money(1500, "jpy") == "¥1,500"
    assert money(1500, "usd") == "$15.00"
    assert money(None, "usd") == "amount pending"
