"""The owner console under /console: registrations, platforms, audit log, keys and invitations.

Server-rendered pages for accounts with `is_owner`; every change goes through the event log
so the audit log says which owner made it.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from ..domain import apikeys
from ..domain import registration as flow
from ..domain.accounts import SigninLocked, authenticate, locked_message
from ..domain.gates import approvals_of
from ..domain.platforms import set_active
from ..lti import nesting
from ..lti.lms import FAMILIES, family_name, for_family
from ..storage import FINAL_STATES, OPEN_STATES, RegistrationState, now_iso
from ..storage.states import transition_rows
from .api_json import (
    AUTH_METHODS,
    MAX_USES,
    ApiError,
    api_key_name,
    invitation_json,
    platform_values,
)
from .charts import stacked_bars
from .context import base_url, events, get_store, services, settings
from .limits import signin_limit
from .login import PASSWORDS, User
from .sentences import audit_sentence

bp = Blueprint("console", __name__, url_prefix="/console")

PER_PAGE = 25
# What the home page lists of each thing needing attention before linking to the rest.
ATTENTION_ROWS = 10
CHART_DAYS = (30, 90)
# Every state an attempt can be in, in the order it moves through them.
STATES = (*OPEN_STATES, RegistrationState.REGISTERING, *FINAL_STATES)
PUBLIC_ENDPOINTS = ("console.login", "console.logout")
# The same words whether the e-mail, the password or the owner flag was wrong.
SIGNIN_REFUSED = (
    "The e-mail address or password is not right, or this account may not use the console."
)


# Forms


class LoginForm(FlaskForm):
    """An owner's e-mail address and password."""

    email = EmailField("E-mail address", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired()])


class PlatformForm(FlaskForm):
    """The fields of a platform an owner may change; the API's rules validate them."""

    name = StringField(
        "Name", validators=[DataRequired(message="Give the platform a name."), Length(max=200)]
    )
    authorization_endpoint = StringField(
        "Authentication (OIDC authorization) endpoint", validators=[DataRequired()]
    )
    token_endpoint = StringField("Access token endpoint", validators=[DataRequired()])
    authorization_server = StringField(
        "Authorization server (audience of token requests)", validators=[Optional()]
    )
    # Plain values, not (value, label) pairs: the wording is in the field's hint.
    auth_method = SelectField("How the platform's key is found", choices=list(AUTH_METHODS))
    auth_key = TextAreaField("Key", validators=[DataRequired(message="Give the key or its URL.")])


class DeploymentForm(FlaskForm):
    """A deployment id to add to a platform."""

    deployment_id = StringField(
        "Deployment id",
        validators=[
            DataRequired(message="Type the deployment id the LMS sends in launches."),
            Length(max=255),
        ],
    )


class ApiKeyForm(FlaskForm):
    """The name of a new API key."""

    name = StringField(
        "What the key is for",
        validators=[
            DataRequired(message="Name the key, e.g. the back end that will use it."),
            Length(max=200),
        ],
    )


class InvitationForm(FlaskForm):
    """A new per-customer registration link."""

    name = StringField(
        "Customer",
        validators=[
            DataRequired(message="Name the customer the link is for."),
            Length(max=200),
        ],
    )
    uses = IntegerField(
        "Registrations allowed",
        validators=[
            Optional(),
            NumberRange(
                min=1,
                max=MAX_USES,
                message=f"Allow from 1 to {MAX_USES:,} registrations, or leave empty.",
            ),
        ],
    )
    expires_at = DateTimeLocalField(
        "Expires at (UTC)", validators=[Optional()], format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
    )


class ResolveForm(FlaskForm):
    """The client ID (and deployment ID) an LMS granted to an attempt of unknown outcome."""

    client_id = StringField(
        "The LMS granted client ID",
        validators=[
            DataRequired(message="Type the client ID the LMS shows for this tool."),
            Length(max=255),
        ],
    )
    deployment_id = StringField(
        "Deployment ID (optional)", validators=[Optional(), Length(max=255)]
    )
    activate = BooleanField("Accept launches from it now")


# Access: owners only, nothing cached


@bp.before_request
def _require_owner():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return redirect(url_for("console.login", next=_here()))
    if not current_user.account.is_owner:
        return render_template("console/forbidden.html"), 403
    g.actor = f"console {current_user.account.email}"
    return None


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _here() -> str:
    """Return the current path and query, relative to this site."""
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")


