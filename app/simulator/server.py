"""The LMS simulator: a real HTTP server on loopback, the platform side of Dynamic Registration."""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from app.lti.constants import PLATFORM_CONFIGURATION, SIGNING_ALG
from app.lti.launch import with_query
from app.simulator.checks import compact, is_http_uri
from app.simulator.driver import SimulationReport, drive
from app.simulator.launch import (
    COURSE_PAGE_PATH,
    DEEP_LINK_RETURN_PATH,
    FORWARDING_FRAME_PATH,
    PLATFORM_STORAGE_SCRIPT_PATH,
    LaunchResult,
    LaunchSide,
    PendingLaunch,
    new_key,
    run_launch,
)
from app.simulator.profiles import PROFILE_CLASSES, Profile
from app.simulator.records import (
    Accepted,
    Grant,
    Registration,
    RegistrationRecord,
    Rejection,
)
from app.testing.serving import LoopbackServer, is_loopback_host

FAULTS = frozenset(
    {
        "issuer_mismatch",
        "http_issuer_with_query",
        "no_registration_endpoint",
        "no_jwks_uri",
        "no_rs256",
        "no_private_key_jwt",
        "no_platform_config",
        "config_not_json",
        "config_status_500",
        "config_redirect_offsite",
        "post_status_500",
        "post_not_json",
        "post_no_client_id",
        "slow_config",
        "slow_post",
        "canvas_no_deployment",
        "canvas_rejects_new_window",
        "no_token_endpoint_rs256",
        "config_not_object",
        "refuse_registration",
    }
)
# Faults that model one Canvas build rather than a broken platform.
CANVAS_ONLY_FAULTS = ("canvas_no_deployment", "canvas_rejects_new_window")


class _Remove:
    """Marks a configuration key that `config_overrides` deletes."""

    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Remove()
# Faults that replace a valid registration's success answer (checked in this order).
POST_FAULTS = ("post_status_500", "post_not_json", "post_no_client_id")
FOREIGN_ISSUER = "https://lms.elsewhere.example"
NOT_JSON_PAGE = (
    "<!doctype html><html><head><title>Dashboard</title></head>"
    "<body><h1>Welcome to the LMS</h1><p>You are signed in.</p></body></html>"
)


@dataclass(frozen=True)
class Event:
    """One thing the LMS did, for the report's trace; token ties it to a registration."""

    index: int
    token: str | None
    text: str


