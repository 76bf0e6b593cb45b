"""The payment gate's side of Stripe: Checkout Sessions, their status, and signed webhooks."""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe
from babel.numbers import format_currency

from ..storage.states import PaymentStatus

log = logging.getLogger(__name__)

# The statuses in their order (app/storage/states.py): a payment only ever moves forward.
OPEN = PaymentStatus.OPEN
CANCELLED = PaymentStatus.CANCELLED
EXPIRED = PaymentStatus.EXPIRED
FAILED = PaymentStatus.FAILED
PAID = PaymentStatus.PAID
MISMATCH = PaymentStatus.MISMATCH
UNAVAILABLE = PaymentStatus.UNAVAILABLE
# The session's metadata key naming the price Gatehouse asked for.
PRICE_METADATA = "gatehouse_price"
# Stripe events that settle a Checkout Session.
SETTLING_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)


class PaymentError(Exception):
    """Stripe could not be used: the payer sees "Payment is unavailable right now"; the
    details (the SDK's error class, its message, Stripe's request id) are for the log."""

    def __init__(self, kind: str, message: str, stripe_request_id: str | None = None):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.stripe_request_id = stripe_request_id

    def details(self) -> str:
        """Return the error for a log line: class, message and Stripe's request id if any."""
        return f"{self} (Stripe request id: {self.stripe_request_id or 'none'})"


# Stripe's amounts are in the currency's smallest unit, with Stripe's own exponents
# (docs.stripe.com/currencies): these have none, these have three, every other has two (ISK,
# HUF and TWD included, which Stripe keeps two-decimal in its API for compatibility).
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
# How long a Price read from Stripe is shown before asking Stripe again, and how long a
# failure to read it is remembered (so an outage does not make every page view wait).
PRICE_TTL = 300.0
PRICE_FAILURE_TTL = 30.0


def format_amount(amount: int | None, currency: str | None, locale: str = "en") -> str:
    """Format a Stripe amount in minor units for people: 1500 usd -> $15.00, 1500 jpy -> ¥1,500."""
    if amount is None or not currency:
        return "amount pending"
    code = currency.lower()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    shown = format_currency(Decimal(amount).scaleb(-exponent), code.upper(), locale=locale)
    # CLDR's currency spacing, which Babel leaves out: a code with no symbol is set off from
    # the number ("KWD 12.345", not "KWD12.345").
    return re.sub(r"^([A-Z]{3})(?=\d)", "\\1\u00a0", shown)


@dataclass(frozen=True)
class Price:
    """A Stripe Price as the payment page shows it."""

    id: str
    amount: int | None
    currency: str
    interval: str | None = None  # day, week, month or year for a subscription; None: one-off
    interval_count: int = 1

    @property
    def amount_text(self) -> str:
        """Return the amount with its currency, e.g. "$15.00"."""
        return format_amount(self.amount, self.currency)

    @property
    def cadence(self) -> str:
        """Return how often it is charged: "one-off", "per month", "every 3 months"."""
        if not self.interval:
            return "one-off"
        if self.interval_count == 1:
            return f"per {self.interval}"
        return f"every {self.interval_count} {self.interval}s"


def read_price(client: stripe.StripeClient, price_id: str) -> Price | None:
    """Read a Price from Stripe; None when it has no single amount to show (tiered, custom)."""
    try:
        price = client.v1.prices.retrieve(price_id).to_dict()
    except stripe.StripeError as exc:
        raise _payment_error(exc) from None
    if price.get("unit_amount") is None or not price.get("currency"):
        return None
    recurring = price.get("recurring") or {}
    return Price(
        id=price_id,
        amount=price["unit_amount"],
        currency=price["currency"],
        interval=recurring.get("interval") if price.get("type") == "recurring" else None,
        interval_count=int(recurring.get("interval_count") or 1),
    )


