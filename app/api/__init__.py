"""The bearer-key API under /api and /admin, with the hosted service's paths and JSON shapes."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, g, jsonify, request

from .. import apikeys
from ..limits import api_limit
from ..storage import get_store, storable

bp = Blueprint("api", __name__)
api_limit(bp)


class ApiError(Exception):
    """An API failure answered with the envelope {status, error, details}."""

    def __init__(self, status: int, message: str, description: str, **details: Any):
        super().__init__(description)
        self.status = status
        self.message = message
        self.description = description
        self.details = details


def envelope(status: int, message: str, description: str, **details: Any):
    """Return the error envelope response: {status, error, details: {message, description}}."""
    body = {
        "status": status,
        "error": HTTPStatus(status).phrase,
        "details": {"message": message, "description": description, **details},
    }
    return jsonify(body), status


@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    return envelope(error.status, error.message, error.description, **error.details)


@bp.before_request
def _authenticate():
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    who = apikeys.identify(get_store(), presented.strip()) if scheme == "Bearer" else None
    if who is None:
        return envelope(401, "INVALID_LTIK_AUTH_AUTHORIZATION_HEADER", "Invalid API key")
    g.actor = who
    return None


# What a path argument names, and the 404 an id that cannot exist answers.
NOT_FOUND = {
    "platform_id": ("PLATFORM_NOT_FOUND", "No platform has this id."),
    "rid": ("REGISTRATION_NOT_FOUND", "No registration has this id."),
    "deployment_id": ("DEPLOYMENT_NOT_FOUND", "The platform has no such deployment."),
    "invitation_id": ("INVITATION_NOT_FOUND", "No usable invitation has this id."),
}


@bp.before_request
def _refuse_unstorable_ids():
    # Checked in the order of the path, so a platform is looked for before its deployment.
    for name, value in (request.view_args or {}).items():
        if not storable(value) and name in NOT_FOUND:
            return envelope(404, *NOT_FOUND[name])
    return None


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def json_body() -> dict[str, Any]:
    """Return the request's JSON object (empty when there is no body); 400 otherwise."""
    if not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID_BODY", "The request body must be a JSON object.")
    if not _all_storable(data):
        raise ApiError(
            400,
            "INVALID_BODY",
            "The request body holds a NUL character or an "
            "unpaired surrogate (\\u0000, \\ud800…), which no field may contain.",
        )
    return data


def _all_storable(data: Any) -> bool:
    stack = [data]  # a loop, not recursion: the body may nest as deep as the parser allows
    while stack:
        value = stack.pop()
        if isinstance(value, str) and not storable(value):
            return False
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def field(data: dict[str, Any], name: str, kind: type | tuple, required: bool = False) -> Any:
    """Return a typed field of a JSON body, raising a 400 envelope that names it."""
    value = data.get(name)
    if value is None:
        if required:
            raise ApiError(
                400, "MISSING_PARAMETER", f"Missing parameter: {name!r}.", parameter=name
            )
        return None
    if isinstance(value, bool) and kind is not bool:
        raise ApiError(400, "INVALID_PARAMETER", f"{name!r} has the wrong type.", parameter=name)
    if not isinstance(value, kind):
        raise ApiError(400, "INVALID_PARAMETER", f"{name!r} has the wrong type.", parameter=name)
    if isinstance(value, str) and required and not value.strip():
        raise ApiError(400, "MISSING_PARAMETER", f"{name!r} must not be empty.", parameter=name)
    return value


from . import attempts, openapi, platforms, registrations, services  # noqa: E402,F401
