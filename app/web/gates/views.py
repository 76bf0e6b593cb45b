"""Gate pages under /lti/register/<id>/…: sign-in, terms, payment, then completion."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext, ngettext
from flask_login import current_user, login_user

from ...domain import payments
from ...domain import registration as flow
from ...domain.accounts import (
    OidcLinkRefused,
    SigninLocked,
    asserts_verified,
    authenticate,
    oidc_account,
    oidc_refusal_message,
)
from ...domain.gates import next_gate, step_of, steps_of
from ...domain.registration import RegistrationGone
from ...lti.errors import RegistrationError
from ...lti.text import N_
from ...storage import AccountExists, RegistrationState
from ..context import base_url, get_store, sealer, services, settings
from ..dialog import render_close, render_error, translated
from ..footer import for_registration
from ..i18n import keep_flow_locale
from ..limits import signin_limit
from ..login import PASSWORDS, User, hash_password
from ..oidc import identity_provider
from ..security import allow_framing
from .forms import ContinueForm, SigninForm, SignupForm, TermsByEmailForm, TermsForm

bp = Blueprint("gates", __name__)


class UnknownRegistration(RegistrationError):
    """The id in the URL names no registration."""

    status = 404
    title = N_("This registration link is not valid")


def load(rid: str):
    """Return an open or finished registration, or raise the page that explains why not."""
    registration = flow.current(get_store(), rid)
    if registration is None:
        raise UnknownRegistration(
            N_(
                "Gatehouse has no registration with this link. Start the registration again from "
                "your LMS."
            ),
            rule="registration-id",
        )
    for_registration(registration.id)
    if registration.state == RegistrationState.EXPIRED:
        raise RegistrationGone(
            N_(
                "This registration was not finished in time, so it expired. Close this dialog and "
                "start the registration again from your LMS."
            ),
            rule="registration-expired",
        )
    return registration


def guard(rid: str, gate_name: str):
    """Return the registration when `gate_name` is the gate to show now, else a redirect."""
    registration = load(rid)
    if registration.state != RegistrationState.PENDING:
        return registration, redirect(url_for("gates.resume", rid=rid))
    config = settings()
    if gate_name not in config.registration.gates:
        abort(404)
    upcoming = next_gate(get_store(), registration, config)
    if upcoming is None or upcoming.name != gate_name:
        # Earlier gates come first, passed gates are not shown again: no skipping by URL.
        return registration, redirect(url_for("gates.resume", rid=rid))
    return registration, None


def gate_page(template: str, registration, gate_name: str, **context):
    """Render a gate page with its step indicator; mark the session so cookies can be probed."""
    session["gatehouse"] = 1
    keep_flow_locale(registration.id)
    return render_template(
        template,
        registration=registration,
        step=step_of(gate_name, settings()),
        steps=steps_of(gate_name, settings()),
        gate=gate_name,
        **context,
    )


@bp.before_request
def _frameable():
    allow_framing()


@bp.errorhandler(RegistrationError)
def _registration_error(error: RegistrationError):
    return render_error(error)


@bp.get("/lti/register/<rid>")
def resume(rid: str):
    """Send the admin to the next gate, or finish the registration once all are passed."""
    registration = load(rid)
    store = get_store()
    if registration.state == RegistrationState.COMPLETED:
        return render_close(registration)
    if registration.state in (RegistrationState.FAILED, RegistrationState.UNKNOWN):
        # Shown again as it was, without "Try again": this attempt's token is spent.
        return render_template(
            "register/error.html",
            error=translated(registration.error),
            shown_again=True,
            family=registration.product_family_code,
        ), 409
    if registration.state == RegistrationState.REGISTERING:
        return render_template("gates/working.html", registration=registration), 202
    config = settings()
    gate = next_gate(store, registration, config)
    if gate is not None:
        return redirect(url_for(gate.endpoint, rid=rid))
    if config.registration.pre_approval_url:
        # The tool owner's own page takes over and completes through the API.
        return redirect(pre_approval_redirect(config.registration.pre_approval_url, rid))
    held = flow.resume(store, registration, sealer())
    if held is None:
        raise RegistrationGone(
            N_("Gatehouse no longer holds this registration's details. Start again from your LMS."),
            rule="registration-held",
        )
    platform, token = held
    try:
        flow.complete(services(), registration, platform, token)
    except flow.AlreadyHandled:
        return redirect(url_for("gates.resume", rid=rid))
    except RegistrationError as error:
        flow.fail(services(), registration, error)
        return render_error(error, family=registration.product_family_code)
    return render_close(store.get_registration(rid))


def pre_approval_redirect(url: str, rid: str) -> str:
    """Return the owner's pre-approval URL with `registrationId` added to its query."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("registrationId", rid)])
    return urlunsplit(parts._replace(query=query))


