"""The API's JSON: its error envelope and body fields, and the shapes the console reuses.

The bearer-key API (app/web/api/) answers with these; the console (app/web/console.py) validates
its platform form with the API's rules and lists invitations and approvals as the API shows
them; the error pages (app/web/errors.py) answer /api and /admin paths with the envelope.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from flask import jsonify, request

from ..lti import nesting
from ..storage import storable
from .context import base_url

AUTH_METHODS = ("JWK_SET", "JWK_KEY", "RSA_KEY")
MAX_USES = 1_000_000  # an invitation's uses; SQLite's integers end at 2**63 - 1


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


def json_body() -> dict[str, Any]:
    """Return the request's JSON object (empty when there is no body); 400 otherwise."""
    if not request.get_data():
        return {}
    if request.is_json and nesting.too_deep(request.get_data()):
        # Refused before parsing: json.loads would recurse once per level (a RecursionError).
        raise ApiError(
            400,
            "INVALID_BODY",
            f"The request body nests objects and arrays more than {nesting.MAX_JSON_DEPTH} "
            "levels deep.",
        )
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


def _url(data: dict, name: str, required: bool) -> str | None:
    value = field(data, name, str, required)
    if value is not None:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApiError(
                400, "INVALID_PARAMETER", f"{name!r} must be an absolute URL.", parameter=name
            )
    return value


def platform_values(data: dict, required: bool) -> dict[str, Any]:
    """Validate a POST/PUT body into store columns; `required` for creation."""
    values: dict[str, Any] = {}
    mapping = {
        "url": "issuer",
        "authenticationEndpoint": "authorization_endpoint",
        "accesstokenEndpoint": "token_endpoint",
    }
    for name, column in mapping.items():
        value = _url(data, name, required)
        if value is not None:
            values[column] = value
    for name, column in (("clientId", "client_id"), ("name", "name")):
        value = field(data, name, str, required)
        if value is not None:
            values[column] = value.strip()
    server = field(data, "authorizationServer", str)
    if server is not None:
        values["authorization_server"] = server
    auth = field(data, "authConfig", dict, required)
    if auth is not None:
        method = auth.get("method")
        key = auth.get("key")
        if method not in AUTH_METHODS:
            raise ApiError(
                400,
                "INVALID_PARAMETER",
                f"authConfig.method must be one of {', '.join(AUTH_METHODS)}.",
                parameter="authConfig.method",
            )
        if not key or not isinstance(key, str | dict):
            raise ApiError(
                400, "MISSING_PARAMETER", "authConfig.key is required.", parameter="authConfig.key"
            )
        values["auth_method"] = method
        if method == "JWK_SET":
            _url({"authConfig.key": key}, "authConfig.key", True)
            values.update(jwks_uri=key, auth_key=None)
        elif method == "JWK_KEY":
            values.update(jwks_uri="", auth_key=json.dumps(_jwk(key)))
        else:
            if not isinstance(key, str) or "PUBLIC KEY" not in key:
                raise ApiError(
                    400,
                    "INVALID_PARAMETER",
                    "authConfig.key must be a PEM public key for RSA_KEY.",
                    parameter="authConfig.key",
                )
            values.update(jwks_uri="", auth_key=key)
    active = field(data, "active", bool)
    if active is not None:
        values["active"] = active
    values.update(_forget_learned(data))
    return values


def _forget_learned(data: dict) -> dict[str, None]:
    """Return the learned-scope columns cleared when the body sets `usableScopes` to null.

    What the token endpoint grants is learned, not set; null forgets it (after an LMS admin
    changed what the tool may use, Sakai's checkboxes say), and the next token request asks
    for every claimed scope again.
    """
    for name in ("usableScopes", "refusedScopes"):
        if name in data and data[name] is not None:
            raise ApiError(
                400,
                "INVALID_PARAMETER",
                f"{name!r} is learned from the LMS's token endpoint; it can only be "
                "set to null, which forgets what was learned.",
                parameter=name,
            )
    if "usableScopes" in data or "refusedScopes" in data:
        return {"usable_scopes": None, "refused_scopes": None}
    return {}


def _jwk(key: Any) -> dict[str, Any]:
    """Return a JWK given as an object or as its JSON text; 400 when it is neither."""
    if isinstance(key, str):
        try:
            key = nesting.loads(key)
        except ValueError:  # nesting.TooDeep included
            key = None
    if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
        raise ApiError(
            400,
            "INVALID_PARAMETER",
            "authConfig.key must be a JWK (a JSON object with kty) for JWK_KEY.",
            parameter="authConfig.key",
        )
    return key


def invitation_json(invitation) -> dict[str, Any]:
    """Return an invitation with the registration URL to hand to the customer."""
    return {
        "id": invitation.id,
        "name": invitation.name,
        "code": invitation.code,
        "url": f"{base_url()}/lti/register?invite={invitation.code}",
        "uses": invitation.uses_allowed,
        "used": invitation.uses,
        "expiresAt": invitation.expires_at,
        "revoked": invitation.revoked_at is not None,
        "usable": invitation.usable,
        "createdAt": invitation.created_at,
    }


API_KEY_ACTOR = "api key "  # how apikeys.identify names a key in the audit log


def api_key_name(actor: str | None) -> str | None:
    """Return the API key's name when `actor` is an API key, else None."""
    if actor and actor.startswith(API_KEY_ACTOR):
        return actor.removeprefix(API_KEY_ACTOR)
    return None
