"""Step 2 of Dynamic Registration: fetch and validate the platform's OpenID configuration."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from . import nesting
from .constants import (
    MESSAGE_TYPE_ALIASES,
    PLATFORM_CONFIGURATION,
    SIGNING_ALG,
    TOKEN_ENDPOINT_AUTH_METHOD,
    MessageType,
)
from .errors import PlatformConfigError, PlatformRefused
from .http import SafeClient
from .lms import for_family
from .text import N_

log = logging.getLogger(__name__)

REQUIRED_ENDPOINTS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "registration_endpoint",
)
DEFAULT_MESSAGES = (MessageType.RESOURCE_LINK.value, MessageType.DEEP_LINKING.value)


@dataclass(frozen=True)
class SupportedMessage:
    """A message type the platform supports and, when it says so, its placements."""

    type: str
    placements: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the LTIAAS-shaped `{type, placements?}` object."""
        data: dict[str, Any] = {"type": self.type}
        if self.placements is not None:
            data["placements"] = list(self.placements)
        return data


@dataclass(frozen=True)
class PlatformConfig:
    """The validated facts Gatehouse needs from a platform's OpenID configuration."""

    openid_configuration_url: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    authorization_server: str | None
    product_family_code: str
    version: str
    scopes_supported: tuple[str, ...]
    claims_supported: tuple[str, ...]
    messages_supported: tuple[SupportedMessage, ...]
    document: dict[str, Any] = field(repr=False, compare=False)
    warnings: tuple[str, ...] = ()
    # What Gatehouse supplied that this LMS family leaves out (see app/lti/lms): the admin is
    # told on the close page.
    filled_in: tuple[str, ...] = ()

    def supports(self, message_type: str) -> bool:
        """Return True when the platform lists `message_type`."""
        return any(m.type == message_type for m in self.messages_supported)

    def placements_for(self, message_type: str) -> tuple[str, ...] | None:
        """Return the advertised placements of a message type, or None when it lists none."""
        for message in self.messages_supported:
            if message.type == message_type:
                return message.placements
        return None


