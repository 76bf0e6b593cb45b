"""LTI 1.3 launches, tool side: verify the platform's id_token, sign what the tool sends back.

Framework-free: the Flask views in `app.launch` and `app.api.launch` call these with the stored
platform, the outbound client and the tool's signing key.
"""

from __future__ import annotations

import secrets
import threading
import time
from base64 import urlsafe_b64decode
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jws import extract_compact

from . import nesting
from .constants import SIGNING_ALG, MessageType
from .errors import InvalidLaunch, LaunchError, RegistrationError
from .text import N_

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
CLAIM_VERSION = LTI + "version"
CLAIM_MESSAGE_TYPE = LTI + "message_type"
CLAIM_DEPLOYMENT_ID = LTI + "deployment_id"
CLAIM_TARGET_LINK_URI = LTI + "target_link_uri"
CLAIM_RESOURCE_LINK = LTI + "resource_link"
CLAIM_ROLES = LTI + "roles"
CLAIM_CONTEXT = LTI + "context"
CLAIM_TOOL_PLATFORM = LTI + "tool_platform"
# Its `locale` is the language the LMS shows the user (LTI 1.3 §5.4.4, a BCP 47 tag).
CLAIM_LAUNCH_PRESENTATION = LTI + "launch_presentation"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
DL_SETTINGS = DL + "deep_linking_settings"
DL_CONTENT_ITEMS = DL + "content_items"
DL_DATA = DL + "data"
DL_MESSAGE_FIELDS = {
    "message": "msg",
    "log": "log",
    "errorMessage": "errormsg",
    "errorLog": "errorlog",
}
LTI_VERSION = "1.3.0"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
LAUNCH_MESSAGE_TYPES = (
    MessageType.RESOURCE_LINK.value,
    MessageType.DEEP_LINKING.value,
    MessageType.SUBMISSION_REVIEW.value,
)
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LEEWAY = 60  # seconds of clock difference tolerated on exp, iat and nbf
ASSERTION_LIFETIME = 300
# Claims of the platform's token that describe the token itself, not the launch.
TOKEN_CLAIMS = ("iss", "aud", "azp", "exp", "iat", "nbf", "nonce", "auth_time", "jti")


# --- the platform's keys -------------------------------------------------------------------------


class PlatformKeys:
    """The platforms' public keys, fetched from their JWKS URLs and kept for a while.

    A key id the cached set does not know makes one fresh fetch (the platform rotated its
    keys). Such refreshes happen at most once per `refresh_after` seconds per URL, so a stream
    of tokens with a made-up kid cannot turn into a stream of fetches.
    """

    def __init__(
        self, fetch: Callable[[str], Any], ttl: float = 600.0, refresh_after: float = 10.0
    ):
        self.fetch = fetch
        self.ttl = ttl
        self.refresh_after = refresh_after
        self._sets: dict[str, tuple[float, KeySet]] = {}
        self._refreshed: dict[str, float] = {}
        self._lock = threading.Lock()

    def key_for(self, platform: Any, kid: str | None) -> RSAKey:
        """Return the platform's key with this kid, refreshing a stale or rotated set once."""
        if platform.auth_method == "RSA_KEY":
            return _import_key(platform.auth_key, "the platform's RSA public key")
        if platform.auth_method == "JWK_KEY":
            try:
                jwk = nesting.loads(platform.auth_key or "")
            except ValueError:
                jwk = None
            return _import_key(jwk, "the platform's JWK")
        url = platform.jwks_uri
        now = time.monotonic()
        fetched_at, key_set = self._sets.get(url, (0.0, None))
        fresh = key_set is None or now - fetched_at >= self.ttl
        if fresh:
            key_set = self._load(url)
        key = _pick(key_set, kid)
        if key is None and not fresh and now - self._refreshed.get(url, -1e9) >= self.refresh_after:
            self._refreshed[url] = now
            key = _pick(self._load(url), kid)
        if key is None:
            raise InvalidLaunch(
                f"The LMS signed the launch with key {kid!r}, which is not in its key set at "
                f"{url}, even after fetching it again.",
                rule="unknown-kid",
                hint=N_(
                    "The LMS may be misconfigured; an administrator should check that the "
                    "registration's key set URL is the LMS's own."
                ),
            )
        return key

    def _load(self, url: str) -> KeySet:
        try:
            document = self.fetch(url)
            key_set = KeySet.import_key_set(
                {"keys": [k for k in document["keys"] if k.get("kty") == "RSA"]}
            )
        except RegistrationError as error:
            raise LaunchError(
                f"Gatehouse could not fetch the LMS's public keys from {url}: {error.detail}",
                rule="platform-jwks",
            ) from None
        except (KeyError, TypeError, ValueError, JoseError) as exc:
            raise LaunchError(
                f"The LMS's key set at {url} is not a usable JSON Web Key Set ({exc}).",
                rule="platform-jwks",
            ) from None
        with self._lock:
            self._sets[url] = (time.monotonic(), key_set)
        return key_set


