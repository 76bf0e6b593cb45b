"""The LMS simulator: each profile's configuration, rules and answers, and the browser driver."""

import copy
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.wrappers import Request, Response

from app.lti.constants import (
    CANVAS_PREFIX,
    MESSAGE_TYPE_ALIASES,
    PLATFORM_CONFIGURATION,
    TOOL_CONFIGURATION,
    Scope,
)
from app.simulator import PROFILES, REMOVE, SimulationReport, Simulator
from app.testing import LoopbackServer

TOOL_KEY = RSAKey.generate_key(2048, parameters={"kid": "tool-1", "alg": "RS256"}, private=True)
WANTED_SCOPES = (Scope.AGS_SCORE.value, Scope.AGS_LINEITEM.value, Scope.NRPS_MEMBERSHIP.value)


class MiniTool:
    """A tiny conforming tool on its own loopback port: discovery, one POST, a close page."""

    def __init__(self):
        self.server = LoopbackServer(self.wsgi, name="mini-tool")
        self.reset()

    @property
    def base(self):
        return self.server.url

    def reset(self):
        self.jwks_status = 200
        self.jwks_body = {"keys": [TOOL_KEY.as_dict(private=False)]}
        self.post_twice = False
        self.finish_base = None
        self.close_marker = True
        self.canvas_placements = True
        self.responses = []

    @property
    def registration_url(self):
        return self.base + "/lti/register?tenant=t1"

    def wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path == "/jwks":
            response = Response(
                json.dumps(self.jwks_body), self.jwks_status, content_type="application/json"
            )
        elif request.path == "/lti/register":
            response = self.register(request)
        elif request.path == "/lti/done":
            marker = ' data-lti-close="auto"' if self.close_marker else ""
            response = Response(
                f"<!doctype html><html><body{marker}><h1>Registered</h1>"
                "<p>Ask an LMS admin to enable the tool.</p></body></html>",
                content_type="text/html",
            )
        else:
            response = Response("Not found", 404)
        return response(environ, start_response)

    def fail(self, text):
        return Response(
            f"<html><body><h1>Registration failed</h1><p>{text}</p>"
            "<script>var x = 1;</script></body></html>",
            502,
            content_type="text/html",
        )

    def register(self, request):
        assert request.args["tenant"] == "t1"
        token = request.args.get("registration_token")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        answer = requests.get(
            request.args["openid_configuration"], headers=headers, timeout=5, allow_redirects=False
        )
        if answer.status_code != 200:
            return self.fail(f"The LMS configuration answered HTTP {answer.status_code}.")
        try:
            config = answer.json()
        except ValueError:
            return self.fail("The LMS configuration is not JSON.")
        platform = config.get(PLATFORM_CONFIGURATION) or config.get(PLATFORM_CONFIGURATION + " ")
        family = (platform or {}).get("product_family_code")
        body = self.registration_body(config, platform or {})
        post_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            post_headers["Authorization"] = f"Bearer {token}"
        for _ in range(2 if self.post_twice else 1):
            self.responses.append(
                requests.post(
                    config["registration_endpoint"], json=body, timeout=10, headers=post_headers
                )
            )
        answer = self.responses[0]
        if not 200 <= answer.status_code < 300 or family is None:
            return self.fail(f"The LMS refused the registration: {answer.text}")
        return Response(
            "", 302, headers={"Location": (self.finish_base or self.base) + "/lti/done"}
        )

    def registration_body(self, config, platform):
        family = platform.get("product_family_code")
        supported = set()
        for message in platform.get("messages_supported", []):
            kind = message["type"] if isinstance(message, dict) else message
            supported.add(MESSAGE_TYPE_ALIASES.get(kind, kind))
        messages = []
        if "LtiResourceLinkRequest" in supported:
            messages.append(
                {
                    "type": "LtiResourceLinkRequest",
                    "label": "Open",
                    "target_link_uri": self.base + "/launch",
                }
            )
        if "LtiDeepLinkingRequest" in supported:
            messages.append(
                {
                    "type": "LtiDeepLinkingRequest",
                    "label": "Pick",
                    "target_link_uri": self.base + "/deep-link",
                }
            )
        if family == "canvas" and self.canvas_placements:
            messages[0]["placements"] = ["course_navigation"]
            messages[1]["placements"] = ["link_selection", "editor_button"]
        scopes = [
            s
            for s in WANTED_SCOPES
            if family == "sakailms.org" or s in config.get("scopes_supported", [])
        ]
        return {
            "application_type": "web",
            "response_types": ["id_token"],
            "grant_types": ["implicit", "client_credentials"],
            "initiate_login_uri": self.base + "/login",
            "redirect_uris": [self.base + "/launch", self.base + "/deep-link"],
            "client_name": "Mini tool",
            "jwks_uri": self.base + "/jwks",
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": " ".join(scopes),
            TOOL_CONFIGURATION: {
                "domain": urlsplit(self.base).netloc,
                "target_link_uri": self.base + "/launch",
                "claims": ["iss", "sub", "name", "email"],
                "messages": messages,
            },
        }