@bp.get("/lti/register/<rid>/done")
def done(rid: str):
    """Show the close page once, from Gatehouse's origin, after the owner's API completion."""
    registration = load(rid)
    token = request.args.get("token", "")
    if registration.state != RegistrationState.COMPLETED or not flow.use_done_token(
        get_store(), rid, token
    ):
        raise RegistrationGone(
            N_(
                "This link was already used or is not valid. If your LMS dialog is still open, "
                "close it: the registration itself is recorded."
            ),
            rule="done-link",
        )
    return render_close(registration)


@bp.get("/lti/register/<rid>/status")
def status(rid: str):
    """Tell a waiting page where the registration stands (polled by flow.js)."""
    registration = get_store().get_registration(rid)
    if registration is None:
        return jsonify(state="unknown"), 404
    upcoming = None
    if registration.state == RegistrationState.PENDING and not registration.expired:
        gate = next_gate(get_store(), registration, settings())
        upcoming = gate.name if gate else None
    latest = get_store().payments_for(rid)
    return jsonify(
        state=registration.state,
        next=upcoming,
        payment=latest[0].status if latest else None,
        payment_session=latest[0].session_id if latest else None,
        url=url_for("gates.resume", rid=rid),
    )


@bp.get("/lti/register/<rid>/cookies")
def cookie_probe(rid: str):
    """Report whether the session cookie set by the gate page came back."""
    return jsonify(ok=bool(session.get("gatehouse")))


# Sign-in


def _bind(registration, account) -> None:
    store = get_store()
    login_user(User(account))
    store.touch_login(account.id)
    store.set_registration_account(registration.id, account.id)
    current_app.logger.info("registration %s approved by account %s", registration.id, account.id)


@bp.route("/lti/register/<rid>/signin", methods=["GET", "POST"])
@signin_limit
def signin(rid: str):
    """Sign in with an account (or continue as the one signed in) to approve the registration."""
    registration, moved = guard(rid, "signin")
    if moved:
        return moved
    form = SigninForm()
    proceed = ContinueForm(prefix="continue")
    error = None
    if request.form.get("action") == "continue":
        if current_user.is_authenticated and proceed.validate_on_submit():
            _bind(registration, current_user.account)
            return redirect(url_for("gates.resume", rid=rid))
    elif form.validate_on_submit():
        try:
            account = authenticate(
                get_store(), PASSWORDS, form.email.data, form.password.data, request.remote_addr
            )
        except SigninLocked as locked:
            page = gate_page(
                "gates/signin.html",
                registration,
                "signin",
                form=form,
                proceed=proceed,
                error=_locked_message(locked),
                oidc=_oidc_settings(),
            )
            return page, 429, {"Retry-After": str(locked.retry_after)}
        if account:
            _bind(registration, account)
            return redirect(url_for("gates.resume", rid=rid))
        error = gettext("The e-mail address or password is not right.")
    return gate_page(
        "gates/signin.html",
        registration,
        "signin",
        form=form,
        proceed=proceed,
        error=error,
        oidc=_oidc_settings(),
    )


