"""LMS-facing routes: the one registration URL and the tool's key set."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, request, url_for

from . import crashpoints, events, flow, policy
from .limits import register_limit
from .lti.errors import RegistrationError
from .lti.http import SafeClient
from .lti.registration import check_tool_urls, insecure_tool_urls, resolve_tool
from .pages import allow_framing, base_url, render_close, render_error, settings
from .storage import get_store

bp = Blueprint("lms", __name__)


def safe_client() -> SafeClient:
    """Return the outbound client configured from `[security]` and `[outbound]`."""
    config = settings()
    outbound = config.outbound
    return SafeClient(
        allow_insecure=config.security.allow_insecure_platforms,
        connect_timeout=outbound.connect_timeout,
        deadline=outbound.deadline,
        max_bytes=outbound.max_response_bytes,
    )


def complete(registration, platform, token, *, auto_activate=None, messages=None, name=None):
    """Send the registration to the LMS once, store the platform, and record the event."""
    config = settings()
    outcome = flow.register(
        get_store(),
        safe_client(),
        registration,
        platform,
        resolve_tool(config.tool.as_dict(), base_url()),
        token,
        auto_activate=config.registration.auto_activate if auto_activate is None else auto_activate,
        messages=messages,
        name=name,
    )
    record_completed(registration.id, outcome)
    return outcome


def record_completed(rid: str, outcome: flow.Outcome, **extra) -> None:
    """Record (and notify) `registration.completed` for a stored outcome."""
    events.record(
        "registration.completed",
        "registration",
        rid,
        {
            "platformId": outcome.platform.id,
            "url": outcome.platform.issuer,
            "clientId": outcome.platform.client_id,
            "familyCode": outcome.family_code,
            "created": outcome.created,
            "active": outcome.platform.active,
            **extra,
        },
    )


def fail(registration, error: RegistrationError) -> None:
    """Record a failed attempt and its event (none when it had moved on, or merely expired)."""
    ended = flow.fail(get_store(), registration, error)
    if ended and not isinstance(error, flow.RegistrationExpired):
        events.record("registration.failed", "registration", registration.id, error.as_dict())


@bp.route("/lti/register", methods=["GET", "POST"])
@register_limit
def register():
    """Run a Dynamic Registration for the LMS that opened this URL and close its dialog."""
    allow_framing()
    params = request.values
    registration_token = params.get("registration_token") or None
    config = settings()
    registration_config = config.registration
    store = get_store()
    attempt = None
    try:
        url = flow.check_initiation(params.get("openid_configuration"))
        earlier = flow.earlier_attempt(store, url, registration_token)
        if earlier is not None:
            # A refresh, the back button or a second window: show what became of the first
            # start instead of sending the LMS's token again.
            return redirect(url_for("gates.resume", rid=earlier.id), code=303)
        invitation = policy.check_invitation(
            store, params.get("invite"), registration_config.require_invitation
        )
        attempt = flow.start(store, url, registration_token, registration_config.expires_in)
        # Before anyone passes a gate: http tool URLs would be refused at the very end.
        check_tool_urls(
            insecure_tool_urls(resolve_tool(config.tool.as_dict(), base_url())),
            config.security.allow_insecure_platforms,
        )
        if invitation:
            store.set_registration_invitation(attempt.id, invitation.id)
            attempt = store.get_registration(attempt.id)
        platform = flow.discover(
            store,
            safe_client(),
            attempt,
            url,
            registration_token,
            issuer_check=config.security.issuer_check,
        )
        policy.check_issuer(
            platform.issuer,
            registration_config.allowed_issuers,
            registration_config.blocked_issuers,
        )
        if registration_config.gates or registration_config.pre_approval_url:
            # The LMS's configuration is good: the admin now passes the gates and/or the
            # tool owner's own page.
            flow.hold(store, attempt, platform, registration_token)
            return redirect(url_for("gates.resume", rid=attempt.id), code=303)
        complete(attempt, platform, registration_token)
        crashpoints.reach("before_close")
    except RegistrationError as error:
        fail(attempt, error)
        return render_error(error)
    return render_close(store.get_registration(attempt.id))


@bp.get("/lti/keys")
def jwks():
    """Serve the tool's public keys (current and those in their rotation grace period)."""
    body = current_app.extensions["gatehouse.jwks"].body()
    return Response(
        body,
        mimetype="application/json",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
