"""LMS profiles: what each platform advertises, how it checks a registration, what it answers.

Each profile is one class. Adding an LMS means adding one subclass of `Profile` and listing it in
`PROFILE_CLASSES`. The LMS's own code is the judge: every rule a profile enforces names where it
was read (repository and path; a commit where the version matters), and what can be data (Canvas's
registration JSON Schema, its placement, display-type and scope lists) is a JSON file under
app/simulator/data/. Brightspace publishes no code: its rules come from D2L's documentation only.

A registration's `scopes` are what the LMS's token endpoint will really grant; the answer's
`scope` may claim more (Canvas adds `openid`, Moodle over-reports `lineitem`, Sakai echoes the
request). `token_grants_overlap` tells the token endpoint how the LMS refuses scopes it does not
grant: False, the whole request fails with invalid_scope (Canvas, Sakai); True, it grants the
overlap and says so in the token response's `scope` (Moodle).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode, urlsplit

import requests
from joserfc.errors import JoseError
from werkzeug.wrappers import Request, Response

from app.lti.constants import (
    CANVAS_PREFIX,
    PLATFORM_CONFIGURATION,
    TOKEN_ENDPOINT_AUTH_METHOD,
    TOOL_CONFIGURATION,
    MessageType,
    ProductFamily,
    Scope,
)
from app.simulator.checks import (
    canvas_schema_errors,
    compact,
    host_port,
    is_http_uri,
    load_data,
    php_empty,
)
from app.simulator.records import Accepted, Grant, Registration, Rejection
from app.testing.serving import is_loopback_host

if TYPE_CHECKING:
    from app.simulator.server import Simulator

RL = MessageType.RESOURCE_LINK.value
DL = MessageType.DEEP_LINKING.value
AGS_SCOPES = (
    Scope.AGS_LINEITEM.value,
    Scope.AGS_LINEITEM_READONLY.value,
    Scope.AGS_RESULT_READONLY.value,
    Scope.AGS_SCORE.value,
)
KEYSET_FETCH_TIMEOUT = 5.0


def bearer_token(request: Request) -> str | None:
    """Return the Bearer token of the Authorization header, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def requested_scopes(body: dict[str, Any]) -> list[str]:
    """Split the request's space-separated `scope` string."""
    scope = body.get("scope")
    return scope.split() if isinstance(scope, str) else []


def tool_configuration(body: Any) -> Any:
    """Return the LTI tool-configuration object of a registration request (or None)."""
    return body.get(TOOL_CONFIGURATION) if isinstance(body, dict) else None


class Profile:
    """An LMS as the platform side of Dynamic Registration; subclasses hold each LMS's rules."""

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    version: ClassVar[str] = ""
    # The `version` of a launch's tool_platform claim, when it is not the configuration's.
    launch_version: ClassVar[str | None] = None
    opens_in: ClassVar[str] = "an iframe"
    admin_page: ClassVar[str] = "/"
    supports_update: ClassVar[bool] = True
    config_how: ClassVar[str] = "public, no token"
    config_rule: ClassVar[str] = "/.well-known/openid-configuration"
    registration_rule: ClassVar[str] = "/lti/registrations"
    registration_methods: ClassVar[tuple[str, ...]] = ("POST",)
    # How the token endpoint treats requested scopes it does not grant (see the module docstring).
    token_grants_overlap: ClassVar[bool] = False
    jwks_path: ClassVar[str] = "/.well-known/jwks.json"
    authorization_path: ClassVar[str] = "/lti/authorize"
    oauth_endpoint_path: ClassVar[str] = "/lti/token"
    scopes_supported: ClassVar[tuple[str, ...]] = (
        "openid",
        *AGS_SCOPES,
        Scope.NRPS_MEMBERSHIP.value,
    )
    claims_supported: ClassVar[tuple[str, ...]] = (
        "sub",
        "iss",
        "name",
        "given_name",
        "family_name",
        "email",
        "picture",
        "locale",
    )
    subject_types_supported: ClassVar[tuple[str, ...]] = ("public", "pairwise")
    variables: ClassVar[tuple[str, ...]] = (
        "Context.id",
        "Context.id.history",
        "ResourceLink.id",
        "User.id",
        "Person.email.primary",
    )

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    # --- starting a registration -------------------------------------------------------------

    def issue(self, grant: Grant) -> None:
        """Fill in the grant's token (and anything the LMS allocates up front)."""
        grant.token = self.sim.sign(
            {
                "iss": self.sim.issuer,
                "sub": "registration",
                "jti": uuid.uuid4().hex,
                "iat": int(grant.issued_at),
                "exp": int(grant.expires_at),
            }
        )

    def config_url(self, grant: Grant) -> str:
        """Return the `openid_configuration` URL handed to the tool for this grant."""
        return self.sim.base_url + self.config_rule

    def initiation_params(self, grant: Grant) -> dict[str, str]:
        """Return the query parameters this LMS adds to the tool's registration URL."""
        return {"openid_configuration": self.config_url(grant), "registration_token": grant.token}

    def notes(self) -> list[str]:
        """Return sentences about how this LMS shows the tool, for the report."""
        return [f"{self.display_name} opens the registration URL in {self.opens_in}."]

    # --- discovery -----------------------------------------------------------------------------

    def config_grant(self, request: Request, args: dict[str, str]) -> Grant | None:
        """Check the configuration GET's credentials; return its grant (None when public)."""
        return None

    def messages_supported(self) -> list[Any]:
        """Return `messages_supported` as this LMS writes it."""
        return [
            {"type": RL, "placements": ["ContentArea", "course_navigation"]},
            {"type": DL, "placements": ["ContentArea", "RichTextEditor"]},
        ]

    def supported_message_types(self) -> set[str]:
        """Return the message types a tool may register with this LMS."""
        types = set()
        for message in self.messages_supported():
            types.add(message["type"] if isinstance(message, dict) else message)
        return types

    def platform_configuration(self) -> dict[str, Any]:
        """Return the LTI platform-configuration object."""
        return {
            "product_family_code": self.family,
            "version": self.version,
            "messages_supported": self.messages_supported(),
            "variables": list(self.variables),
        }

    def registration_endpoint(self, grant: Grant | None) -> str:
        """Return the registration endpoint URL advertised for this grant."""
        return self.sim.base_url + self.registration_rule

    def token_endpoint(self, grant: Grant | None) -> str:
        """Return the OAuth2 token endpoint URL advertised for this grant."""
        return self.sim.base_url + self.oauth_endpoint_path

    def openid_configuration(self, request: Request, grant: Grant | None) -> dict[str, Any]:
        """Return the platform's OpenID configuration document."""
        base = self.sim.base_url
        doc: dict[str, Any] = {
            "issuer": self.sim.issuer,
            "authorization_endpoint": base + self.authorization_path,
            "token_endpoint": self.token_endpoint(grant),
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": base + self.jwks_path,
            "registration_endpoint": self.registration_endpoint(grant),
            "scopes_supported": list(self.scopes_supported),
            "response_types_supported": ["id_token"],
            "subject_types_supported": list(self.subject_types_supported),
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": list(self.claims_supported),
        }
        doc.update(self.extra_configuration(grant))
        doc[PLATFORM_CONFIGURATION] = self.platform_configuration()
        return doc

    def extra_configuration(self, grant: Grant | None) -> dict[str, Any]:
        """Return configuration fields particular to this LMS (e.g. `authorization_server`)."""
        return {"authorization_server": self.token_endpoint(grant)}

    # --- registration --------------------------------------------------------------------------

    def request_token(self, request: Request, args: dict[str, str]) -> str | None:
        """Return the token that identifies which registration a POST belongs to."""
        return bearer_token(request)

    def authenticate(self, request: Request, token: str | None, args: dict[str, str]) -> Grant:
        """Check the POST's credentials and return its grant, or raise Rejection."""
        if token is None:
            raise self.error(401, "invalid_token", "A Bearer registration token is required.")
        grant = self.sim.grant_for(token)
        if grant is None:
            raise self.error(401, "invalid_token", "The registration token is not known.")
        if grant.expired:
            raise self.error(401, "invalid_token", "The registration token has expired.")
        if grant.used:
            raise self.error(401, "invalid_token", "The registration token has already been used.")
        return grant

    def parse_body(self, request: Request) -> Any:
        """Read the POST body as JSON, or raise this LMS's rejection."""
        try:
            return json.loads(request.get_data(as_text=True))
        except ValueError:
            raise self.error(
                400, "invalid_client_metadata", "The request body is not JSON."
            ) from None

    def validate(self, body: Any, grant: Grant) -> None:
        """Apply this LMS's rules to a request; raise Rejection on the first failure."""
        problem = dcr_problem(body, self.supported_message_types())
        if problem:
            raise self.error(400, "invalid_client_metadata", problem)

    def accept(self, body: dict[str, Any], grant: Grant) -> Accepted:
        """Record the registration and return this LMS's success answer."""
        previous = grant.update_of
        client_id = previous.client_id if previous else secrets.token_hex(8)
        deployment_id = previous.deployment_id if previous else str(uuid.uuid4())
        echo = copy.deepcopy(body)
        echo["client_id"] = client_id
        echo["registration_client_uri"] = f"{self.sim.base_url}/lti/registrations/{client_id}"
        supported = set(self.scopes_supported)
        granted = [s for s in requested_scopes(body) if s in supported and s != "openid"]
        echo["scope"] = " ".join(s for s in requested_scopes(body) if s in supported)
        echo[TOOL_CONFIGURATION]["deployment_id"] = deployment_id
        return Accepted(
            201, echo, self.registration(body, client_id, deployment_id, echo, granted=granted)
        )

    def review(self, body: dict[str, Any]) -> list[str]:
        """Return what this LMS silently made of an accepted request that the tool did not mean.

        The LMS does not refuse these; the simulator's report lists them as problems.
        """
        return []

    def read_registration(
        self, request: Request, token: str | None, args: dict[str, str]
    ) -> Response:
        """Answer a GET or PUT at the registration endpoint (only Moodle allows them)."""
        raise Rejection(405, {"error": "invalid_request", "error_description": "Use POST."})

    def registration(
        self,
        body: dict[str, Any],
        client_id: str,
        deployment_id: str | None,
        echo: dict[str, Any],
        *,
        granted: list[str] | tuple[str, ...],
    ) -> Registration:
        """Build the stored registration: `granted` is what the token endpoint will grant."""
        config = tool_configuration(body) or {}
        return Registration(
            client_id=client_id,
            deployment_id=deployment_id,
            client_name=str(body.get("client_name", "")),
            domain=str(config.get("domain", "")),
            echo=echo,
            tool=copy.deepcopy(body),
            scopes=tuple(dict.fromkeys(granted)),
            claimed_scopes=tuple(str(echo.get("scope") or "").split()),
        )

    def error(self, status: int, code: str, description: str) -> Rejection:
        """Build an OAuth/OIDC DCR error answer."""
        return Rejection(status, {"error": code, "error_description": description})

    def refusal(self, body: dict[str, Any]) -> Rejection:
        """Refuse a valid request by local policy, in this LMS's error format."""
        return self.error(
            400,
            "invalid_client_metadata",
            "Registrations from this tool's domain are blocked by the platform administrator.",
        )

    def describe(self, status: int, body: Any) -> str:
        """Summarise an error answer in one line for the report."""
        if isinstance(body, dict):
            if "error_description" in body:
                return f"{body.get('error')}: {body['error_description']}"
            if isinstance(body.get("errors"), list):
                return "; ".join(
                    e.get("message", compact(e)) if isinstance(e, dict) else str(e)
                    for e in body["errors"]
                )
            if "errorMessage" in body:
                return str(body["errorMessage"])
        return compact(body)


