"""LMS-facing routes: the one registration URL and the tool's key set."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, request, url_for

from . import flow
from .lti.errors import RegistrationError
from .lti.http import SafeClient
from .lti.registration import resolve_tool
from .pages import allow_framing, base_url, render_close, render_error, settings
from .storage import get_store

bp = Blueprint("lms", __name__)


def safe_client() -> SafeClient:
    """Return the outbound client configured from `[security]` and `[outbound]`."""
    config = settings()
    outbound = config["outbound"]
    return SafeClient(
        allow_insecure=config["security"]["allow_insecure_platforms"],
        connect_timeout=outbound["connect_timeout"],
        deadline=outbound["deadline"],
        max_bytes=outbound["max_response_bytes"],
    )


@bp.route("/lti/register", methods=["GET", "POST"])
def register():
    """Run a Dynamic Registration for the LMS that opened this URL and close its dialog."""
    allow_framing()
    params = request.values
    registration_token = params.get("registration_token") or None
    config = settings()
    store = get_store()
    client = safe_client()
    attempt = None
    try:
        url = flow.check_initiation(params.get("openid_configuration"))
        attempt = flow.start(store, url, config["registration"]["expires_in"])
        platform = flow.discover(
            store, client, attempt, url, registration_token,
            issuer_check=config["security"]["issuer_check"],
        )
        if config["registration"]["gates"]:
            # The LMS's configuration is good: now the admin passes the gates.
            flow.hold(store, attempt, platform, registration_token)
            return redirect(url_for("gates.resume", rid=attempt.id), code=303)
        flow.register(
            store,
            client,
            attempt,
            platform,
            resolve_tool(config["tool"], base_url()),
            registration_token,
            auto_activate=config["registration"]["auto_activate"],
        )
    except RegistrationError as error:
        flow.fail(store, attempt, error)
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