@pytest.fixture(scope="module")
def tool():
    tool = MiniTool()
    with tool.server:
        yield tool


@pytest.fixture(autouse=True)
def _reset_tool(request):
    if "tool" in request.fixturenames:
        request.getfixturevalue("tool").reset()


@pytest.fixture(scope="module")
def sims():
    """One running simulator per profile, shared by the validator tests."""
    started = {name: Simulator(profile=name).start() for name in PROFILES}
    yield started
    for sim in started.values():
        sim.stop()


def good_body(base="http://127.0.0.1:5001", canvas=False):
    messages = [
        {"type": "LtiResourceLinkRequest", "target_link_uri": base + "/launch", "label": "Open"},
        {"type": "LtiDeepLinkingRequest", "target_link_uri": base + "/deep-link"},
    ]
    if canvas:
        messages[0]["placements"] = ["course_navigation"]
        messages[1]["placements"] = ["ContentArea", CANVAS_PREFIX + "editor_button"]
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": base + "/login",
        "redirect_uris": [base + "/launch"],
        "client_name": "Quiz tool",
        "jwks_uri": base + "/jwks",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": Scope.AGS_SCORE.value,
        TOOL_CONFIGURATION: {
            "domain": urlsplit(base).netloc,
            "target_link_uri": base + "/launch",
            "claims": ["iss", "sub"],
            "messages": messages,
        },
    }


