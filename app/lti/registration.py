"""Step 3 of Dynamic Registration: build the client registration, send it, read the answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import nesting
from .constants import (
    GRANT_TYPES,
    RESPONSE_TYPES,
    TOKEN_ENDPOINT_AUTH_METHOD,
    TOOL_CONFIGURATION,
    MessageType,
    is_service_scope,
)
from .discovery import PlatformConfig
from .errors import InvalidRegistrationResponse, PlatformRefused, RegistrationError
from .http import SafeClient
from .lms import LMS, Adjustments, for_family
from .text import N_

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ToolProfile:
    """The tool as it describes itself to platforms, with every default resolved."""

    name: str
    target_link_uri: str
    initiate_login_uri: str
    redirect_uris: tuple[str, ...]
    jwks_uri: str
    domain: str
    description: str | None = None
    logo_uri: str | None = None
    client_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    contacts: tuple[str, ...] = ()
    secondary_domains: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()
    custom_parameters: dict[str, str] = field(default_factory=dict)
    messages: tuple[dict[str, Any], ...] = ()
    canvas: dict[str, Any] = field(default_factory=dict)


def host_with_port(url: str) -> str:
    """Return host[:port] of a URL, the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port and parts.port != DEFAULT_PORTS.get(parts.scheme):
        return f"{host}:{parts.port}"
    return host


def normalise_url(url: str) -> str:
    """Return the URL with its scheme and host in lower case and no default port.

    LMSes compare the tool's domain with its launch URL's host[:port] as written (Moodle's
    mod/lti/classes/local/ltiopenid/registration_helper.php uses `!==`), so
    `https://Tool.example.com:443/launch` would fail there although it is the same address.
    Raise ValueError for a port that is not a number.
    """
    parts = urlsplit(url)
    port = parts.port
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return parts._replace(scheme=scheme, netloc=host).geturl()


def resolve_tool(tool: dict[str, Any], base_url: str) -> ToolProfile:
    """Fill the URL defaults of the `[tool]` settings from the service's public base URL."""
    base_url = normalise_url(base_url.rstrip("/"))
    target = tool.get("target_link_uri") or f"{base_url}/lti/launch"
    return ToolProfile(
        name=tool["name"],
        description=tool.get("description"),
        logo_uri=tool.get("logo_uri"),
        client_uri=tool.get("client_uri"),
        policy_uri=tool.get("policy_uri"),
        tos_uri=tool.get("tos_uri"),
        contacts=tuple(tool.get("contacts") or ()),
        target_link_uri=target,
        initiate_login_uri=tool.get("initiate_login_uri") or f"{base_url}/lti/login",
        redirect_uris=tuple(tool.get("redirect_uris") or (target,)),
        jwks_uri=tool.get("jwks_uri") or f"{base_url}/lti/keys",
        domain=tool.get("domain") or host_with_port(target),
        secondary_domains=tuple(tool.get("secondary_domains") or ()),
        scopes=tuple(tool.get("scopes") or ()),
        claims=tuple(tool.get("claims") or ()),
        custom_parameters=dict(tool.get("custom_parameters") or {}),
        messages=tuple(tool.get("messages") or ()),
        canvas={k: v for k, v in (tool.get("canvas") or {}).items() if v is not None},
    )


class InsecureToolURL(RegistrationError):
    """The tool's own URLs would reach the LMS as plain http; the tool owner must fix base_url."""

    status = 500
    title = N_("The tool's addresses are not secure")


def insecure_tool_urls(tool: ToolProfile) -> list[tuple[str, str]]:
    """Return (setting, URL) for each of the tool's own URLs that is not absolute https."""
    named: list[tuple[str, str | None]] = [
        ("tool.target_link_uri", tool.target_link_uri),
        ("tool.initiate_login_uri", tool.initiate_login_uri),
        *((f"tool.redirect_uris[{i}]", u) for i, u in enumerate(tool.redirect_uris)),
        ("tool.jwks_uri", tool.jwks_uri),
        ("tool.logo_uri", tool.logo_uri),
    ]
    for i, message in enumerate(tool.messages):
        for key in ("target_link_uri", "icon_uri"):
            named.append((f"tool.messages[{i}].{key}", message.get(key)))
    return [(name, url) for name, url in named if url and not is_https_url(url)]