def dcr_problem(body: Any, message_types: set[str]) -> str | None:
    """Return the first OIDC DCR / LTI DR rule a registration request breaks, or None."""
    if not isinstance(body, dict):
        return "The registration request must be a JSON object."
    if body.get("application_type") != "web":
        return 'application_type must be "web".'
    response_types = body.get("response_types")
    if not isinstance(response_types, list) or "id_token" not in response_types:
        return 'response_types must be an array containing "id_token".'
    grant_types = body.get("grant_types")
    if not isinstance(grant_types, list):
        return "grant_types must be an array."
    for grant_type in ("implicit", "client_credentials"):
        if grant_type not in grant_types:
            return f'grant_types must include "{grant_type}".'
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        return 'token_endpoint_auth_method must be "private_key_jwt".'
    redirect_uris = body.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        return "redirect_uris must be a non-empty array."
    for uri in redirect_uris:
        if not is_http_uri(uri):
            return f"redirect_uris entry {uri!r} is not an absolute http(s) URI."
    for key in ("initiate_login_uri", "jwks_uri"):
        if not is_http_uri(body.get(key)):
            return f"{key} must be an absolute http(s) URI."
    name = body.get("client_name")
    if not isinstance(name, str) or not name.strip():
        return "client_name must be a non-empty string."
    if "scope" in body and not isinstance(body["scope"], str):
        return "scope must be a space-separated string."
    config = body.get(TOOL_CONFIGURATION)
    if not isinstance(config, dict):
        return f"The {TOOL_CONFIGURATION} object is required."
    domain = config.get("domain")
    if not isinstance(domain, str) or not domain:
        return "The tool configuration must include a domain."
    target = config.get("target_link_uri")
    if not is_http_uri(target):
        return "The tool configuration's target_link_uri must be an absolute http(s) URI."
    if domain.lower() != host_port(target):
        return (
            f"The tool configuration's domain {domain!r} does not match the host of "
            f"target_link_uri ({host_port(target)!r})."
        )
    if not isinstance(config.get("claims"), list):
        return "The tool configuration's claims must be an array."
    if "deployment_id" in config:
        return "deployment_id is assigned by the platform; the tool must not send it."
    custom = config.get("custom_parameters")
    if custom is not None and (
        not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values())
    ):
        return "custom_parameters must be an object with string values."
    messages = config.get("messages")
    if not isinstance(messages, list):
        return "The tool configuration's messages must be an array."
    for message in messages:
        if not isinstance(message, dict) or message.get("type") not in message_types:
            kind = message.get("type") if isinstance(message, dict) else message
            return (
                f"Message type {kind!r} is not supported; supported types: "
                f"{', '.join(sorted(message_types))}."
            )
    return None


class GenericProfile(Profile):
    """A spec-clean platform: everything exactly as LTI DR 1.0 and OIDC DCR describe it."""

    name = "generic"
    display_name = "Generic LTI platform"
    family = "gatehouse-simulator"
    version = "1.0"
    admin_page = "/admin/tools"


