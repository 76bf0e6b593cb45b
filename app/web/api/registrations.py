"""External pre-approval: the owner's back end reads and completes a pending registration."""

from __future__ import annotations

from flask import jsonify, request, url_for

from ...domain import registration as flow
from ...domain.gates import next_gate
from ...lti.errors import (
    InvalidRegistrationResponse,
    OutcomeUnknown,
    PlatformRefused,
    RegistrationError,
)
from ...settings import MESSAGE_TYPES
from ...storage import RegistrationState
from ..api_json import ApiError, field, json_body
from ..context import base_url, get_store, sealer, services, settings
from .blueprint import bp

CLOSE_SNIPPET = (
    "<script>(window.opener || window.parent).postMessage("
    "{subject:'org.imsglobal.lti.close'}, '*');</script>"
)


def pending(rid: str):
    """Return a registration waiting for the owner's approval, or raise 404/409/410."""
    store = get_store()
    registration = flow.current(store, rid)
    if registration is None:
        raise ApiError(404, "REGISTRATION_NOT_FOUND", "No registration has this id.")
    if registration.state != RegistrationState.PENDING:
        raise ApiError(
            410,
            "REGISTRATION_GONE",
            f"This registration is {registration.state}; it cannot be read or completed any more.",
            state=registration.state,
        )
    gate = next_gate(store, registration, settings())
    if gate is not None:
        raise ApiError(
            409,
            "GATES_NOT_PASSED",
            f"The LMS admin has not passed the {gate.name!r} gate yet.",
            gate=gate.name,
        )
    held = flow.resume(store, registration, sealer())
    if held is None:
        raise ApiError(410, "REGISTRATION_GONE", "This registration's details are gone.")
    return registration, held


@bp.get("/api/registrations/<rid>")
def get_registration(rid: str):
    """Describe the LMS of a pending registration (or, with ?raw=true, its raw documents)."""
    _registration, (platform, token) = pending(rid)
    if request.args.get("raw", "").lower() in ("true", "1", "yes"):
        return jsonify(openIdConfiguration=platform.document, registrationToken=token)
    return jsonify(
        url=platform.issuer,
        familyCode=platform.product_family_code,
        version=platform.version,
        supportedScopes=list(platform.scopes_supported),
        supportedMessages=[m.as_dict() for m in platform.messages_supported],
    )


@bp.post("/api/registrations/<rid>/complete")
def complete_registration(rid: str):
    """Register with the LMS now; answer the close snippet, the platform id and a close URL."""
    data = json_body()
    name = field(data, "platformName", str)
    auto_activate = field(data, "autoActivate", bool)
    messages = _messages(field(data, "messages", list))
    registration, (platform, token) = pending(rid)
    ctx = services()
    try:
        outcome = flow.complete(
            ctx,
            registration,
            platform,
            token,
            auto_activate=auto_activate,
            messages=messages,
            name=name.strip() if name else None,
        )
    except flow.AlreadyHandled as error:
        raise ApiError(410, "REGISTRATION_GONE", error.detail) from None
    except flow.RegistrationGone as error:
        # It ran out of time between the read and the claim: nothing was sent, it ends expired.
        flow.fail(ctx, registration, error)
        state = get_store().get_registration(rid).state
        raise ApiError(410, "REGISTRATION_GONE", error.detail, state=state) from None
    except RegistrationError as error:
        flow.fail(ctx, registration, error)
        answered = isinstance(error, PlatformRefused | InvalidRegistrationResponse) or (
            isinstance(error, OutcomeUnknown) and error.lms_status is not None
        )
        details = {"code": error.rule, "externalError": answered}
        if isinstance(error, OutcomeUnknown):
            details["outcomeUnknown"] = True  # the LMS may hold a registration: check it
        if answered:
            details.update(
                lmsStatus=error.lms_status,
                lmsBody=error.lms_body,
                externalUrl=platform.registration_endpoint,
            )
        raise ApiError(502, "PLATFORM_REGISTRATION_FAILED", error.detail, **details) from None
    token_value = flow.issue_done_token(get_store(), rid)
    return jsonify(
        html=CLOSE_SNIPPET,
        platformId=outcome.platform.id,
        redirectUrl=base_url() + url_for("gates.done", rid=rid, token=token_value),
    )


def _messages(raw: list | None) -> list[dict] | None:
    """Merge `[{type, placements?}]` with the configured messages of the same type."""
    if raw is None:
        return None
    configured = {m.type: m.as_dict() for m in settings().tool.messages}
    result = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("type") not in MESSAGE_TYPES:
            raise ApiError(
                400,
                "INVALID_PARAMETER",
                f"messages[{i}].type must be one of {', '.join(MESSAGE_TYPES)}.",
                parameter=f"messages[{i}]",
            )
        placements = item.get("placements")
        if placements is not None and (
            not isinstance(placements, list) or not all(isinstance(p, str) for p in placements)
        ):
            raise ApiError(
                400,
                "INVALID_PARAMETER",
                f"messages[{i}].placements must be a list of strings.",
                parameter=f"messages[{i}].placements",
            )
        message = dict(configured.get(item["type"], {"type": item["type"]}))
        if placements is not None:
            message["placements"] = placements
        result.append(message)
    return result