def check_tool_urls(
    insecure: list[tuple[str, str]] | tuple[tuple[str, str], ...], allow_insecure: bool
) -> None:
    """Raise InsecureToolURL for `insecure_tool_urls` found outside insecure mode."""
    if insecure and not allow_insecure:
        raise _insecure(tuple(insecure))


def is_https_url(url: str) -> bool:
    """Return True for an absolute https URL with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname)


@dataclass(frozen=True)
class RegistrationRequest:
    """The JSON body Gatehouse POSTs, and what it left out to suit the platform."""

    body: dict[str, Any]
    adjustments: tuple[str, ...] = ()
    # The adjustments the LMS administrator must read before the dialog closes.
    notable: tuple[str, ...] = ()
    # The tool's own URLs that are not https (setting, URL): refused unless insecure mode is on.
    insecure_urls: tuple[tuple[str, str], ...] = ()

    @property
    def scopes(self) -> tuple[str, ...]:
        """Return the scopes requested."""
        return tuple(self.body["scope"].split())


def build_registration_request(
    tool: ToolProfile,
    platform: PlatformConfig,
    *,
    messages: list[dict[str, Any]] | None = None,
) -> RegistrationRequest:
    """Build the client registration, adapted to what the platform advertises."""
    adjustments = Adjustments(platform.filled_in)
    lms = for_family(platform.product_family_code)
    tool_config: dict[str, Any] = {
        "domain": tool.domain,
        "target_link_uri": tool.target_link_uri,
        "claims": list(tool.claims),
        "messages": _messages(
            platform, messages if messages is not None else tool.messages, lms, adjustments
        ),
    }
    if tool.secondary_domains:
        tool_config["secondary_domains"] = list(tool.secondary_domains)
    if tool.description:
        tool_config["description"] = tool.description
    if tool.custom_parameters:
        tool_config["custom_parameters"] = dict(tool.custom_parameters)
    tool_config.update(lms.tool_configuration_extensions(tool.canvas))
    body: dict[str, Any] = {
        "application_type": "web",
        "response_types": list(RESPONSE_TYPES),
        "grant_types": list(GRANT_TYPES),
        "initiate_login_uri": tool.initiate_login_uri,
        "redirect_uris": list(tool.redirect_uris),
        "client_name": tool.name,
        "jwks_uri": tool.jwks_uri,
        "token_endpoint_auth_method": TOKEN_ENDPOINT_AUTH_METHOD,
        "scope": " ".join(_scopes(tool, platform, lms, adjustments)),
    }
    for key in ("logo_uri", "client_uri", "policy_uri", "tos_uri"):
        value = getattr(tool, key)
        if value:
            body[key] = value
    if tool.contacts:
        body["contacts"] = list(tool.contacts)
    body[TOOL_CONFIGURATION] = tool_config
    return RegistrationRequest(
        body=body,
        adjustments=tuple(adjustments),
        notable=tuple(adjustments.notable),
        insecure_urls=tuple(insecure_tool_urls(tool)),
    )


def _scopes(
    tool: ToolProfile, platform: PlatformConfig, lms: LMS, adjustments: Adjustments
) -> list[str]:
    # Only service scopes are asked for: `openid` is no grant a tool needs (the launch's OpenID
    # flow has its own), and one Canvas release refused a registration that named it
    # (canvas-lms issue 2398). Start-up warns the owner about a configured one.
    wanted = [s for s in tool.scopes if is_service_scope(s)]
    if not lms.scopes_supported_is_complete or not platform.scopes_supported:
        return wanted
    kept = [s for s in wanted if s in platform.scopes_supported]
    for scope in wanted:
        if scope not in kept:
            adjustments.note(
                N_("Did not request the scope %(scope)s (the LMS does not offer it).", scope=scope)
            )
    return kept


def _messages(
    platform: PlatformConfig,
    wanted: tuple[dict[str, Any], ...] | list[dict[str, Any]],
    lms: LMS,
    adjustments: Adjustments,
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for message in wanted:
        kind = message["type"]
        if kind != MessageType.RESOURCE_LINK.value and not platform.supports(kind):
            adjustments.note(
                N_("Left out the %(kind)s message (the LMS does not support it).", kind=kind)
            )
            continue
        placements = lms.message_placements(
            kind, message.get("placements"), platform.placements_for(kind), adjustments
        )
        if placements == []:
            continue
        out: dict[str, Any] = {"type": kind}
        for key in ("target_link_uri", "label", "icon_uri"):
            if message.get(key):
                out[key] = message[key]
        if message.get("custom_parameters"):
            out["custom_parameters"] = dict(message["custom_parameters"])
        if message.get("roles"):
            out["roles"] = list(message["roles"])
        if placements:
            out["placements"] = placements
        out.update(lms.message_extensions(kind, message.get("canvas") or {}, adjustments))
        result.append(out)
    return result


def register_tool_in_platform(
    client: SafeClient,
    platform: PlatformConfig,
    request: RegistrationRequest,
    registration_token: str | None,
) -> tuple[int, str]:
    """POST the registration; return the LMS's status and body without judging them.

    Refuse with InsecureToolURL, before anything is sent, when the tool's own URLs are plain
    http outside insecure mode: start-up refuses such settings, so they come from a request
    that reached Gatehouse over http while `base_url` is unset.
    """
    check_tool_urls(request.insecure_urls, client.allow_insecure)
    headers = {"Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    response = client.post_json(
        platform.registration_endpoint, request.body, headers=headers, what="registration endpoint"
    )
    return response.status, response.text


def _insecure(urls: tuple[tuple[str, str], ...]) -> InsecureToolURL:
    shown = ", ".join(f"{name} {url}" for name, url in urls[:4])
    return InsecureToolURL(
        "Gatehouse stopped before contacting your LMS: it would have registered the tool with "
        f"plain-http addresses ({shown}). base_url is not set, so these addresses come from "
        "this request, which reached Gatehouse over http.",
        rule="tool-https",
        hint=N_(
            "Send this page to the tool's owner. They should set base_url to Gatehouse's "
            "public https address, or, behind a proxy that terminates TLS, set trusted_proxies to "
            "the number of proxies so their X-Forwarded-Proto header is honoured. Then start the "
            "registration again from your LMS."
        ),
    )


@dataclass(frozen=True)
class RegistrationResult:
    """What the platform granted: the client_id and, when it says so, deployment and scopes."""

    client_id: str
    deployment_id: str | None
    scopes: tuple[str, ...]
    registration_client_uri: str | None
    document: dict[str, Any] = field(repr=False, compare=False)


def parse_registration_response(
    status: int, body: str, requested_scopes: tuple[str, ...] = ()
) -> RegistrationResult:
    """Read the LMS's answer; raise PlatformRefused or InvalidRegistrationResponse."""
    if not 200 <= status < 300:
        raise PlatformRefused(
            f"The LMS answered the registration with HTTP {status}: {summarize_error(body)}",
            lms_status=status,
            lms_body=body,
            hint=refusal_hint(status, body),
        )
    try:
        document = nesting.loads(body)
    except ValueError as exc:
        what = f"nests more than {nesting.MAX_JSON_DEPTH} levels deep"
        raise InvalidRegistrationResponse(
            "The LMS accepted the registration but its answer "
            f"{what if isinstance(exc, nesting.TooDeep) else 'is not JSON'}.",
            lms_status=status,
            lms_body=body,
            rule="response-json",
        ) from None
    if not isinstance(document, dict):
        raise InvalidRegistrationResponse(
            "The LMS's answer is not a JSON object.",
            lms_status=status,
            lms_body=body,
            rule="response-json",
        )
    client_id = document.get("client_id")
    if isinstance(client_id, bool) or not isinstance(client_id, str | int) or client_id == "":
        raise InvalidRegistrationResponse(
            "The LMS's answer has no client_id, so the registration cannot be used.",
            lms_status=status,
            lms_body=body,
            rule="response-client-id",
        )
    tool_config = document.get(TOOL_CONFIGURATION)
    deployment_id = None
    if isinstance(tool_config, dict):
        deployment_id = _id_string(tool_config.get("deployment_id"))
    if deployment_id is None:
        deployment_id = _id_string(document.get("deployment_id"))
    scope = document.get("scope")
    claimed = scope.split() if isinstance(scope, str) else requested_scopes
    # The answer's `scope` is what the LMS claims; `openid` there (Canvas adds it) is no
    # service grant, and Canvas's token endpoint refuses it.
    scopes = tuple(dict.fromkeys(s for s in claimed if is_service_scope(s)))
    client_uri = document.get("registration_client_uri")
    return RegistrationResult(
        client_id=str(client_id),
        deployment_id=deployment_id,
        scopes=scopes,
        registration_client_uri=client_uri if isinstance(client_uri, str) else None,
        document=document,
    )