def safe_next(target: str | None) -> str | None:
    """Return `target` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(c) < 32 for c in target) or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def text_arg(name: str) -> str | None:
    """Return a query-string filter, stripped (None when empty); 400 when no row could hold it."""
    value = request.args.get(name, "").strip()
    if len(value) > 500:  # NUL and lone surrogates never get here (security._refuse_unstorable)
        abort(400)
    return value or None


def _page_number() -> int:
    return max(1, request.args.get("page", 1, type=int))


def paginate(total: int) -> dict:
    """Return the current page, the page count and the row offset for `total` rows."""
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(_page_number(), pages)
    return {"page": page, "pages": pages, "total": total, "offset": (page - 1) * PER_PAGE}


def paged(fetch) -> tuple[list, dict]:
    """Return the rows of the asked page of `fetch(limit, offset) -> (rows, total)`, and its pager.

    A page past the end shows the last one.
    """
    rows, total = fetch(PER_PAGE, (_page_number() - 1) * PER_PAGE)
    pager = paginate(total)
    if pager["page"] != _page_number():
        rows, _total = fetch(PER_PAGE, pager["offset"])
    return rows, pager


@bp.app_template_filter("console_time")
def console_time(stamp: str | None) -> str:
    """Format a stored UTC timestamp for tables: 2026-05-01 14:03 UTC."""
    if not stamp:
        return "—"
    return f"{stamp[:10]} {stamp[11:16]} UTC"


@bp.app_template_filter("pretty_json")
def pretty_json(value) -> str:
    """Format a stored JSON value for a <pre> block (Jinja escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


@bp.app_template_filter("compact_json")
def compact_json(value) -> str:
    """Format a stored JSON value on one line (Jinja escapes it)."""
    return json.dumps(value, ensure_ascii=False)


@bp.context_processor
def _helpers():
    return {
        "family_name": family_name,
        "invitation_state": invitation_state,
        "audit_sentence": audit_sentence,
    }


def invitation_state(invitation) -> str:
    """Say whether an invitation link still works, and if not, why."""
    if invitation.revoked_at:
        return "revoked"
    if invitation.expires_at and invitation.expires_at <= now_iso():
        return "expired"
    if invitation.uses_allowed is not None and invitation.uses >= invitation.uses_allowed:
        return "used up"
    return "usable"


# Sign-in


@bp.route("/login", methods=["GET", "POST"])
@signin_limit
def login():
    """Sign in with an owner account."""
    target = safe_next(request.args.get("next")) or url_for("console.home")
    if current_user.is_authenticated and current_user.account.is_owner:
        return redirect(target)
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            account = authenticate(
                get_store(), PASSWORDS, form.email.data, form.password.data, request.remote_addr
            )
        except SigninLocked as locked:
            page = render_template("console/login.html", form=form, error=locked_message(locked))
            return page, 429, {"Retry-After": str(locked.retry_after)}
        if account and account.is_owner:
            # A fresh session: nothing planted before sign-in (a CSRF token, say) survives it.
            session.clear()
            login_user(User(account), remember=False)
            get_store().touch_login(account.id)
            g.actor = f"console {account.email}"
            events().record("console.signed_in", "account", account.id, {"email": account.email})
            return redirect(target)
        current_app.logger.info("console sign-in refused for %s", form.email.data)
        error = SIGNIN_REFUSED
    return render_template("console/login.html", form=form, error=error)


@bp.post("/logout")
def logout():
    """Sign out, ending every session of the account (a copied cookie too)."""
    if current_user.is_authenticated:
        get_store().end_sessions(current_user.account.id)
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("console.login"))