@bp.route("/lti/register/<rid>/signup", methods=["GET", "POST"])
@signin_limit
def signup(rid: str):
    """Create an account, when the tool owner allows it, and approve with it."""
    if not settings().gates.signin.allow_signup:
        abort(404)
    registration, moved = guard(rid, "signin")
    if moved:
        return moved
    form = SignupForm()
    if form.validate_on_submit():
        try:
            account = get_store().create_account(
                form.email.data, form.name.data.strip(), hash_password(form.password.data)
            )
        except AccountExists:
            form.email.errors.append(
                gettext("An account with this e-mail address exists; sign in.")
            )
        else:
            _bind(registration, account)
            return redirect(url_for("gates.resume", rid=rid))
    return gate_page("gates/signup.html", registration, "signin", form=form)


def _locked_message(locked) -> str:
    """Say plainly how long to wait after too many failed sign-ins (the domain's words)."""
    minutes = (locked.retry_after + 59) // 60
    return ngettext(
        "Too many failed sign-ins. For your safety, try again in %(num)d minute.",
        "Too many failed sign-ins. For your safety, try again in %(num)d minutes.",
        minutes,
    )


def _oidc_settings():
    oidc = settings().gates.signin.oidc
    return oidc if oidc.server_metadata_url else None


@bp.get("/lti/register/<rid>/signin/oidc")
def oidc_start(rid: str):
    """Start "Sign in with …" top-level (identity providers refuse to be framed)."""
    if _oidc_settings() is None:
        abort(404)
    _registration, moved = guard(rid, "signin")
    if moved:
        return moved
    session["oidc_registration"] = rid
    return identity_provider().authorize_redirect(base_url() + url_for("gates.oidc_callback"))


@bp.get("/lti/signin/oidc/callback")
def oidc_callback():
    """Finish "Sign in with …", bind the account, and tell the LMS window to go on."""
    if _oidc_settings() is None:
        abort(404)
    rid = session.pop("oidc_registration", None)
    if not rid:
        abort(
            400,
            gettext("This sign-in did not start from a registration. Start again from your LMS."),
        )
    registration, moved = guard(rid, "signin")
    if moved:
        return moved
    try:
        token = identity_provider().authorize_access_token()
    except Exception as exc:  # authlib raises several error types; all mean "not signed in"
        current_app.logger.warning("OIDC sign-in failed: %s", type(exc).__name__)
        return render_template(
            "gates/window_done.html",
            ok=False,
            message=gettext("The sign-in did not complete. Close this window and try again."),
        ), 400
    claims = _identity_claims(token)
    if not claims.get("email") or not claims.get("sub"):
        return render_template(
            "gates/window_done.html",
            ok=False,
            message=gettext(
                "Your identity provider did not share an e-mail address, which this tool needs."
            ),
        ), 400
    issuer = identity_provider().load_server_metadata()["issuer"]
    try:
        account = oidc_account(
            get_store(),
            issuer,
            str(claims["sub"]),
            claims["email"],
            claims.get("name"),
            asserts_verified(claims),
        )
    except OidcLinkRefused as refused:
        current_app.logger.warning(
            "OIDC sign-in for registration %s not linked: %s", rid, refused.reason
        )
        # This window is top-level, so its session holds the message for the sign-in page.
        flash(oidc_refusal_message(refused, _oidc_settings().label), "signin-error")
        return redirect(url_for("gates.signin", rid=rid))
    _bind(registration, account)
    return render_template(
        "gates/window_done.html",
        ok=True,
        message=gettext("Signed in as %(email)s.", email=account.email),
    )


