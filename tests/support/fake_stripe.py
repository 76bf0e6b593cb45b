"""A tiny Stripe-compatible API on loopback, for driving the real `stripe` SDK in tests.

It implements only what Stripe Checkout needs: create and retrieve a Checkout Session, retrieve a
Price, a stand-in for the hosted payment page, and signed `checkout.session.*` webhooks. A price is
`(unit_amount, currency)` for a one-off price, `(unit_amount, currency, interval)` or
`(unit_amount, currency, interval, interval_count)` for a recurring one. `outage = True` makes
every API call answer Stripe's 500 `api_error`; `delay` (seconds) holds every API answer back,
and `unreachable_url()` names an address nothing answers on. Point the SDK at it with::

    with FakeStripe(prices={"price_123": (1500, "usd")}) as fake:
        client = stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url},
                                     max_network_retries=0)
        session = client.v1.checkout.sessions.create(params={...})

Unlike real Stripe, the webhook for a payment is delivered *before* the browser is redirected to
`success_url` (synchronously, from the Pay handler), so tests are deterministic. Real Stripe gives
no such ordering: production code must not rely on it.
"""

import html
import json
import logging
import re
import secrets
import threading
import time
from typing import Any, NamedTuple

import requests
import stripe
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from app.testing import LoopbackServer, free_port

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "sk_test_gatehouse_fake"
DEFAULT_WEBHOOK_SECRET = "whsec_test_gatehouse_fake"
DEFAULT_PRICES = {"price_123": (1500, "usd")}
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
WEBHOOK_TIMEOUT = 5  # seconds; the receiver is on this machine


class RecordedRequest(NamedTuple):
    """One API call the SDK made: the flat form (POST body, or query for GET) and headers."""

    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]

    @property
    def params(self) -> dict[str, Any]:
        """Return the form decoded into Stripe's nested shape (line_items as a list, metadata)."""
        return decode_form(self.form.items())


class StripeError(Exception):
    """An error answered in Stripe's JSON envelope."""

    def __init__(self, status: int, message: str, type_="invalid_request_error", **fields):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message, **fields}}