def fetch_config(sim, url):
    answer = requests.get(url, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def post_registration(sim, body, tool_url="http://127.0.0.1:5001/register", bearer=True):
    """Start a registration and POST body to the advertised endpoint, the way a tool would."""
    url, grant = sim.initiate(tool_url)
    query = parse_qs(urlsplit(url).query)
    config = fetch_config(sim, query["openid_configuration"][0])
    headers = {"Authorization": f"Bearer {grant.token}"} if bearer and grant.token else {}
    if "registration_token" not in query:
        headers = {}
    answer = requests.post(config["registration_endpoint"], json=body, headers=headers, timeout=5)
    return answer, grant, config


def mutate(body, path, value=None, delete=False):
    body = copy.deepcopy(body)
    target = body
    keys = path.split("|")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = int(keys[-1]) if isinstance(target, list) else keys[-1]
    if delete:
        del target[last]
    else:
        target[last] = value
    return body


TC = TOOL_CONFIGURATION


# --- generic ------------------------------------------------------------------------------------


def test_generic_accepts_a_clean_registration_with_201(sims):
    answer, grant, config = post_registration(sims["generic"], good_body())
    assert answer.status_code == 201
    echo = answer.json()
    assert echo["client_id"] in sims["generic"].issued_client_ids
    assert echo[TC]["deployment_id"]
    assert echo["registration_client_uri"].endswith(echo["client_id"])
    assert echo["scope"] == Scope.AGS_SCORE.value
    assert "openid" in config["scopes_supported"]
    assert config["authorization_server"]
    assert config[PLATFORM_CONFIGURATION]["messages_supported"][0]["placements"]


@pytest.mark.parametrize(
    ("path", "value", "delete", "phrase"),
    [
        ("application_type", "native", False, "application_type"),
        ("response_types", ["code"], False, "response_types"),
        ("grant_types", ["implict", "client_credentials"], False, '"implicit"'),
        ("token_endpoint_auth_method", "client_secret_basic", False, "private_key_jwt"),
        ("redirect_uris", [], False, "redirect_uris"),
        ("redirect_uris", ["/relative"], False, "redirect_uris"),
        ("initiate_login_uri", None, True, "initiate_login_uri"),
        ("jwks_uri", "not a url", False, "jwks_uri"),
        ("client_name", "", False, "client_name"),
        ("scope", ["a", "b"], False, "scope"),
        (TC, None, True, TC),
        (f"{TC}|domain", "127.0.0.1", False, "domain"),
        (f"{TC}|deployment_id", "1", False, "deployment_id"),
        (f"{TC}|messages|0|type", "LtiResourceLink", False, "LtiResourceLink"),
    ],
)
def test_generic_rejects_with_dcr_error(sims, path, value, delete, phrase):
    answer, _, _ = post_registration(sims["generic"], mutate(good_body(), path, value, delete))
    assert answer.status_code == 400
    error = answer.json()
    assert error["error"] == "invalid_client_metadata"
    assert phrase in error["error_description"]


def test_generic_requires_bearer(sims):
    answer, grant, _ = post_registration(sims["generic"], good_body(), bearer=False)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"
    assert sims["generic"].posts_for(grant.token) == 0  # no token: not counted against it


def test_generic_token_is_single_use(sims):
    sim = sims["generic"]
    answer, grant, config = post_registration(sim, good_body())
    assert answer.status_code == 201
    again = requests.post(
        config["registration_endpoint"],
        json=good_body(),
        timeout=5,
        headers={"Authorization": f"Bearer {grant.token}"},
    )
    assert again.status_code == 401
    assert "already been used" in again.json()["error_description"]
    assert sim.posts_for(grant.token) == 2
    assert [r.accepted for r in sim.records_for(grant.token)] == [True, False]


# --- canvas -------------------------------------------------------------------------------------


def test_canvas_configuration_requires_token_in_query(sims):
    sim = sims["canvas"]
    answer = requests.get(sim.base_url + "/api/lti/security/openid-configuration", timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"error": "Access token missing (registration_token query parameter)"}


def test_canvas_configuration_shape(sims):
    sim = sims["canvas"]
    url = sim.initiation_url("http://127.0.0.1:5001/register")
    query = parse_qs(urlsplit(url).query)
    config_url = query["openid_configuration"][0]
    assert parse_qs(urlsplit(config_url).query)["registration_token"] == query["registration_token"]
    config = fetch_config(sim, config_url)
    assert config["issuer"] == sim.base_url
    assert config["registration_endpoint"] == f"http://localhost:{sim.port}/api/lti/registrations"
    assert "://" not in config["authorization_server"]
    assert "openid" not in config["scopes_supported"]
    platform = config[PLATFORM_CONFIGURATION]
    assert platform["product_family_code"] == "canvas"
    assert platform["version"] == "OpenSource"
    placements = {m["type"]: m["placements"] for m in platform["messages_supported"]}
    assert "course_navigation" in placements["LtiResourceLinkRequest"]
    assert "editor_button" in placements["LtiDeepLinkingRequest"]


def test_canvas_accepts_with_200_openid_and_top_level_deployment(sims):
    answer, _, _ = post_registration(sims["canvas"], good_body(canvas=True))
    assert answer.status_code == 200, answer.text
    echo = answer.json()
    assert echo["scope"].split() == [Scope.AGS_SCORE.value, "openid"]
    assert ":" in echo["deployment_id"]
    assert echo["registration_client_uri"].startswith(f"http://localhost:{sims['canvas'].port}/")
    assert echo[TC][CANVAS_PREFIX + "registration_config_url"].endswith("/view")


# Canvas words schema errors as Schemas::Base.simple_validation_error does: "<value> <JSON
# pointer>. Schema: ...", or "The following fields are required: ..." at the root.
TCP = "/https:~1~1purl.imsglobal.org~1spec~1lti-tool-configuration"
CANVAS_EXT = "https:~1~1canvas.instructure.com~1lti~1"


@pytest.mark.parametrize(
    ("path", "value", "delete", "phrase"),
    [
        ("application_type", "native", False, "native /application_type. Schema"),
        ("grant_types", ["implict", "client_credentials"], False, "/grant_types. Schema"),
        ("response_types", ["code"], False, "/response_types. Schema"),
        ("redirect_uris", [], False, "/redirect_uris. Schema"),
        ("redirect_uris", "http://127.0.0.1:5001/launch", False, "/redirect_uris. Schema"),
        ("token_endpoint_auth_method", "client_secret_basic", False, "/token_endpoint_auth_"),
        ("client_name", "", False, "/client_name. Schema"),
        ("client_name", None, True, "required: 'client_name' is a required property"),
        ("logo_uri", "", False, " /logo_uri. Schema: uri (format)"),
        ("contacts", ["not-an-email"], False, "/contacts/0. Schema: email (format)"),
        (f"{TC}|claims", None, True, "'claims' is a required property"),
        (f"{TC}|domain", "https://127.0.0.1:5001", False, f"{TCP}/domain. Schema"),
        (f"{TC}|custom_parameters", {"n": 1}, False, f"{TCP}/custom_parameters/n. Schema"),
        (f"{TC}|messages|0|type", "LtiResourceLink", False, f"{TCP}/messages/0/type. Schema"),
        (f"{TC}|messages|0|placements", ["sidebar"], False, "/messages/0/placements/0. Schema"),
        (f"{TC}|{CANVAS_PREFIX}privacy_level", "everything", False, "privacy_level. Schema"),
        (f"{TC}|messages|0|{CANVAS_PREFIX}visibility", "all", False, f"{CANVAS_EXT}visibility."),
        (f"{TC}|messages|0|{CANVAS_PREFIX}display_type", "popup", False, "display_type. Schema"),
        ("scope", f"{Scope.TOOL_SETTINGS.value}", False, "Invalid scopes: "),
    ],
)
def test_canvas_rejects_with_422_errors(sims, path, value, delete, phrase):
    body = mutate(good_body(canvas=True), path, value, delete)
    answer, _, _ = post_registration(sims["canvas"], body)
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert any(phrase in message for message in errors), errors


def test_canvas_answers_a_message_without_placements_as_sent(sims):
    # The answer is the stored lti_tool_configuration (render_registration); the link_selection
    # default happens later, in Lti::IMS::Registration#placements, and never shows in it.
    body = mutate(good_body(canvas=True), f"{TC}|messages|0|placements", delete=True)
    answer, _, _ = post_registration(sims["canvas"], body)
    assert answer.status_code == 200  # Canvas does not refuse it
    recorded = answer.json()[TC]["messages"]
    assert "placements" not in recorded[0]
    assert recorded[1]["placements"] == ["ContentArea", CANVAS_PREFIX + "editor_button"]


@pytest.mark.parametrize(
    ("placements", "phrase"),
    [(None, "names no placements"), ([], "treats as none")],
)
def test_canvas_review_flags_messages_without_placements(placements, phrase):
    body = good_body(canvas=True)
    if placements is None:
        del body[TC]["messages"][1]["placements"]
    else:
        body[TC]["messages"][1]["placements"] = placements
    with Simulator(profile="canvas") as sim:
        (problem,) = sim.profile.review(body)
    assert "LtiDeepLinkingRequest" in problem and phrase in problem
    assert Simulator(profile="canvas").profile.review(good_body(canvas=True)) == []
    # Other LMSes do not care.
    assert Simulator(profile="moodle").profile.review(good_body()) == []


def test_driver_fails_a_canvas_registration_without_placements(tool):
    tool.canvas_placements = False
    with Simulator(profile="canvas") as sim:
        report = sim.register(tool.registration_url, timeout=10)
    assert not report.ok
    assert sim.records[0].accepted
    assert any(
        "Canvas accepted it, but: The LtiResourceLinkRequest message names no placements" in p
        for p in report.problems
    ), report.render()


def test_current_canvas_accepts_new_window():
    body = mutate(
        good_body(canvas=True), f"{TC}|messages|0|{CANVAS_PREFIX}display_type", "new_window"
    )
    with Simulator(profile="canvas") as sim:
        sim.profile.schema_edition = "current"
        answer, _, _ = post_registration(sim, body)
    assert answer.status_code == 200, answer.text


def test_canvas_2024_rejects_new_window_by_default_and_with_the_fault(sims):
    body = mutate(
        good_body(canvas=True), f"{TC}|messages|0|{CANVAS_PREFIX}display_type", "new_window"
    )
    assert post_registration(sims["canvas"], body)[0].status_code == 422


def test_canvas_before_2025_rejects_new_window():
    body = mutate(
        good_body(canvas=True), f"{TC}|messages|0|{CANVAS_PREFIX}display_type", "new_window"
    )
    with Simulator(profile="canvas", faults=["canvas_rejects_new_window"]) as sim:
        answer, _, _ = post_registration(sim, body)
        assert answer.status_code == 422
        assert any("display_type" in e for e in answer.json()["errors"])
        fine = mutate(body, f"{TC}|messages|0|{CANVAS_PREFIX}display_type", "full_width")
        assert post_registration(sim, fine)[0].status_code == 200
    with pytest.raises(ValueError, match="only to the canvas profile"):
        Simulator(profile="moodle", faults=["canvas_rejects_new_window"])


def test_canvas_requires_bearer_on_post(sims):
    answer, _, _ = post_registration(sims["canvas"], good_body(canvas=True), bearer=False)
    assert answer.status_code == 401
    # respond_with_error in app/controllers/lti/ims/dynamic_registration_controller.rb
    assert answer.json() == {"errorMessage": "JWT did not include expected contents"}


def test_canvas_post_must_go_to_the_account_domain(sims):
    sim = sims["canvas"]
    url, grant = sim.initiate("http://127.0.0.1:5001/register")
    answer = requests.post(
        sim.base_url + "/api/lti/registrations",
        json=good_body(canvas=True),
        headers={"Authorization": f"Bearer {grant.token}"},
        timeout=5,
    )
    assert answer.status_code == 404


# --- moodle -------------------------------------------------------------------------------------


def test_moodle_configuration_and_token(sims):
    sim = sims["moodle"]
    url = sim.initiation_url("http://127.0.0.1:5001/register")
    query = parse_qs(urlsplit(url).query)
    assert query["openid_configuration"] == [sim.base_url + "/mod/lti/openid-configuration.php"]
    claims = jwt.decode(query["registration_token"][0], sim.key).claims
    assert claims["scope"] == "reg" and len(claims["sub"]) == 15
    assert claims["exp"] - claims["iat"] == 3600
    config = fetch_config(sim, query["openid_configuration"][0])
    assert config["issuer"] == sim.base_url
    assert "authorization_server" not in config
    assert "openid" in config["scopes_supported"]
    platform = config[PLATFORM_CONFIGURATION]
    assert platform["version"] == "4.5.6 (Build: 20250811)"
    assert platform["messages_supported"] == [
        {"type": "LtiResourceLinkRequest"},
        {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]},
    ]


