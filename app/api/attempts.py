"""Registration attempts as the API shows them: every attempt and its true state."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from ..storage import Registration, RegistrationStates, get_store
from . import ApiError, bp
from .platforms import routes

STATES = (
    RegistrationStates.PENDING,
    RegistrationStates.REGISTERING,
    RegistrationStates.COMPLETED,
    RegistrationStates.FAILED,
    RegistrationStates.EXPIRED,
    RegistrationStates.UNKNOWN,
)


API_KEY_ACTOR = "api key "  # how apikeys.identify names a key in the audit log


def completed_by(store, registration_id: str) -> str | None:
    """Return who completed an attempt, as the audit log names them, or None.

    "api key <name>" when the owner's back end called POST /api/registrations/<id>/complete,
    "console <email>" when an owner finished it in the console, "registration flow" when the
    LMS admin's own flow did.
    """
    (entry,) = store.list_audit_matching(
        1, action="registration.completed", subject_id=registration_id) or (None,)
    return entry.actor if entry else None


def api_key_name(actor: str | None) -> str | None:
    """Return the API key's name when `actor` is an API key, else None."""
    if actor and actor.startswith(API_KEY_ACTOR):
        return actor.removeprefix(API_KEY_ACTOR)
    return None


def attempt_json(registration: Registration) -> dict[str, Any]:
    """Return one attempt: state, LMS, outcome, who approved, and the error verbatim."""
    store = get_store()
    account = store.get_account(registration.account_id) if registration.account_id else None
    completer = (completed_by(store, registration.id)
                 if registration.state == RegistrationStates.COMPLETED else None)
    return {
        "id": registration.id,
        "state": registration.state,
        "url": registration.issuer,
        "familyCode": registration.product_family_code,
        "version": registration.platform_version,
        "clientId": registration.client_id,
        "deploymentId": registration.deployment_id,
        "platformId": registration.platform_id,
        "approvedBy": account.email if account else None,
        "approvedByApiKey": api_key_name(completer),
        "invitationId": registration.invitation_id,
        "responseStatus": registration.response_status,
        "error": registration.error,
        "createdAt": registration.created_at,
        "updatedAt": registration.updated_at,
        "expiresAt": registration.expires_at,
    }


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ApiError(400, "INVALID_PARAMETER", f"{name!r} must be a whole number from "
                       f"{low} to {high}.", parameter=name)
    return value


@routes("/registrations", methods=["GET"])
def list_attempts():
    """List registration attempts, newest first (filter `state`; `limit`, `offset`)."""
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise ApiError(400, "INVALID_PARAMETER", f"'state' must be one of {', '.join(STATES)}.",
                       parameter="state")
    limit = _int_arg("limit", 50, 1, 100)
    offset = _int_arg("offset", 0, 0, 10_000_000)
    store = get_store()
    attempts = store.list_registrations(limit=limit, offset=offset, state=state)
    return jsonify(registrations=[attempt_json(r) for r in attempts],
                   total=store.count_registrations(state))


@bp.get("/admin/registrations/<rid>")
def get_attempt(rid: str):
    """Return one registration attempt in any state."""
    registration = get_store().get_registration(rid)
    if registration is None:
        raise ApiError(404, "REGISTRATION_NOT_FOUND", "No registration has this id.")
    return jsonify(attempt_json(registration))
