"""LMS-facing launch routes: OIDC login initiation, the launch itself, and the hand-off to the tool.

`/lti/login` checks the login, binds its state to this browser and sends the browser on to the
platform's authorization endpoint; `/lti/launch` receives the platform's id_token, checks the
binding and verifies the token. What they decide (which registration, the single-use state and
nonce, the binding digests, the deployment policy, the hand-off token to `[launch] tool_url` or
the page after a verified launch: the verification for staff, a short confirmation for anyone
else) is in app/domain/launch.py.

The binding, in the order the login page (static/launch.js) tries it:
1. a cookie holding a digest of the state (`SameSite=None; Secure; Partitioned`, path
   /lti/launch, ten minutes), which the launch must bring back;
2. where the browser refuses that cookie inside the LMS's frame and the login carried
   `lti_storage_target`, the LMS's platform storage (1EdTech "LTI Client Side postMessages" and
   "postMessage Platform Storage", imsglobal.org/spec/lti-cs-oidc/v0p1 and lti-pm-s/v0p1; as
   Canvas implements them, instructure/canvas-lms doc/api/lti_dev_key_config.md "Launching
   without Cookies" and ui/shared/lti/jquery/subjects/lti.put_data.ts): the login page stores a
   value with `lti.put_data`, and the launch page reads it back with `lti.get_data` and posts it
   to `/lti/launch/verify`;
3. otherwise, a button that opens the login again in a new top-level window, where the cookie
   is first-party.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, make_response, redirect, render_template, request

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
    launch_locale,
    unverified_locale,
    verify_id_token,
    with_query,
)
from ..lti.text import N_
from .context import base_url, events, get_store, safe_client, services, settings
from .dialog import render_error
from .i18n import use_launch_locale
from .limits import launch_limit
from .security import allow_framing
from .skeletons import render_skeleton

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
            hint=N_("Start the tool from a link or an activity in your LMS."),
        )
    return value


@bp.route("/lti/login", methods=["GET", "POST"])
@launch_limit
def login():
    """Third-party initiated login: remember state and nonce, bind them to this browser.

    Answer with the login page, which goes on to the platform's authorization endpoint once the
    binding holds (static/launch.js), and set the binding cookie.
    """
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
                hint=N_(
                    "The LMS's tool configuration is wrong; an administrator should check the "
                    "tool's launch URL."
                ),
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
                hint=N_("An administrator must correct the platform's authentication endpoint."),
            )
    except LaunchError as error:
        return render_launch_error(error)
    storage_target = request.values.get("lti_storage_target", "").strip() or None
    state, nonce = launches.remember_login(store, platform, target_link_uri, storage_target)
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
    key = launches.binding_key(state)
    # The same login again, for a new top-level window: no storage frame there.
    again = {k: v for k, v in request.values.items(multi=False) if k != "lti_storage_target"}
    # The same page for every launch but for these values: rendered once per language.
    page = render_skeleton(
        "launch/login.html",
        {
            "auth_url": with_query(platform.authorization_endpoint, params),
            "login_check": launches.LOGIN_CHECK_PREFIX + key,
            "storage_target": storage_target,
            "platform_origin": _origin(platform.authorization_endpoint),
            "storage_key": launches.STORAGE_KEY_PREFIX + key,
            "storage_value": launches.storage_digest(current_app.secret_key, state),
            "window_url": base_url() + "/lti/login?" + urlencode(again),
        },
    )
    response = make_response(page)
    lifetime = int(launches.STATE_LIFETIME.total_seconds())
    secure = current_app.session_interface.get_cookie_secure(current_app)
    _set_cookie(
        response,
        launches.COOKIE_PREFIX + key,
        launches.cookie_digest(current_app.secret_key, state),
        path="/lti/launch",
        max_age=lifetime,
        secure=secure,
        httponly=True,
    )
    # Readable by the login page's script: did the browser keep a cookie set in this frame?
    _set_cookie(
        response,
        launches.LOGIN_CHECK_PREFIX + key,
        "1",
        path="/lti/login",
        max_age=60,
        secure=secure,
    )
    return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _set_cookie(
    response, name: str, value: str, *, path: str, max_age: int, secure: bool, httponly=False
):
    """Set a launch cookie that survives the LMS's cross-site frame where the browser allows it.

    `SameSite=None; Secure; Partitioned`, relaxed exactly where the session cookie is (`secure`
    is the session interface's answer, app/web/sessions.py: plain-http development on a host
    that is not loopback, with `security.allow_insecure_platforms`). There the cookie has no
    SameSite attribute rather than the session's Lax: the launch is a cross-site POST, which a
    Lax cookie never follows.
    """
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=secure,
        httponly=httponly,
        samesite="None" if secure else None,
        partitioned=secure,
    )


@bp.post("/lti/launch")
@launch_limit
def launch():
    """Check the launch's binding to this browser, then verify the platform's id_token."""
    allow_framing()
    form = request.form
    # The page's language until the token is verified (a refusal speaks the user's language too).
    use_launch_locale(unverified_locale(form.get("id_token")))
    try:
        if form.get("error"):
            raise LaunchError(
                f"The LMS answered the login with the error {form['error']!r}"
                + (f": {form['error_description']}" if form.get("error_description") else "."),
                rule="platform-error",
                hint=N_("Sign in to the LMS in this browser and launch the tool again."),
            )
        state = _required("state")
        id_token = _required("id_token")
        cookie = request.cookies.get(launches.COOKIE_PREFIX + launches.binding_key(state))
        binding = launches.LoginBinding.parse(state)
        if cookie is None and binding is not None and binding.storage_target:
            return _storage_page(state, id_token, binding)
        launches.check_cookie(current_app.secret_key, state, cookie)
    except LaunchError as error:
        return render_launch_error(error)
    return _verify(state, id_token)


def _storage_page(state: str, id_token: str, binding):
    """Answer a launch without its cookie with a page that reads the LMS's platform storage."""
    platform = get_store().get_platform(binding.platform_id)
    if platform is None or not platform.authorization_endpoint:
        raise UnknownPlatform(
            "The registration this launch started with was deleted.", rule="unknown-platform"
        )
    response = make_response(
        render_template(
            "launch/storage.html",
            state=state,
            id_token=id_token,
            storage_target=binding.storage_target,
            platform_origin=_origin(platform.authorization_endpoint),
            storage_key=launches.STORAGE_KEY_PREFIX + launches.binding_key(state),
        )
    )
    # So that the form this page posts says where it comes from (`Origin`; no-referrer sends
    # "null"); /lti/launch/verify accepts the proof from Gatehouse's own pages only.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.post("/lti/launch/verify")
@launch_limit
def verify():
    """Accept the launch page's proof read from the LMS's platform storage, then verify."""
    allow_framing()
    use_launch_locale(unverified_locale(request.form.get("id_token")))
    try:
        state = _required("state")
        id_token = _required("id_token")
        launches.check_same_origin(
            request.headers.get("Sec-Fetch-Site"),
            request.headers.get("Origin"),
            _origin(base_url()),
        )
        launches.check_storage_value(
            current_app.secret_key,
            state,
            request.form.get("lti_storage_value"),
            request.form.get("lti_storage_error"),
        )
    except LaunchError as error:
        return render_launch_error(error)
    return _verify(state, id_token)


def _verify(state: str, id_token: str):
    """Use the (bound) state once, verify the id_token, and hand the launch to the tool."""
    store = get_store()
    try:
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
        use_launch_locale(launch_locale(claims))
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
    page = launches.verified_page(claims, platform)
    if not page["for_staff"]:
        return render_template("launch/connected.html", **page)
    return render_template("launch/verified.html", **page)


def init_app(app) -> None:
    """Keep one cache of platform keys per worker."""
    app.extensions["gatehouse.platform_keys"] = PlatformKeys(
        lambda url: launches.fetch_key_set(safe_client(), url)
    )