def _pick(key_set: KeySet, kid: str | None) -> RSAKey | None:
    if kid is None:
        # No kid in the header: only unambiguous when the set holds exactly one key.
        return key_set.keys[0] if len(key_set.keys) == 1 else None
    try:
        return key_set.get_by_kid(kid)
    except (JoseError, ValueError):
        return None


def _import_key(value: str | dict | None, what: str) -> RSAKey:
    try:
        return RSAKey.import_key(value)
    except (TypeError, ValueError, JoseError):
        raise LaunchError(
            f"The registration's public key ({what}) cannot be read.",
            rule="platform-key",
            hint=N_("An administrator should correct the platform's key in Gatehouse."),
        ) from None


# --- verifying the id_token ----------------------------------------------------------------------


def token_header(id_token: str) -> dict[str, Any]:
    """Return the JOSE header of a compact JWT, or raise InvalidLaunch."""
    try:
        # Measured before joserfc parses them: a header nested thousands deep is a refusal.
        for segment in id_token.split(".")[:2]:
            nesting.check_depth(urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        return dict(extract_compact(id_token.encode()).headers())
    except (JoseError, ValueError, UnicodeError):
        raise InvalidLaunch(
            "The id_token the LMS sent is not a signed JWT.", rule="id-token-format"
        ) from None


def launch_locale(claims: dict[str, Any]) -> str | None:
    """Return the `launch_presentation` claim's `locale`, or None."""
    presentation = claims.get(CLAIM_LAUNCH_PRESENTATION)
    locale = presentation.get("locale") if isinstance(presentation, dict) else None
    return locale if isinstance(locale, str) and locale.strip() else None


def unverified_locale(id_token: str | None) -> str | None:
    """Return the `locale` an id_token names, before (or without) checking its signature.

    Only for the language of a page that refuses or has not yet verified the launch: the words
    shown are the same in every language, so an unsigned claim can choose nothing else.
    """
    if not id_token or id_token.count(".") != 2:
        return None
    segment = id_token.split(".")[1]
    try:
        payload = urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        claims = nesting.loads(payload)
    except (ValueError, UnicodeError):
        return None
    return launch_locale(claims) if isinstance(claims, dict) else None


def verify_id_token(
    id_token: str, platform: Any, keys: PlatformKeys, nonce: str, now: float | None = None
) -> dict[str, Any]:
    """Check the platform's signature and the LTI 1.3 rules; return the verified claims."""
    header = token_header(id_token)
    if header.get("alg") != SIGNING_ALG:
        raise InvalidLaunch(
            f"The id_token is signed with {header.get('alg')!r}; LTI 1.3 requires RS256.",
            rule="id-token-alg",
        )
    key = keys.key_for(platform, header.get("kid"))
    try:
        claims = dict(jwt.decode(id_token, key, algorithms=[SIGNING_ALG]).claims)
    except (JoseError, ValueError):
        raise InvalidLaunch(
            "The id_token's signature does not match the LMS's key.", rule="id-token-signature"
        ) from None
    check_claims(claims, platform, nonce, time.time() if now is None else now)
    return claims


def check_claims(claims: dict[str, Any], platform: Any, nonce: str, now: float) -> None:
    """Apply the LTI 1.3 security framework's rules to a signature-checked id_token."""
    if claims.get("iss") != platform.issuer:
        raise InvalidLaunch(
            f"The id_token's issuer is {claims.get('iss')!r}, but this registration's is "
            f"{platform.issuer!r}.",
            rule="id-token-iss",
        )
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if not isinstance(audiences, list) or platform.client_id not in audiences:
        raise InvalidLaunch(
            f"The id_token is addressed to {claims.get('aud')!r}, not to this tool's client_id "
            f"{platform.client_id!r}.",
            rule="id-token-aud",
        )
    if len(audiences) > 1 and claims.get("azp") != platform.client_id:
        raise InvalidLaunch(
            "The id_token has several audiences, so its azp must be this tool's client_id "
            f"{platform.client_id!r}; it is {claims.get('azp')!r}.",
            rule="id-token-azp",
        )
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _is_time(exp) or not _is_time(iat):
        raise InvalidLaunch("The id_token lacks a numeric exp or iat.", rule="id-token-times")
    if exp + LEEWAY < now:
        raise InvalidLaunch(
            f"The id_token expired {int(now - exp)} seconds ago.",
            rule="id-token-expired",
            hint=N_(
                "Launch the tool again from the LMS. If this keeps happening, the LMS's clock "
                "or Gatehouse's is wrong."
            ),
        )
    if iat - LEEWAY > now:
        raise InvalidLaunch(
            f"The id_token was issued {int(iat - now)} seconds in the future.",
            rule="id-token-iat",
            hint=N_("The LMS's clock or Gatehouse's is wrong."),
        )
    nbf = claims.get("nbf")  # optional (RFC 7519 section 4.1.5), binding when present
    if nbf is not None and not _is_time(nbf):
        raise InvalidLaunch("The id_token's nbf is not a number.", rule="id-token-times")
    if nbf is not None and nbf - LEEWAY > now:
        raise InvalidLaunch(
            f"The id_token is not valid before {int(nbf - now)} seconds from now (its nbf).",
            rule="id-token-nbf",
            hint=N_("The LMS's clock or Gatehouse's is wrong."),
        )
    if not nonce or not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise InvalidLaunch(
            "The id_token's nonce is not the one Gatehouse issued for this login.",
            rule="id-token-nonce",
        )
    if claims.get(CLAIM_VERSION) != LTI_VERSION:
        raise InvalidLaunch(
            f"The launch's LTI version is {claims.get(CLAIM_VERSION)!r}, not {LTI_VERSION!r}.",
            rule="lti-version",
        )
    message_type = claims.get(CLAIM_MESSAGE_TYPE)
    if message_type not in LAUNCH_MESSAGE_TYPES:
        raise InvalidLaunch(
            f"The launch's message type {message_type!r} is not one this tool handles "
            f"({', '.join(LAUNCH_MESSAGE_TYPES)}).",
            rule="lti-message-type",
        )
    deployment_id = claims.get(CLAIM_DEPLOYMENT_ID)
    if not isinstance(deployment_id, str) or not deployment_id or len(deployment_id) > 255:
        raise InvalidLaunch(
            "The launch carries no valid deployment_id claim.", rule="lti-deployment-id"
        )
    if not isinstance(claims.get(CLAIM_ROLES, None), list):
        raise InvalidLaunch("The launch carries no roles claim (a list).", rule="lti-roles")
    if message_type == MessageType.RESOURCE_LINK.value:
        link = claims.get(CLAIM_RESOURCE_LINK)
        if not isinstance(link, dict) or not link.get("id"):
            raise InvalidLaunch(
                "The resource link launch carries no resource_link id.", rule="lti-resource-link"
            )
    if message_type == MessageType.DEEP_LINKING.value:
        settings = claims.get(DL_SETTINGS)
        if not isinstance(settings, dict) or not settings.get("deep_link_return_url"):
            raise InvalidLaunch(
                "The deep linking request carries no deep_link_return_url.",
                rule="lti-deep-linking-settings",
            )
    elif not claims.get(CLAIM_TARGET_LINK_URI):
        raise InvalidLaunch(
            "The launch carries no target_link_uri claim.", rule="lti-target-link-uri"
        )


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- what Gatehouse signs ------------------------------------------------------------------------


def sign(claims: dict[str, Any], kid: str, key: RSAKey) -> str:
    """Sign claims as an RS256 JWT with the tool's key."""
    return jwt.encode({"alg": SIGNING_ALG, "kid": kid, "typ": "JWT"}, claims, key)


def handoff_claims(
    claims: dict[str, Any],
    platform: Any,
    *,
    issuer: str,
    audience: str,
    lifetime: int,
    now: float | None = None,
) -> dict[str, Any]:
    """Return the hand-off token's claims: the verified launch, re-issued by Gatehouse."""
    now = int(time.time() if now is None else now)
    launch = {k: v for k, v in claims.items() if k not in TOKEN_CLAIMS}
    return {
        **launch,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
        "platformId": platform.id,
        "deploymentId": claims[CLAIM_DEPLOYMENT_ID],
        "messageType": claims[CLAIM_MESSAGE_TYPE],
        "platform": {
            "issuer": platform.issuer,
            "clientId": platform.client_id,
            "name": platform.name,
            "familyCode": platform.product_family_code or None,
        },
    }


def deep_linking_response(
    platform: Any,
    deployment_id: str,
    settings: dict[str, Any],
    items: list[dict[str, Any]],
    messages: dict[str, str],
    now: float | None = None,
) -> dict[str, Any]:
    """Return the claims of an LtiDeepLinkingResponse answering `settings`, or raise ValueError."""
    accept_types = settings.get("accept_types")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ValueError(f"contentItems[{i}] must be an object with a string 'type'")
        if isinstance(accept_types, list) and accept_types and item["type"] not in accept_types:
            raise ValueError(
                f"contentItems[{i}] has type {item['type']!r}; the LMS accepts only "
                f"{', '.join(map(str, accept_types))}"
            )
    if len(items) > 1 and settings.get("accept_multiple") is False:
        raise ValueError("the LMS accepts a single content item here, not several")
    now = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": platform.client_id,
        "aud": platform.issuer,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
        "nonce": secrets.token_urlsafe(16),
        CLAIM_MESSAGE_TYPE: DEEP_LINKING_RESPONSE,
        CLAIM_VERSION: LTI_VERSION,
        CLAIM_DEPLOYMENT_ID: deployment_id,
        DL_CONTENT_ITEMS: items,
    }
    if settings.get("data") is not None:
        claims[DL_DATA] = settings["data"]
    for name, claim in DL_MESSAGE_FIELDS.items():
        if messages.get(name):
            claims[DL + claim] = messages[name]
    return claims


def token_audience(platform: Any) -> str:
    """Return the `aud` of a client assertion: the authorization server when it is a URL.

    Canvas advertises a bare host as its authorization server; the token endpoint URL is what
    its manual-setup documentation uses, so a non-URL value falls back to the token endpoint.
    """
    server = platform.authorization_server or ""
    return server if server.startswith(("https://", "http://")) else platform.token_endpoint


def client_assertion(platform: Any, now: float | None = None) -> dict[str, Any]:
    """Return the claims of a private_key_jwt client assertion for the platform's token URL."""
    now = int(time.time() if now is None else now)
    return {
        "iss": platform.client_id,
        "sub": platform.client_id,
        "aud": token_audience(platform),
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
        "jti": secrets.token_urlsafe(16),
    }


def with_query(url: str, params: dict[str, str]) -> str:
    """Set params on url's query, keeping its other parameters (like URLSearchParams.set)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query = urlencode(kept + list(params.items()))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