def _identity_claims(token) -> dict:
    """Return who signed in: the ID token's claims, completed from UserInfo when needed.

    The e-mail and whether it is verified are taken together from one source.
    """
    claims = dict(token.get("userinfo") or {})
    if claims.get("email") and "email_verified" in claims:
        return claims
    info = dict(identity_provider().userinfo(token=token))
    if claims.get("sub") and str(info.get("sub")) != str(claims["sub"]):
        # UserInfo about another subject must not be used (OpenID Connect Core 5.3.2).
        current_app.logger.warning("OIDC UserInfo named another subject than the ID token")
        return {}
    if info.get("email"):
        claims.pop("email_verified", None)
        claims.update({k: info[k] for k in ("email", "email_verified") if k in info})
    claims.setdefault("sub", info.get("sub"))
    if info.get("name") and not claims.get("name"):
        claims["name"] = info["name"]
    return claims


# Terms


@bp.route("/lti/register/<rid>/terms", methods=["GET", "POST"])
def terms(rid: str):
    """Show the terms; record an explicit acceptance of the current version."""
    registration, moved = guard(rid, "terms")
    if moved:
        return moved
    config = settings().gates.terms
    account = get_store().get_account(registration.account_id) if registration.account_id else None
    # Without an approving account (terms alone, or before sign-in) the e-mail says who signed.
    form = TermsForm() if account else TermsByEmailForm()
    if request.method == "GET":
        known = account or (current_user.account if current_user.is_authenticated else None)
        if known:
            form.signer_name.data = known.name
            if not account:
                form.email.data = known.email
    if form.validate_on_submit():
        get_store().record_terms_acceptance(
            registration_id=rid,
            version=config.version,
            account_id=account.id if account else None,
            email=account.email if account else form.email.data.lower(),
            signer_name=form.signer_name.data.strip(),
            ip=request.remote_addr,
            user_agent=(request.user_agent.string or "")[:500],
        )
        return redirect(url_for("gates.resume", rid=rid))
    return gate_page(
        "gates/terms.html",
        registration,
        "terms",
        form=form,
        terms=config,
        terms_html=current_app.extensions["gatehouse.terms_html"],
    )


# Payment


def stripe_client():
    """Return the Stripe client built from STRIPE_SECRET_KEY and gates.payment.api_base."""
    config = settings()
    return payments.make_client(
        os.environ["STRIPE_SECRET_KEY"],
        config.gates.payment.api_base,
        config.outbound.deadline,
    )


# What the payer reads when Stripe cannot be used; the details go to the log.
PAYMENT_UNAVAILABLE = N_("Payment is unavailable right now; nothing was charged.")


def price_cache() -> payments.PriceCache:
    """Return this process's cache of Stripe Prices (one per app)."""
    return current_app.extensions.setdefault("gatehouse.prices", payments.PriceCache())


@bp.get("/lti/register/<rid>/payment")
def payment(rid: str):
    """Explain the payment and open Stripe Checkout in a new window (it cannot be framed)."""
    registration, moved = guard(rid, "payment")
    if moved:
        return moved
    latest = get_store().payments_for(rid)
    last_status = latest[0].status if latest else None
    return gate_page(
        "gates/payment.html",
        registration,
        "payment",
        price=price_cache().get(settings().gates.payment.price_id, stripe_client),
        cancelled=last_status == payments.CANCELLED,
        unavailable=last_status == payments.UNAVAILABLE,
        unavailable_message=gettext(PAYMENT_UNAVAILABLE),
        last_session=latest[0].session_id if latest else "",
    )


