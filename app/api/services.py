"""Launch services for the tool's back end: deep-linking responses and LTI service tokens.

The tool never holds a key: Gatehouse signs the LtiDeepLinkingResponse and the OAuth 2 client
assertion with its current key, the one platforms read at /lti/keys.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from flask import current_app, jsonify

from ..lms import safe_client
from ..lti.errors import RegistrationError
from ..lti.launch import (
    CLIENT_ASSERTION_TYPE,
    DL_MESSAGE_FIELDS,
    client_assertion,
    deep_linking_response,
    sign,
)
from ..storage import get_store
from . import ApiError, bp, field, json_body
from .platforms import found

EARLY_REFRESH = 60  # seconds before expiry when a cached token is no longer handed out
MAX_ITEMS = 100


def signing_key():
    """Return (kid, key) of the tool's current signing key."""
    return current_app.extensions["gatehouse.jwks"].signing_key()


def active_platform(platform_id: str):
    """Return an active platform, or raise 404 / 403 envelopes."""
    platform = found(platform_id)
    if not platform.active:
        raise ApiError(403, "PLATFORM_NOT_ACTIVATED",
                       "The platform is not active; activate it before using its services.")
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
        raise ApiError(403, "DEPLOYMENT_NOT_ACTIVE",
                       "This deployment is unknown or not approved for the platform.",
                       parameter="deploymentId")
    settings = field(data, "deepLinkingSettings", dict, required=True)
    return_url = settings.get("deep_link_return_url")
    if not isinstance(return_url, str) or not return_url.startswith(("https://", "http://")):
        raise ApiError(400, "INVALID_PARAMETER",
                       "deepLinkingSettings.deep_link_return_url must be the http(s) URL the "
                       "launch's deep_linking_settings claim carried.",
                       parameter="deepLinkingSettings")
    items = field(data, "contentItems", list) or []
    if len(items) > MAX_ITEMS:
        raise ApiError(400, "INVALID_PARAMETER",
                       f"At most {MAX_ITEMS} content items per response.",
                       parameter="contentItems")
    try:
        claims = deep_linking_response(platform, deployment_id, settings, items,
                                       _messages(data))
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


class TokenCache:
    """Access tokens per (platform, scopes), kept in this worker until shortly before expiry."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, tuple[str, ...]]) -> tuple[float, dict[str, Any]] | None:
        """Return (expires_at, token) while the token has more than EARLY_REFRESH left."""
        with self._lock:
            entry = self._tokens.get(key)
            if entry and entry[0] - EARLY_REFRESH > time.monotonic():
                return entry
            self._tokens.pop(key, None)
            return None

    def put(self, key: tuple[str, tuple[str, ...]], expires_at: float,
            token: dict[str, Any]) -> None:
        """Keep a token until it is about to expire."""
        with self._lock:
            self._tokens[key] = (expires_at, token)


def token_cache() -> TokenCache:
    """Return this app's cache of service tokens (one per worker)."""
    return current_app.extensions.setdefault("gatehouse.service_tokens", TokenCache())


def _scopes(data: dict[str, Any], granted: tuple[str, ...]) -> tuple[str, ...]:
    requested = field(data, "scopes", list)
    if requested is None:
        requested = list(granted)
    if not all(isinstance(s, str) and s.strip() for s in requested):
        raise ApiError(400, "INVALID_PARAMETER", "'scopes' must be a list of scope strings.",
                       parameter="scopes")
    if not requested:
        raise ApiError(400, "NO_SCOPES_GRANTED",
                       "The LMS granted this registration no service scopes.")
    refused = sorted(set(requested) - set(granted))
    if refused:
        raise ApiError(400, "SCOPE_NOT_GRANTED",
                       "The LMS did not grant this registration: " + ", ".join(refused) + ".",
                       refused=refused, granted=sorted(granted))
    return tuple(sorted(set(requested)))


@bp.post("/api/platforms/<platform_id>/token")
def service_token(platform_id: str):
    """Return an access token for the platform's LTI services, for granted scopes only."""
    data = json_body()
    platform = active_platform(platform_id)
    scopes = _scopes(data, platform.scopes)
    key = (platform.id, scopes)
    cached = token_cache().get(key)
    if cached is None:
        cached = _fetch_token(platform, scopes)
        token_cache().put(key, *cached)
    expires_at, token = cached
    return jsonify(**token, expiresIn=max(0, int(expires_at - time.monotonic())))


def _fetch_token(platform, scopes: tuple[str, ...]) -> tuple[float, dict[str, Any]]:
    kid, key = signing_key()
    fields = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": sign(client_assertion(platform), kid, key),
        "scope": " ".join(scopes),
    }
    try:
        response = safe_client().post_form(
            platform.token_endpoint, fields, headers={"Accept": "application/json"},
            what="LMS's token endpoint",
        )
    except RegistrationError as error:
        raise ApiError(502, "PLATFORM_UNREACHABLE", error.detail, code=error.rule) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status != 200 or not isinstance(body, dict) or not isinstance(
            body.get("access_token"), str):
        raise ApiError(502, "PLATFORM_TOKEN_REFUSED",
                       f"The LMS's token endpoint answered HTTP {response.status} without an "
                       "access token.",
                       lmsStatus=response.status, lmsBody=response.text[:2000],
                       externalUrl=platform.token_endpoint)
    lifetime = body.get("expires_in")
    lifetime = lifetime if isinstance(lifetime, int) and lifetime > 0 else 3600
    granted = body.get("scope") if isinstance(body.get("scope"), str) else " ".join(scopes)
    token = {"accessToken": body["access_token"],
             "tokenType": str(body.get("token_type") or "Bearer"), "scope": granted}
    return time.monotonic() + lifetime, token