# --- Canvas --------------------------------------------------------------------------------------
# Every Canvas rule below is read from instructure/canvas-lms; the registration schema itself, the
# placement, display-type and scope lists are data files under app/simulator/data/canvas/, checked
# by app/simulator/checks.py (canvas_schema_errors).
CANVAS_DATA = load_data("canvas/placements.json")
CANVAS_MESSAGE_TYPES = tuple(CANVAS_DATA["by_message_type"])
# What Canvas creates for a message that names no placements: Lti::IMS::Registration#placements
# (app/models/lti/ims/registration.rb) defaults to link_selection.
CANVAS_IMPLIED_PLACEMENTS = (
    CANVAS_DATA["canvas_names_for_dynamic_registration_placements"][
        "default_for_message_without_placements"
    ],
)
# The scopes this simulator's Canvas advertises in `scopes_supported`: the AGS and NRPS scopes and
# Canvas's own service scopes (kept from the earlier simulator; Canvas's OpenID configuration
# controller was not re-read).
CANVAS_SCOPES = (
    *AGS_SCOPES,
    Scope.NRPS_MEMBERSHIP.value,
    "https://canvas.instructure.com/lti-ags/progress/scope/show",
    "https://canvas.instructure.com/lti/public_jwk/scope/update",
    "https://canvas.instructure.com/lti/account_lookup/scope/show",
    "https://canvas.instructure.com/lti/page_content/show",
)


def canvas_key_scopes(edition: str) -> frozenset[str]:
    """Return the scopes a Canvas developer key may hold (Registration#scopes_are_valid)."""
    lists = load_data("canvas/scopes.json")["editions"][edition]
    return frozenset(lists["lti_scopes"]) | frozenset(lists["lti_hidden_scopes"])


def canvas_filter(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Keep only the properties the schema names (Schemas::Base.filter_properties!)."""
    return {k: copy.deepcopy(v) for k, v in document.items() if k in schema["properties"]}


class CanvasProfile(Profile):
    """Instructure Canvas: token in the config URL, account-domain endpoint, JSON-schema 422s.

    `schema_edition` picks the display-type list (and scope list) Canvas validates with:
    "2024" (the default, the stricter one: no full_width_with_nav, no new_window) or "current".
    `registrations_next` is Canvas's `lti_registrations_next` feature: on, Canvas creates the
    root-account deployment with the key and answers its `deployment_id`; off, no deployment and
    no `deployment_id` (the `canvas_no_deployment` fault turns it off).

    Not re-read in Canvas's code this round, kept from the research notes
    (../shared/reference/dynamic-registration.md §3): the OpenID configuration's shape (paths,
    bare-host `authorization_server`, account extensions, `scopes_supported`), its 401 bodies, and
    the status of model-validation errors ("Invalid scopes", answered 422 here).
    """

    name = "canvas"
    display_name = "Canvas"
    family = ProductFamily.CANVAS.value
    version = "OpenSource"
    admin_page = "/accounts/1/apps"
    opens_in = "an iframe (600 px high) inside its LTI Registrations modal"
    config_how = "token in query"
    config_rule = "/api/lti/security/openid-configuration"
    registration_rule = "/api/lti/registrations"
    jwks_path = "/api/lti/security/jwks"
    authorization_path = "/api/lti/authorize_redirect"
    oauth_endpoint_path = "/login/oauth2/token"
    scopes_supported = CANVAS_SCOPES
    claims_supported = ("sub", "picture", "email", "name", "given_name", "family_name", "locale")
    subject_types_supported = ("public",)
    variables = (
        "Canvas.account.id",
        "Canvas.course.id",
        "Canvas.user.id",
        "Context.id",
        "Context.id.history",
        "Person.email.primary",
        "User.id",
    )
    schema_edition: str = "2024"
    registrations_next: bool = True

    def __init__(self, sim: Simulator) -> None:
        super().__init__(sim)
        if "canvas_no_deployment" in sim.faults:
            self.registrations_next = False
        # The fault predates the editions: the 2024 schema is the one that refuses new_window.
        if "canvas_rejects_new_window" in sim.faults:
            self.schema_edition = "2024"

    def issue(self, grant: Grant) -> None:
        """Sign a Canvas-shaped registration JWT (the controller's registration_token)."""
        claims: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "initiated_at": int(grant.issued_at),
            "user_id": "1",
            "root_account_global_id": "10000000000001",
            "root_account_domain": self.sim.alt_netloc,
            "registration_url": grant.tool_url,
            "exp": int(grant.expires_at),
        }
        if grant.update_of:
            claims["existing_registration"] = {"id": grant.update_of.registration_id}
        grant.token = self.sim.sign(claims)

    def config_url(self, grant: Grant) -> str:
        """Build the config URL on the issuer host with the token in its query."""
        query = urlencode({"registration_token": grant.token})
        return f"{self.sim.base_url}{self.config_rule}?{query}"

    def notes(self) -> list[str]:
        """Canvas checks the close message's origin."""
        return [
            f"Canvas opens the registration URL in {self.opens_in} on its account domain "
            f"{self.sim.alt_base_url}; it accepts the close message only from the origin of the "
            "URL the admin typed."
        ]

    def config_grant(self, request: Request, args: dict[str, str]) -> Grant | None:
        """Require the token in the query string (Canvas ignores the Bearer header here)."""
        token = request.args.get("registration_token")
        if not token:
            raise Rejection(
                401, {"error": "Access token missing (registration_token query parameter)"}
            )
        grant = self.sim.grant_for(token)
        if grant is None or grant.expired:
            raise Rejection(401, {"errors": [{"message": "Invalid access token."}]})
        return grant

    def messages_supported(self) -> list[Any]:
        """Canvas lists placements per message type, without resource_selection."""
        return [
            {
                "type": kind,
                "placements": [p for p in placements if p != "resource_selection"],
            }
            for kind, placements in CANVAS_DATA["by_message_type"].items()
        ]

    def platform_configuration(self) -> dict[str, Any]:
        """Add Canvas's account extensions."""
        config = super().platform_configuration()
        config[CANVAS_PREFIX + "account_name"] = "Simulated University"
        config[CANVAS_PREFIX + "account_lti_guid"] = "simulated-lti-guid"
        return config

    def registration_endpoint(self, grant: Grant | None) -> str:
        """Canvas's endpoint lives on the account domain, not the issuer host."""
        return self.sim.alt_base_url + self.registration_rule

    def extra_configuration(self, grant: Grant | None) -> dict[str, Any]:
        """Canvas's authorization_server is a bare host, not a URL."""
        return {"authorization_server": urlsplit(self.sim.base_url).netloc}

    def authenticate(self, request: Request, token: str | None, args: dict[str, str]) -> Grant:
        """Require the Bearer token and the account domain.

        DynamicRegistrationController#create answers a bad token with respond_with_error,
        whose body is `{"errorMessage": ...}`
        (app/controllers/lti/ims/dynamic_registration_controller.rb).
        """
        if request.host.lower() != self.sim.alt_netloc.lower():
            raise Rejection(
                404, {"errors": [{"message": "The specified resource does not exist."}]}
            )
        if token is None:
            raise Rejection(401, {"errorMessage": "JWT did not include expected contents"})
        grant = self.sim.grant_for(token)
        if grant is None or grant.expired:
            raise Rejection(401, {"errorMessage": "JWT did not include expected contents"})
        if grant.used:
            # Simulator policy: Canvas's token names one registration uuid; a second create fails.
            raise Rejection(401, {"errorMessage": "The registration token has already been used."})
        return grant

    def parse_body(self, request: Request) -> Any:
        """Rails parses only JSON bodies; anything else arrives as no parameters at all."""
        if request.mimetype != "application/json":
            return {}
        try:
            return json.loads(request.get_data(as_text=True))
        except ValueError:
            raise Rejection(
                400, {"errors": [{"message": "The request body is not valid JSON."}]}
            ) from None

    def refusal(self, body: dict[str, Any]) -> Rejection:
        """Refuse the way Canvas's model validation does: 422 with an errors list."""
        domain = json.dumps((tool_configuration(body) or {}).get("domain"))
        return Rejection(
            422,
            {
                "errors": [
                    f"The property '#/domain' value {domain} is not allowed by this "
                    "account's developer key policy"
                ]
            },
        )

    def validate(self, body: Any, grant: Grant) -> None:
        """Run Canvas's JSON schema (422), then its model's scope check (422).

        OidcRegistration.to_model_attrs validates, then drops `openid` from the scopes before
        Lti::IMS::Registration#scopes_are_valid compares them with TokenScopes.
        """
        errors = canvas_schema_errors(body, self.schema_edition)
        if errors:
            raise Rejection(422, {"errors": errors})
        allowed = canvas_key_scopes(self.schema_edition)
        unknown = [s for s in requested_scopes(body) if s != "openid" and s not in allowed]
        if unknown:
            raise Rejection(422, {"errors": [f"Invalid scopes: {', '.join(unknown)}"]})

    def accept(self, body: dict[str, Any], grant: Grant) -> Accepted:
        """Create the developer key (and, with registrations_next, its deployment); answer.

        The answer is DynamicRegistrationController#render_registration: the stored, filtered
        registration; `scope` is the key's scopes plus `openid`, though the developer key itself
        never holds `openid`; `deployment_id` only when a deployment was created. An update
        (token with `existing_registration`) only files an update request: Canvas answers with
        the registration as it stands.
        """
        previous = grant.update_of
        if previous:
            echo = copy.deepcopy(previous.echo)
            return Accepted(200, echo, previous)
        number = self.sim.next_number()
        client_id = str(10000000000000 + number)
        registration_id = str(10000000000040 + number)
        deployment_id = f"{number}:{secrets.token_hex(20)}" if self.registrations_next else None
        account = self.sim.alt_base_url
        schema = load_data("canvas/registration.schema.json")
        stored = canvas_filter(body, schema)
        config = canvas_filter(body[TOOL_CONFIGURATION], schema["$defs"]["tool_configuration"])
        message_schema = schema["$defs"]["message"]
        config["messages"] = [canvas_filter(m, message_schema) for m in config["messages"]]
        config[CANVAS_PREFIX + "registration_config_url"] = (
            f"{account}/api/lti/registrations/{registration_id}/view"
        )
        key_scopes = [s for s in requested_scopes(body) if s != "openid"]
        echo: dict[str, Any] = {
            "client_id": client_id,
            "application_type": "web",
            "grant_types": ["client_credentials", "implicit"],
            "initiate_login_uri": stored["initiate_login_uri"],
            "redirect_uris": stored["redirect_uris"],
            "response_types": ["id_token"],
            "client_name": stored["client_name"],
            "jwks_uri": stored["jwks_uri"],
            "logo_uri": stored.get("logo_uri"),
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": " ".join([*key_scopes, "openid"]),
            TOOL_CONFIGURATION: config,
            "registration_client_uri": f"{account}/api/lti/registrations/{registration_id}",
            "deployment_id": deployment_id,
        }
        echo = {k: v for k, v in echo.items() if v is not None}  # render_registration's .compact
        registration = self.registration(body, client_id, deployment_id, echo, granted=key_scopes)
        registration.registration_id = registration_id
        return Accepted(200, echo, registration)

    def review(self, body: dict[str, Any]) -> list[str]:
        """Flag messages without placements: Canvas puts them in link_selection only."""
        problems = []
        for message in (tool_configuration(body) or {}).get("messages") or ():
            if not isinstance(message, dict) or message.get("type") not in CANVAS_MESSAGE_TYPES:
                continue
            placements = message.get("placements")
            if placements is None:
                problems.append(
                    f"The {message['type']} message names no placements, so Canvas created "
                    "only link_selection for it; a tool must give Canvas its placements "
                    "explicitly."
                )
            elif not placements:
                problems.append(
                    f"The {message['type']} message has an empty placements list, which Canvas "
                    "treats as none (placements.blank?): it created only link_selection for it."
                )
        return problems