@bp.get("/")
def home():
    """Show what needs the owner's attention, the counts, and registrations and launches per day."""
    store = get_store()
    store.expire_registrations()
    days = request.args.get("days", CHART_DAYS[0], type=int)
    days = days if days in CHART_DAYS else CHART_DAYS[0]
    today = datetime.now(UTC).date()
    since = (today - timedelta(days=days - 1)).isoformat()
    inactive, inactive_total = store.list_platforms(active=False, limit=100)
    # Inactive because an owner turned them off is a choice, not something awaiting attention.
    switched_off = store.latest_actors("platform.deactivated", [p.id for p in inactive])
    awaiting = [p for p in inactive if p.id not in switched_off]
    unknown, unknown_total = store.list_registrations(ATTENTION_ROWS, 0, RegistrationState.UNKNOWN)
    failed, failed_total = store.list_registrations(5, 0, RegistrationState.FAILED)
    platforms_total = store.list_platforms(limit=1)[1]
    launches = store.launches_per_day(since)
    return render_template(
        "console/home.html",
        awaiting=awaiting[:ATTENTION_ROWS],
        awaiting_total=len(awaiting),
        deployments=store.pending_deployments(ATTENTION_ROWS),
        unknown=unknown,
        unknown_total=unknown_total,
        failed=failed,
        failed_total=failed_total,
        counts=store.registration_counts(),
        states=STATES,
        platforms_total=platforms_total,
        platforms_active=platforms_total - inactive_total,
        days=days,
        chart_days=CHART_DAYS,
        charts=[
            stacked_bars(
                "Completed registrations per day", store.registrations_per_day(since), today, days
            ),
            stacked_bars("Verified launches per day", launches, today, days),
        ],
        institutions=store.registrations_by_institution(),
    )


# Registrations


def _approvals(store, reg_ids: list[str]) -> dict[str, dict]:
    """Return each attempt's approval, with the latest payment when none is paid yet.

    Also who completed the attempt when it was not the admin's own flow: `api_key` (the name
    of the key whose back end called the complete endpoint) or `owner` (the console e-mail).
    The store answers for the whole page at once, so a longer page costs no more queries.
    """
    approvals = {}
    for rid, found in approvals_of(store, reg_ids).items():
        actor = found["completed_by"]
        approvals[rid] = {
            "account": found["account"],
            "terms": found["terms"],
            # The latest payment's status helps when none is paid yet.
            "payment": found["payment"] or found["latest_payment"],
            "api_key": api_key_name(actor),
            "owner": actor.removeprefix("console ")
            if actor and actor.startswith("console ")
            else None,
        }
    return approvals


def _approval(store, registration_id: str) -> dict:
    """Return one attempt's approval as _approvals() does."""
    return _approvals(store, [registration_id])[registration_id]


@bp.get("/registrations")
def registrations():
    """List every registration attempt, newest first, filtered by state."""
    store = get_store()
    # Attempts past their time still read "pending" until something expires them.
    store.expire_registrations()
    reference = text_arg("ref")
    if reference:
        return _registrations_with_reference(store, reference)
    state = request.args.get("state")
    state = state if state in STATES else None
    attempts, pager = paged(lambda limit, offset: store.list_registrations(limit, offset, state))
    approvals = _approvals(store, [r.id for r in attempts])
    rows = [(r, approvals[r.id]) for r in attempts]
    return render_template(
        "console/registrations.html",
        rows=rows,
        state=state,
        states=STATES,
        pager=pager,
        transitions=transition_rows(),
    )


def _registrations_with_reference(store, reference: str):
    """Open the attempt a page footer's reference names, or list the few it could name."""
    found = store.registrations_with_reference(reference)
    if len(found) == 1:
        return redirect(url_for("console.registration", rid=found[0].id))
    approvals = _approvals(store, [r.id for r in found])
    return render_template(
        "console/registrations.html",
        rows=[(r, approvals[r.id]) for r in found],
        reference=reference,
        state=None,
        states=STATES,
        pager=None,
        transitions=transition_rows(),
    ), (200 if found else 404)


@bp.get("/registrations/<rid>")
def registration(rid: str):
    """Show one attempt: what was sent, what the LMS answered, and any error verbatim."""
    attempt = get_store().get_registration(rid) or abort(404)
    form = ResolveForm(activate=settings().registration.auto_activate)
    return _registration_page(attempt, form)


def _registration_page(attempt, form: ResolveForm, status: int = 200):
    store = get_store()
    platform = store.get_platform(attempt.platform_id) if attempt.platform_id else None
    invitation = store.get_invitation(attempt.invitation_id) if attempt.invitation_id else None
    return render_template(
        "console/registration.html",
        r=attempt,
        approval=_approval(store, attempt.id),
        platform=platform,
        invitation=invitation,
        audit=store.list_audit(limit=PER_PAGE, subject_id=attempt.id)[0],
        resolvable=_resolvable(attempt),
        form=form,
        where=for_family(attempt.product_family_code).where_to_paste,
    ), status