def test_moodle_echo_rewrites_the_registration(sims):
    sim = sims["moodle"]
    body = good_body()
    body["scope"] = f"{Scope.AGS_SCORE.value} {Scope.NRPS_MEMBERSHIP.value}"
    body[TC]["claims"] = ["iss", "sub", "email", "given_name"]
    answer, grant, _ = post_registration(sim, body)
    assert answer.status_code == 200
    echo = answer.json()
    token_sub = jwt.decode(grant.token, sim.key).claims["sub"]
    assert echo["client_id"] == token_sub
    tool = echo[TC]
    assert tool["version"] == "1.3.0" and tool["deployment_id"].isdigit()
    assert tool["messages"] == [
        {"type": "LtiDeepLinkingRequest", "target_link_uri": "http://127.0.0.1:5001/deep-link"}
    ]
    assert tool["claims"][:2] == ["sub", "iss"]
    assert Scope.AGS_RESULT_READONLY.value in echo["scope"].split()
    assert Scope.AGS_LINEITEM_READONLY.value in echo["scope"].split()


@pytest.mark.parametrize(
    ("path", "value", "delete", "status", "text"),
    [
        ("client_name", "", False, 400, "missing required attribute client_name"),
        ("jwks_uri", None, True, 400, "missing required attribute jwks_uri"),
        (TC, None, True, 400, f"missing required attribute {TC}"),
        (f"{TC}|domain", "", False, 400, "missing_domain"),
        (f"{TC}|domain", "127.0.0.1", False, 400, "domain_targetlinkuri_mismatch"),
        ("response_types", ["code"], False, 400, "invalid_response_types"),
        ("redirect_uris", "http://127.0.0.1:5001/launch", False, 400, "invalid_redirect_uris"),
        (
            "token_endpoint_auth_method",
            "client_secret_basic",
            False,
            400,
            "invalid_token_endpoint_auth_method",
        ),
        ("application_type", "native", False, 400, "invalid_application_type"),
    ],
)
def test_moodle_rejects_with_plain_text(sims, path, value, delete, status, text):
    answer, _, _ = post_registration(sims["moodle"], mutate(good_body(), path, value, delete))
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.text == text


