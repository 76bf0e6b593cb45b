"""Launch services for the tool's back end: deep-linking responses and LTI service tokens.

The tool never holds a key: Gatehouse signs the LtiDeepLinkingResponse and the OAuth 2 client
assertion with its current key, the one platforms read at /lti/keys.
"""

from __future__ import annotations

import html
import time
from typing import Any

from flask import current_app, jsonify

from ...domain import service_tokens
from ...lti.constants import is_service_scope
from ...lti.launch import DL_MESSAGE_FIELDS, deep_linking_response, sign
from ..api_json import ApiError, field, json_body
from ..context import get_store, services
from .blueprint import bp
from .platforms import found

MAX_ITEMS = 100


def token_cache() -> service_tokens.TokenCache:
    """Return this app's cache of service tokens (one per worker)."""
    return current_app.extensions.setdefault(
        "gatehouse.service_tokens", service_tokens.TokenCache()
    )


def signing_key():
    """Return (kid, key) of the tool's current signing key."""
    return current_app.extensions["gatehouse.jwks"].signing_key()


def active_platform(platform_id: str):
    """Return an active platform, or raise 404 / 403 envelopes."""
    platform = found(platform_id)
    if not platform.active:
        raise ApiError(
            403,
            "PLATFORM_NOT_ACTIVATED",
            "The platform is not active; activate it before using its services.",
        )
    return platform


def _messages(data: dict[str, Any]) -> dict[str, str]:
    values = {}
    for key in DL_MESSAGE_FIELDS:
        value = field(data, key, str)
        if value:
            values[key] = value
    return values


@bp.post("/api/deep-linking/response")
def deep_linking():
    """Sign an LtiDeepLinkingResponse and return it with the form that posts it to the LMS."""
    data = json_body()
    platform = active_platform(field(data, "platformId", str, required=True))
    deployment_id = field(data, "deploymentId", str, required=True)
    deployment = get_store().get_deployment(platform.id, deployment_id)
    if deployment is None or not deployment.active:
        raise ApiError(
            403,
            "DEPLOYMENT_NOT_ACTIVE",
            "This deployment is unknown or not approved for the platform.",
            parameter="deploymentId",
        )
    settings = field(data, "deepLinkingSettings", dict, required=True)
    return_url = settings.get("deep_link_return_url")
    if not isinstance(return_url, str) or not return_url.startswith(("https://", "http://")):
        raise ApiError(
            400,
            "INVALID_PARAMETER",
            "deepLinkingSettings.deep_link_return_url must be the http(s) URL the "
            "launch's deep_linking_settings claim carried.",
            parameter="deepLinkingSettings",
        )
    items = field(data, "contentItems", list) or []
    if len(items) > MAX_ITEMS:
        raise ApiError(
            400,
            "INVALID_PARAMETER",
            f"At most {MAX_ITEMS} content items per response.",
            parameter="contentItems",
        )
    try:
        claims = deep_linking_response(platform, deployment_id, settings, items, _messages(data))
    except ValueError as exc:
        raise ApiError(400, "INVALID_PARAMETER", str(exc), parameter="contentItems") from None
    kid, key = signing_key()
    token = sign(claims, kid, key)
    return jsonify(jwt=token, returnUrl=return_url, form=auto_submit_form(return_url, token))


def auto_submit_form(action: str, token: str) -> str:
    """Return the HTML form that posts the response JWT to the LMS, submitting itself."""
    return (
        f'<form id="lti-deep-linking-response" action="{html.escape(action)}" method="post">'
        f'<input type="hidden" name="JWT" value="{html.escape(token)}">'
        '<noscript><button type="submit">Return to the LMS</button></noscript></form>'
        '<script>document.getElementById("lti-deep-linking-response").submit();</script>'
    )


def _requested_scopes(data: dict[str, Any]) -> tuple[str, ...] | None:
    """Return the body's `scopes` (None when not given), refusing what no LMS could grant."""
    requested = field(data, "scopes", list)
    if requested is None:
        return None
    if not requested or not all(isinstance(s, str) and s.strip() for s in requested):
        raise ApiError(
            400,
            "INVALID_PARAMETER",
            "'scopes' must be a non-empty list of scope strings (leave it out for "
            "every scope the LMS grants).",
            parameter="scopes",
        )
    words = sorted({s for s in requested if not is_service_scope(s)})
    if words:
        raise ApiError(
            400,
            "INVALID_PARAMETER",
            f"Not LTI service scopes: {', '.join(words)}. Service scopes are URIs "
            "such as https://purl.imsglobal.org/spec/lti-ags/scope/score; openid and "
            "the other OpenID Connect scopes belong to launches, not service tokens.",
            parameter="scopes",
        )
    return tuple(requested)


def _not_granted(error: service_tokens.ScopesNotGranted) -> ApiError:
    parts = []
    if error.not_claimed:
        parts.append(
            "The LMS did not grant this registration: " + ", ".join(error.not_claimed) + "."
        )
    if error.refused_by_lms:
        parts.append(
            "The LMS's registration answer claimed "
            + ", ".join(error.refused_by_lms)
            + " but its token endpoint refuses "
            + ("it" if len(error.refused_by_lms) == 1 else "them")
            + " (once an LMS administrator allows the service, register again or "
            "forget what was learned: PUT the platform with usableScopes: null)."
        )
    platform = error.platform
    return ApiError(
        400,
        "SCOPE_NOT_GRANTED",
        " ".join(parts),
        refused=sorted((*error.not_claimed, *error.refused_by_lms)),
        refusedByLms=list(error.refused_by_lms),
        granted=list(service_tokens.default_scopes(platform)),
    )


@bp.post("/api/platforms/<platform_id>/token")
def service_token(platform_id: str):
    """Return an access token for the platform's LTI services, for usable scopes only."""
    data = json_body()
    platform = active_platform(platform_id)
    requested = _requested_scopes(data)
    try:
        issued = service_tokens.service_token(services(), token_cache(), platform, requested)
    except service_tokens.ScopesNotGranted as error:
        raise _not_granted(error) from None
    except service_tokens.NoUsableScopes as error:
        refused = list(error.platform.refused_scopes or ())
        if refused:
            description = (
                "The LMS's token endpoint refused every service scope its "
                "registration answer claimed: " + ", ".join(refused) + "."
            )
        else:
            description = "The LMS granted this registration no service scopes."
        raise ApiError(400, "NO_SCOPES_GRANTED", description, refusedByLms=refused) from None
    except service_tokens.TokenEndpointUnreachable as error:
        raise ApiError(502, "PLATFORM_UNREACHABLE", error.detail, code=error.rule) from None
    except service_tokens.TokenEndpointRefused as error:
        raise ApiError(
            502,
            "PLATFORM_TOKEN_REFUSED",
            f"The LMS's token endpoint answered HTTP {error.status} without an access token.",
            lmsStatus=error.status,
            lmsBody=error.body,
            externalUrl=error.url,
        ) from None
    expires_in = max(0, int(issued.expires_at - time.monotonic()))
    return jsonify(**issued.token, expiresIn=expires_in)
