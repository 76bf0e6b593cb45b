"""Launches end to end: the simulated LMS registers the tool, then launches it through
/lti/login, its own authorization endpoint and /lti/launch, and Gatehouse verifies or refuses."""

import html
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from support.postgres import run_sql

from app.domain import apikeys
from app.domain import launch as launches
from app.lti.launch import CLAIM_CONTEXT, CLAIM_DEPLOYMENT_ID, CLAIM_ROLES, DL_SETTINGS
from app.simulator.launch import (
    DL,
    browser_session,
    login_destination,
    new_key,
    parse_form,
    post_form,
    run_launch,
)
from app.simulator.profiles import PROFILES
from app.testing import LoopbackServer
from app.web.error_words import WORDS

TOOL_URL = "https://tool.example.edu/launch"
AGS_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
AGS_RESULT = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
TOOL_SETTINGS = "https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting"


class Gatehouse:
    """One live Gatehouse with an API key, serving on localhost."""

    def __init__(self, app):
        self.app = app
        self.store = app.extensions["gatehouse.store"]
        self.server = LoopbackServer(app, "localhost").__enter__()
        self.url = self.server.url
        self.key = apikeys.create(self.store, "launch tests")[1]

    def register(self, sim):
        report = sim.register(self.url + "/lti/register")
        assert report.ok, report.render()
        return report

    def platform(self, sim, report):
        return self.store.find_platform(sim.issuer, report.client_id)

    def api(self, method, path, **kwargs):
        return requests.request(
            method,
            self.url + path,
            timeout=15,
            headers={"Authorization": f"Bearer {self.key}"},
            **kwargs,
        )


def live_gatehouses(make_app, kind):
    """Yield a function that starts `kind` workers on the test's database, stopped afterwards."""
    started = []

    def start(**settings):
        settings.setdefault("registration", {}).setdefault("auto_activate", True)
        server = kind(make_app(settings))
        started.append(server)
        return server

    yield start
    for server in started:
        server.server.__exit__()


@pytest.fixture
def gatehouse(make_app):
    """Start Gatehouse with settings merged onto the test defaults (auto-activating)."""
    yield from live_gatehouses(make_app, Gatehouse)


def lead(text):
    match = re.search(r'<p class="lead"[^>]*>(.*?)</p>', text, re.S)
    return " ".join(html.unescape(match.group(1)).split()) if match else ""


def technical(text):
    """Return the technical sentence folded under an error page's "Technical details"."""
    match = re.search(r"<details[^>]*data-technical-details[^>]*>.*?<p>(.*?)</p>", text, re.S)
    return " ".join(html.unescape(match.group(1)).split()) if match else ""


# --- success ------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_every_lms_launches_right_after_registration(gatehouse, simulator, profile):
    gh = gatehouse()
    sim = simulator(profile)
    report = gh.register(sim)
    result = sim.launch(report.client_id)
    assert result.status == 200, result.text
    assert 'data-lti-launch="verified"' in result.text
    assert "Registration verified" in result.text
    assert "Ada Lovelace" in result.text and "Instructor" in result.text
    assert "Introduction to Biology" in result.text
    assert (report.deployment_id or "1") in result.text
    platform = gh.platform(sim, report)
    assert platform.last_launch_at is not None
    # Counted once for the console's chart, under the platform's LMS family.
    counted = gh.store.launches_per_day(platform.last_launch_at)
    assert [(r["family"], int(r["n"])) for r in counted] == [(platform.product_family_code, 1)]


LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
LEARNER = LIS + "membership#Learner"
MOODLE_ADMIN_TEACHING = [  # what Moodle sends for its site administrator teaching a course
    LIS + "institution/person#Administrator",
    LIS + "membership#Instructor",
    LIS + "system/person#Administrator",
]


def facts(text):
    """Return the page's facts (and technical details) as 'Name: value' lines."""
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", text, re.S)
    return {
        html.unescape(re.sub(r"<[^>]+>", "", name)): " ".join(
            html.unescape(re.sub(r"<[^>]+>", "", value)).split()
        )
        for name, value in pairs
    }