def test_moodle_ignores_www_in_domain_and_grant_types(sims):
    body = mutate(good_body("http://www.tool.test:5001"), f"{TC}|domain", "tool.test:5001")
    body["grant_types"] = ["implict"]
    answer, _, _ = post_registration(sims["moodle"], body)
    assert answer.status_code == 200, answer.text


def test_moodle_token_errors(sims):
    sim = sims["moodle"]
    answer, grant, config = post_registration(sim, good_body())
    assert answer.status_code == 200
    endpoint = config["registration_endpoint"]
    again = requests.post(
        endpoint, json=good_body(), timeout=5, headers={"Authorization": f"Bearer {grant.token}"}
    )
    assert (again.status_code, again.text) == (401, "token_already_used")
    missing = requests.post(endpoint, json=good_body(), timeout=5)
    assert (missing.status_code, missing.text) == (401, "missing_registration_token")
    garbage = requests.post(
        endpoint, json=good_body(), timeout=5, headers={"Authorization": "Bearer nonsense"}
    )
    assert garbage.status_code == 404 and "<html>" in garbage.text


def test_moodle_update_keeps_client_and_deployment(sims):
    sim = sims["moodle"]
    first, _, _ = post_registration(sim, good_body())
    client_id = first.json()["client_id"]
    url, grant = sim.initiate("http://127.0.0.1:5001/register", update_client_id=client_id)
    claims = jwt.decode(grant.token, sim.key).claims
    assert claims["scope"] == "reg-update"
    endpoint = sim.base_url + "/mod/lti/openid-registration.php"
    auth = {"Authorization": f"Bearer {grant.token}"}
    current = requests.get(endpoint, headers=auth, timeout=5)
    assert current.json()["client_id"] == client_id
    second = requests.post(endpoint, json=good_body(), headers=auth, timeout=5)
    assert second.status_code == 200
    assert second.json()["client_id"] == client_id
    assert second.json()[TC]["deployment_id"] == first.json()[TC]["deployment_id"]


