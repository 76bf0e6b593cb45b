"""Registration attempts as the API shows them: every attempt and its true state."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from ...domain.gates import approvals_of
from ...storage import Registration, RegistrationState
from ..api_json import ApiError, api_key_name
from ..context import get_store
from .blueprint import bp

STATES = (
    RegistrationState.PENDING,
    RegistrationState.REGISTERING,
    RegistrationState.COMPLETED,
    RegistrationState.FAILED,
    RegistrationState.EXPIRED,
    RegistrationState.UNKNOWN,
)


def attempts_json(registrations: list[Registration]) -> list[dict[str, Any]]:
    """Return attempts: state, LMS, outcome, who approved, and the error verbatim.

    `approvedByApiKey` names the key whose back end called POST /api/registrations/<id>/complete
    (the audit log's "api key <name>"). Every approval of the list is read at once.
    """
    approvals = approvals_of(get_store(), [r.id for r in registrations])
    return [_attempt_json(r, approvals[r.id]) for r in registrations]


def _attempt_json(registration: Registration, approval: dict[str, Any]) -> dict[str, Any]:
    account = approval["account"]
    completer = (
        approval["completed_by"] if registration.state == RegistrationState.COMPLETED else None
    )
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
        raise ApiError(
            400,
            "INVALID_PARAMETER",
            f"{name!r} must be a whole number from {low} to {high}.",
            parameter=name,
        )
    return value


# Attempts live under /admin only: /api/registrations/<id> is the hosted service's pending
# registration (the pre-approval flow), a different resource that 410s once it is finished.
@bp.get("/admin/registrations")
def list_attempts():
    """List registration attempts, newest first (filter `state`; `limit`, `offset`)."""
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise ApiError(
            400,
            "INVALID_PARAMETER",
            f"'state' must be one of {', '.join(STATES)}.",
            parameter="state",
        )
    limit = _int_arg("limit", 50, 1, 100)
    offset = _int_arg("offset", 0, 0, 10_000_000)
    store = get_store()
    attempts, total = store.list_registrations(limit=limit, offset=offset, state=state)
    return jsonify(registrations=attempts_json(attempts), total=total)


@bp.get("/admin/registrations/<rid>")
def get_attempt(rid: str):
    """Return one registration attempt in any state."""
    registration = get_store().get_registration(rid)
    if registration is None:
        raise ApiError(404, "REGISTRATION_NOT_FOUND", "No registration has this id.")
    (attempt,) = attempts_json([registration])
    return jsonify(attempt)