def _resolvable(attempt) -> bool:
    """Return True when an owner can finish the attempt by typing the client ID it got."""
    return attempt.state == RegistrationState.UNKNOWN and bool(attempt.platform_config)


@bp.post("/registrations/<rid>/resolve")
def resolve_unknown(rid: str):
    """Create the platform of an attempt of unknown outcome from the client ID the LMS shows."""
    store = get_store()
    attempt = store.get_registration(rid) or abort(404)
    form = ResolveForm()
    if not _resolvable(attempt):
        flash("This registration's outcome is no longer unknown: nothing was changed.")
        return redirect(url_for("console.registration", rid=rid))
    if not form.validate_on_submit():
        return _registration_page(attempt, form, 400)
    client_id = form.client_id.data.strip()
    deployment_id = (form.deployment_id.data or "").strip() or None
    outcome = flow.resolve(services(), attempt, client_id, deployment_id, form.activate.data)
    if outcome is None:
        flash("Someone else has just finished this registration: nothing was changed.")
        return redirect(url_for("console.registration", rid=rid))
    platform, created = outcome.platform, outcome.created
    flash(
        f"The platform for client ID {client_id} is {'created' if created else 'updated'} "
        "and the registration is completed."
        + (
            " Launches from it are accepted."
            if platform.active
            else " Activate it when you want launches from it accepted."
        )
    )
    return redirect(url_for("console.platform", platform_id=platform.id))


# Platforms


def _platform_or_404(platform_id: str):
    return get_store().get_platform(platform_id) or abort(404)


@bp.get("/platforms")
def platforms():
    """List platforms, searched by name, issuer or client id."""
    store = get_store()
    q = text_arg("q")
    found, pager = paged(
        lambda limit, offset: store.list_platforms(search=q, limit=limit, offset=offset)
    )
    rows = [(p, len(store.list_deployments(p.id))) for p in found]
    return render_template("console/platforms.html", rows=rows, q=q or "", pager=pager)


@bp.get("/platforms/<platform_id>")
def platform(platform_id: str):
    """Show a platform, its approval and its deployments."""
    return _platform_page(_platform_or_404(platform_id), DeploymentForm())


def _platform_page(found, form: DeploymentForm, status: int = 200):
    store = get_store()
    return render_template(
        "console/platform.html",
        p=found,
        approval=_approval(store, found.registration_id) if found.registration_id else None,
        deployments=store.list_deployments(found.id),
        invitation=store.get_invitation(found.invitation_id) if found.invitation_id else None,
        form=form,
        audit=store.list_audit(limit=10, subject_id=found.id)[0],
    ), status


@bp.post("/platforms/<platform_id>/activate")
def activate(platform_id: str):
    """Allow launches from a platform."""
    set_active(get_store(), events(), _platform_or_404(platform_id), True)
    flash("The platform is active: launches from it are accepted.")
    return redirect(url_for("console.platform", platform_id=platform_id))


@bp.post("/platforms/<platform_id>/deactivate")
def deactivate(platform_id: str):
    """Refuse launches from a platform."""
    set_active(get_store(), events(), _platform_or_404(platform_id), False)
    flash("The platform is inactive: launches from it are refused.")
    return redirect(url_for("console.platform", platform_id=platform_id))


# Form fields and the API parameters platform_values() names in its errors.
PLATFORM_PARAMETERS = {
    "name": "name",
    "authenticationEndpoint": "authorization_endpoint",
    "accesstokenEndpoint": "token_endpoint",
    "authorizationServer": "authorization_server",
    "authConfig.method": "auth_method",
    "authConfig.key": "auth_key",
}


def _platform_body(form: PlatformForm) -> dict | None:
    """Return the API body for the edit form, or None after putting an error on a field."""
    key: str | dict = form.auth_key.data.strip()
    method = form.auth_method.data
    if method == "JWK_KEY":
        try:
            key = nesting.loads(key)
        except ValueError:  # nesting.TooDeep included
            key = None
        if not isinstance(key, dict):
            form.auth_key.errors.append("Paste the key as a JSON Web Key: one JSON object.")
            return None
    elif method == "RSA_KEY" and not key.startswith("-----BEGIN "):
        form.auth_key.errors.append("Paste the public key in PEM form (-----BEGIN PUBLIC KEY…).")
        return None
    return {
        "name": form.name.data.strip(),
        "authenticationEndpoint": form.authorization_endpoint.data.strip(),
        "accesstokenEndpoint": form.token_endpoint.data.strip(),
        "authorizationServer": (form.authorization_server.data or "").strip(),
        "authConfig": {"method": method, "key": key},
    }