class PriceCache:
    """Prices read from Stripe, kept per price id for `ttl` seconds in this process.

    A failure is kept for `failure_ttl` seconds: the page then says the price shows on Stripe's
    page, without waiting for Stripe's timeout on every view during an outage.
    """

    def __init__(
        self,
        ttl: float = PRICE_TTL,
        failure_ttl: float = PRICE_FAILURE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, Price | None]] = {}
        self._lock = threading.Lock()

    def get(self, price_id: str, client: Callable[[], stripe.StripeClient]) -> Price | None:
        """Return the cached Price, reading it through `client()` when missing or stale."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(price_id)
        if entry and entry[0] > now:
            return entry[1]
        try:
            price = read_price(client(), price_id)
        except PaymentError as exc:
            log.warning("Stripe price %s could not be read: %s", price_id, exc.details())
            price, expires = None, now + self.failure_ttl
        else:
            expires = now + self.ttl
        with self._lock:
            self._entries[price_id] = (expires, price)
        return price


def make_client(secret_key: str, api_base: str | None, timeout: float) -> stripe.StripeClient:
    """Return a Stripe client with a timeout, pointed at `api_base` when one is configured."""
    options: dict[str, Any] = {
        "max_network_retries": 1,
        "http_client": stripe.RequestsClient(timeout=timeout),
    }
    if api_base:
        options["base_addresses"] = {"api": api_base.rstrip("/")}
    return stripe.StripeClient(secret_key, **options)


def create_checkout(
    client: stripe.StripeClient,
    *,
    registration_id: str,
    price_id: str,
    mode: str,
    success_url: str,
    cancel_url: str,
    email: str | None,
) -> Any:
    """Open a Checkout Session for one registration and return it as a plain dict."""
    params: dict[str, Any] = {
        "mode": mode,
        "line_items": [{"price": price_id, "quantity": 1}],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": registration_id,
        "metadata": {"gatehouse_registration": registration_id, PRICE_METADATA: price_id},
    }
    if email:
        params["customer_email"] = email
    try:
        return client.v1.checkout.sessions.create(params=params).to_dict()
    except stripe.StripeError as exc:
        raise _payment_error(exc) from None


def start_checkout(
    store,
    client: stripe.StripeClient,
    registration,
    *,
    price_id: str,
    mode: str,
    success_url: str,
    cancel_url: str,
) -> Any:
    """Open a Checkout Session for a registration, record it as open, and return it."""
    rid = registration.id
    account = store.get_account(registration.account_id) if registration.account_id else None
    checkout_session = create_checkout(
        client,
        registration_id=rid,
        price_id=price_id,
        mode=mode,
        success_url=success_url,
        cancel_url=cancel_url,
        email=account.email if account else None,
    )
    store.record_checkout(
        session_id=checkout_session["id"],
        registration_id=rid,
        account_id=account.id if account else None,
        mode=mode,
        # What was asked: a settling session must show the same amount, currency and price.
        amount=checkout_session.get("amount_total"),
        currency=checkout_session.get("currency"),
        price_id=price_id,
        status=OPEN,
    )
    return checkout_session


def record_unavailable(store, registration, *, price_id: str, mode: str) -> str:
    """Record that Stripe could not open a Checkout Session (nothing was charged): the LMS
    frame waiting on the payment reads it from the status and offers to try again.

    Return the row's id, which Gatehouse makes up: there is no Stripe session to name.
    """
    session_id = "unavailable_" + secrets.token_hex(12)
    store.record_checkout(
        session_id=session_id,
        registration_id=registration.id,
        account_id=registration.account_id,
        mode=mode,
        amount=None,
        currency=None,
        price_id=price_id,
        status=UNAVAILABLE,
    )
    return session_id


def cancel_open(store, registration_id: str) -> None:
    """Mark a registration's open Checkout Sessions cancelled: the payer left Checkout."""
    for item in store.payments_for(registration_id):
        if item.status == OPEN:
            store.update_payment(item.session_id, CANCELLED)


