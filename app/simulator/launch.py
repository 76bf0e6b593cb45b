"""The launch side of the simulated LMS: OIDC login, id_tokens, token endpoint, deep-link returns.

An LMS launches a tool in three hops: it sends the browser to the tool's login URL with
`iss`, `login_hint`, `lti_message_hint` and `lti_storage_target`; the tool sends it back to the
LMS's authorization endpoint with `state` and `nonce`; the LMS answers with a self-submitting
form that POSTs a signed id_token to the tool's redirect URI. `LaunchSide` is that LMS half,
checking what the tool sends the way a strict platform would, and `run_launch` is a browser
following the hops.

The course page that frames a launch is also the platform side of 1EdTech's client-side
postMessage storage (lti-cs-pm, lti-pm-s, lti-cs-oidc v0p1): it answers `lti.capabilities`, and
`lti.put_data` / `lti.get_data` from the tool's origin only, keeping values per origin.
Canvas-like profiles answer storage from a frame named "post_message_forwarding" on the OIDC
origin (instructure/canvas-lms, ui/shared/lti/jquery/subjects/lti.capabilities.ts and
platform_storage.ts); the others from the course page itself (`lti_storage_target=_parent`,
as Sakai sends).
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jws import extract_compact
from werkzeug.wrappers import Request, Response

from app.lti.constants import SIGNING_ALG, MessageType, ProductFamily, Scope
from app.lti.launch import (
    CLAIM_CONTEXT,
    CLAIM_DEPLOYMENT_ID,
    CLAIM_MESSAGE_TYPE,
    CLAIM_RESOURCE_LINK,
    CLAIM_ROLES,
    CLAIM_TARGET_LINK_URI,
    CLAIM_TOOL_PLATFORM,
    CLAIM_VERSION,
    CLIENT_ASSERTION_TYPE,
    DEEP_LINKING_RESPONSE,
    DL_CONTENT_ITEMS,
    DL_DATA,
    DL_SETTINGS,
    LTI_VERSION,
    with_query,
)
from app.testing.serving import is_loopback_host

if TYPE_CHECKING:
    from app.simulator.server import Simulator

RL = MessageType.RESOURCE_LINK.value
DL = MessageType.DEEP_LINKING.value
ID_TOKEN_LIFETIME = 300
ACCESS_TOKEN_LIFETIME = 3600
DEEP_LINK_RETURN_PATH = "/lti/deep_link_return"
COURSE_PAGE_PATH = "/course/launch"
PLATFORM_STORAGE_SCRIPT_PATH = "/lti/platform_storage.js"
FORWARDING_FRAME_PATH = "/lti/post_message_forwarding"
FORWARDING_FRAME = "post_message_forwarding"  # Canvas's frame name
SCRIPT_FILE = Path(__file__).parent / "data" / "platform_storage.js"
DEFAULT_STORAGE = object()  # prepare(): the profile's lti_storage_target
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
DEFAULT_USER = {
    "sub": "user-1001",
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "email": "ada@example.edu",
}
KEYSET_TIMEOUT = 5.0


@dataclass
class PendingLaunch:
    """A launch the LMS started: who, where, and anything a test wants to change in its token."""

    message_hint: str
    login_hint: str
    registration_client_id: str
    deployment_id: str
    message_type: str
    login_url: str
    claims: dict[str, Any]
    key: RSAKey | None = None
    used: bool = False
    storage_target: str | None = None


def _error_page(status: int, text: str) -> Response:
    body = f"<!doctype html><title>LMS error</title><h1>Launch error</h1><p>{html.escape(text)}</p>"
    return Response(body, status, content_type="text/html; charset=utf-8")


class LaunchSide:
    """The platform's launch endpoints for one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.pending: dict[str, PendingLaunch] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.deep_link_responses: list[dict[str, Any]] = []
        self.retired_keys: list[RSAKey] = []
        self._used_jtis: set[str] = set()
        self._lock = threading.Lock()

    # --- what tests call -----------------------------------------------------------------------

    def prepare(
        self,
        client_id: str,
        *,
        deployment_id: str | None = None,
        message_type: str = RL,
        claims: dict[str, Any] | None = None,
        sign_with: RSAKey | None = None,
        send_client_id: bool = True,
        target_link_uri: str | None = None,
        storage_target: Any = DEFAULT_STORAGE,
    ) -> PendingLaunch:
        """Start a launch of registration `client_id`; return it with the tool login URL.

        `storage_target` is the login's `lti_storage_target`: by default the profile's frame
        ("post_message_forwarding" on Canvas, "_parent" elsewhere); None sends none, as an LMS
        without platform storage does.
        """
        registration = self.sim.registration_by_client_id(client_id)
        if registration is None:
            raise ValueError(f"No registration with client_id {client_id!r} to launch")
        tool = registration.tool
        config = tool.get("https://purl.imsglobal.org/spec/lti-tool-configuration") or {}
        login_uri = tool.get("initiate_login_uri")
        if not login_uri:
            raise ValueError("The registration has no initiate_login_uri to launch")
        deployment = deployment_id or registration.deployment_id or "1"
        target = target_link_uri or config.get("target_link_uri") or tool["redirect_uris"][0]
        hint = secrets.token_urlsafe(12)
        params = {
            "iss": self.sim.issuer,
            "login_hint": DEFAULT_USER["sub"],
            "target_link_uri": target,
            "lti_message_hint": hint,
            "lti_deployment_id": deployment,
        }
        if send_client_id:
            params["client_id"] = client_id
        if storage_target is DEFAULT_STORAGE:
            storage_target = (
                FORWARDING_FRAME
                if self.sim.profile.family == ProductFamily.CANVAS.value
                else "_parent"
            )
        if storage_target:
            params["lti_storage_target"] = storage_target
        launch = PendingLaunch(
            message_hint=hint,
            login_hint=DEFAULT_USER["sub"],
            registration_client_id=client_id,
            deployment_id=deployment,
            message_type=message_type,
            login_url=with_query(login_uri, params),
            claims={CLAIM_TARGET_LINK_URI: target, **(claims or {})},
            key=sign_with,
            storage_target=storage_target,
        )
        with self._lock:
            self.pending[hint] = launch
        self.sim.event(
            None,
            f"launch prepared: {message_type} of client_id {client_id} deployment {deployment}",
        )
        return launch

    def rotate_key(self) -> RSAKey:
        """Start signing with a new key; the old one stays in the key set."""
        with self._lock:
            assert self.sim.key is not None  # noqa: S101 - started simulators have a key
            self.retired_keys.append(self.sim.key)
            self.sim.key = new_key()
        self.sim.event(None, f"platform key rotated: now signing with kid {self.sim.key.kid}")
        return self.sim.key

    def public_keys(self) -> list[dict[str, Any]]:
        """Return the published keys: the current one and the retired ones."""
        assert self.sim.key is not None  # noqa: S101 - started simulators have a key
        return [k.as_dict(private=False) for k in (self.sim.key, *self.retired_keys)]

    # --- the authorization endpoint ------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        """Check the tool's authentication request and answer with the id_token form."""
        params = request.values
        problem, launch, registration = self._check_authorization(params)
        if problem:
            self.sim.event(None, f"authorization request refused: {problem}")
            return _error_page(400, problem)
        launch.used = True
        claims = self.id_token_claims(launch, registration, params["nonce"])
        key = launch.key or self.sim.key
        token = jwt.encode({"alg": SIGNING_ALG, "kid": key.kid, "typ": "JWT"}, claims, key)
        self.sim.event(
            None,
            f"authorization ok: id_token for client_id "
            f"{registration.client_id} posted to {params['redirect_uri']}",
        )
        return Response(
            auto_post_form(params["redirect_uri"], {"id_token": token, "state": params["state"]}),
            200,
            content_type="text/html; charset=utf-8",
        )

    def _check_authorization(self, params):
        expected = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
        }
        for name, value in expected.items():
            if params.get(name) != value:
                return f"{name} must be {value!r}, got {params.get(name)!r}", None, None
        for name in ("client_id", "redirect_uri", "login_hint", "state", "nonce"):
            if not params.get(name):
                return f"{name} is required", None, None
        with self._lock:
            launch = self.pending.get(params.get("lti_message_hint", ""))
        if launch is None:
            return "lti_message_hint does not name a launch this LMS started", None, None
        if launch.used:
            return "this launch's lti_message_hint was already used", None, None
        if params["client_id"] != launch.registration_client_id:
            return "client_id does not match the launched registration", None, None
        if params["login_hint"] != launch.login_hint:
            return "login_hint does not match the user who launched", None, None
        registration = self.sim.registration_by_client_id(launch.registration_client_id)
        if params["redirect_uri"] not in registration.tool.get("redirect_uris", []):
            return (
                (
                    f"redirect_uri {params['redirect_uri']!r} is not one of the registered "
                    "redirect_uris"
                ),
                None,
                None,
            )
        return None, launch, registration

    def id_token_claims(self, launch: PendingLaunch, registration, nonce: str) -> dict[str, Any]:
        """Return the claims of the launch's id_token, with the test's changes applied."""
        now = int(time.time())
        profile = self.sim.profile
        claims: dict[str, Any] = {
            "iss": self.sim.issuer,
            "aud": registration.client_id,
            "azp": registration.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "nonce": nonce,
            **DEFAULT_USER,
            CLAIM_VERSION: LTI_VERSION,
            CLAIM_MESSAGE_TYPE: launch.message_type,
            CLAIM_DEPLOYMENT_ID: launch.deployment_id,
            CLAIM_ROLES: [INSTRUCTOR],
            CLAIM_CONTEXT: {
                "id": "course-42",
                "label": "BIO101",
                "title": "Introduction to Biology",
            },
            CLAIM_TOOL_PLATFORM: {
                "guid": f"{profile.name}-simulator",
                "name": profile.display_name,
                "product_family_code": profile.family,
                "version": profile.launch_version or profile.version,
            },
        }
        if launch.message_type == DL:
            claims[DL_SETTINGS] = {
                "deep_link_return_url": self.sim.base_url + DEEP_LINK_RETURN_PATH,
                "accept_types": ["ltiResourceLink", "link"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True,
                "data": f"dl-{launch.message_hint}",
            }
        else:
            claims[CLAIM_RESOURCE_LINK] = {"id": "link-7", "title": "Week 1 quiz"}
        for name, value in launch.claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    # --- the token endpoint --------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        """Grant an access token for a valid private_key_jwt client assertion, as this LMS does."""
        form = request.form
        record = {"scope": form.get("scope", ""), "status": 400, "error": None}
        with self._lock:
            self.token_requests.append(record)
        error = self._check_token_request(request, record)
        if error:
            code, description = error
            record["error"] = f"{code}: {description}"
            self.sim.event(None, f"token request refused: {code}: {description}")
            body = {"error": code, "error_description": description}
            return Response(
                json.dumps(body),
                400 if code != "invalid_client" else 401,
                content_type="application/json",
            )
        registration = self.sim.registration_by_client_id(record["client_id"])
        requested = form.get("scope", "").split()
        outcome = token_scopes(self.sim.profile, registration.scopes, requested)
        if isinstance(outcome, ScopeRefusal):
            record["error"] = f"invalid_scope: {' '.join(outcome.refused)}"
            self.sim.event(
                None,
                f"token request refused: invalid_scope ({' '.join(outcome.refused) or 'no scope'})",
            )
            return Response(
                json.dumps(outcome.body),
                400,
                headers=outcome.headers,
                content_type="application/json",
            )
        record["status"] = 200
        record["granted"] = " ".join(outcome)
        body = {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": " ".join(outcome),
        }
        record["access_token"] = body["access_token"]
        self.sim.event(
            None,
            f"token granted for scope {body['scope']!r}"
            + (f" (asked {form['scope']!r})" if outcome != requested else ""),
        )
        return Response(json.dumps(body), 200, content_type="application/json")

    def _check_token_request(self, request: Request, record) -> tuple[str, str] | None:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return "unsupported_grant_type", "grant_type must be client_credentials"
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return "invalid_client", "client_assertion_type must be jwt-bearer"
        assertion = form.get("client_assertion", "")
        try:
            unverified = json.loads(extract_compact(assertion.encode()).payload)
        except (JoseError, ValueError, UnicodeError):
            return "invalid_client", "client_assertion is not a JWT"
        registration = self.sim.registration_by_client_id(str(unverified.get("iss")))
        if registration is None:
            return "invalid_client", "the assertion's iss is not a registered client_id"
        record["client_id"] = registration.client_id
        try:
            keys = requests.get(registration.tool["jwks_uri"], timeout=KEYSET_TIMEOUT).json()
            claims = jwt.decode(
                assertion, KeySet.import_key_set(keys), algorithms=[SIGNING_ALG]
            ).claims
        except (requests.RequestException, ValueError, JoseError) as exc:
            return "invalid_client", f"the assertion's signature did not verify ({exc})"
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences or []
        # The token URL itself, or what the configuration advertised as authorization_server.
        accepted = {
            request.base_url,
            self.sim.profile.extra_configuration(None).get("authorization_server"),
        }
        if claims.get("sub") != registration.client_id:
            return "invalid_client", "the assertion's sub must be the client_id"
        if not accepted & set(audiences):
            return "invalid_client", f"the assertion's aud {audiences} is not the token endpoint"
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            return "invalid_client", "the assertion has expired"
        with self._lock:
            if not claims.get("jti") or claims["jti"] in self._used_jtis:
                return "invalid_client", "the assertion's jti is missing or was used before"
            self._used_jtis.add(claims["jti"])
        return None

    # --- deep linking return -------------------------------------------------------------------

    def deep_link_return(self, request: Request) -> Response:
        """Accept the tool's LtiDeepLinkingResponse, checked like the LMS would."""
        token = request.form.get("JWT", "")
        try:
            unverified = json.loads(extract_compact(token.encode()).payload)
            registration = self.sim.registration_by_client_id(str(unverified.get("iss")))
            if registration is None:
                raise ValueError("its iss is not a registered client_id")
            keys = requests.get(registration.tool["jwks_uri"], timeout=KEYSET_TIMEOUT).json()
            claims = dict(
                jwt.decode(token, KeySet.import_key_set(keys), algorithms=[SIGNING_ALG]).claims
            )
            problems = deep_link_problems(claims, self.sim.issuer)
            if problems:
                raise ValueError("; ".join(problems))
        except (JoseError, ValueError, UnicodeError, requests.RequestException) as exc:
            self.sim.event(None, f"deep linking response refused: {exc}")
            return _error_page(400, f"The deep linking response was refused: {exc}")
        with self._lock:
            self.deep_link_responses.append(claims)
        items = claims.get(DL_CONTENT_ITEMS, [])
        self.sim.event(None, f"deep linking response: {len(items)} content item(s) added")
        body = (
            f"<!doctype html><title>Content added</title><h1>Content added</h1>"
            f"<p data-items='{len(items)}'>{len(items)} item(s) added to the course.</p>"
        )
        return Response(body, 200, content_type="text/html; charset=utf-8")

    # --- a course page that frames the tool ----------------------------------------------------

    def course_page(self, request: Request) -> Response:
        """Show a course page with the launch in an iframe, as Canvas and Moodle embed tools.

        The page answers the tool's client-side postMessages (`platform_storage.js`): storage
        itself when the launch's storage target is "_parent", else through a hidden frame of
        that name, as Canvas does.
        """
        with self._lock:
            launch = self.pending.get(request.args.get("launch", ""))
        if launch is None:
            return _error_page(404, "No such launch")
        src = html.escape(launch.login_url)
        tool_origin = html.escape(_origin(launch.login_url))
        target = launch.storage_target
        storage = ""
        if target:
            storage = f' data-tool-origin="{tool_origin}"'
            storage += f' data-storage-frame="{html.escape(target)}"'
            storage += " data-answers-capabilities"
            storage += " data-answers-storage" if target == "_parent" else ""
        forwarding = (
            f'<iframe name="{html.escape(target)}" title="LMS storage" hidden '
            f'src="{FORWARDING_FRAME_PATH}?tool_origin={quote(_origin(launch.login_url))}">'
            "</iframe>"
            if target and target != "_parent"
            else ""
        )
        body = (
            "<!doctype html><html><head><title>BIO101 · Simulated LMS</title></head>"
            f"<body{storage}>"
            # Listening before the tool's frame loads: its login page asks at once.
            f'<script src="{PLATFORM_STORAGE_SCRIPT_PATH}"></script>'
            "<h1>Introduction to Biology</h1>"
            f"{forwarding}"
            f'<iframe id="tool" title="Tool" src="{src}" width="900" height="700" '
            'allow="clipboard-write"></iframe></body></html>'
        )
        return Response(body, 200, content_type="text/html; charset=utf-8")

    def forwarding_frame(self, request: Request) -> Response:
        """Show the hidden frame that keeps the tool's platform storage (Canvas's forwarding)."""
        tool_origin = html.escape(request.args.get("tool_origin", ""))
        body = (
            "<!doctype html><html><head><title>LMS storage</title></head>"
            f'<body data-tool-origin="{tool_origin}" data-answers-storage>'
            f'<script src="{PLATFORM_STORAGE_SCRIPT_PATH}"></script></body></html>'
        )
        return Response(body, 200, content_type="text/html; charset=utf-8")

    def platform_storage_script(self, request: Request) -> Response:
        """Serve the platform side of the client-side postMessages."""
        return Response(SCRIPT_FILE.read_text(), 200, content_type="text/javascript")

    def course_page_url(self, launch: PendingLaunch) -> str:
        """Return the URL of the course page that frames `launch`."""
        return f"{self.sim.base_url}{COURSE_PAGE_PATH}?launch={launch.message_hint}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def new_key() -> RSAKey:
    """Return a new platform signing key."""
    return RSAKey.generate_key(
        2048,
        parameters={"kid": uuid.uuid4().hex[:20], "use": "sig", "alg": SIGNING_ALG},
        private=True,
    )


def deep_link_problems(claims: dict[str, Any], issuer: str) -> list[str]:
    """Return what an LMS would refuse in an LtiDeepLinkingResponse."""
    problems = []
    if claims.get("aud") not in (issuer, [issuer]):
        problems.append(f"aud must be the platform issuer {issuer}")
    if claims.get(CLAIM_MESSAGE_TYPE) != DEEP_LINKING_RESPONSE:
        problems.append("message_type must be LtiDeepLinkingResponse")
    if claims.get(CLAIM_VERSION) != LTI_VERSION:
        problems.append("version must be 1.3.0")
    if not claims.get(CLAIM_DEPLOYMENT_ID):
        problems.append("deployment_id is required")
    if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
        problems.append("the response has expired")
    if not isinstance(claims.get(DL_CONTENT_ITEMS, []), list):
        problems.append("content_items must be a list")
    if not str(claims.get(DL_DATA, "")).startswith("dl-"):
        problems.append("data must echo the deep_linking_settings data")
    return problems


def auto_post_form(action: str, fields: dict[str, str]) -> str:
    """Return a page whose form POSTs `fields` to `action` as soon as it loads."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return (
        "<!doctype html><html><head><title>Launching…</title></head><body>"
        f'<form id="launch" method="post" action="{html.escape(action)}">{inputs}'
        '<noscript><button type="submit">Continue</button></noscript></form>'
        '<script>document.getElementById("launch").submit();</script></body></html>'
    )


# --- which scopes a token endpoint grants --------------------------------------------------------


@dataclass(frozen=True)
class ScopeRefusal:
    """A token endpoint's `invalid_scope` answer: the body and headers this LMS sends."""

    refused: tuple[str, ...]
    body: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


# lib/canvas/oauth/invalid_scope_error.rb (instructure/canvas-lms): the description's start.
CANVAS_INVALID_SCOPE = (
    "A requested scope is invalid, unknown, malformed, or exceeds the scope granted by the "
    "resource owner. The following scopes were requested, but not granted: "
)
# The scopes Sakai's handleTokenPost checks, in its order; it ignores any other.
SAKAI_CHECKED_SCOPES = (
    Scope.AGS_LINEITEM_READONLY.value,
    Scope.AGS_LINEITEM.value,
    Scope.AGS_SCORE.value,
    Scope.AGS_RESULT_READONLY.value,
    Scope.NRPS_MEMBERSHIP.value,
    "https://purl.imsglobal.org/spec/lti-gs/scope/contextgroup.readonly",
)


def to_sentence(words: list[str]) -> str:
    """Join words as Rails' Array#to_sentence does in English ("a, b, and c")."""
    if len(words) < 3:
        return " and ".join(words)
    return ", ".join(words[:-1]) + ", and " + words[-1]


def token_scopes(
    profile, grants: tuple[str, ...], requested: list[str]
) -> list[str] | ScopeRefusal:
    """Return the scopes this LMS's token endpoint grants for `requested`, or its refusal.

    `grants` are what the LMS really grants the tool (Registration.scopes), whatever its
    registration answer claimed.
    """
    if profile.family == ProductFamily.CANVAS.value:
        # instructure/canvas-lms, lib/canvas/oauth/grant_types/client_credentials.rb raises
        # InvalidScopeError unless provider.valid_scopes? (lib/canvas/oauth/provider.rb: scopes
        # present and every one among the developer key's), whose 400 body is
        # lib/canvas/oauth/invalid_scope_error.rb's. The key's scopes never hold openid
        # (spec/controllers/lti/ims/dynamic_registration_controller_spec.rb: `dk.scopes` is
        # the registration's `scopes - ["openid"]`), though the answer claims it.
        key_scopes = [s for s in grants if s != "openid"]
        missing = [s for s in requested if s not in key_scopes]
        if not requested or missing:
            return ScopeRefusal(
                tuple(missing),
                {
                    "error": "invalid_scope",
                    "error_description": CANVAS_INVALID_SCOPE + to_sentence(missing),
                },
            )
        return requested  # generate_token answers `scope: allowed_scopes`, the request's
    if profile.family == ProductFamily.SAKAI.value:
        # sakaiproject/sakai, lti/lti-blis/src/java/org/sakaiproject/lti13/LTI13Servlet.java,
        # handleTokenPost: each scope it knows, in order, must be allowed by the admin's
        # checkboxes, or the whole request is refused at the first one (LTI13Util.return400:
        # {"error": "invalid_scope"}, the scope in X-Tsugi-LTI13-Error-Detail); scopes it does
        # not know are left out of the answer's `scope`. (Sakai matches with
        # String.contains, so asking for lineitem.readonly checks lineitem too; both are the
        # same checkbox there, so exact matching grants the same.)
        for scope in SAKAI_CHECKED_SCOPES:
            if scope in requested and scope not in grants:
                return ScopeRefusal(
                    (scope,), {"error": "invalid_scope"}, {"X-Tsugi-LTI13-Error-Detail": scope}
                )
        return [s for s in requested if s in SAKAI_CHECKED_SCOPES]
    if getattr(profile, "token_grants_overlap", profile.family == ProductFamily.MOODLE.value):
        # moodle/moodle, mod/lti/token.php: `array_intersect($requestedscopes,
        # $permittedscopes)`, refused with 400 {"error": "invalid_scope"} only when empty;
        # the answer's `scope` is the overlap.
        overlap = [s for s in requested if s in grants]
        if not overlap:
            return ScopeRefusal(tuple(requested), {"error": "invalid_scope"})
        return overlap
    # RFC 6749 section 5.2: invalid_scope for the whole request.
    refused = [s for s in requested if s not in grants]
    if not requested or refused:
        return ScopeRefusal(
            tuple(refused),
            {
                "error": "invalid_scope",
                "error_description": f"scopes not granted to this tool: {' '.join(refused)}",
            },
        )
    return requested


# --- a browser following a launch ----------------------------------------------------------------


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = values.get("action")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value") or ""


def parse_form(page: str) -> tuple[str, dict[str, str]] | None:
    """Return the (action, fields) of the first form on a page, or None."""
    parser = _FormParser()
    parser.feed(page)
    return (parser.action, parser.fields) if parser.action else None


@dataclass
class LaunchResult:
    """Where a launch ended: the tool's last answer, the form the LMS posted, the browser."""

    status: int
    text: str
    location: str | None
    form: tuple[str, dict[str, str]] | None
    steps: list[str] = field(default_factory=list)
    session: requests.Session | None = None

    @property
    def handoff_token(self) -> str | None:
        """Return the lti_token the tool was redirected with, if any."""
        if not self.location:
            return None
        return (parse_qs(urlsplit(self.location).query).get("lti_token") or [None])[0]

    @property
    def error_rule(self) -> str | None:
        """Return the rule a Gatehouse error page names (its data-lti-error attribute)."""
        match = re.search(r'data-lti-error="([^"]+)"', self.text)
        return match.group(1) if match else None


class BrowserCookies(http.cookiejar.DefaultCookiePolicy):
    """Cookie rules of a browser: `Secure` cookies also go to loopback over plain http.

    Browsers count http://localhost and 127.0.0.1 as secure contexts; `http.cookiejar` sends
    Secure cookies only over https.
    """

    def return_ok_secure(self, cookie, request) -> bool:
        if cookie.secure and is_loopback_host(urlsplit(request.get_full_url()).hostname):
            return True
        return super().return_ok_secure(cookie, request)


class BrowserSession(requests.Session):
    """A requests session that keeps cookies the way a browser's first-party page does."""

    def __init__(self) -> None:
        super().__init__()
        self.cookies.set_policy(BrowserCookies())

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        # requests builds the Cookie header from a copy of the jar with the default policy.
        prepared.headers.pop("Cookie", None)
        prepared.prepare_cookies(self.cookies)
        return prepared


def browser_session() -> requests.Session:
    """Return a session that sends cookies as a browser does (BrowserSession)."""
    return BrowserSession()


AUTH_URL = re.compile(r'data-auth-url="([^"]*)"')


def login_destination(response: requests.Response) -> str | None:
    """Return where a tool's login answer sends the browser: its redirect, or its login page's
    `data-auth-url` (Gatehouse answers with a page that checks the launch's cookie first)."""
    if response.status_code in (302, 303):
        return response.headers.get("Location")
    match = AUTH_URL.search(response.text) if response.status_code == 200 else None
    return html.unescape(match.group(1)) if match else None


def run_launch(
    login_url: str, timeout: float = 15.0, session: requests.Session | None = None
) -> LaunchResult:
    """Follow a launch from the tool's login URL to the tool's answer, like a browser.

    The browser keeps cookies (a first-party window, where the tool's cookie works) and runs no
    script: from a login page it follows `data-auth-url`, as the page's script does once its
    cookie check passes.
    """
    session = session or browser_session()
    steps = [f"GET {login_url}"]
    response = session.get(login_url, allow_redirects=False, timeout=timeout)
    authorize = login_destination(response)
    if authorize is None:
        return LaunchResult(response.status_code, response.text, None, None, steps, session)
    steps.append(f"{response.status_code} -> GET {authorize}")
    response = session.get(authorize, allow_redirects=False, timeout=timeout)
    form = parse_form(response.text) if response.status_code == 200 else None
    if form is None:
        return LaunchResult(response.status_code, response.text, None, None, steps, session)
    action, fields = form
    steps.append(f"LMS form -> POST {action}")
    response = session.post(action, data=fields, allow_redirects=False, timeout=timeout)
    steps.append(f"{response.status_code} from the tool")
    return LaunchResult(
        response.status_code,
        response.text,
        response.headers.get("Location"),
        form,
        steps,
        session,
    )


def post_form(
    form: tuple[str, dict[str, str]],
    timeout: float = 15.0,
    session: requests.Session | None = None,
) -> requests.Response:
    """POST a parsed form again (a replay, a double submit), from `session`'s browser if given."""
    action, fields = form
    return (session or requests).post(action, data=fields, allow_redirects=False, timeout=timeout)


def verdict(result: LaunchResult) -> tuple[bool, str]:
    """Tell whether a launch reached the tool, in one line for a terminal."""
    if result.status == 303 and result.handoff_token:
        return True, f"handed to the tool: {result.location.split('?')[0]} with an lti_token"
    if result.status == 200 and 'data-lti-launch="verified"' in result.text:
        return True, "Gatehouse verified the launch (no launch.tool_url: verification page)"
    title = re.search(r"<h1[^>]*>(.*?)</h1>", result.text, re.S)
    lead = re.search(r'<p class="lead"[^>]*>(.*?)</p>', result.text, re.S)
    words = " ".join(" ".join(html.unescape(m.group(1)).split()) for m in (title, lead) if m)
    return False, f"HTTP {result.status}: {words or result.text[:200]}" + (
        f" (rule {result.error_rule})" if result.error_rule else ""
    )
