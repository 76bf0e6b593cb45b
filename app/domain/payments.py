"""The payment gate's side of Stripe: Checkout Sessions, their status, and signed webhooks."""

from __future__ import annotations

import logging
from typing import Any

import stripe

from ..storage.states import PaymentStatus

log = logging.getLogger(__name__)

# The statuses in their order (app/storage/states.py): a payment only ever moves forward.
OPEN = PaymentStatus.OPEN
CANCELLED = PaymentStatus.CANCELLED
EXPIRED = PaymentStatus.EXPIRED
FAILED = PaymentStatus.FAILED
PAID = PaymentStatus.PAID
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
    """Stripe could not be used; the message is safe to show (no keys, no card data)."""


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
        "metadata": {"gatehouse_registration": registration_id},
    }
    if email:
        params["customer_email"] = email
    try:
        return client.v1.checkout.sessions.create(params=params).to_dict()
    except stripe.StripeError as exc:
        log.warning("Stripe refused a Checkout Session: %s", _describe(exc))
        raise PaymentError(_describe(exc)) from None


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
        amount=checkout_session.get("amount_total"),
        currency=checkout_session.get("currency"),
        status=OPEN,
    )
    return checkout_session


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
        raise PaymentError(_describe(exc)) from None


def session_status(session: Any) -> str:
    """Map a Checkout Session to Gatehouse's payment status."""
    if session.get("payment_status") in ("paid", "no_payment_required") and (
        session.get("status") in (None, "complete")
    ):
        return PAID
    if session.get("status") == "expired":
        return EXPIRED
    return OPEN


def settle(store, session: Any, *, event_type: str | None = None) -> str | None:
    """Record what Stripe says about a session; return the registration it belongs to.

    Stripe does not order its events: one that would move the payment backwards (an unpaid
    `checkout.session.completed` arriving after the paid one) is acknowledged and ignored.
    """
    status = (
        FAILED
        if event_type == "checkout.session.async_payment_failed"
        else (session_status(session))
    )
    payments = store.payments_for(session.get("client_reference_id") or "")
    if not any(p.session_id == session["id"] for p in payments):
        log.warning("Stripe session %s does not belong to a known registration", session["id"])
        return None
    stored = store.update_payment(
        session["id"], status, amount=session.get("amount_total"), currency=session.get("currency")
    )
    if stored is not None and stored.status != status:
        log.info("Stripe session %s stays %s: %s came late", session["id"], stored.status, status)
    return session["client_reference_id"]


def verify_webhook(payload: bytes, signature: str | None, secret: str) -> Any:
    """Return the event when the Stripe-Signature header is valid; raise ValueError if not."""
    if not secret:
        raise ValueError("no webhook secret to verify the signature with")
    try:
        return stripe.Webhook.construct_event(payload, signature, secret).to_dict()
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise ValueError(str(exc)) from None


def _describe(exc: stripe.StripeError) -> str:
    message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"