@pytest.mark.parametrize("profile", ["moodle", "canvas"])
def test_a_learner_sees_a_short_confirmation_without_personal_data_or_settings(
    gatehouse, simulator, profile
):
    gh = gatehouse()
    sim = simulator(profile)
    report = gh.register(sim)
    result = sim.launch(
        report.client_id, claims={CLAIM_ROLES: [LEARNER, LIS + "institution/person#Student"]}
    )
    assert result.status == 200, result.text
    assert 'data-lti-audience="learner"' in result.text
    page = html.unescape(result.text)
    assert re.search(r"<h1[^>]*>You're connected to [^<]+</h1>", page)
    for private in ("Ada", "Lovelace", "ada@example.edu", "user-1001", report.client_id):
        assert private not in page
    for word in ("tool_url", "[launch]", "Registration verified", "Client ID", "Deployment"):
        assert word not in page
    assert "<dl" not in page and sim.issuer not in page
    assert gh.platform(sim, report).last_launch_at is not None


def test_an_instructor_sees_the_verification_with_the_release_and_each_role_once(
    gatehouse, simulator
):
    gh = gatehouse()
    sim = simulator("moodle")
    report = gh.register(sim)
    result = sim.launch(report.client_id, claims={CLAIM_ROLES: MOODLE_ADMIN_TEACHING})
    assert result.status == 200, result.text
    assert 'data-lti-audience="staff"' in result.text
    assert "Registration verified" in result.text
    shown = facts(result.text)
    assert shown["Roles"] == "Administrator, Instructor"
    # Moodle's launch says 2024100706 (its build); the registration said its release.
    assert shown["LMS"] == "Moodle 4.5.6"
    assert shown["LMS version reported"] == "4.5.6 (Build: 20250811), 2024100706"
    assert shown["User"].startswith("Ada Lovelace (ada@example.edu) sub user-1001")
    assert shown["Client ID"] == report.client_id
    assert "[launch] tool_url" in html.unescape(result.text)


def test_a_teaching_assistant_is_staff_and_a_mentor_is_not(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("canvas")
    report = gh.register(sim)
    assistant = sim.launch(
        report.client_id, claims={CLAIM_ROLES: [LIS + "membership/Instructor#TeachingAssistant"]}
    )
    assert facts(assistant.text)["Roles"] == "Teaching assistant"
    mentor = sim.launch(report.client_id, claims={CLAIM_ROLES: [LIS + "membership#Mentor"]})
    assert 'data-lti-audience="learner"' in mentor.text and "Ada" not in mentor.text


def test_launch_hands_verified_claims_to_the_tool(gatehouse, simulator, backend):
    gh = gatehouse(launch={"tool_url": TOOL_URL})
    sim = simulator("canvas")
    report = gh.register(sim)
    platform = gh.platform(sim, report)
    result = sim.launch(report.client_id, target_link_uri=gh.url + "/lti/launch?page=2")
    assert result.status == 303, result.text
    assert result.location.startswith(TOOL_URL + "?")
    assert parse_qs(urlsplit(result.location).query)["page"] == ["2"]
    keys = KeySet.import_key_set(requests.get(gh.url + "/lti/keys", timeout=5).json())
    claims = jwt.decode(result.handoff_token, keys, algorithms=["RS256"]).claims
    assert claims["iss"] == gh.url
    assert claims["aud"] == TOOL_URL
    assert 0 < claims["exp"] - time.time() <= 120
    assert claims["platformId"] == platform.id
    assert claims["deploymentId"] == report.deployment_id == claims[CLAIM_DEPLOYMENT_ID]
    assert claims["messageType"] == "LtiResourceLinkRequest"
    assert claims["platform"] == {
        "issuer": sim.issuer,
        "clientId": report.client_id,
        "name": platform.name,
        "familyCode": "canvas",
    }
    assert claims["sub"] == "user-1001"
    assert claims[CLAIM_ROLES] == ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]
    assert claims[CLAIM_CONTEXT]["label"] == "BIO101"
    assert "nonce" not in claims and "azp" not in claims


def test_readme_verification_example_accepts_the_handoff(gatehouse, simulator, request):
    source = (request.config.rootpath / "README.md").read_text()
    example = re.search(r"```python\n(# pip install joserfc requests.*?)```", source, re.S)
    assert example, "the README's verification example is missing"
    code = example.group(1)
    assert len(code.strip().splitlines()) <= 25
    gh = gatehouse(launch={"tool_url": TOOL_URL})
    sim = simulator("moodle")
    report = gh.register(sim)
    token = sim.launch(report.client_id).handoff_token
    namespace = {}
    exec(  # noqa: S102 - the README's own example, run as written
        code.replace("https://gatehouse.example.com", gh.url).replace(
            "https://tool.example.com/launch", TOOL_URL
        ),
        namespace,
    )
    claims = namespace["verify_launch"](token)
    assert claims["platformId"] == gh.platform(sim, report).id
    with pytest.raises(ValueError, match="replayed"):
        namespace["verify_launch"](token)