def decode_form(pairs) -> dict[str, Any]:
    """Turn `line_items[0][price]=x` style pairs into nested dicts, with numbered keys as lists."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        parts = [head, *re.findall(r"\[([^\]]*)\]", key[len(head) :])]
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return {k: v if k == "metadata" else _listify(v) for k, v in result.items()}


def _listify(node):
    if not isinstance(node, dict):
        return node
    node = {k: _listify(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node):
        return [node[k] for k in sorted(node, key=int)]
    return node


class FakeStripe:
    """A Stripe-compatible Checkout API plus hosted-page stand-in on http://127.0.0.1:<port>."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        prices: dict[str, tuple[int, str]] | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        webhook_url: str | None = None,
        send_webhook_on_pay: bool = True,
    ):
        self.api_key = api_key
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.send_webhook_on_pay = send_webhook_on_pay
        self.requests: list[RecordedRequest] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.line_items: dict[str, list[dict[str, Any]]] = {}
        self.deliveries: list[tuple[dict[str, Any], int | None]] = []
        self.outage = False
        self.delay = 0.0
        self._lock = threading.RLock()
        self._server = LoopbackServer(self._wsgi, host="127.0.0.1", name="fake-stripe")
        self._url_map = Map(
            [
                Rule("/v1/checkout/sessions", methods=["POST"], endpoint="create_session"),
                Rule("/v1/checkout/sessions/<sid>", methods=["GET"], endpoint="retrieve_session"),
                Rule("/v1/prices/<price_id>", methods=["GET"], endpoint="retrieve_price"),
                Rule("/pay/<sid>", methods=["GET"], endpoint="checkout_page"),
                Rule("/pay/<sid>", methods=["POST"], endpoint="pay"),
                Rule("/pay/<sid>/cancel", methods=["GET", "POST"], endpoint="cancel"),
            ]
        )

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "FakeStripe":
        """Start serving in a daemon thread."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.stop()

    def __enter__(self) -> "FakeStripe":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Return the API base, http://127.0.0.1:<port> (for `base_addresses={"api": ...}`)."""
        return self._server.url

    # --- test-side helpers ---------------------------------------------------------------------

    def client(self, api_key: str | None = None) -> stripe.StripeClient:
        """Return a real SDK client pointed at this fake, with retries off."""
        return stripe.StripeClient(
            api_key or self.api_key, base_addresses={"api": self.url}, max_network_retries=0
        )

    def api_requests(self, method: str | None = None, path: str | None = None):
        """Return the recorded API requests, optionally filtered by method and path."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    def complete_session(self, session_id: str) -> dict[str, Any]:
        """Mark a session paid, as Stripe does when the customer pays; return the session."""
        with self._lock:
            session = self._get(session_id)
            session.update(status="complete", payment_status="paid", url=None)
            if session["mode"] == "subscription":
                session["subscription"] = "sub_test_" + secrets.token_hex(12)
            else:
                session["payment_intent"] = "pi_test_" + secrets.token_hex(12)
            session["customer_details"] = {
                "email": session["customer_email"] or "customer@example.org",
                "name": None,
            }
            return dict(session)

    def build_event(self, event_type: str, session_id: str) -> dict[str, Any]:
        """Return a Stripe event whose data.object is the session as it is now."""
        with self._lock:
            session = json.loads(json.dumps(self._get(session_id)))
        return {
            "id": "evt_test_" + secrets.token_hex(12),
            "object": "event",
            "api_version": stripe.api_version,
            "created": int(time.time()),
            "data": {"object": session},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    def sign(self, payload: str, secret: str | None = None, timestamp: int | None = None) -> str:
        """Return a `Stripe-Signature` header for payload (defaults: this fake's secret, now)."""
        return stripe.WebhookSignature.generate_signature_header(
            payload, secret or self.webhook_secret, timestamp=timestamp
        )

    def send_event(self, event_type: str, session_id: str) -> int:
        """Build, sign and POST an event to `webhook_url`; return the receiver's HTTP status."""
        if not self.webhook_url:
            raise RuntimeError("FakeStripe.webhook_url is not set: tell the fake where to POST")
        event = self.build_event(event_type, session_id)
        payload = json.dumps(event, indent=2)  # Stripe sends pretty-printed JSON
        response = requests.post(
            self.webhook_url,
            data=payload.encode(),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": self.sign(payload),
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
            timeout=WEBHOOK_TIMEOUT,
        )
        with self._lock:
            self.deliveries.append((event, response.status_code))
        return response.status_code

    # --- the HTTP side -------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, args = self._url_map.bind_to_environ(environ).match()
        except HTTPException as exc:
            if request.path.startswith("/v1/"):
                self._record(request)
                response = _json_error(
                    StripeError(
                        404, f"Unrecognized request URL ({request.method}: {request.path})."
                    )
                )
            else:
                response = exc.get_response(environ)
            return response(environ, start_response)
        if request.path.startswith("/v1/"):
            self._record(request)
            if self.delay:
                time.sleep(self.delay)
            try:
                if self.outage:
                    raise StripeError(500, "An unknown error occurred", type_="api_error")
                self._authenticate(request)
                body = getattr(self, "_api_" + endpoint)(request, **args)
                response = Response(json.dumps(body), mimetype="application/json")
            except StripeError as exc:
                response = _json_error(exc)
        else:
            try:
                response = getattr(self, "_page_" + endpoint)(request, **args)
            except HTTPException as exc:
                response = exc.get_response(environ)
        response.headers["Request-Id"] = "req_" + secrets.token_hex(7)
        return response(environ, start_response)

    def _record(self, request: Request) -> None:
        form = request.form if request.method == "POST" else request.args
        with self._lock:
            self.requests.append(
                RecordedRequest(request.method, request.path, form.to_dict(), dict(request.headers))
            )

    def _authenticate(self, request: Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
            raise StripeError(401, f"Invalid API Key provided: {sent[:8]}{'*' * 8}")

    def _get(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeError(
                404,
                f"No such checkout.session: '{session_id}'",
                code="resource_missing",
                param="session",
            )
        return session

    def _api_create_session(self, request: Request) -> dict[str, Any]:
        params = decode_form(request.form.items(multi=True))
        mode = params.get("mode")
        if mode not in ("payment", "subscription", "setup"):
            raise StripeError(
                400,
                "Missing required param: mode." if mode is None else f"Invalid mode: {mode!r}",
                code="parameter_missing" if mode is None else "parameter_invalid_string",
                param="mode",
            )
        line_items = params.get("line_items") or []
        if mode != "setup" and not line_items:
            raise StripeError(
                400,
                "Missing required param: line_items.",
                code="parameter_missing",
                param="line_items",
            )
        total, currency, items = 0, None, []
        for index, item in enumerate(line_items):
            price_id = item.get("price")
            if price_id not in self.prices:
                raise StripeError(
                    400,
                    f"No such price: '{price_id}'",
                    code="resource_missing",
                    param=f"line_items[{index}][price]",
                )
            unit_amount, price_currency = self.prices[price_id][:2]
            quantity = int(item.get("quantity", "1"))
            total += unit_amount * quantity
            currency = currency or price_currency
            items.append({"price": price_id, "quantity": quantity, "amount_total": unit_amount})

        session_id = "cs_test_" + secrets.token_hex(24)
        now = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total if mode != "setup" else None,
            "amount_total": total if mode != "setup" else None,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "customer": None,
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": now + 24 * 3600,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": mode,
            "payment_intent": None,
            "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": params.get("success_url"),
            "ui_mode": params.get("ui_mode", "hosted_page"),
            "url": f"{self.url}/pay/{session_id}",
        }
        with self._lock:
            self.sessions[session_id] = session
            self.line_items[session_id] = items
            return dict(session)

    def _api_retrieve_session(self, request: Request, sid: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._get(sid))

    def _api_retrieve_price(self, request: Request, price_id: str) -> dict[str, Any]:
        if price_id not in self.prices:
            raise StripeError(
                404, f"No such price: '{price_id}'", code="resource_missing", param="id"
            )
        unit_amount, currency, *recurring = self.prices[price_id]
        interval = recurring[0] if recurring else None
        return {
            "id": price_id,
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": int(time.time()),
            "currency": currency,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": "prod_test_gatehouse",
            "recurring": {
                "interval": interval,
                "interval_count": recurring[1] if len(recurring) > 1 else 1,
                "usage_type": "licensed",
            }
            if interval
            else None,
            "tax_behavior": "unspecified",
            "type": "recurring" if interval else "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }

    # --- the hosted Checkout stand-in ------------------------------------------------------------

    def _page_session(self, sid: str) -> dict[str, Any]:
        with self._lock:
            session = self.sessions.get(sid)
            if session is None:
                raise NotFound("No such Checkout Session.")
            return dict(session)

    def _page_checkout_page(self, request: Request, sid: str) -> Response:
        session = self._page_session(sid)
        if session["status"] != "open":
            return _html("Checkout", "<h1>This Checkout Session is no longer available.</h1>")
        amount = (session["amount_total"] or 0) / 100
        currency = (session["currency"] or "").upper()
        e = html.escape
        body = f"""
<h1>Pay {amount:.2f} {e(currency)}</h1>
<p>Fake Stripe Checkout for <code id="session-id">{e(sid)}</code>.</p>
<form method="post" action="/pay/{e(sid)}">
  <button id="pay" type="submit">Pay</button>
</form>
<p><a id="cancel" href="/pay/{e(sid)}/cancel">Cancel</a></p>
"""
        return _html("Fake Stripe Checkout", body)

    def _page_pay(self, request: Request, sid: str) -> Response:
        session = self._page_session(sid)
        if session["status"] != "open":
            return _html("Checkout", "<h1>This Checkout Session is no longer available.</h1>", 400)
        self.complete_session(sid)
        if self.send_webhook_on_pay and self.webhook_url:
            try:
                self.send_event("checkout.session.completed", sid)
            except requests.RequestException as exc:
                # Stripe retries later and still redirects the customer; so do we (minus retry).
                logger.warning("webhook to %s failed: %s", self.webhook_url, exc)
                with self._lock:
                    self.deliveries.append(({"type": "checkout.session.completed"}, None))
        target = (session["success_url"] or "").replace(SESSION_ID_PLACEHOLDER, sid)
        return Response(status=303, headers={"Location": target})

    def _page_cancel(self, request: Request, sid: str) -> Response:
        session = self._page_session(sid)
        target = (session["cancel_url"] or "").replace(SESSION_ID_PLACEHOLDER, sid)
        return Response(status=303, headers={"Location": target})


def unreachable_url() -> str:
    """Return an API base on loopback where nothing listens: every call fails to connect."""
    return f"http://127.0.0.1:{free_port()}"


def _json_error(exc: StripeError) -> Response:
    return Response(json.dumps(exc.body), status=exc.status, mimetype="application/json")


def _html(title: str, body: str, status: int = 200) -> Response:
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )
    return Response(page, status=status, mimetype="text/html")
