"""The API's blueprint: bearer-key authentication, the error envelope, nothing cached."""

from __future__ import annotations

from flask import Blueprint, g, request

from ...domain import apikeys
from ...storage import storable
from ..api_json import ApiError, envelope
from ..context import get_store
from ..limits import api_limit

bp = Blueprint("api", __name__)
api_limit(bp)


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