def get_openid_config(client: SafeClient, url: str, registration_token: str | None) -> Any:
    """GET the configuration exactly as given (its query string kept) and parse the JSON."""
    headers = {"Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    response = client.get(url, headers=headers, what="OpenID configuration URL")
    if response.status != 200:
        raise PlatformRefused(
            f"Fetching the LMS's OpenID configuration answered HTTP {response.status}.",
            lms_status=response.status,
            lms_body=response.text,
            hint=_config_hint(response.status),
        )
    try:
        document = response.json()
    except nesting.TooDeep:
        # Measured before parsing: the document is copied and stored recursively later.
        raise PlatformConfigError(
            f"The LMS's OpenID configuration nests more than {nesting.MAX_JSON_DEPTH} levels deep.",
            rule="config-json",
        ) from None
    except ValueError:
        kind = response.content_type or "no content type"
        raise PlatformConfigError(
            f"The LMS's OpenID configuration is not JSON (it answered {kind}).",
            rule="config-json",
            hint=N_("Check that the URL your LMS passed points at its OpenID configuration."),
        ) from None
    return document


def _config_hint(status: int) -> str:
    if status in (401, 403):
        return N_(
            "The LMS did not accept the registration token. Tokens expire after about an hour: "
            "start the registration again from your LMS."
        )
    if status == 404:
        return N_(
            "The configuration URL was not found: start the registration again from your LMS."
        )
    return N_("Try again in a few minutes; if it keeps failing, contact your LMS's support.")


def validate_openid_config(
    document: Any, url: str, *, issuer_check: str = "strict", allow_insecure: bool = False
) -> PlatformConfig:
    """Check the configuration against the spec rules; raise PlatformConfigError naming the rule."""
    if not isinstance(document, dict):
        raise PlatformConfigError(
            "The LMS's OpenID configuration is not a JSON object.", rule="config-json"
        )
    warnings: list[str] = []
    filled_in: list[str] = []
    lti = _platform_object(document, warnings)
    family = _string(lti.get("product_family_code"))
    document = for_family(family).fill_configuration(document, filled_in)
    values: dict[str, str] = {}
    for name in REQUIRED_ENDPOINTS:
        value = document.get(name)
        if not isinstance(value, str) or not value.strip():
            raise PlatformConfigError(
                f"The LMS's OpenID configuration has no {name!r}, which the specification "
                "requires.",
                rule="required-field",
            )
        if name != "issuer":
            _check_endpoint(name, value, allow_insecure)
        values[name] = value
    _check_issuer(values["issuer"], url, issuer_check, allow_insecure)
    _require_listed(document, "id_token_signing_alg_values_supported", SIGNING_ALG, "rs256")
    _require_listed(
        document,
        "token_endpoint_auth_methods_supported",
        TOKEN_ENDPOINT_AUTH_METHOD,
        "private-key-jwt",
    )
    _require_listed(
        document, "token_endpoint_auth_signing_alg_values_supported", SIGNING_ALG, "rs256"
    )
    authorization_server = document.get("authorization_server")
    return PlatformConfig(
        openid_configuration_url=url,
        issuer=values["issuer"],
        authorization_endpoint=values["authorization_endpoint"],
        token_endpoint=values["token_endpoint"],
        jwks_uri=values["jwks_uri"],
        registration_endpoint=values["registration_endpoint"],
        authorization_server=(
            authorization_server
            if isinstance(authorization_server, str) and authorization_server
            else None
        ),
        product_family_code=family or "unknown",
        version=_string(lti.get("version")),
        scopes_supported=_strings(document.get("scopes_supported")),
        claims_supported=_strings(document.get("claims_supported")),
        messages_supported=_messages(lti, warnings),
        document=document,
        warnings=tuple(warnings),
        filled_in=tuple(filled_in),
    )


def _split(url: str) -> SplitResult | None:
    """Split a URL and read its port; return None when either is malformed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    return parts


def _check_endpoint(name: str, value: str, allow_insecure: bool) -> None:
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlatformConfigError(
            f"The LMS's {name} {value!r} is not an absolute URL.", rule="endpoint-url"
        )
    if parts.scheme != "https" and not allow_insecure:
        raise PlatformConfigError(
            f"The LMS's {name} {value!r} does not use https.", rule="https-only"
        )


def _check_issuer(issuer: str, url: str, mode: str, allow_insecure: bool) -> None:
    parts = _split(issuer)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlatformConfigError(
            f"The issuer {issuer!r} is not an absolute URL.", rule="issuer-url"
        )
    if parts.scheme != "https" and not allow_insecure:
        raise PlatformConfigError(
            f"The issuer {issuer!r} does not use https, which the specification requires.",
            rule="issuer-https",
        )
    if parts.query or parts.fragment or issuer.endswith(("?", "#")):
        raise PlatformConfigError(
            f"The issuer {issuer!r} contains a query or fragment, which the specification forbids.",
            rule="issuer-no-query",
        )
    if mode == "off":
        return
    config = urlsplit(url)
    if (parts.scheme, parts.hostname, parts.port) != (config.scheme, config.hostname, config.port):
        raise PlatformConfigError(
            f"The issuer {issuer!r} is not on the same host as the configuration URL "
            f"{_without_query(url)!r} (LTI Dynamic Registration §3.5.1). Someone may be "
            "passing another platform's configuration.",
            rule="issuer-host-match",
        )
    prefix = issuer.rstrip("/")
    path = _without_query(url)
    if mode == "strict" and not (path == prefix or path.startswith(prefix + "/")):
        raise PlatformConfigError(
            f"The configuration URL {path!r} does not start with the issuer {issuer!r} "
            "(LTI Dynamic Registration §3.5.1).",
            rule="issuer-prefix",
            hint=N_('A tool owner can relax this check with security.issuer_check = "host".'),
        )


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _require_listed(document: dict, key: str, wanted: str, rule: str) -> None:
    values = document.get(key)
    if values is None:
        return
    if not isinstance(values, list) or wanted not in values:
        raise PlatformConfigError(
            f"The LMS's {key} does not include {wanted!r}, which LTI 1.3 requires "
            f"(it lists {values!r}).",
            rule=rule,
        )


def _platform_object(document: dict, warnings: list[str]) -> dict:
    lti = document.get(PLATFORM_CONFIGURATION)
    if isinstance(lti, dict):
        return lti
    for key, value in document.items():
        if key.strip() == PLATFORM_CONFIGURATION and isinstance(value, dict):
            warnings.append("The platform-configuration key has stray whitespace (old Moodle).")
            return value
    warnings.append("The LMS sent no LTI platform-configuration object; defaults were assumed.")
    return {}


def _messages(lti: dict, warnings: list[str]) -> tuple[SupportedMessage, ...]:
    raw = lti.get("messages_supported")
    if not isinstance(raw, list):
        return tuple(SupportedMessage(t) for t in DEFAULT_MESSAGES)
    shared = lti.get("placements")
    shared_placements = _strings(shared) if isinstance(shared, list) else None
    messages: list[SupportedMessage] = []
    for item in raw:
        if isinstance(item, str):
            kind, placements = item, shared_placements
        elif isinstance(item, dict) and isinstance(item.get("type"), str):
            kind = item["type"]
            listed = item.get("placements")
            placements = _strings(listed) if isinstance(listed, list) else None
        else:
            warnings.append(f"Ignored a messages_supported entry Gatehouse cannot read: {item!r}")
            continue
        if kind in MESSAGE_TYPE_ALIASES:
            warnings.append(f"Read the message type {kind!r} as {MESSAGE_TYPE_ALIASES[kind]!r}.")
            kind = MESSAGE_TYPE_ALIASES[kind]
        if all(m.type != kind for m in messages):
            messages.append(SupportedMessage(kind, placements))
    return tuple(messages)


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))