def test_moodle_legacy_quirks(sims):
    sim = sims["moodle-legacy"]
    url = sim.initiation_url("http://127.0.0.1:5001/register")
    config = fetch_config(sim, parse_qs(urlsplit(url).query)["openid_configuration"][0])
    assert PLATFORM_CONFIGURATION not in config
    platform = config[PLATFORM_CONFIGURATION + " "]
    assert platform["messages_supported"] == ["LtiResourceLink", "LtiDeepLinkingRequest"]
    assert platform["placements"] == ["AddContentMenu"]
    assert "authorization_endpoint" not in config
    answer, _, _ = post_registration(sim, good_body())
    assert answer.json()["application_type"] == ["web"]


# --- brightspace --------------------------------------------------------------------------------


def test_brightspace_sends_no_token_parameter_and_needs_no_bearer(tool):
    with Simulator(profile="brightspace") as sim:
        url = sim.initiation_url(tool.registration_url)
        query = parse_qs(urlsplit(url).query)
        assert "registration_token" not in query
        config_url = query["openid_configuration"][0]
        config = fetch_config(sim, config_url)
        assert config[PLATFORM_CONFIGURATION]["product_family_code"] == "desire2learn"
        token = urlsplit(config_url).path.rsplit("/", 1)[1]
        assert token in config["registration_endpoint"]
        body = good_body(tool.base)
        with_bearer = requests.post(
            config["registration_endpoint"],
            json=body,
            timeout=5,
            headers={"Authorization": "Bearer None"},
        )
        assert with_bearer.status_code == 401
        answer = requests.post(config["registration_endpoint"], json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        echo = answer.json()
        assert len(echo["client_id"]) == 36 and len(echo[TC]["deployment_id"]) == 36
        assert requests.get(config_url, timeout=5).status_code == 401  # one use only
        duplicate, _, _ = post_registration(sim, body)
        assert duplicate.status_code == 400
        assert "already exists" in duplicate.json()["error_description"]


@pytest.mark.parametrize(
    ("status", "keys", "reason"),
    [
        (404, None, "HTTP 404"),
        (200, {"keys": [{"kty": "EC", "kid": "x"}]}, "no RSA key with a kid"),
        (200, {"nope": []}, "not a JSON key set"),
    ],
)
def test_brightspace_rejects_unreachable_keyset(tool, status, keys, reason):
    tool.jwks_status = status
    tool.jwks_body = keys or {}
    with Simulator(profile="brightspace") as sim:
        answer, _, _ = post_registration(sim, good_body(tool.base))
    assert answer.status_code == 400
    error = answer.json()
    assert error["error"] == "invalid_client_metadata"
    assert error["error_description"].startswith(f"The tool's keyset at {tool.base}/jwks could not")
    assert reason in error["error_description"]


def test_brightspace_requires_https_off_loopback(sims):
    body = good_body("http://tool.example.com")
    answer, _, _ = post_registration(sims["brightspace"], body)
    assert answer.status_code == 400
    assert "https" in answer.json()["error_description"]


def test_brightspace_does_not_update(sims):
    with pytest.raises(ValueError, match="does not support"):
        sims["brightspace"].initiation_url("http://127.0.0.1:5001/r", update_client_id="x")


# --- sakai --------------------------------------------------------------------------------------


def test_sakai_configuration_and_preallocated_ids(sims):
    sim = sims["sakai"]
    url, grant = sim.initiate("http://127.0.0.1:5001/register")
    config_url = parse_qs(urlsplit(url).query)["openid_configuration"][0]
    params = parse_qs(urlsplit(config_url).query)
    assert urlsplit(config_url).path == "/imsblis/lti13/well_known"
    assert params["issuerURL"] == [sim.base_url]
    config = fetch_config(sim, config_url)
    assert config["issuer"] == sim.base_url
    assert config["scopes_supported"] == ["openid"]
    assert config["claims_supported"] == ["iss", "aud"]
    assert "authorization_server" not in config
    messages = config[PLATFORM_CONFIGURATION]["messages_supported"]
    assert all(m["placements"] == [] for m in messages)
    body = good_body()
    body["scope"] = Scope.NRPS_MEMBERSHIP.value
    answer = requests.post(
        config["registration_endpoint"],
        json=body,
        timeout=5,
        headers={"Authorization": f"Bearer {grant.token}"},
    )
    assert answer.status_code == 200
    assert answer.json()["client_id"] == params["clientId"][0]
    assert answer.json()[TC]["deployment_id"] == params["deploymentId"][0]


def test_sakai_is_lenient_but_needs_the_basics(sims):
    # handleRegistrationEndpointPost checks three fields and nothing else.
    body = mutate(good_body(), "application_type", "native")
    assert post_registration(sims["sakai"], body)[0].status_code == 200
    no_config = mutate(good_body(), TC, None, True)
    assert post_registration(sims["sakai"], no_config)[0].status_code == 200
    answer, _, _ = post_registration(sims["sakai"], mutate(good_body(), "jwks_uri", None, True))
    assert answer.status_code == 400
    # LTI13Util.return400: {"error": <message>} as JSON
    assert answer.json() == {"error": "Missing initiate_login_uri, jwks_uri, redirect_uris"}


# --- faults -------------------------------------------------------------------------------------


def test_unknown_fault_and_profile_raise():
    with pytest.raises(ValueError, match="Unknown fault"):
        Simulator(faults=["no_such_fault"])
    with pytest.raises(ValueError, match="Unknown profile"):
        Simulator(profile="blackboard")


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("issuer_mismatch", lambda c, s: c["issuer"] == "https://lms.elsewhere.example"),
        ("http_issuer_with_query", lambda c, s: c["issuer"] == s.base_url + "?x=1"),
        ("no_registration_endpoint", lambda c, s: "registration_endpoint" not in c),
        ("no_jwks_uri", lambda c, s: "jwks_uri" not in c),
        ("no_rs256", lambda c, s: c["id_token_signing_alg_values_supported"] == ["HS256"]),
        (
            "no_private_key_jwt",
            lambda c, s: c["token_endpoint_auth_methods_supported"] == ["client_secret_basic"],
        ),
        ("no_platform_config", lambda c, s: PLATFORM_CONFIGURATION not in c),
    ],
)
def test_configuration_faults(fault, check):
    with Simulator(faults=[fault]) as sim:
        url = sim.initiation_url("http://127.0.0.1:5001/register")
        config = fetch_config(sim, parse_qs(urlsplit(url).query)["openid_configuration"][0])
        assert check(config, sim)


