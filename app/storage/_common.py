"""What both stores share: migration names, row → dataclass conversion, filter building."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..lti.constants import is_service_scope
from . import (
    Account,
    AuditEntry,
    Deployment,
    LaunchState,
    LaunchStateStatus,
    Payment,
    Platform,
    Registration,
    TermsAcceptance,
    now_iso,
)
from .states import payment_sources, placeholders, sources, target

# Both backends apply the same numbered migrations, recorded under these names.
MIGRATION_NAMES = (
    "0001_initial",
    "0002_gates",
    "0003_api_console",
    "0004_signin_throttle",
    "0005_launch",
    "0006_token_once_audit_filters",
    "0007_learned_scopes",
)


def filters(*pairs: tuple[str, Any]) -> tuple[list[str], list[Any]]:
    """Return SQL conditions (constant strings only) and parameters for the set filters."""
    where = [sql for sql, value in pairs if value is not None]
    return where, [value for _sql, value in pairs if value is not None]


def where_clause(conditions: list[str]) -> str:
    """Join constant conditions into a WHERE clause; values always travel as parameters."""
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def conflict_message(values: dict[str, Any]) -> str:
    """Return the message of a Conflict on (issuer, client_id)."""
    return (
        f"a platform with url {values.get('issuer')!r} and clientId "
        f"{values.get('client_id')!r} already exists"
    )


def to_account(data: dict[str, Any]) -> Account:
    """Build an Account from a row."""
    return Account(**{**data, "is_owner": bool(data["is_owner"])})


def to_platform(data: dict[str, Any]) -> Platform:
    """Build a Platform from a row (scope lists are JSON, active an integer)."""
    data = dict(data)
    data["scopes"] = tuple(json.loads(data["scopes"] or "[]"))
    for key in ("usable_scopes", "refused_scopes"):
        data[key] = None if data.get(key) is None else tuple(json.loads(data[key]))
    data["active"] = bool(data["active"])
    return Platform(**data)


def only_service_scopes(scopes_json: str | None) -> str | None:
    """Return a stored scope list without `openid` and other non-service scopes (migration 0007).

    None when there is nothing to change (or the value is not a JSON list).
    """
    try:
        scopes = json.loads(scopes_json or "[]")
    except ValueError:
        return None
    if not isinstance(scopes, list):
        return None
    kept = [s for s in scopes if isinstance(s, str) and is_service_scope(s)]
    return json.dumps(kept) if kept != scopes else None


def learned_values(
    row: dict[str, Any], platform: Platform, granted: Iterable[str], refused: Iterable[str]
) -> dict[str, str] | None:
    """Merge a token endpoint's grants and refusals into the learned columns of `row`.

    `row` is the platform as stored now (read under a lock), `platform` the one the request
    was made for. When a re-registration changed its claims or registration since, what the
    old grants taught is stale: None, nothing to write. Otherwise the newest fact about a scope
    wins and every other scope keeps what was learned before, so two workers learning at once
    both keep their knowledge.
    """
    current = to_platform(row)
    if (current.registration_id, current.scopes) != (platform.registration_id, platform.scopes):
        return None
    granted, refused = set(granted), set(refused)
    usable = (set(current.usable_scopes or ()) - refused) | granted
    refusals = (set(current.refused_scopes or ()) - granted) | refused
    return {
        "usable_scopes": json.dumps(sorted(usable)),
        "refused_scopes": json.dumps(sorted(refusals)),
    }


def approvals(
    query: Callable[[str, list[Any]], Iterable[dict[str, Any]]],
    mark: str,
    reg_ids: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """Return the approval of each attempt in four queries, however many attempts there are.

    `query(sql, params)` runs one statement and `mark` is the backend's placeholder. Each
    attempt gets `account` (who passed the gates), `terms` (the latest acceptance), `payment`
    (the latest paid one), `latest_payment` (the latest in any status) and `completed_by` (the
    actor of its latest registration.completed audit line).
    """
    ids = list(dict.fromkeys(reg_ids))
    result: dict[str, dict[str, Any]] = {
        rid: {
            "account": None,
            "terms": None,
            "payment": None,
            "latest_payment": None,
            "completed_by": None,
        }
        for rid in ids
    }
    if not ids:
        return result
    marks = ", ".join([mark] * len(ids))  # one placeholder per id: values stay parameters
    for row in query(
        "SELECT r.id AS registration_id, a.* FROM registrations AS r "  # noqa: S608
        f"JOIN accounts AS a ON a.id = r.account_id WHERE r.id IN ({marks})",
        ids,
    ):
        row = dict(row)
        rid = row.pop("registration_id")
        result[rid]["account"] = to_account(row)
    for row in query(
        f"SELECT * FROM terms_acceptances WHERE registration_id IN ({marks}) "  # noqa: S608
        "ORDER BY id DESC",
        ids,
    ):
        entry = result[row["registration_id"]]
        entry["terms"] = entry["terms"] or TermsAcceptance(**row)
    for row in query(
        f"SELECT * FROM payments WHERE registration_id IN ({marks}) "  # noqa: S608
        "ORDER BY created_at DESC",
        ids,
    ):
        entry, payment = result[row["registration_id"]], Payment(**row)
        entry["latest_payment"] = entry["latest_payment"] or payment
        if payment.status == "paid":
            entry["payment"] = entry["payment"] or payment
    for row in query(
        f"SELECT subject_id, actor FROM audit_log WHERE action = {mark} "  # noqa: S608
        f"AND subject_id IN ({marks}) ORDER BY id DESC",
        ["registration.completed", *ids],
    ):
        entry = result[row["subject_id"]]
        entry["completed_by"] = entry["completed_by"] or row["actor"]
    return result


def to_deployment(data: dict[str, Any]) -> Deployment:
    """Build a Deployment from a row."""
    return Deployment(**{**data, "active": bool(data["active"])})


def to_registration(data: dict[str, Any]) -> Registration:
    """Build a Registration from a row, leaving out the held secret and token hashes."""
    data = dict(data)
    data.pop("pending_secret", None)
    data.pop("done_token_hash", None)
    data.pop("token_digest", None)
    if data.get("platform_created") is not None:
        data["platform_created"] = bool(data["platform_created"])
    for key in ("platform_config", "request", "error"):
        data[key] = json.loads(data[key]) if data[key] else None
    # Notable adjustments are stored as {"text", "notable"} objects among the plain strings.
    stored = json.loads(data["adjustments"] or "[]")
    data["adjustments"] = tuple(a["text"] if isinstance(a, dict) else a for a in stored)
    data["notable_adjustments"] = tuple(
        a["text"] for a in stored if isinstance(a, dict) and a.get("notable")
    )
    return Registration(**data)


def launch_state_status(row: dict[str, Any] | None) -> str:
    """Return whether a launch state row may be used now (before it is marked used)."""
    if row is None:
        return LaunchStateStatus.UNKNOWN
    if row["used_at"]:
        return LaunchStateStatus.USED
    if row["expires_at"] <= now_iso():
        return LaunchStateStatus.EXPIRED
    return LaunchStateStatus.OK


def to_launch_state(row: dict[str, Any] | None) -> LaunchState | None:
    """Build a LaunchState from a row."""
    return LaunchState(**row) if row else None


def to_audit_entry(data: dict[str, Any]) -> AuditEntry:
    """Build an AuditEntry from a row (detail is JSON text)."""
    return AuditEntry(**{**data, "detail": json.loads(data["detail"]) if data["detail"] else None})


def platform_values(
    platform: dict[str, Any], reg_id: str, invitation_id: str | None
) -> dict[str, Any]:
    """Return the platform columns a completed registration writes."""
    values = {**platform, "scopes": json.dumps(list(platform["scopes"])), "registration_id": reg_id}
    # A new registration may grant differently: what the token endpoint taught is forgotten.
    values.update(usable_scopes=None, refused_scopes=None)
    if invitation_id:
        values["invitation_id"] = invitation_id
    return values


def new_platform_values(values: dict[str, Any]) -> dict[str, Any]:
    """Return the columns of a platform registered by hand, with defaults filled in."""
    return {
        "scopes": "[]",
        "product_family_code": "",
        "version": "",
        **{k: v for k, v in values.items() if k != "scopes"},
    }


def payment_changes(status: str, amount: int | None, currency: str | None, stamp: str) -> dict:
    """Return the payment columns a status update writes."""
    values: dict[str, Any] = {"status": status, "updated_at": stamp}
    if amount is not None:
        values["amount"] = amount
    if currency:
        values["currency"] = currency
    return values


def notification_changes(
    delivered: bool, error: str | None, retry_at: str | None, stamp: str
) -> dict[str, Any]:
    """Return the notification columns a finished delivery attempt writes."""
    values: dict[str, Any] = {"last_error": error}
    if delivered:
        values.update(delivered_at=stamp, next_attempt_at=None)
    else:
        values["next_attempt_at"] = retry_at
    return values


# Export and import: what moves between databases, in the order it must be loaded.
EXPORT_TABLES: dict[str, tuple[str, ...]] = {
    "platforms": ("id",),
    "deployments": ("platform_id", "deployment_id"),
    "tool_keys": ("kid",),
    "registrations": ("id",),
}
# Held only while an attempt is open: never exported.
NEVER_EXPORTED = {"registrations": ("pending_secret", "done_token_hash", "token_digest")}


def move_registration(
    transition: str,
    values: dict[str, Any],
    mark: str,
    reg_id: str | None,
    extra: str = "",
    extra_params: Sequence[Any] = (),
) -> tuple[str, list[Any]]:
    """Return the guarded UPDATE of a named transition and its parameters.

    The statement sets the transition's target state (and `values`) only `WHERE state IN`
    the transition's from-states, for one attempt (`reg_id`) or all that match `extra`
    (a constant condition). Column names come from code, values travel as parameters.
    """
    froms = sources(transition)
    changes = {**values, "state": target(transition), "updated_at": now_iso()}
    sets = ", ".join(f"{column} = {mark}" for column in changes)
    where = f"state IN ({placeholders(froms, mark)})"
    params: list[Any] = [*changes.values(), *froms]
    if reg_id is not None:
        where = f"id = {mark} AND " + where
        params = [*changes.values(), reg_id, *froms]
    query = f"UPDATE registrations SET {sets} WHERE {where}{extra}"  # noqa: S608 - constants
    return query, [*params, *extra_params]


def move_payment(
    session_id: str, status: str, amount: int | None, currency: str | None, mark: str
) -> tuple[str, list[Any]]:
    """Return the guarded UPDATE that moves a payment forward to `status`, never back."""
    froms = payment_sources(status)
    changes = payment_changes(status, amount, currency, now_iso())
    sets = ", ".join(f"{column} = {mark}" for column in changes)
    query = (
        f"UPDATE payments SET {sets} WHERE session_id = {mark} "  # noqa: S608 - constants
        f"AND status IN ({placeholders(froms, mark)})"
    )
    return query, [*changes.values(), session_id, *froms]