@bp.route("/platforms/<platform_id>/edit", methods=["GET", "POST"])
def edit_platform(platform_id: str):
    """Change a platform's name, endpoints and key."""
    found = _platform_or_404(platform_id)
    form = PlatformForm(data=_platform_form_data(found))
    if form.validate_on_submit():
        body = _platform_body(form)
        if body is not None:
            try:
                values = platform_values(body, required=False)
                if not values.get("authorization_server"):
                    values["authorization_server"] = None  # fall back to the token endpoint
                get_store().update_platform(platform_id, values)
            except ApiError as exc:
                name = PLATFORM_PARAMETERS.get(exc.details.get("parameter"), "name")
                message = exc.description
                if "absolute URL" in message:
                    message = "Enter an absolute URL, e.g. https://lms.example.edu/…"
                form[name].errors.append(message)
            else:
                events().record(
                    "platform.updated", "platform", platform_id, {"fields": sorted(values)}
                )
                flash("The platform is saved.")
                return redirect(url_for("console.platform", platform_id=platform_id))
    return render_template("console/platform_edit.html", p=found, form=form)


def _platform_form_data(platform) -> dict:
    key = platform.jwks_uri if platform.auth_method == "JWK_SET" else platform.auth_key
    if platform.auth_method == "JWK_KEY" and key:
        try:
            key = json.dumps(json.loads(key), indent=2)
        except ValueError:
            pass  # shown as stored, so the owner can fix it
    return {
        "name": platform.name,
        "authorization_endpoint": platform.authorization_endpoint,
        "token_endpoint": platform.token_endpoint,
        "authorization_server": platform.authorization_server or "",
        "auth_method": platform.auth_method if platform.auth_method in AUTH_METHODS else "JWK_SET",
        "auth_key": key or "",
    }


@bp.route("/platforms/<platform_id>/delete", methods=["GET", "POST"])
def delete_platform(platform_id: str):
    """Confirm, then delete a platform and its deployments."""
    found = _platform_or_404(platform_id)
    store = get_store()
    if request.method == "POST":
        store.delete_platform(platform_id)
        events().record(
            "platform.deleted",
            "platform",
            platform_id,
            {"url": found.issuer, "clientId": found.client_id},
        )
        flash(f"The platform {found.name} is deleted.")
        return redirect(url_for("console.platforms"))
    return render_template(
        "console/platform_delete.html", p=found, deployments=store.list_deployments(platform_id)
    )


@bp.post("/platforms/<platform_id>/deployments")
def add_deployment(platform_id: str):
    """Add a deployment id to a platform."""
    found = _platform_or_404(platform_id)
    form = DeploymentForm()
    if not form.validate_on_submit():
        return _platform_page(found, form, 400)
    deployment_id = form.deployment_id.data.strip()
    deployment, created = get_store().add_deployment(
        platform_id, deployment_id, True, source="console"
    )
    if created:
        events().record(
            "deployment.added",
            "platform",
            platform_id,
            {"deploymentId": deployment_id, "active": deployment.active},
        )
        flash(f"Deployment {deployment_id} is added and active.")
    else:
        flash(f"The platform already has deployment {deployment_id}.")
    return redirect(url_for("console.platform", platform_id=platform_id))


@bp.post("/platforms/<platform_id>/deployments/<action>")
def change_deployment(platform_id: str, action: str):
    """Activate, deactivate or remove a deployment (its id is in the form: ids may hold '/')."""
    _platform_or_404(platform_id)
    store = get_store()
    deployment_id = request.form.get("deployment_id", "")
    if store.get_deployment(platform_id, deployment_id) is None:
        abort(404)
    if action == "remove":
        store.delete_deployment(platform_id, deployment_id)
        events().record(
            "deployment.deleted", "platform", platform_id, {"deploymentId": deployment_id}
        )
        flash(f"Deployment {deployment_id} is removed.")
    elif action in ("activate", "deactivate"):
        active = action == "activate"
        store.set_deployment_active(platform_id, deployment_id, active)
        events().record(
            "deployment.updated",
            "platform",
            platform_id,
            {"deploymentId": deployment_id, "active": active},
        )
        flash(f"Deployment {deployment_id} is {'active' if active else 'inactive'}.")
    else:
        abort(404)
    return redirect(url_for("console.platform", platform_id=platform_id))


