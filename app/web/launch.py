"""LMS-facing launch routes: OIDC login initiation, the launch itself, and the hand-off to the tool.

`/lti/login` checks the login and sends the browser to the platform's authorization endpoint;
`/lti/launch` receives the platform's id_token and verifies it. What they decide (which
registration, the single-use state and nonce, the deployment policy, the hand-off token to
`[launch] tool_url` or the "verified" page) is in app/domain/launch.py.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request

from ..domain import launch as launches
from ..domain.platforms import tell_owner_of_refused_launch
from ..lti.errors import (
    DeploymentNotApproved,
    InactivePlatform,
    InvalidLaunch,
    LaunchError,
    UnknownPlatform,
)
from ..lti.launch import (
    CLAIM_DEPLOYMENT_ID,
    CLAIM_MESSAGE_TYPE,
    CLAIM_TARGET_LINK_URI,
    PlatformKeys,
    verify_id_token,
    with_query,
)
from .context import base_url, events, get_store, safe_client, services, settings
from .dialog import render_error
from .limits import launch_limit
from .security import allow_framing

log = logging.getLogger(__name__)
bp = Blueprint("launch", __name__)


def render_launch_error(error: LaunchError):
    """Render a readable page for a failed launch (inside the LMS's frame)."""
    log.info("launch refused (%s): %s", error.rule, error.detail)
    return render_error(error, template="launch/error.html")


def render_setting_up(error: LaunchError, platform, deployment_id: str | None = None):
    """Tell a teacher or student, calmly, that the tool is being set up; tell the owner.

    The words for the tool's owner (activate it in the console) are in the owner's
    notification, not on this page: whoever launches cannot act on them.
    """
    told = tell_owner_of_refused_launch(
        get_store(), events(), platform, base_url(), deployment_id=deployment_id
    )
    log.info(
        "launch refused (%s): %s; owner %s",
        error.rule,
        error.detail,
        "notified" if told else "already notified within the hour",
    )
    notifier = current_app.extensions.get("gatehouse.notifier")
    return (
        render_template("launch/setting_up.html", rule=error.rule, owner_told=notifier is not None),
        error.status,
    )


def _required(name: str) -> str:
    value = request.values.get(name, "").strip()
    if not value:
        raise LaunchError(
            f"The request has no {name!r} parameter, which an LTI 1.3 launch always carries.",
            rule="missing-parameter",
            hint="Start the tool from a link or an activity in your LMS.",
        )
    return value


@bp.route("/lti/login", methods=["GET", "POST"])
@launch_limit
def login():
    """Third-party initiated login: remember state and nonce, go to the platform's endpoint."""
    allow_framing()
    store = get_store()
    try:
        issuer = _required("iss")
        login_hint = _required("login_hint")
        target_link_uri = _required("target_link_uri")
        if urlsplit(target_link_uri).scheme not in ("https", "http"):
            raise LaunchError(
                f"The target_link_uri {target_link_uri!r} is not an http(s) URL.",
                rule="target-link-uri",
                hint="The LMS's tool configuration is wrong; an administrator should check the "
                "tool's launch URL.",
            )
        platform = launches.find_platform(store, issuer, request.values.get("client_id") or None)
        try:
            launches.check_active(platform)
        except InactivePlatform as error:
            return render_setting_up(error, platform)
        if urlsplit(platform.authorization_endpoint or "").scheme not in ("https", "http"):
            raise LaunchError(
                "The registration's authorization endpoint is not an http(s) URL.",
                rule="platform-authorization-endpoint",
                hint="An administrator must correct the platform's authentication endpoint.",
            )
    except LaunchError as error:
        return render_launch_error(error)
    state, nonce = launches.remember_login(store, platform, target_link_uri)
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": base_url() + "/lti/launch",
        "login_hint": login_hint,
        "state": state,
        "nonce": nonce,
    }
    if request.values.get("lti_message_hint"):
        params["lti_message_hint"] = request.values["lti_message_hint"]
    return redirect(with_query(platform.authorization_endpoint, params), code=302)


@bp.post("/lti/launch")
@launch_limit
def launch():
    """Verify the platform's id_token and hand the launch to the tool."""
    allow_framing()
    store = get_store()
    form = request.form
    try:
        if form.get("error"):
            raise LaunchError(
                f"The LMS answered the login with the error {form['error']!r}"
                + (f": {form['error_description']}" if form.get("error_description") else "."),
                rule="platform-error",
                hint="Sign in to the LMS in this browser and launch the tool again.",
            )
        state = _required("state")
        id_token = _required("id_token")
        launch_state = launches.consume_state(store, state)
        platform = store.get_platform(launch_state.platform_id)
        if platform is None:
            raise UnknownPlatform(
                "The registration this launch started with was deleted.", rule="unknown-platform"
            )
        try:
            launches.check_active(platform)
        except InactivePlatform as error:
            return render_setting_up(error, platform)
        claims = verify_id_token(
            id_token,
            platform,
            current_app.extensions["gatehouse.platform_keys"],
            launch_state.nonce,
        )
        if claims.get(CLAIM_TARGET_LINK_URI, launch_state.target_link_uri) != (
            launch_state.target_link_uri
        ):
            raise InvalidLaunch(
                f"The id_token targets {claims[CLAIM_TARGET_LINK_URI]!r}, but the login asked "
                f"for {launch_state.target_link_uri!r}.",
                rule="target-link-uri-mismatch",
            )
        try:
            launches.check_deployment(
                store,
                events(),
                settings().registration.unknown_deployments,
                platform,
                claims[CLAIM_DEPLOYMENT_ID],
            )
        except DeploymentNotApproved as error:
            return render_setting_up(error, platform, claims[CLAIM_DEPLOYMENT_ID])
    except LaunchError as error:
        return render_launch_error(error)
    store.record_launch(platform.id)
    log.info(
        "launch verified: platform %s, deployment %s, %s",
        platform.id,
        claims[CLAIM_DEPLOYMENT_ID],
        claims[CLAIM_MESSAGE_TYPE],
    )
    tool_url = settings().launch.tool_url
    if tool_url:
        return redirect(launches.handoff_url(services(), tool_url, claims, platform), code=303)
    return render_template("launch/verified.html", **launches.verified_page(claims, platform))


def init_app(app) -> None:
    """Keep one cache of platform keys per worker."""
    app.extensions["gatehouse.platform_keys"] = PlatformKeys(
        lambda url: launches.fetch_key_set(safe_client(), url)
    )