def _id_string(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, str | int):
        return str(value)
    return None


def summarize_error(body: str, limit: int = 300) -> str:
    """Return the LMS's error in one line: OIDC error, Canvas errors, or plain text."""
    try:
        document = nesting.loads(body)
    except ValueError:
        document = None
    parts: list[str] = []
    if isinstance(document, dict):
        if isinstance(document.get("error"), str):
            parts.append(document["error"])
        if isinstance(document.get("error_description"), str):
            parts.append(document["error_description"])
        if isinstance(document.get("errorMessage"), str):
            parts.append(document["errorMessage"])
        errors = document.get("errors")
        if isinstance(errors, list):
            for item in errors:
                if isinstance(item, dict):
                    parts.append(str(item.get("message") or item.get("error") or item))
                else:
                    parts.append(str(item))
        elif isinstance(errors, dict):
            parts.extend(f"{key}: {value}" for key, value in errors.items())
    text = "; ".join(parts) if parts else " ".join(body.split())
    if not text:
        text = "(empty body)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


HINTS = {
    "token_already_used": N_(
        "The LMS's registration token was already used. Start the registration again from your LMS."
    ),
    "missing_registration_token": N_(
        "The LMS received no registration token. If the LMS runs behind Apache, make sure it "
        "passes the Authorization header (CGIPassAuth On), then start again from the LMS."
    ),
    "domain_targetlinkuri_mismatch": N_(
        "The tool's domain does not match its launch URL. The tool owner should check "
        "tool.domain and tool.target_link_uri."
    ),
}


def refusal_hint(status: int, body: str) -> str:
    """Suggest what the admin or the tool owner can do about a refusal."""
    for marker, hint in HINTS.items():
        if marker in body:
            return hint
    if status in (401, 403):
        return N_(
            "The LMS did not accept the registration token; it may have expired (tokens last "
            "about an hour). Start the registration again from your LMS."
        )
    if status == 422 or status == 400:
        return N_(
            "The LMS rejected the tool's registration details. Send this page to the tool's "
            "owner so they can adjust the tool's configuration."
        )
    if status >= 500:
        return N_(
            "The LMS had an internal error. Wait a few minutes, then start the registration "
            "again from your LMS."
        )
    return N_(
        "Start the registration again from your LMS; if it fails again, contact the tool owner."
    )