# Audit log


@bp.get("/audit")
def audit():
    """List the audit log, newest first, filtered by action, by who acted and by record."""
    store = get_store()
    # The names in the query string: ?action=platform.activated&actor=…&subject=<id>
    chosen = {name: text_arg(name) for name in ("action", "actor", "subject")}
    wanted = {"action": chosen["action"], "actor": chosen["actor"], "subject_id": chosen["subject"]}
    entries, pager = paged(lambda limit, offset: store.list_audit(limit, offset, **wanted))
    return render_template(
        "console/audit.html",
        entries=entries,
        pager=pager,
        choices=store.audit_choices(),
        chosen=chosen,
        filters={name: value for name, value in chosen.items() if value},
    )


# API keys


@bp.route("/api-keys", methods=["GET", "POST"])
def api_keys():
    """List API keys and create one (its full value is shown once)."""
    store = get_store()
    form = ApiKeyForm()
    if form.validate_on_submit():
        name = form.name.data.strip()
        record, full = apikeys.create(store, name)
        events().record("api_key.created", "api_key", record.id, {"name": name})
        return render_template("console/api_key_created.html", key=record, full=full)
    status = 400 if form.errors else 200
    keys, pager = paged(store.list_api_keys)
    return render_template(
        "console/api_keys.html",
        keys=keys,
        pager=pager,
        form=form,
    ), status


@bp.route("/api-keys/<key_id>/revoke", methods=["GET", "POST"])
def revoke_api_key(key_id: str):
    """Confirm, then revoke an API key."""
    store = get_store()
    key = store.get_api_key(key_id)
    if key is None or key.revoked_at:
        abort(404)
    if request.method == "POST":
        store.revoke_api_key(key_id)
        events().record("api_key.revoked", "api_key", key_id, {"name": key.name})
        flash(f"The API key {key.name} is revoked; requests with it are refused.")
        return redirect(url_for("console.api_keys"))
    return render_template("console/api_key_revoke.html", key=key)


# Invitations


@bp.route("/invitations", methods=["GET", "POST"])
def invitations():
    """List invitation links and create one."""
    store = get_store()
    form = InvitationForm()
    if form.validate_on_submit():
        expires = form.expires_at.data
        expires_at = now_iso(expires.replace(tzinfo=UTC)) if expires else None
        if expires_at and expires_at <= now_iso():
            form.expires_at.errors.append("Choose a time in the future, or leave it empty.")
        else:
            name = form.name.data.strip()
            invitation = store.create_invitation(name, form.uses.data, expires_at)
            events().record("invitation.created", "invitation", invitation.id, {"name": name})
            flash(f"The invitation for {name} is ready: give them its link below.")
            return redirect(url_for("console.invitations", _anchor=f"inv-{invitation.id}"))
    status = 400 if form.errors else 200
    invitations, pager = paged(store.list_invitations)
    rows = [invitation_json(i) | {"state": invitation_state(i)} for i in invitations]
    return render_template(
        "console/invitations.html",
        rows=rows,
        form=form,
        pager=pager,
        required=settings().registration.require_invitation,
    ), status


@bp.route("/invitations/<invitation_id>/revoke", methods=["GET", "POST"])
def revoke_invitation(invitation_id: str):
    """Confirm, then revoke an invitation link."""
    store = get_store()
    invitation = store.get_invitation(invitation_id)
    if invitation is None or invitation.revoked_at:
        abort(404)
    if request.method == "POST":
        store.revoke_invitation(invitation_id)
        events().record(
            "invitation.revoked", "invitation", invitation_id, {"name": invitation.name}
        )
        flash(f"The invitation for {invitation.name} is revoked; its link no longer works.")
        return redirect(url_for("console.invitations"))
    return render_template(
        "console/invitation_revoke.html",
        invitation=invitation,
        url=invitation_json(invitation)["url"],
    )


# How to register


@bp.get("/how-to-register")
def how_to_register():
    """Show the registration URL and what to tell each LMS's administrator."""
    config = settings().registration
    return render_template(
        "console/how_to_register.html",
        registration_url=base_url() + "/lti/register",
        families=FAMILIES,
        require_invitation=config.require_invitation,
        auto_activate=config.auto_activate,
    )