def test_configuration_overrides_replace_and_remove_keys():
    overrides = {
        "issuer": "{base_url}/tenant",
        "authorization_server": REMOVE,
        "token_endpoint_auth_signing_alg_values_supported": "RS256",
    }
    with Simulator(config_overrides=overrides) as sim:
        url = sim.initiation_url("http://127.0.0.1:5001/register")
        config = fetch_config(sim, parse_qs(urlsplit(url).query)["openid_configuration"][0])
    assert config["issuer"] == sim.base_url + "/tenant"
    assert "authorization_server" not in config
    assert config["token_endpoint_auth_signing_alg_values_supported"] == "RS256"
    assert config["jwks_uri"].startswith(sim.base_url)  # the rest is untouched


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (
            "no_token_endpoint_rs256",
            lambda c: c["token_endpoint_auth_signing_alg_values_supported"] == ["ES256"],
        ),
        ("config_not_object", lambda c: isinstance(c, list) and "issuer" in c[0]),
    ],
)
def test_more_configuration_faults(fault, check):
    with Simulator(faults=[fault]) as sim:
        url = sim.initiation_url("http://127.0.0.1:5001/register")
        assert check(fetch_config(sim, parse_qs(urlsplit(url).query)["openid_configuration"][0]))


@pytest.mark.parametrize("profile", ["generic", "canvas", "moodle"])
def test_withheld_scopes_are_accepted_but_not_granted(tool, profile):
    withheld = Scope.NRPS_MEMBERSHIP.value
    with Simulator(profile=profile, withhold_scopes=[withheld]) as sim:
        report = sim.register(tool.registration_url, timeout=10)
        (registration,) = sim.registrations()
    assert report.ok, report.render()
    assert withheld in sim.records[0].body["scope"]
    assert withheld not in report.granted_scopes
    assert Scope.AGS_SCORE.value in report.granted_scopes
    assert withheld not in registration.scopes