def retrieve_checkout(client: stripe.StripeClient, session_id: str) -> Any:
    """Read a Checkout Session back from Stripe (the server-side check of a return)."""
    try:
        return client.v1.checkout.sessions.retrieve(session_id).to_dict()
    except stripe.StripeError as exc:
        raise _payment_error(exc) from None


def session_status(session: Any) -> str:
    """Map a Checkout Session to Gatehouse's payment status."""
    if session.get("payment_status") in ("paid", "no_payment_required") and (
        session.get("status") in (None, "complete")
    ):
        return PAID
    if session.get("status") == "expired":
        return EXPIRED
    return OPEN


def session_prices(session: Any) -> set[str]:
    """Return the prices a Checkout Session charges: its line items when Stripe included them,
    else the price Gatehouse wrote into its metadata when creating it."""
    items = (session.get("line_items") or {}).get("data") or []
    prices = {
        price["id"] if isinstance(price, dict) else price
        for price in (item.get("price") for item in items)
        if price
    }
    if prices:
        return prices
    asked = (session.get("metadata") or {}).get(PRICE_METADATA)
    return {asked} if asked else set()


def mismatch_of(asked: Any, session: Any) -> str | None:
    """Say how a paid session differs from the one Gatehouse created, or None when it does not.

    `asked` is the payment recorded at creation (amount, currency, price). A payment recorded
    before prices were kept has no price to compare; amount and currency still are.
    """
    differences = []
    amount = session.get("amount_total")
    if amount != asked.amount:
        differences.append(f"amount {amount} instead of {asked.amount}")
    currency = (session.get("currency") or "").lower() or None
    if currency != ((asked.currency or "").lower() or None):
        differences.append(f"currency {currency} instead of {asked.currency}")
    prices = session_prices(session)
    if asked.price_id and prices != {asked.price_id}:
        shown = ", ".join(sorted(prices)) or "none"
        differences.append(f"price {shown} instead of {asked.price_id}")
    return "; ".join(differences) or None


def settle(store, session: Any, *, event_type: str | None = None) -> Any:
    """Record what Stripe says about a session; return the payment as stored (None: unknown).

    A paid session settles only when its amount, currency and price are what Gatehouse asked
    for when creating it; otherwise it is recorded as a mismatch (with the differences), which
    never passes the payment gate and shows in the console.
    Stripe does not order its events: one that would move the payment backwards (an unpaid
    `checkout.session.completed` arriving after the paid one) is acknowledged and ignored.
    """
    status = (
        FAILED
        if event_type == "checkout.session.async_payment_failed"
        else (session_status(session))
    )
    payments = store.payments_for(session.get("client_reference_id") or "")
    asked = next((p for p in payments if p.session_id == session["id"]), None)
    if asked is None:
        log.warning("Stripe session %s does not belong to a known registration", session["id"])
        return None
    mismatch = mismatch_of(asked, session) if status == PAID else None
    if mismatch:
        log.warning(
            "Stripe session %s is not what was asked (%s): not settled", asked.session_id, mismatch
        )
        stored = store.update_payment(asked.session_id, MISMATCH, mismatch=mismatch)
        status = MISMATCH
    else:
        stored = store.update_payment(
            asked.session_id,
            status,
            amount=session.get("amount_total"),
            currency=session.get("currency"),
        )
    if stored is not None and stored.status != status:
        log.info("Stripe session %s stays %s: %s came late", session["id"], stored.status, status)
    return stored


def verify_webhook(payload: bytes, signature: str | None, secret: str) -> Any:
    """Return the event when the Stripe-Signature header is valid; raise ValueError if not."""
    if not secret:
        raise ValueError("no webhook secret to verify the signature with")
    try:
        return stripe.Webhook.construct_event(payload, signature, secret).to_dict()
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise ValueError(str(exc)) from None


def _payment_error(exc: stripe.StripeError) -> PaymentError:
    # The SDK's messages name no key (it masks them) and hold no card data.
    message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
    return PaymentError(type(exc).__name__, message, getattr(exc, "request_id", None))