def test_login_without_client_id_finds_the_only_registration_of_the_issuer(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("generic")
    report = gh.register(sim)
    result = sim.launch(report.client_id, send_client_id=False)
    assert result.status == 200 and 'data-lti-launch="verified"' in result.text


def test_login_by_issuer_alone_is_refused_when_it_is_ambiguous(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("generic")
    first = gh.register(sim)
    gh.register(sim)
    result = sim.launch(first.client_id, send_client_id=False)
    assert result.status == 400
    assert result.error_rule == "ambiguous-platform"


# --- refusals -----------------------------------------------------------------------------------


def test_unknown_platform_gets_a_readable_page(gatehouse):
    gh = gatehouse()
    response = requests.get(
        gh.url + "/lti/login",
        timeout=5,
        params={
            "iss": "https://lms.unknown.example",
            "login_hint": "u1",
            "client_id": "c1",
            "target_link_uri": gh.url + "/lti/launch",
        },
    )
    assert response.status_code == 400
    assert 'data-lti-error="unknown-platform"' in response.text
    assert lead(response.text) == "This tool is not set up for your school's LMS yet."
    assert "https://lms.unknown.example" in technical(response.text)


@pytest.mark.parametrize("missing", ["iss", "login_hint", "target_link_uri"])
def test_login_names_a_missing_parameter(gatehouse, missing):
    gh = gatehouse()
    params = {
        "iss": "https://lms.example",
        "login_hint": "u1",
        "target_link_uri": gh.url + "/lti/launch",
    }
    del params[missing]
    response = requests.post(gh.url + "/lti/login", data=params, timeout=5)
    assert response.status_code == 400
    assert repr(missing) in technical(response.text)


def test_login_refuses_a_target_that_is_not_a_web_url(gatehouse):
    gh = gatehouse()
    response = requests.get(
        gh.url + "/lti/login",
        timeout=5,
        params={
            "iss": "https://lms.example",
            "login_hint": "u1",
            "target_link_uri": "javascript:x",
        },
    )
    assert response.status_code == 400
    assert 'data-lti-error="target-link-uri"' in response.text


def owner_alerts(store):
    """Return the reasons of the `platform.awaiting_activation` events recorded so far."""
    entries, _total = store.list_audit(limit=None, action="platform.awaiting_activation")
    return sorted(e.detail["reason"] for e in entries)


def test_an_inactive_platform_shows_a_calm_page_and_tells_the_owner_once_an_hour(
    gatehouse, simulator
):
    gh = gatehouse(registration={"auto_activate": False})
    sim = simulator("moodle")
    report = gh.register(sim)
    assert owner_alerts(gh.store) == ["registered"]  # told when the registration arrived
    result = sim.launch(report.client_id)
    assert result.status == 401
    assert result.error_rule == "platform-inactive"
    page = lead(result.text)
    assert "Quiz Tool is being set up for your school" in result.text
    assert "nothing you need to do" in page
    # Words for the tool's owner are not shown to a teacher or student, who cannot act on them.
    for owner_words in ("activate", "console", "API", "registration"):
        assert owner_words not in result.text.split("<main")[1], owner_words
    assert owner_alerts(gh.store) == ["launch", "registered"]

    again = sim.launch(report.client_id)
    assert again.status == 401 and "being set up for your school" in again.text
    assert owner_alerts(gh.store) == ["launch", "registered"]  # not again within the hour

    # An hour later (as stored: every worker reads the same row), the owner is told again.
    platform = gh.platform(sim, report)
    run_sql(
        gh.store,
        "UPDATE owner_alerts SET alerted_at = ? WHERE platform_id = ?",
        ("2000-01-01T00:00:00Z", platform.id),
    )
    sim.launch(report.client_id)
    assert owner_alerts(gh.store) == ["launch", "launch", "registered"]


def test_an_nbf_counts_with_the_same_clock_skew_as_iat(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("generic")
    report = gh.register(sim)
    for nbf in (int(time.time()) + 30, int(time.time()) - 30):
        result = sim.launch(report.client_id, claims={"nbf": nbf})
        assert result.status == 200, result.text
    early = sim.launch(report.client_id, claims={"nbf": int(time.time()) + 120})
    assert early.status == 401 and early.error_rule == "id-token-nbf"


@pytest.mark.parametrize(
    ("claims", "rule"),
    [
        ({"aud": "someone-else"}, "id-token-aud"),
        ({"aud": ["someone-else", "another"]}, "id-token-aud"),
        ({"azp": None, "aud": ["CLIENT", "another"]}, "id-token-azp"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3900}, "id-token-expired"),
        ({"iat": int(time.time()) + 3600}, "id-token-iat"),
        ({"nbf": int(time.time()) + 3600}, "id-token-nbf"),
        ({"nbf": "soon"}, "id-token-times"),
        ({"iss": "https://lms.elsewhere.example"}, "id-token-iss"),
        ({"nonce": "not-the-nonce"}, "id-token-nonce"),
        ({"https://purl.imsglobal.org/spec/lti/claim/version": "1.1.0"}, "lti-version"),
        (
            {"https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiFancyRequest"},
            "lti-message-type",
        ),
        ({"https://purl.imsglobal.org/spec/lti/claim/deployment_id": None}, "lti-deployment-id"),
        ({"https://purl.imsglobal.org/spec/lti/claim/resource_link": None}, "lti-resource-link"),
        ({"https://purl.imsglobal.org/spec/lti/claim/roles": None}, "lti-roles"),
        (
            {"https://purl.imsglobal.org/spec/lti/claim/target_link_uri": "https://evil.example/"},
            "target-link-uri-mismatch",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_token_breaking_a_rule_is_refused_with_that_rule(gatehouse, simulator, claims, rule):
    gh = gatehouse()
    sim = simulator("generic")
    report = gh.register(sim)
    claims = {
        k: ([report.client_id if a == "CLIENT" else a for a in v] if isinstance(v, list) else v)
        for k, v in claims.items()
    }
    result = sim.launch(report.client_id, claims=claims)
    assert result.status == 401, result.text
    assert result.error_rule == rule
    assert "The tool could not be opened" in result.text
    assert lead(result.text) == WORDS[rule][0]  # the plain line for whoever launched
    folded = result.text.split("<details", 1)[1]  # the rule and the protocol's sentence
    assert f"Rule: <code>{rule}</code>" in folded and '<p class="lead"' not in folded
    assert technical(result.text) not in ("", lead(result.text))


def test_a_launch_cannot_be_replayed(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("moodle")
    report = gh.register(sim)
    result = sim.launch(report.client_id)
    assert result.status == 200
    replay = post_form(result.form, session=result.session)  # the same browser, reloading
    assert replay.status_code == 401
    assert 'data-lti-error="state-replayed"' in replay.text
    # Another browser without the launch's cookie gets the platform storage check, not the tool.
    elsewhere = post_form(result.form)
    assert "data-lti-launch-storage" in elsewhere.text
    assert 'data-lti-launch="verified"' not in elsewhere.text


def test_a_token_cannot_be_moved_to_another_login(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("moodle")
    report = gh.register(sim)
    first = sim.launch(report.client_id)
    # A second login gets its own state and nonce; the first token's nonce does not match it,
    # even posted from the browser that holds the second login's cookie.
    login = sim.prepare_launch(report.client_id).login_url
    browser = browser_session()
    authorize = login_destination(browser.get(login, allow_redirects=False, timeout=5))
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    action, fields = first.form
    moved = browser.post(action, data={"id_token": fields["id_token"], "state": state}, timeout=5)
    assert moved.status_code == 401
    assert 'data-lti-error="id-token-nonce"' in moved.text


def test_unknown_state_and_lms_errors_are_readable(gatehouse):
    gh = gatehouse()
    data = {"state": "made-up", "id_token": "x.y.z"}
    response = requests.post(gh.url + "/lti/launch", timeout=5, data=data)
    assert response.status_code == 401
    assert 'data-lti-error="launch-not-bound"' in response.text
    # Even a browser holding a binding for it (made here with the app's key) cannot use it.
    cookie = {
        launches.COOKIE_PREFIX + launches.binding_key("made-up"): launches.cookie_digest(
            gh.app.secret_key, "made-up"
        )
    }
    response = requests.post(gh.url + "/lti/launch", timeout=5, data=data, cookies=cookie)
    assert response.status_code == 401
    assert 'data-lti-error="state-unknown"' in response.text
    response = requests.post(
        gh.url + "/lti/launch",
        timeout=5,
        data={"error": "login_required", "error_description": "The user is not signed in."},
    )
    assert response.status_code == 400
    assert "login_required" in technical(response.text)


def test_platform_key_rotation_is_picked_up_and_a_stray_key_refused(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("canvas")
    report = gh.register(sim)
    assert sim.launch(report.client_id).status == 200
    fetches = sim.jwks_fetches
    assert sim.launch(report.client_id).status == 200
    assert sim.jwks_fetches == fetches  # cached
    sim.rotate_key()
    result = sim.launch(report.client_id)
    assert result.status == 200, result.text
    assert sim.jwks_fetches == fetches + 1  # one refresh for the unknown kid
    stray = sim.launch(report.client_id, sign_with=new_key())
    assert stray.status == 401
    assert stray.error_rule == "unknown-kid"


# --- deployments --------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["accept", "pending", "reject"])
def test_unknown_deployment_follows_the_policy(gatehouse, simulator, policy):
    gh = gatehouse(registration={"unknown_deployments": policy})
    sim = simulator("generic")
    report = gh.register(sim)
    platform = gh.platform(sim, report)
    result = sim.launch(report.client_id, deployment_id="another-course-deployment")
    stored = gh.store.get_deployment(platform.id, "another-course-deployment")
    if policy == "accept":
        assert result.status == 200
        assert stored.active and stored.source == "launch"
    elif policy == "pending":
        assert result.status == 403
        assert result.error_rule == "deployment-pending"
        assert "being set up for your school" in result.text
        assert owner_alerts(gh.store) == ["launch"]
        assert not stored.active
        gh.store.set_deployment_active(platform.id, "another-course-deployment", True)
        assert sim.launch(report.client_id, deployment_id="another-course-deployment").status == 200
    else:
        assert result.status == 403
        assert result.error_rule == "deployment-unknown"
        assert stored is None
    discovered = [e for e in gh.store.list_audit()[0] if e.action == "deployment.discovered"]
    assert len(discovered) == (0 if policy == "reject" else 1)


# --- deep linking -------------------------------------------------------------------------------


def test_deep_linking_round_trip(gatehouse, simulator):
    gh = gatehouse(launch={"tool_url": TOOL_URL})
    sim = simulator("canvas")
    report = gh.register(sim)
    result = sim.launch(report.client_id, message_type=DL)
    assert result.status == 303, result.text
    keys = KeySet.import_key_set(requests.get(gh.url + "/lti/keys", timeout=5).json())
    claims = jwt.decode(result.handoff_token, keys, algorithms=["RS256"]).claims
    assert claims["messageType"] == DL
    settings = claims[DL_SETTINGS]
    items = [{"type": "ltiResourceLink", "title": "Quiz 1", "url": gh.url + "/lti/launch?q=1"}]
    body = {
        "platformId": claims["platformId"],
        "deploymentId": claims["deploymentId"],
        "deepLinkingSettings": settings,
        "contentItems": items,
        "message": "Quiz 1 added",
    }
    response = gh.api("POST", "/api/deep-linking/response", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["returnUrl"] == settings["deep_link_return_url"]
    action, fields = parse_form(answer["form"])
    assert action == settings["deep_link_return_url"] and fields == {"JWT": answer["jwt"]}
    returned = requests.post(action, data=fields, timeout=10)
    assert returned.status_code == 200, returned.text
    (received,) = sim.launches.deep_link_responses
    assert received["iss"] == report.client_id and received["aud"] == sim.issuer
    assert received["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"] == items
    assert received["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == settings["data"]
    assert received["https://purl.imsglobal.org/spec/lti-dl/claim/msg"] == "Quiz 1 added"

    refused = gh.api(
        "POST", "/api/deep-linking/response", json={**body, "contentItems": [{"type": "file"}]}
    )
    assert refused.status_code == 400
    assert "accepts only" in refused.json()["details"]["description"]
    unknown = gh.api(
        "POST", "/api/deep-linking/response", json={**body, "deploymentId": "not-a-deployment"}
    )
    assert unknown.status_code == 403
    assert unknown.json()["details"]["message"] == "DEPLOYMENT_NOT_ACTIVE"


# --- service tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["generic", "canvas", "moodle", "brightspace", "sakai"])
def test_service_token_for_granted_scopes_only(gatehouse, simulator, profile):
    gh = gatehouse()
    sim = simulator(profile)
    report = gh.register(sim)
    platform = gh.platform(sim, report)
    assert AGS_SCORE in platform.scopes
    path = f"/api/platforms/{platform.id}/token"
    response = gh.api("POST", path, json={"scopes": [AGS_SCORE]})
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["tokenType"] == "Bearer" and token["scope"] == AGS_SCORE
    assert 3500 < token["expiresIn"] <= 3600
    (request,) = sim.launches.token_requests
    assert request["status"] == 200 and request["access_token"] == token["accessToken"]

    again = gh.api("POST", path, json={"scopes": [AGS_SCORE]})
    assert again.json()["accessToken"] == token["accessToken"]
    assert len(sim.launches.token_requests) == 1  # cached

    # Moodle grants every AGS scope once the tool asks for one; pick one this LMS did not.
    other = next(s for s in (AGS_RESULT, TOOL_SETTINGS) if s not in platform.scopes)
    refused = gh.api("POST", path, json={"scopes": [AGS_SCORE, other]})
    assert refused.status_code == 400
    details = refused.json()["details"]
    assert details["message"] == "SCOPE_NOT_GRANTED" and details["refused"] == [other]
    assert len(sim.launches.token_requests) == 1  # nothing sent to the LMS


def test_service_token_errors(gatehouse, simulator):
    gh = gatehouse(registration={"auto_activate": False})
    sim = simulator("generic")
    report = gh.register(sim)
    platform = gh.platform(sim, report)
    path = f"/api/platforms/{platform.id}/token"
    assert gh.api("POST", "/api/platforms/nope/token").status_code == 404
    inactive = gh.api("POST", path)
    assert inactive.status_code == 403
    assert inactive.json()["details"]["message"] == "PLATFORM_NOT_ACTIVATED"
    gh.store.update_platform(platform.id, {"active": True})
    sim._registrations.clear()  # the LMS forgot the tool: it refuses the assertion
    refused = gh.api("POST", path)
    assert refused.status_code == 502
    details = refused.json()["details"]
    assert details["message"] == "PLATFORM_TOKEN_REFUSED"
    assert details["lmsStatus"] == 401 and "invalid_client" in details["lmsBody"]


def test_launch_pages_may_be_framed_by_the_lms(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("moodle")
    report = gh.register(sim)
    result = run_launch(sim.prepare_launch(report.client_id).login_url)
    assert result.status == 200
    # replayed, but framing headers are what we check
    response = post_form(result.form, session=result.session)
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors https: http:" in policy
    assert "X-Frame-Options" not in response.headers


@pytest.mark.parametrize(
    ("base_url", "attributes"),
    [
        ("https://gatehouse.example", {"secure", "samesite=none", "partitioned"}),
        ("http://localhost", {"secure", "samesite=none", "partitioned"}),  # a secure context
        # Plain-http development away from loopback (allow_insecure_platforms): relaxed where
        # the session cookie is, without SameSite=Lax, which a cross-site POST never carries.
        ("http://gatehouse.test", set()),
    ],
)
def test_the_login_sets_a_short_lived_binding_cookie_for_the_launch_only(
    client, store, base_url, attributes
):
    store.create_platform(
        {
            "issuer": "https://lms.school.example",
            "client_id": "c1",
            "name": "School",
            "authorization_endpoint": "https://lms.school.example/auth",
            "token_endpoint": "https://lms.school.example/token",
            "jwks_uri": "https://lms.school.example/jwks",
        },
        active=True,
    )
    query = "iss=https://lms.school.example&client_id=c1&login_hint=u&target_link_uri=https://t/x"
    response = client.get(f"/lti/login?{query}", base_url=base_url)
    assert response.status_code == 200
    (binding,) = [c for c in response.headers.getlist("Set-Cookie") if "gatehouse_launch_" in c]
    parts = [p.strip().lower() for p in binding.split(";")]
    assert "path=/lti/launch" in parts and "max-age=600" in parts and "httponly" in parts
    flags = {"secure", "samesite=none", "samesite=lax", "partitioned"}
    assert {p for p in parts if p in flags} == attributes
    state = parse_qs(urlsplit(html.unescape(login_destination(response))).query)["state"][0]
    name, value = parts[0].split("=", 1)
    assert name == launches.COOKIE_PREFIX + launches.binding_key(state)
    assert value == launches.cookie_digest("test-secret", state).lower()