def test_config_redirect_offsite():
    with Simulator(profile="moodle", faults=["config_redirect_offsite"]) as sim:
        answer = requests.get(
            sim.base_url + "/mod/lti/openid-configuration.php", timeout=5, allow_redirects=False
        )
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(f"http://127.0.0.2:{sim.port}/mod/lti/")


def test_canvas_no_deployment_fault():
    with Simulator(profile="canvas", faults=["canvas_no_deployment"]) as sim:
        answer, _, _ = post_registration(sim, good_body(canvas=True))
    assert answer.status_code == 200 and "deployment_id" not in answer.json()


# --- the browser driver -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_driver_registers_a_conforming_tool(tool, profile):
    with Simulator(profile=profile) as sim:
        report = sim.register(tool.registration_url, timeout=10)
    assert report.ok, report.render()
    assert report.client_id in sim.issued_client_ids
    assert report.deployment_id
    assert report.final_status == 200 and report.final_url == tool.base + "/lti/done"
    assert len(sim.records) == 1 and sim.records[0].accepted
    assert any(step.startswith("LMS: POST registration") for step in report.steps)
    assert report.render().endswith("PASS")


def test_driver_reports_scopes_and_canvas_update(tool):
    with Simulator(profile="canvas") as sim:
        first = sim.register(tool.registration_url, timeout=10)
        assert first.granted_scopes == [*WANTED_SCOPES, "openid"]
        again = sim.register(tool.registration_url, update_client_id=first.client_id, timeout=10)
    assert again.ok, again.render()
    assert (again.client_id, again.deployment_id) == (first.client_id, first.deployment_id)
    assert "existing_registration" in jwt.decode(sim.records[1].token, sim.key).claims


def test_driver_fails_on_rejection_and_shows_the_page(tool):
    with Simulator(profile="generic", faults=["post_status_500"]) as sim:
        report = sim.register(tool.registration_url, timeout=10)
    assert not report.ok
    assert report.final_status == 502
    assert any("rejected the registration with HTTP 500" in p for p in report.problems)
    page = next(p for p in report.problems if p.startswith("Page text:"))
    assert "Registration failed" in page and "var x" not in page
    assert report.render().endswith("FAIL")


def test_driver_flags_double_post_wrong_origin_and_missing_marker(tool):
    tool.post_twice = True
    tool.finish_base = tool.base.replace("127.0.0.1", "localhost")
    tool.close_marker = False
    with Simulator(profile="moodle") as sim:
        report = sim.register(tool.registration_url, timeout=10)
    assert not report.ok
    text = " ".join(report.problems)
    assert "POSTed 2 times" in text
    assert "token_already_used" in text
    assert "not from the origin of the registration URL" in text
    assert 'data-lti-close="auto"' in text


def test_driver_reports_config_failure(tool):
    with Simulator(profile="canvas", faults=["config_status_500"]) as sim:
        report = sim.register(tool.registration_url, timeout=10)
    assert not report.ok
    assert any("no POST reached" in p for p in report.problems)
    assert any(
        "GET openid configuration (token in query, Bearer header sent) -> 500" in s
        for s in report.steps
    )


def test_report_render_is_readable():
    report = SimulationReport(
        ok=False,
        profile="canvas",
        issuer="http://127.0.0.1:1",
        client_id="1000",
        deployment_id="1:abc",
        granted_scopes=["a", "b"],
        final_url="http://t/done",
        final_status=200,
        problems=["Something broke."],
        steps=["GET config -> 200"],
    )
    text = report.render()
    assert text.splitlines()[0] == "LMS simulator: canvas (issuer http://127.0.0.1:1)"
    assert "  1. GET config -> 200" in text
    assert "client_id:      1000" in text
    assert "  - Something broke." in text
    assert text.endswith("FAIL")
