"""LMS-facing routes: the one registration URL and the tool's key set."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from ..domain import policy
from ..domain import registration as flow
from ..lti.errors import RegistrationError
from ..lti.registration import check_tool_urls, insecure_tool_urls
from ..testing import crashpoints
from .context import base_url, get_store, safe_client, sealer, services, settings
from .dialog import render_close, render_error
from .footer import for_registration
from .limits import register_limit
from .security import allow_framing

bp = Blueprint("lms", __name__)


@bp.route("/lti/register", methods=["GET", "POST"])
@register_limit
def register():
    """Run a Dynamic Registration for the LMS that opened this URL and close its dialog."""
    allow_framing()
    params = request.values
    if request.method == "GET" and not params:
        # Opened by hand (the home page shows this URL) or framed by an LMS set up wrongly:
        # say what this address is for rather than fail on the missing openid_configuration.
        return about_page()
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
        for_registration(attempt.id)
        # Before anyone passes a gate: http tool URLs would be refused at the very end.
        check_tool_urls(
            insecure_tool_urls(flow.tool_profile(config, base_url())),
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
            flow.hold(store, attempt, platform, registration_token, sealer())
            return redirect(url_for("gates.resume", rid=attempt.id), code=303)
        outcome = flow.complete(services(), attempt, platform, registration_token)
        crashpoints.reach("before_close")
    except RegistrationError as error:
        flow.fail(services(), attempt, error)
        current = store.get_registration(attempt.id) if attempt is not None else None
        return render_error(error, family=current.product_family_code if current else None)
    return render_close(store.get_registration(attempt.id), outcome.platform)


def about_page():
    """Explain the registration URL and where an LMS administrator pastes it."""
    # Sec-Fetch-Dest says whether a browser opened this page by itself or in a frame; without
    # the header (older browsers, scripts), the page reads well either way.
    framed = request.headers.get("Sec-Fetch-Dest") in ("iframe", "frame")
    page = render_template(
        "register/about.html",
        tool=settings().tool,
        registration_url=base_url() + url_for("lms.register"),
        framed=framed,
    )
    return page, 200, {"Vary": "Sec-Fetch-Dest"}


@bp.get("/lti/keys")
def jwks():
    """Serve the tool's public keys (current and those in their rotation grace period)."""
    body = current_app.extensions["gatehouse.jwks"].body()
    return Response(
        body,
        mimetype="application/json",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