# --- Moodle --------------------------------------------------------------------------------------
# Rules read in moodle/moodle: mod/lti/openid-configuration.php, mod/lti/openid-registration.php,
# mod/lti/classes/local/ltiopenid/registration_helper.php (registration_to_config and
# config_to_registration), mod/lti/token.php and the services' get_permitted_scopes
# (mod/lti/service/gradebookservices, memberships, toolsettings, basicoutcomes).
MOODLE_REQUIRED = (
    "response_types",
    "initiate_login_uri",
    "redirect_uris",
    "client_name",
    "jwks_uri",
    "token_endpoint_auth_method",
)
MOODLE_DOMAIN_RE = re.compile(r"(?:https?://)?(?:www\.)?([^/]+)(?:/|$)", re.IGNORECASE)
MOODLE_ERROR_PAGE = (
    '<!DOCTYPE html><html><head><title>Error</title></head><body><div class="errorbox">'
    '<h2>Error</h2><p class="errormessage">Exception - {message}</p>'
    "<p>More information about this error</p></div></body></html>"
)
MOODLE_GRADES_1 = (
    Scope.AGS_SCORE.value,
    Scope.AGS_RESULT_READONLY.value,
    Scope.AGS_LINEITEM_READONLY.value,
)


def moodle_domain(url: str) -> str | None:
    """Return the domain Moodle's lti_get_domain_from_url finds (host:port, www. dropped)."""
    match = MOODLE_DOMAIN_RE.search(url or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class MoodleServices:
    """The service settings registration_to_config stores for the requested scopes."""

    gradesynchronization: int  # 0 none, 1 score/results/lineitem.readonly, 2 with lineitem
    memberships: bool
    toolsettings: bool

    @classmethod
    def from_scopes(cls, requested: list[str]) -> MoodleServices:
        """Map scopes to settings the way registration_helper::registration_to_config does."""
        grades = 0
        if any(s in requested for s in MOODLE_GRADES_1):
            grades = 1
        if Scope.AGS_LINEITEM.value in requested:
            grades = 2
        return cls(
            gradesynchronization=grades,
            memberships=Scope.NRPS_MEMBERSHIP.value in requested,
            toolsettings=Scope.TOOL_SETTINGS.value in requested,
        )

    def answer_scopes(self, lineitem_precedence_bug: bool) -> list[str]:
        """Return config_to_registration's `scope`.

        From Moodle 4.0 on the test reads `$config->ltiservice_gradesynchronization ?? 0 == 2`,
        which PHP parses as `?? (0 == 2)`: any grade synchronisation lists `lineitem` (the 3.10
        helper compared `== 2` correctly).
        """
        scopes: list[str] = []
        if self.gradesynchronization > 0:
            scopes += list(MOODLE_GRADES_1)
        if self.gradesynchronization == 2 or (
            lineitem_precedence_bug and self.gradesynchronization > 0
        ):
            scopes.append(Scope.AGS_LINEITEM.value)
        if self.memberships:
            scopes.append(Scope.NRPS_MEMBERSHIP.value)
        if self.toolsettings:
            scopes.append(Scope.TOOL_SETTINGS.value)
        return scopes

    def permitted_scopes(self) -> list[str]:
        """Return what mod/lti/token.php will grant (lti_get_permitted_service_scopes).

        gradebookservices: lineitem.readonly, result.readonly, score with any grade
        synchronisation, lineitem only with 2; basicoutcomes: basicoutcome unless acceptgrades is
        "never" (registration_to_config sets it to "delegate" with any AGS scope); memberships and
        toolsettings when enabled.
        """
        scopes: list[str] = []
        if self.gradesynchronization > 0:
            scopes += [
                Scope.AGS_LINEITEM_READONLY.value,
                Scope.AGS_RESULT_READONLY.value,
                Scope.AGS_SCORE.value,
            ]
            if self.gradesynchronization == 2:
                scopes.append(Scope.AGS_LINEITEM.value)
            scopes.append(Scope.BASIC_OUTCOME.value)
        if self.memberships:
            scopes.append(Scope.NRPS_MEMBERSHIP.value)
        if self.toolsettings:
            scopes.append(Scope.TOOL_SETTINGS.value)
        return scopes


class MoodleProfile(Profile):
    """Moodle 4.5: public configuration, RS256 token, plain-text errors, rewritten echo."""

    name = "moodle"
    display_name = "Moodle"
    family = ProductFamily.MOODLE.value
    version = "4.5.6 (Build: 20250811)"
    # `$CFG->version` (mod/lti/locallib.php, tool_consumer_info_version); the configuration
    # sends `$CFG->release` (mod/lti/openid-configuration.php).
    launch_version = "2024100706"
    admin_page = "/mod/lti/toolconfigure.php"
    opens_in = "an iframe on the Manage tools page"
    config_rule = "/mod/lti/openid-configuration.php"
    registration_rule = "/mod/lti/openid-registration.php"
    registration_methods = ("GET", "POST", "PUT")
    jwks_path = "/mod/lti/certs.php"
    authorization_path = "/mod/lti/auth.php"
    oauth_endpoint_path = "/mod/lti/token.php"
    # mod/lti/token.php grants array_intersect(requested, permitted) and answers invalid_scope
    # only when the overlap is empty.
    token_grants_overlap = True
    # registration_helper::lti_get_service_scopes() plus 'openid' (openid-configuration.php).
    scopes_supported = (
        Scope.BASIC_OUTCOME.value,
        Scope.AGS_LINEITEM_READONLY.value,
        Scope.AGS_RESULT_READONLY.value,
        Scope.AGS_SCORE.value,
        Scope.AGS_LINEITEM.value,
        Scope.NRPS_MEMBERSHIP.value,
        Scope.TOOL_SETTINGS.value,
        "openid",
    )
    claims_supported = ("sub", "iss", "name", "given_name", "family_name", "email")
    variables = (
        "Context.id",
        "Context.title",
        "CourseSection.sourcedId",
        "Person.email.primary",
        "Person.name.full",
        "ResourceLink.id",
        "User.id",
        "User.username",
    )
    platform_key: ClassVar[str] = PLATFORM_CONFIGURATION
    lineitem_precedence_bug: ClassVar[bool] = True

    def issue(self, grant: Grant) -> None:
        """Sign `{sub, scope, iat, exp}`; sub is the new client id, or the type id on update."""
        if grant.update_of:
            sub, scope = str(grant.update_of.deployment_id), "reg-update"
        else:
            alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            sub, scope = "".join(secrets.choice(alphabet) for _ in range(15)), "reg"
            grant.client_id = sub
        grant.token = self.sim.sign(
            {"sub": sub, "scope": scope, "iat": int(grant.issued_at), "exp": int(grant.expires_at)}
        )

    def notes(self) -> list[str]:
        """Moodle does not check the close message's origin."""
        return [
            f"Moodle opens the registration URL in {self.opens_in}; its close listener checks "
            "only data.subject, not the origin."
        ]

    def messages_supported(self) -> list[Any]:
        """Moodle 4.x: objects, placements only for deep linking (observed on 4.5.6)."""
        return [{"type": RL}, {"type": DL, "placements": ["ContentArea"]}]

    def openid_configuration(self, request: Request, grant: Grant | None) -> dict[str, Any]:
        """Place the platform configuration under this Moodle's key."""
        doc = super().openid_configuration(request, grant)
        doc[self.platform_key] = doc.pop(PLATFORM_CONFIGURATION)
        return doc

    def extra_configuration(self, grant: Grant | None) -> dict[str, Any]:
        """Moodle sends no authorization_server."""
        return {}

    def token_claims(self, token: str | None) -> tuple[Grant, dict[str, Any]]:
        """Return the grant and claims of the Bearer JWT, refused as Moodle refuses it."""
        if token is None:
            raise Rejection(401, "missing_registration_token", "text/html; charset=utf-8")
        try:
            claims = self.sim.verify(token)
        except (JoseError, ValueError, TypeError) as exc:
            # Moodle does not catch JWT library errors: the admin sees its generic error page.
            raise Rejection(
                404,
                MOODLE_ERROR_PAGE.format(message=type(exc).__name__),
                "text/html; charset=utf-8",
            ) from None
        grant = self.sim.grant_for(token)
        if grant is None or claims.get("exp", 0) < time.time():
            raise Rejection(
                404, MOODLE_ERROR_PAGE.format(message="Expired token"), "text/html; charset=utf-8"
            )
        return grant, claims

    def authenticate(self, request: Request, token: str | None, args: dict[str, str]) -> Grant:
        """Check the Bearer JWT the way openid-registration.php does."""
        if request.method == "PUT":
            raise Rejection(400, "Unsupported operation", "text/html; charset=utf-8")
        grant, claims = self.token_claims(token)
        scope = claims.get("scope")
        if scope == "reg":
            if request.method == "GET":
                raise Rejection(
                    404, MOODLE_ERROR_PAGE.format(message="TypeError"), "text/html; charset=utf-8"
                )
            if self.sim.registration_by_client_id(str(claims.get("sub"))):
                raise Rejection(401, "token_already_used", "text/html; charset=utf-8")
        elif scope == "reg-update":
            if self.sim.registration_by_deployment_id(str(claims.get("sub"))) is None:
                raise Rejection(400, "Unknown client", "text/html; charset=utf-8")
        else:
            raise Rejection(403, "Incorrect scope", "text/html; charset=utf-8")
        return grant

    def read_registration(
        self, request: Request, token: str | None, args: dict[str, str]
    ) -> Response:
        """Return the current registration to a reg-update token (a Moodle extension)."""
        self.authenticate(request, token, args)
        type_id = str(self.sim.verify(str(token))["sub"])
        registration = self.sim.registration_by_deployment_id(type_id)
        echo = registration.echo if registration else {}
        return Response(json.dumps(echo), 200, content_type="application/json; charset=utf-8")

    def parse_body(self, request: Request) -> Any:
        """Moodle reads the raw body as JSON whatever the Content-Type; junk crashes it."""
        try:
            body = json.loads(request.get_data(as_text=True))
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Rejection(
                404, MOODLE_ERROR_PAGE.format(message="TypeError"), "text/html; charset=utf-8"
            )
        return body

    def validate(self, body: Any, grant: Grant) -> None:
        """Apply registration_helper::registration_to_config's checks in its order."""
        for key in MOODLE_REQUIRED:
            if php_empty(body.get(key)):
                raise self.text(f"missing required attribute {key}")
        config = body.get(TOOL_CONFIGURATION)
        if php_empty(config):
            raise self.text(f"missing required attribute {TOOL_CONFIGURATION}")
        self.validate_tool_configuration(config)
        response_types = body["response_types"]
        if not isinstance(response_types, list) or "id_token" not in response_types:
            raise self.text("invalid_response_types")
        if not isinstance(body["redirect_uris"], list):
            raise self.text("invalid_redirect_uris")
        if body["token_endpoint_auth_method"] != TOKEN_ENDPOINT_AUTH_METHOD:
            raise self.text("invalid_token_endpoint_auth_method")
        application_type = body.get("application_type")
        if not php_empty(application_type) and application_type != "web":
            raise self.text("invalid_application_type")

    def validate_tool_configuration(self, config: Any) -> None:
        """Moodle 4.x: `domain` required, target_link_uri optional, their hosts must match."""
        domain = config.get("domain") if isinstance(config, dict) else None
        if php_empty(domain):
            raise self.text("missing_domain")
        target = config.get("target_link_uri") or f"https://{domain}"
        if moodle_domain(str(domain)) != moodle_domain(str(target)):
            raise self.text("domain_targetlinkuri_mismatch")

    def refusal(self, body: dict[str, Any]) -> Rejection:
        """Refuse as Moodle does for a token of the wrong scope: plain text, 403."""
        return self.text("Incorrect scope", 403)

    def text(self, message: str, status: int = 400) -> Rejection:
        """Build Moodle's plain-text error (served as text/html)."""
        return Rejection(status, message, "text/html; charset=utf-8")

    def accept(self, body: dict[str, Any], grant: Grant) -> Accepted:
        """Create (or update) the tool type and echo it the way config_to_registration does."""
        previous = grant.update_of
        if previous:
            client_id, deployment_id = previous.client_id, previous.deployment_id
        else:
            client_id, deployment_id = str(grant.client_id), str(self.sim.next_number())
        services = MoodleServices.from_scopes(requested_scopes(body))
        echo = self.echo(body, client_id, str(deployment_id), services)
        registration = self.registration(
            body, client_id, deployment_id, echo, granted=services.permitted_scopes()
        )
        return Accepted(200, echo, registration)

    def deep_linking_message(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """Return the one LtiDeepLinkingRequest message Moodle keeps (the last one's URL)."""
        kept = None
        for message in config.get("messages") or []:
            if isinstance(message, dict) and message.get("type") == DL:
                kept = {"type": DL, "target_link_uri": message.get("target_link_uri") or ""}
        return kept

    def echo_claims(self, asked: set[str]) -> list[str]:
        """Return config_to_registration's `claims` for the requested claims."""
        claims = ["sub", "iss"]
        if asked & {"name", "given_name", "family_name"}:
            claims += ["name", "family_name", "given_name"]
        if "email" in asked:
            claims.append("email")
        return claims

    def echo(
        self,
        body: dict[str, Any],
        client_id: str,
        deployment_id: str,
        services: MoodleServices,
    ) -> dict[str, Any]:
        """Rebuild the registration from what Moodle stored, not from the request."""
        config = body[TOOL_CONFIGURATION]
        echo: dict[str, Any] = {
            "client_id": client_id,
            "response_types": ["id_token"],
            "jwks_uri": body["jwks_uri"],
            "initiate_login_uri": body["initiate_login_uri"],
            "grant_types": ["client_credentials", "implicit"],
            "redirect_uris": body["redirect_uris"],
            "application_type": self.echo_application_type(),
            "token_endpoint_auth_method": "private_key_jwt",
            "client_name": body["client_name"],
            "logo_uri": body.get("logo_uri") or "",
            "scope": " ".join(services.answer_scopes(self.lineitem_precedence_bug)),
        }
        tool: dict[str, Any] = self.echo_version()
        tool.update(
            {
                "deployment_id": deployment_id,
                "target_link_uri": config.get("target_link_uri") or f"https://{config['domain']}",
                "domain": config["domain"],
                "description": config.get("description") or "",
            }
        )
        message = self.deep_linking_message(config)
        if message:
            tool["messages"] = [message]
        if config.get("custom_parameters"):
            tool["custom_parameters"] = {
                str(k): str(v) for k, v in config["custom_parameters"].items()
            }
        tool["claims"] = self.echo_claims(set(config.get("claims") or []))
        echo[TOOL_CONFIGURATION] = tool
        return echo

    def echo_version(self) -> dict[str, Any]:
        """Moodle 4.x starts the tool configuration with the LTI version."""
        return {"version": "1.3.0"}

    def echo_application_type(self) -> Any:
        """Return `application_type` as this Moodle echoes it."""
        return "web"


class MoodleLegacyProfile(MoodleProfile):
    """Moodle 3.10, as its own code reads.

    mod/lti/openid-configuration.php at moodle/moodle@4dcc2d37c67d2ac66aa9649fe0f1b427d65a309e: no
    `authorization_endpoint`, the platform configuration under a key with a trailing space,
    `messages_supported` as strings (`LtiResourceLink`), a top-level `placements`.
    registration_helper.php at moodle/moodle@84e90d5db4c7a95bffeafdb2929b6c6ffbfa8312 and
    openid-registration.php at moodle/moodle@cf29c007d2535bb90d623d0fad76ee8075ced722: static
    helpers, `domain` and `target_link_uri` both required and never compared, no update flow
    (no reg-update token, no GET), an array `application_type` and, through an `=` written for
    `==`, every claim listed in the answer.
    """

    name = "moodle-legacy"
    display_name = "Moodle 3.10"
    version = "3.10.1 (Build: 20210118)"
    launch_version = "2020110901"
    supports_update = False
    registration_methods = ("POST",)
    platform_key = PLATFORM_CONFIGURATION + " "
    lineitem_precedence_bug = False

    def messages_supported(self) -> list[Any]:
        """Plain strings, with the old `LtiResourceLink` spelling."""
        return ["LtiResourceLink", DL]

    def platform_configuration(self) -> dict[str, Any]:
        """Add the old top-level placements list."""
        config = super().platform_configuration()
        config["placements"] = ["AddContentMenu"]
        return config

    def openid_configuration(self, request: Request, grant: Grant | None) -> dict[str, Any]:
        """3.10 advertised no authorization_endpoint."""
        doc = super().openid_configuration(request, grant)
        del doc["authorization_endpoint"]
        return doc

    def authenticate(self, request: Request, token: str | None, args: dict[str, str]) -> Grant:
        """3.10 checks the Bearer JWT and that its `sub` is not registered yet, nothing else."""
        grant, claims = self.token_claims(token)
        if self.sim.registration_by_client_id(str(claims.get("sub"))):
            raise Rejection(401, "token_already_used", "text/html; charset=utf-8")
        return grant

    def validate_tool_configuration(self, config: Any) -> None:
        """3.10: get_parameter(..., required) for both, and no domain comparison."""
        config = config if isinstance(config, dict) else {}
        for key in ("domain", "target_link_uri"):
            if php_empty(config.get(key)):
                raise self.text(f"missing required attribute {key}")

    def echo_claims(self, asked: set[str]) -> list[str]:
        """`if ($config->lti_sendname = LTI_SETTING_ALWAYS)` assigns: every claim, always."""
        return ["sub", "iss", "name", "family_name", "middle_name", "email"]

    def echo_version(self) -> dict[str, Any]:
        """3.10's answer had no `version`."""
        return {}

    def echo_application_type(self) -> Any:
        """The 3.10 helper echoed an array."""
        return ["web"]


class BrightspaceProfile(Profile):
    """D2L Brightspace: token in the config URL path, no Bearer, https, live keyset check.

    Brightspace's code is not public: every rule here comes from D2L's documentation (Brightspace
    community pages on LTI Advantage Dynamic Registration, reference §3.3), none from its code.
    Its token endpoint is assumed to refuse a request for scopes outside the registration whole,
    as the OAuth 2.0 spec allows; D2L does not document it.
    """

    name = "brightspace"
    display_name = "Brightspace"
    family = ProductFamily.BRIGHTSPACE.value
    version = "20.25.11"
    admin_page = "/d2l/le/lti/admin/registrations"
    opens_in = "a new tab (the close message must go to window.opener)"
    supports_update = False
    config_how = "token in path"
    config_rule = "/d2l/api/lti/dynamic-registration/openid-configuration/<token>"
    registration_rule = "/d2l/api/lti/dynamic-registration/register/<token>"
    jwks_path = "/d2l/.well-known/jwks"
    authorization_path = "/d2l/lti/authenticate"
    oauth_endpoint_path = "/core/connect/token"

    def issue(self, grant: Grant) -> None:
        """Make an opaque one-time token."""
        grant.token = secrets.token_urlsafe(24)

    def config_url(self, grant: Grant) -> str:
        """Embed the token in the configuration URL's path."""
        return f"{self.sim.base_url}{self.config_rule.replace('<token>', grant.token)}"

    def initiation_params(self, grant: Grant) -> dict[str, str]:
        """Brightspace sends no registration_token parameter."""
        return {"openid_configuration": self.config_url(grant)}

    def messages_supported(self) -> list[Any]:
        """Objects without placements."""
        return [{"type": RL}, {"type": DL}]

    def config_grant(self, request: Request, args: dict[str, str]) -> Grant | None:
        """The path token must be live and unused."""
        grant = self.sim.grant_for(args.get("token", ""))
        if grant is None or grant.expired or grant.used:
            raise self.error(
                401, "invalid_token", "The registration link is unknown, expired or already used."
            )
        return grant

    def registration_endpoint(self, grant: Grant | None) -> str:
        """The endpoint carries the same one-time token in its path."""
        token = grant.token if grant else "unknown"
        return f"{self.sim.base_url}{self.registration_rule.replace('<token>', token)}"

    def extra_configuration(self, grant: Grant | None) -> dict[str, Any]:
        """Brightspace's access tokens carry this audience."""
        return {"authorization_server": "https://api.brightspace.com/auth/token"}

    def request_token(self, request: Request, args: dict[str, str]) -> str | None:
        """The path token identifies the registration."""
        return args.get("token")

    def authenticate(self, request: Request, token: str | None, args: dict[str, str]) -> Grant:
        """Refuse a Bearer header (no token was given to the tool) and spent tokens."""
        if request.headers.get("Authorization"):
            raise self.error(
                401,
                "invalid_token",
                "No registration token was issued for this registration; the "
                "request must not carry an Authorization header.",
            )
        return super().authenticate(request, token, args)

    def validate(self, body: Any, grant: Grant) -> None:
        """DCR rules, then https, unique name and domain, then a live keyset."""
        super().validate(body, grant)
        config = body[TOOL_CONFIGURATION]
        urls = [
            ("initiate_login_uri", body["initiate_login_uri"]),
            ("jwks_uri", body["jwks_uri"]),
            ("target_link_uri", config["target_link_uri"]),
        ]
        urls += [("redirect_uris", uri) for uri in body["redirect_uris"]]
        urls += [("logo_uri", body["logo_uri"])] if body.get("logo_uri") else []
        urls += [
            ("messages target_link_uri", m["target_link_uri"])
            for m in config.get("messages") or []
            if m.get("target_link_uri")
        ]
        relaxed = set()
        for field_name, url in urls:
            parts = urlsplit(str(url))
            if parts.scheme == "https":
                continue
            if is_loopback_host(parts.hostname):
                relaxed.add(parts.hostname)
                continue
            raise self.error(
                400, "invalid_client_metadata", f"{field_name} must use https ({url})."
            )
        if relaxed:
            self.sim.event(
                grant.token,
                "Brightspace requires https for tool URLs; allowed http for "
                f"loopback host {', '.join(sorted(relaxed))} (simulator relaxation)",
            )
        for other in self.sim.registrations():
            if not other.enabled:
                continue
            if other.client_name == body["client_name"]:
                raise self.error(
                    400,
                    "invalid_client_metadata",
                    f"A registration named {other.client_name!r} already exists.",
                )
            if other.domain.lower() == str(config["domain"]).lower():
                raise self.error(
                    400,
                    "invalid_client_metadata",
                    f"The domain {other.domain} is already used by the enabled "
                    f"registration {other.client_name!r}.",
                )
        self.check_keyset(body["jwks_uri"], grant)

    def check_keyset(self, jwks_uri: str, grant: Grant) -> None:
        """Fetch the tool's keyset and require one RSA key with a kid."""

        def refuse(reason: str) -> Rejection:
            self.sim.event(
                grant.token, f"Brightspace fetched the tool's keyset {jwks_uri}: {reason}"
            )
            return self.error(
                400,
                "invalid_client_metadata",
                f"The tool's keyset at {jwks_uri} could not be retrieved: {reason}",
            )

        try:
            answer = requests.get(
                jwks_uri, timeout=KEYSET_FETCH_TIMEOUT, headers={"Accept": "application/json"}
            )
        except requests.RequestException as exc:
            raise refuse(type(exc).__name__) from None
        with answer:
            if answer.status_code != 200:
                raise refuse(f"HTTP {answer.status_code}")
            try:
                keyset = answer.json()
            except ValueError:
                raise refuse("the answer is not JSON") from None
        keys = keyset.get("keys") if isinstance(keyset, dict) else None
        if not isinstance(keys, list):
            raise refuse('the answer is not a JSON key set (no "keys" array)')
        rsa = [k for k in keys if isinstance(k, dict) and k.get("kty") == "RSA" and k.get("kid")]
        if not rsa:
            raise refuse("the key set has no RSA key with a kid")
        self.sim.event(
            grant.token,
            f"Brightspace fetched the tool's keyset {jwks_uri} -> 200, "
            f"{len(rsa)} RSA key(s) with kid",
        )

    def accept(self, body: dict[str, Any], grant: Grant) -> Accepted:
        """GUIDs for client and deployment; the deployment goes in the tool configuration."""
        client_id, deployment_id = str(uuid.uuid4()), str(uuid.uuid4())
        echo = copy.deepcopy(body)
        echo["client_id"] = client_id
        echo[TOOL_CONFIGURATION]["deployment_id"] = deployment_id
        granted = [s for s in requested_scopes(body) if s != "openid"]
        return Accepted(
            200, echo, self.registration(body, client_id, deployment_id, echo, granted=granted)
        )


# --- Sakai ---------------------------------------------------------------------------------------
# Rules read in sakaiproject/sakai: lti/lti-blis/src/java/org/sakaiproject/lti13/LTI13Servlet.java
# (handleWellKnown, handleRegistrationEndpointPost, handleTokenPost) and the tsugi-util objects it
# serialises (lti/tsugi-util/src/java/org/tsugi/lti13/objects/OpenIDProviderConfiguration.java,
# LTILaunchMessage.java).
# The admin's checkboxes on the tool (allowlineitems, allowoutcomes, allowroster) decide what
# handleTokenPost grants; a token request naming a scope whose checkbox is off fails whole with
# invalid_scope.
SAKAI_GRANTS = {
    "allowlineitems": (Scope.AGS_LINEITEM_READONLY.value, Scope.AGS_LINEITEM.value),
    "allowoutcomes": (Scope.AGS_SCORE.value, Scope.AGS_RESULT_READONLY.value),
    "allowroster": (
        Scope.NRPS_MEMBERSHIP.value,
        "https://purl.imsglobal.org/spec/lti-gs/scope/contextgroup.readonly",
    ),
}


def sakai_grants(checkboxes: frozenset[str]) -> list[str]:
    """Return the scopes handleTokenPost grants for the admin's checkboxes.

    score and result.readonly need allowoutcomes and allowlineitems both.
    """
    granted: list[str] = []
    if "allowlineitems" in checkboxes:
        granted += SAKAI_GRANTS["allowlineitems"]
        if "allowoutcomes" in checkboxes:
            granted += SAKAI_GRANTS["allowoutcomes"]
    if "allowroster" in checkboxes:
        granted += SAKAI_GRANTS["allowroster"]
    return granted


def sakai_checkboxes_for(requested: list[str]) -> frozenset[str]:
    """Return the checkboxes an admin ticks to give the tool what its registration asked for."""
    ticked = {name for name, scopes in SAKAI_GRANTS.items() if set(scopes) & set(requested)}
    if "allowoutcomes" in ticked:
        ticked.add("allowlineitems")
    return frozenset(ticked)


class SakaiProfile(Profile):
    """Sakai: issuer and pre-allocated ids come from its configuration URL's own parameters.

    The registration answer echoes the request (its `scope` included) with `client_id` and a
    `deployment_id`; what the tool may use is what the admin ticks on the tool afterwards.
    `admin_checkboxes` is that choice; None (the default) ticks what the request asked for.
    """

    name = "sakai"
    display_name = "Sakai"
    family = ProductFamily.SAKAI.value
    version = "23.3"
    admin_page = "/portal/site/!admin/tool/sakai.lti.admin"
    config_how = "pre-allocated ids in query"
    config_rule = "/imsblis/lti13/well_known"
    registration_rule = "/imsblis/lti13/registration_endpoint/<key>"
    jwks_path = "/imsblis/lti13/keyset"
    authorization_path = "/imsoidc/lti13/oidc_auth"
    oauth_endpoint_path = "/imsblis/lti13/token/<key>"
    # OpenIDProviderConfiguration's constructor: only these, whatever Sakai can grant.
    scopes_supported = ("openid",)
    claims_supported = ("iss", "aud")
    variables = ("User.id", "Person.email.primary")
    admin_checkboxes: frozenset[str] | None = None
    _presented: str | None = None  # the Bearer of the POST being answered (under the sim lock)

    def issue(self, grant: Grant) -> None:
        """Pre-allocate the tool key, client id and deployment id; make an opaque token."""
        previous = grant.update_of
        number = self.sim.next_number()
        grant.key = str(number)
        grant.client_id = previous.client_id if previous else str(uuid.uuid4())
        grant.deployment_id = str(previous.deployment_id) if previous else str(number)
        # handleRegistrationEndpointPost checks LTI13Util.timeStampCheck(token, 3600): the token
        # starts with the epoch second it was made ("timestamp:..."), or it is refused (403).
        grant.token = f"{int(grant.issued_at)}:{secrets.token_hex(16)}"

    def config_url(self, grant: Grant) -> str:
        """Put the pre-allocated values in the configuration URL's query."""
        query = urlencode(
            {
                "clientId": grant.client_id,
                "deploymentId": grant.deployment_id,
                "issuerURL": self.sim.issuer,
                "key": grant.key,
            }
        )
        return f"{self.sim.base_url}{self.config_rule}?{query}"

    def messages_supported(self) -> list[Any]:
        """LTILaunchMessage initialises `placements` to an empty list, and Jackson writes it."""
        return [{"type": RL, "placements": []}, {"type": DL, "placements": []}]

    def config_grant(self, request: Request, args: dict[str, str]) -> Grant | None:
        """handleWellKnown wants clientId, key, issuerURL and deploymentId (400 "Missing ...")."""
        for name in ("clientId", "key", "issuerURL", "deploymentId"):
            if request.args.get(name) is None:
                raise self.text(f"Missing {name}")
        grant = self.sim.grant_for_key(request.args["key"])
        if grant is None:
            # Sakai would still answer; the simulator knows no registration to serve it for.
            raise self.text("Missing tool")
        return grant

    def openid_configuration(self, request: Request, grant: Grant | None) -> dict[str, Any]:
        """Sakai takes the issuer from the URL's issuerURL parameter."""
        doc = super().openid_configuration(request, grant)
        doc["issuer"] = request.args.get("issuerURL", "")
        return doc

    def registration_endpoint(self, grant: Grant | None) -> str:
        """The endpoint is per tool key."""
        key = grant.key if grant and grant.key else "0"
        return f"{self.sim.base_url}{self.registration_rule.replace('<key>', key)}"

    def token_endpoint(self, grant: Grant | None) -> str:
        """The token endpoint is per tool key."""
        key = grant.key if grant and grant.key else "0"
        return f"{self.sim.base_url}{self.oauth_endpoint_path.replace('<key>', key)}"

    def extra_configuration(self, grant: Grant | None) -> dict[str, Any]:
        """Sakai sends no authorization_server."""
        return {}

    def request_token(self, request: Request, args: dict[str, str]) -> str | None:
        """The key in the path names the registration; report it by its token."""
        grant = self.sim.grant_for_key(args.get("key", ""))
        return grant.token if grant else bearer_token(request)

    def text(self, message: str, status: int = 400) -> Rejection:
        """Build LTI13Util.return400's answer: 400, `{"error": message}` as JSON.

        lti/tsugi-util/src/java/org/tsugi/lti13/LTI13Util.java, return400.
        """
        return Rejection(status, {"error": message}, "application/json;charset=UTF-8")

    def authenticate(self, request: Request, token: str | None, args: dict[str, str]) -> Grant:
        """A numeric key and an `Authorization: Bearer` header come first (400s).

        The token itself is compared later, after the body's checks (see validate).
        """
        key = args.get("key", "")
        if not key.isdigit():
            raise self.text(f"Bad value for tool_key {key}")
        authorization = request.headers.get("Authorization", "")
        parts = authorization.split()
        if not authorization.startswith("Bearer") or len(parts) != 2:
            raise self.text("invalid_authorization")
        self._presented = parts[1]
        grant = self.sim.grant_for_key(key)
        if grant is None:
            raise self.text("Missing tool")
        return grant

    def parse_body(self, request: Request) -> Any:
        """JSONValue.parse: anything but a JSON object is "Badly formatted JSON"."""
        try:
            body = json.loads(request.get_data(as_text=True))
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self.text("Badly formatted JSON")
        return body

    def validate(self, body: Any, grant: Grant) -> None:
        """Three fields, then the one-time token (403, no body); nothing else is checked."""
        uris = body.get("redirect_uris")
        if (
            not isinstance(body.get("initiate_login_uri"), str)
            or not isinstance(body.get("jwks_uri"), str)
            or not isinstance(uris, list)
        ):
            raise self.text("Missing initiate_login_uri, jwks_uri, redirect_uris")
        if self._presented != grant.token or grant.used or grant.expired:
            raise Rejection(403, "", "text/plain")

    def accept(self, body: dict[str, Any], grant: Grant) -> Accepted:
        """Echo the request with the pre-allocated client_id and a deployment_id."""
        client_id, deployment_id = str(grant.client_id), str(grant.deployment_id)
        echo = copy.deepcopy(body)
        echo["client_id"] = client_id
        if isinstance(echo.get(TOOL_CONFIGURATION), dict):
            echo[TOOL_CONFIGURATION]["deployment_id"] = deployment_id
        checkboxes = self.admin_checkboxes
        if checkboxes is None:
            checkboxes = sakai_checkboxes_for(requested_scopes(body))
        registration = self.registration(
            body, client_id, deployment_id, echo, granted=sakai_grants(checkboxes)
        )
        return Accepted(200, echo, registration)


PROFILE_CLASSES: dict[str, type[Profile]] = {
    cls.name: cls
    for cls in (
        GenericProfile,
        CanvasProfile,
        MoodleProfile,
        BrightspaceProfile,
        SakaiProfile,
        MoodleLegacyProfile,
    )
}
PROFILES: tuple[str, ...] = tuple(PROFILE_CLASSES)