class Simulator:
    """An LMS on loopback: OpenID configuration, registration endpoint and JWKS for one profile."""

    def __init__(
        self,
        profile: str = "generic",
        faults: Iterable[str] = (),
        host: str = "127.0.0.1",
        alt_host: str = "localhost",
        port: int = 0,
        delay: float = 0.0,
        config_overrides: Mapping[str, Any] | None = None,
        withhold_scopes: Iterable[str] = (),
        refuse_at_token: Iterable[str] = (),
    ) -> None:
        """Build a simulated LMS; nothing listens until start().

        `config_overrides` replaces top-level keys of the OpenID configuration (REMOVE deletes
        one; `{base_url}` in a string becomes this LMS's address), for platforms that break one
        rule. `withhold_scopes` are scopes the LMS accepts in a request but does not grant, as an
        admin restricting services would. `refuse_at_token` are scopes its answer still claims
        but its token endpoint refuses: Sakai's admin leaving a service's checkbox off (the
        answer echoes the request), or Moodle's answer over-reporting `lineitem`.
        """
        if profile not in PROFILE_CLASSES:
            choices = ", ".join(PROFILE_CLASSES)
            raise ValueError(f"Unknown profile {profile!r}; choose one of {choices}")
        self.faults = frozenset(faults)
        unknown = self.faults - FAULTS
        if unknown:
            raise ValueError(f"Unknown fault(s): {', '.join(sorted(unknown))}")
        for fault in CANVAS_ONLY_FAULTS:
            if fault in self.faults and profile != "canvas":
                raise ValueError(f"The {fault} fault applies only to the canvas profile")
        if not is_loopback_host(host) or not is_loopback_host(alt_host):
            raise ValueError("The simulator serves on loopback names or addresses only")
        self.profile_name = profile
        self.profile: Profile = PROFILE_CLASSES[profile](self)
        self.host = host
        self.alt_host = alt_host
        self.port = port
        self.delay = delay
        self.config_overrides = dict(config_overrides or {})
        self.withhold_scopes = frozenset(withhold_scopes)
        self.refuse_at_token = frozenset(refuse_at_token)
        odd = sorted(
            repr(s) for s in self.refuse_at_token if not isinstance(s, str) or "://" not in s
        )
        if odd:
            raise ValueError(f"refuse_at_token takes service scope URIs, not {', '.join(odd)}")
        self.records: list[RegistrationRecord] = []
        self.config_fetches: list[tuple[str, dict[str, str]]] = []
        self.issued_client_ids: set[str] = set()
        self.server_errors: list[str] = []
        self.key: RSAKey | None = None
        self._grants: dict[str, Grant] = {}
        self._registrations: dict[str, Registration] = {}
        self._events: list[Event] = []
        self._counter = 0
        self._lock = threading.RLock()
        self._server: LoopbackServer | None = None
        self.launches = LaunchSide(self)
        self.jwks_fetches = 0
        self._url_map = self._build_url_map()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Generate the platform key and start serving in a daemon thread."""
        if self._server is not None:
            return self
        self.key = new_key()
        # Request lines stay out of the terminal (QuietHandler logs at DEBUG): the report tells
        # the story.
        self._server = LoopbackServer(
            self._wsgi, self.host, self.port, name=f"lms-simulator-{self.profile_name}"
        ).start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.stop()
        self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Return http://<host>:<port>, the LMS's own address."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def alt_netloc(self) -> str:
        """Return <alt_host>:<port>: this server under its other name (Canvas account domain)."""
        return f"{_url_host(self.alt_host)}:{self.port}"

    @property
    def alt_base_url(self) -> str:
        """Return http://<alt_host>:<port>."""
        return f"http://{self.alt_netloc}"

    @property
    def issuer(self) -> str:
        """Return the issuer this profile advertises (after faults)."""
        if "issuer_mismatch" in self.faults:
            return FOREIGN_ISSUER
        if "http_issuer_with_query" in self.faults:
            return f"{self.base_url}?x=1"
        return self.base_url

    # --- starting registrations ----------------------------------------------------------------

    def initiation_url(self, tool_url: str, update_client_id: str | None = None) -> str:
        """Issue a fresh registration token and return the URL the LMS opens for the admin."""
        return self.initiate(tool_url, update_client_id)[0]

    def initiate(self, tool_url: str, update_client_id: str | None = None) -> tuple[str, Grant]:
        """Like initiation_url, but also return the grant (token and pre-allocated ids)."""
        if self._server is None:
            raise RuntimeError("Start the simulator before initiating a registration")
        if not is_http_uri(tool_url):
            raise ValueError(f"The tool URL must be an absolute http(s) URL, not {tool_url!r}")
        previous = None
        if update_client_id is not None:
            if not self.profile.supports_update:
                name = self.profile.display_name
                raise ValueError(f"{name} does not support registration updates")
            previous = self.registration_by_client_id(update_client_id)
            if previous is None:
                raise ValueError(f"No registration with client_id {update_client_id!r} to update")
        grant = Grant(token="", tool_url=tool_url, update_of=previous)
        with self._lock:
            self.profile.issue(grant)
            self._grants[grant.token] = grant
        return with_query(tool_url, self.profile.initiation_params(grant)), grant

    def register(
        self, tool_url: str, update_client_id: str | None = None, timeout: float = 30.0
    ) -> SimulationReport:
        """Run one registration through tool_url the way an admin's browser would; judge it."""
        return drive(self, tool_url, update_client_id=update_client_id, timeout=timeout)

    # --- launching ------------------------------------------------------------------------------

    def prepare_launch(self, client_id: str, **options: Any) -> PendingLaunch:
        """Start a launch of a registration; see LaunchSide.prepare for the options."""
        return self.launches.prepare(client_id, **options)

    def launch(self, client_id: str, timeout: float = 15.0, **options: Any) -> LaunchResult:
        """Launch the tool of a registration like a user's browser; return where it ended."""
        return run_launch(self.prepare_launch(client_id, **options).login_url, timeout=timeout)

    def rotate_key(self) -> RSAKey:
        """Sign launches with a new key from now on (the old one stays published)."""
        return self.launches.rotate_key()

    # --- what happened -------------------------------------------------------------------------

    def posts_for(self, token: str) -> int:
        """Count the POSTs that arrived at the registration endpoint with this token."""
        with self._lock:
            return sum(1 for record in self.records if record.token == token)

    def records_for(self, token: str) -> list[RegistrationRecord]:
        """Return the POSTs that arrived with this token."""
        with self._lock:
            return [record for record in self.records if record.token == token]

    def event(self, token: str | None, text: str) -> None:
        """Add a line to the LMS's trace."""
        with self._lock:
            self._events.append(Event(len(self._events), token, text))

    def events_since(self, index: int) -> list[Event]:
        """Return trace lines from index on."""
        with self._lock:
            return self._events[index:]

    @property
    def event_count(self) -> int:
        """Return how many trace lines exist."""
        with self._lock:
            return len(self._events)

    # --- state used by profiles ----------------------------------------------------------------

    def grant_for(self, token: str) -> Grant | None:
        """Return the grant issued with this token."""
        with self._lock:
            return self._grants.get(token)

    def grant_for_key(self, key: str) -> Grant | None:
        """Return the grant with this Sakai tool key."""
        with self._lock:
            return next((g for g in self._grants.values() if key and g.key == key), None)

    def registrations(self) -> list[Registration]:
        """Return the registrations this LMS holds."""
        with self._lock:
            return list(self._registrations.values())

    def registration_by_client_id(self, client_id: str) -> Registration | None:
        """Return the registration with this client_id."""
        with self._lock:
            return self._registrations.get(client_id)

    def registration_by_deployment_id(self, deployment_id: str) -> Registration | None:
        """Return the registration with this deployment_id."""
        with self._lock:
            return next(
                (r for r in self._registrations.values() if r.deployment_id == deployment_id), None
            )

    def next_number(self) -> int:
        """Return the next small integer id (Moodle type ids, Canvas key numbers…)."""
        with self._lock:
            self._counter += 1
            return self._counter

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign claims as an RS256 JWT with the platform key."""
        assert self.key is not None  # noqa: S101 - start() creates the key before any token
        return jwt.encode({"alg": SIGNING_ALG, "kid": self.key.kid, "typ": "JWT"}, claims, self.key)

    def verify(self, token: str) -> dict[str, Any]:
        """Verify an RS256 JWT signed with the platform key and return its claims."""
        assert self.key is not None  # noqa: S101 - start() creates the key before any token
        return dict(jwt.decode(token, self.key, algorithms=[SIGNING_ALG]).claims)

    def jwks(self) -> dict[str, Any]:
        """Return the platform's public key set."""
        assert self.key is not None  # noqa: S101 - start() creates the key before serving
        return {"keys": self.launches.public_keys()}

    # --- HTTP ----------------------------------------------------------------------------------

    def _build_url_map(self) -> Map:
        profile = self.profile
        rules = [
            Rule(profile.config_rule, endpoint="config", methods=["GET"]),
            Rule(
                profile.registration_rule,
                endpoint="register",
                methods=list(profile.registration_methods),
            ),
            Rule(profile.jwks_path, endpoint="jwks", methods=["GET"]),
            Rule(profile.authorization_path, endpoint="authorize", methods=["GET", "POST"]),
            Rule(profile.oauth_endpoint_path, endpoint="token", methods=["POST"]),
            Rule(DEEP_LINK_RETURN_PATH, endpoint="deep_link_return", methods=["POST"]),
            Rule(COURSE_PAGE_PATH, endpoint="course", methods=["GET"]),
            Rule(FORWARDING_FRAME_PATH, endpoint="forwarding_frame", methods=["GET"]),
            Rule(PLATFORM_STORAGE_SCRIPT_PATH, endpoint="platform_storage", methods=["GET"]),
        ]
        return Map(rules, strict_slashes=False)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        adapter = self._url_map.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
            handler = getattr(self, f"_on_{endpoint}")
            response = handler(request, args)
        except HTTPException as exc:
            response = exc.get_response(environ)
        except Exception:  # a simulator bug must show in the report, not kill the thread
            detail = traceback.format_exc(limit=5)
            with self._lock:
                self.server_errors.append(detail)
            self.event(
                None,
                f"simulator error while answering {request.method} {request.path}: "
                f"{detail.strip().splitlines()[-1]}",
            )
            response = Response("Internal Server Error", status=500, content_type="text/plain")
        return response(environ, start_response)

    def _on_config(self, request: Request, args: dict[str, str]) -> Response:
        path = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        with self._lock:
            self.config_fetches.append((path, dict(request.headers)))
        if "slow_config" in self.faults:
            time.sleep(self.delay)
        how = self.profile.config_how
        if request.headers.get("Authorization"):
            how += ", Bearer header sent"
        try:
            grant = self.profile.config_grant(request, args)
        except Rejection as rejection:
            hint = request.args.get("registration_token") or args.get("token")
            self.event(
                hint,
                f"GET openid configuration ({how}) -> {rejection.status} "
                f"{compact(rejection.body, 160)}",
            )
            return rejection.response()
        token = grant.token if grant else None
        response, note = self._config_response(request, grant)
        self.event(token, f"GET openid configuration ({how}) -> {response.status_code}{note}")
        return response

    def _config_response(self, request: Request, grant: Grant | None) -> tuple[Response, str]:
        if "config_status_500" in self.faults:
            return Response("Internal Server Error", 500, content_type="text/plain"), " (fault)"
        if "config_redirect_offsite" in self.faults:
            query = f"?{request.query_string.decode()}" if request.query_string else ""
            target = f"http://127.0.0.2:{self.port}{request.path}{query}"
            response = Response("", 302, headers={"Location": target})
            return response, f" redirect to {target} (fault)"
        if "config_not_json" in self.faults:
            return Response(NOT_JSON_PAGE, 200, content_type="text/html"), " HTML, not JSON (fault)"
        doc = self.profile.openid_configuration(request, grant)
        if "no_registration_endpoint" in self.faults:
            doc.pop("registration_endpoint", None)
        if "no_jwks_uri" in self.faults:
            doc.pop("jwks_uri", None)
        if "no_rs256" in self.faults:
            doc["id_token_signing_alg_values_supported"] = ["HS256"]
        if "no_token_endpoint_rs256" in self.faults:
            doc["token_endpoint_auth_signing_alg_values_supported"] = ["ES256"]
        if "no_private_key_jwt" in self.faults:
            doc["token_endpoint_auth_methods_supported"] = ["client_secret_basic"]
        if "no_platform_config" in self.faults:
            for key in [k for k in doc if k.startswith(PLATFORM_CONFIGURATION)]:
                del doc[key]
        for key, value in self.config_overrides.items():
            if value is REMOVE:
                doc.pop(key, None)
            else:
                doc[key] = value.format(base_url=self.base_url) if isinstance(value, str) else value
        if "config_not_object" in self.faults:
            return (
                Response(json.dumps([doc]), 200, content_type="application/json"),
                " a JSON array, not an object (fault)",
            )
        note = (
            f" (overrides: {', '.join(sorted(self.config_overrides))})"
            if (self.config_overrides)
            else ""
        )
        return Response(json.dumps(doc), 200, content_type="application/json"), note

    def _on_register(self, request: Request, args: dict[str, str]) -> Response:
        if request.method != "POST":
            return self._on_read_registration(request, args)
        if "slow_post" in self.faults:
            time.sleep(self.delay)
        token = self.profile.request_token(request, args)
        raw = request.get_data(as_text=True)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw
        headers = dict(request.headers)
        how = "Bearer token" if request.headers.get("Authorization") else "no Authorization header"
        with self._lock:
            try:
                grant = self.profile.authenticate(request, token, args)
                parsed = self.profile.parse_body(request)
                self.profile.validate(parsed, grant)
                if "refuse_registration" in self.faults:
                    raise self.profile.refusal(parsed)
            except Rejection as rejection:
                self.records.append(
                    RegistrationRecord(
                        token=token,
                        headers=headers,
                        body=body,
                        status=rejection.status,
                        response=rejection.body,
                    )
                )
                self.event(
                    token,
                    f"POST registration ({how}) -> {rejection.status} "
                    f"{compact(rejection.body, 200)}",
                )
                return rejection.response()
            fault = next((f for f in POST_FAULTS if f in self.faults), None)
            if fault:
                grant.used = True
                return self._post_fault(fault, token, headers, body, how)
            accepted = self.profile.accept(parsed, grant)
            self._withhold(accepted)
            grant.used = True
            registration = accepted.registration
            self._registrations[registration.client_id] = registration
            self.issued_client_ids.add(registration.client_id)
            self.records.append(
                RegistrationRecord(
                    token=token,
                    headers=headers,
                    body=body,
                    status=accepted.status,
                    response=accepted.body,
                    client_id=registration.client_id,
                    deployment_id=registration.deployment_id,
                    accepted=True,
                )
            )
        shown = accepted.body.get("deployment_id", registration.deployment_id)
        self.event(
            token,
            f"POST registration ({how}) -> {accepted.status} "
            f"client_id={registration.client_id} deployment_id={shown}"
            + (" (update of the existing registration)" if grant.update_of else ""),
        )
        return Response(
            json.dumps(accepted.body),
            accepted.status,
            content_type="application/json; charset=utf-8",
        )

    def _withhold(self, accepted: Accepted) -> None:
        """Take the withheld scopes out of what the LMS grants and echoes.

        Scopes refused at the token endpoint leave the grants only: the answer still claims
        them.
        """
        registration = accepted.registration
        if self.refuse_at_token:
            registration.scopes = tuple(
                s for s in registration.scopes if s not in self.refuse_at_token
            )
        if not self.withhold_scopes:
            return
        registration.scopes = tuple(s for s in registration.scopes if s not in self.withhold_scopes)
        scope = accepted.body.get("scope")
        if isinstance(scope, str):
            accepted.body["scope"] = " ".join(
                s for s in scope.split() if s not in self.withhold_scopes
            )

    def _post_fault(
        self, fault: str, token: str | None, headers: dict[str, str], body: Any, how: str
    ) -> Response:
        if fault == "post_status_500":
            response = Response("Internal Server Error", 500, content_type="text/plain")
            answer: dict[str, Any] | str = "Internal Server Error"
        elif fault == "post_not_json":
            response = Response(NOT_JSON_PAGE, 200, content_type="text/html")
            answer = NOT_JSON_PAGE
        else:
            answer = {"application_type": "web", "client_name": _get(body, "client_name")}
            response = Response(json.dumps(answer), 200, content_type="application/json")
        self.records.append(
            RegistrationRecord(
                token=token,
                headers=headers,
                body=body,
                status=response.status_code,
                response=answer,
            )
        )
        self.event(
            token,
            f"POST registration ({how}) -> {response.status_code} "
            f"{compact(answer, 120)} (fault {fault})",
        )
        return response

    def _on_read_registration(self, request: Request, args: dict[str, str]) -> Response:
        token = self.profile.request_token(request, args)
        try:
            response = self.profile.read_registration(request, token, args)
        except Rejection as rejection:
            response = rejection.response()
        self.event(token, f"{request.method} registration endpoint -> {response.status_code}")
        return response

    def _on_jwks(self, request: Request, args: dict[str, str]) -> Response:
        with self._lock:
            self.jwks_fetches += 1
        return Response(json.dumps(self.jwks()), 200, content_type="application/json")

    def _on_authorize(self, request: Request, args: dict[str, str]) -> Response:
        return self.launches.authorize(request)

    def _on_token(self, request: Request, args: dict[str, str]) -> Response:
        return self.launches.token(request)

    def _on_deep_link_return(self, request: Request, args: dict[str, str]) -> Response:
        return self.launches.deep_link_return(request)

    def _on_course(self, request: Request, args: dict[str, str]) -> Response:
        return self.launches.course_page(request)

    def _on_forwarding_frame(self, request: Request, args: dict[str, str]) -> Response:
        return self.launches.forwarding_frame(request)

    def _on_platform_storage(self, request: Request, args: dict[str, str]) -> Response:
        return self.launches.platform_storage_script(request)


def _get(body: Any, key: str) -> Any:
    return body.get(key) if isinstance(body, dict) else None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