@bp.get("/lti/register/<rid>/payment/checkout")
def checkout(rid: str):
    """Create a Checkout Session and send this (new) window to Stripe."""
    registration, moved = guard(rid, "payment")
    if moved:
        return moved
    config = settings().gates.payment
    root = base_url()
    try:
        checkout_session = payments.start_checkout(
            get_store(),
            stripe_client(),
            registration,
            price_id=config.price_id,
            mode=config.mode,
            success_url=f"{root}/lti/register/{rid}/payment/return?session_id="
            "{CHECKOUT_SESSION_ID}",
            cancel_url=f"{root}/lti/register/{rid}/payment/cancelled",
        )
    except payments.PaymentError as exc:
        current_app.logger.warning(
            "Stripe could not open a Checkout Session for registration %s: %s",
            rid,
            exc.details(),
        )
        payments.record_unavailable(
            get_store(), registration, price_id=config.price_id, mode=config.mode
        )
        return render_template(
            "gates/window_done.html",
            ok=False,
            message=gettext(PAYMENT_UNAVAILABLE),
            detail=gettext(
                "Stripe, which handles the payment, could not be used just now. Try again "
                "in a moment; if it keeps happening, tell the tool's owner."
            ),
            retry_url=url_for("gates.checkout", rid=rid),
            retry_label=gettext("Try again"),
        ), 502
    return redirect(checkout_session["url"], code=303)


@bp.get("/lti/register/<rid>/payment/return")
def payment_return(rid: str):
    """Check the session with Stripe server-side; the return URL alone proves nothing."""
    load(rid)
    session_id = request.args.get("session_id", "")
    if not any(p.session_id == session_id for p in get_store().payments_for(rid)):
        abort(400, gettext("This payment does not belong to this registration."))
    try:
        checkout_session = payments.retrieve_checkout(stripe_client(), session_id)
    except payments.PaymentError as exc:
        current_app.logger.warning(
            "Stripe could not confirm Checkout Session %s of registration %s: %s",
            session_id,
            rid,
            exc.details(),
        )
        return render_template(
            "gates/window_done.html",
            ok=False,
            message=gettext("Gatehouse could not confirm the payment with Stripe just now."),
            detail=gettext(
                "If you paid, the payment is still recorded when Stripe tells Gatehouse, "
                "and your LMS window moves on by itself."
            ),
        ), 502
    stored = payments.settle(get_store(), checkout_session)
    paid = stored is not None and stored.status == payments.PAID
    if stored is not None and stored.status == payments.MISMATCH:
        message = gettext(
            "Stripe's payment does not match what this registration costs, so it does not "
            "count. Contact the tool's owner, who sees it in the console."
        )
    elif paid:
        message = gettext("Payment received. The registration continues in your LMS window.")
    else:
        message = gettext(
            "Stripe has not confirmed the payment yet; your LMS window moves "
            "on by itself when it does."
        )
    return render_template("gates/window_done.html", ok=paid, message=message)


@bp.get("/lti/register/<rid>/payment/cancelled")
def payment_cancelled(rid: str):
    """Record that Checkout was left without paying, and return to the payment page."""
    load(rid)
    payments.cancel_open(get_store(), rid)
    return render_template(
        "gates/window_done.html",
        ok=False,
        cancelled=True,
        message=gettext("Payment cancelled. You can try again from your LMS window."),
        retry_url=url_for("gates.payment", rid=rid),
    )


@bp.post("/webhooks/stripe")
def stripe_webhook():
    """Mark registrations paid from Stripe's signed events (signature checked first)."""
    secret = os.environ.get("STRIPE_WEBHOOK_SECRET", "").strip()
    if not secret:
        # Anyone can sign with an empty key, so without a secret no event can be trusted.
        # 503 makes Stripe retry, so events arrive once the secret is set.
        current_app.logger.error("Stripe webhook refused: STRIPE_WEBHOOK_SECRET is not set")
        return jsonify(
            error="webhook secret not configured",
            message="Gatehouse cannot verify Stripe events: STRIPE_WEBHOOK_SECRET is not set. "
            "Nothing was changed.",
        ), 503
    try:
        event = payments.verify_webhook(
            request.get_data(), request.headers.get("Stripe-Signature"), secret
        )
    except ValueError as exc:
        current_app.logger.warning("Stripe webhook refused: %s", exc)
        return jsonify(error="invalid signature"), 400
    if event["type"] in payments.SETTLING_EVENTS:
        payments.settle(get_store(), event["data"]["object"], event_type=event["type"])
    return jsonify(received=True)
