"""Each simulated LMS behaves as its own code says, and Gatehouse's bodies pass those LMSes' rules.

Every test names the file of the LMS it follows (instructure/canvas-lms, moodle/moodle,
sakaiproject/sakai). Brightspace has no public code; its profile follows D2L's documentation.
"""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app.lti.constants import CANVAS_PREFIX, PLATFORM_CONFIGURATION, TOOL_CONFIGURATION, Scope
from app.lti.discovery import validate_openid_config
from app.lti.registration import build_registration_request, resolve_tool
from app.settings import load_settings
from app.simulator import PROFILES, Simulator
from app.simulator.checks import CANVAS_EDITIONS, canvas_placement_enum, canvas_schema_errors
from app.simulator.profiles import PROFILE_CLASSES
from app.simulator.records import Rejection

TC = TOOL_CONFIGURATION
SCORE = Scope.AGS_SCORE.value
LINEITEM = Scope.AGS_LINEITEM.value
RESULT = Scope.AGS_RESULT_READONLY.value
LINEITEM_RO = Scope.AGS_LINEITEM_READONLY.value
NRPS = Scope.NRPS_MEMBERSHIP.value
BASIC_OUTCOME = Scope.BASIC_OUTCOME.value
BASE = "http://127.0.0.1:5001"


def body(scope=SCORE, placements=None, **message_extensions):
    """A registration request every LMS accepts, with a resource-link message to vary."""
    message = {"type": "LtiResourceLinkRequest", "target_link_uri": BASE + "/launch"}
    if placements is not None:
        message["placements"] = placements
    message.update({CANVAS_PREFIX + k: v for k, v in message_extensions.items()})
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": BASE + "/login",
        "redirect_uris": [BASE + "/launch"],
        "client_name": "Quiz tool",
        "jwks_uri": BASE + "/jwks",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": scope,
        TC: {
            "domain": "127.0.0.1:5001",
            "target_link_uri": BASE + "/launch",
            "claims": ["iss", "sub"],
            "messages": [
                message,
                {"type": "LtiDeepLinkingRequest", "target_link_uri": BASE + "/deep-link"},
            ],
        },
    }


def start(sim, tool_url=BASE + "/register"):
    """Start a registration; return (grant, configuration URL, configuration)."""
    url, grant = sim.initiate(tool_url)
    config_url = parse_qs(urlsplit(url).query)["openid_configuration"][0]
    answer = requests.get(config_url, timeout=5)
    assert answer.status_code == 200, answer.text
    return grant, config_url, answer.json()


def register(sim, request_body):
    """POST request_body the way a tool would; return (answer, grant)."""
    grant, _, config = start(sim)
    headers = {"Authorization": f"Bearer {grant.token}"} if grant.token else {}
    if sim.profile_name == "brightspace":
        headers = {}
    answer = requests.post(
        config["registration_endpoint"], json=request_body, headers=headers, timeout=5
    )
    return answer, grant


# --- Canvas: the schema data ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placement", "accepted"),
    [
        # resource_placement.rb PLACEMENTS, as is and through add_extension_prefix_if_necessary
        ("course_navigation", True),
        (CANVAS_PREFIX + "course_navigation", True),
        ("editor_button", True),
        (CANVAS_PREFIX + "editor_button", True),
        # the Dynamic Registration names (CONTENT_AREA, RICH_TEXT_EDITOR) are never prefixed
        ("ContentArea", True),
        ("RichTextEditor", True),
        (CANVAS_PREFIX + "ContentArea", False),
        (CANVAS_PREFIX + "RichTextEditor", False),
        # STANDARD_PLACEMENTS: the Asset Processor placements are never prefixed
        ("ActivityAssetProcessor", True),
        ("ActivityAssetProcessorContribution", True),
        (CANVAS_PREFIX + "ActivityAssetProcessor", False),
        (CANVAS_PREFIX + "ActivityAssetProcessorContribution", False),
        ("sidebar", False),
        ("https://other.example/lti/course_navigation", False),
    ],
)
@pytest.mark.parametrize("edition", CANVAS_EDITIONS)
def test_canvas_schema_accepts_the_placements_canvas_accepts(edition, placement, accepted):
    # lib/schemas/lti/ims/lti_tool_configuration.rb, LTI_MESSAGE_SCHEMA "placements" enum
    errors = canvas_schema_errors(body(placements=[placement]), edition)
    assert (errors == []) is accepted, errors


def test_canvas_placement_enum_is_built_from_the_placement_data():
    enum = canvas_placement_enum()
    # Canvas's own enum lists the two standard placements twice (as is and "prefixed").
    assert enum.count("ActivityAssetProcessor") == 2
    assert enum[-2:] == ["ContentArea", "RichTextEditor"]
    assert "ActivityAssetProcessor" in enum and CANVAS_PREFIX + "top_navigation" in enum


@pytest.mark.parametrize(
    ("display_type", "in_2024", "in_current"),
    [
        ("default", True, True),
        ("full_width_in_context", True, True),
        ("borderless", True, True),
        # lib/schemas/internal_lti_configuration.rb: added after 2024 (03520ab8 vs 5885c983)
        ("full_width_with_nav", False, True),
        # lti_tool_configuration.rb appends new_window since canvas-lms PR #2459 (2025)
        ("new_window", False, True),
        ("popup", False, False),
    ],
)
def test_canvas_display_types_by_edition(display_type, in_2024, in_current):
    request = body(placements=["course_navigation"], display_type=display_type)
    assert (canvas_schema_errors(request, "2024") == []) is in_2024
    assert (canvas_schema_errors(request, "current") == []) is in_current


def test_canvas_profile_defaults_to_the_2024_display_types_and_refuses_the_whole_registration():
    request = body(placements=["course_navigation"], display_type="full_width_with_nav")
    with Simulator(profile="canvas") as sim:
        assert sim.profile.schema_edition == "2024"
        answer, _ = register(sim, request)
        assert answer.status_code == 422
        assert any("display_type" in e for e in answer.json()["errors"])
        assert sim.registrations() == []
        sim.profile.schema_edition = "current"
        assert register(sim, request)[0].status_code == 200


@pytest.mark.parametrize(
    ("path", "value", "accepted"),
    [
        # LtiToolConfiguration::SCHEMA "domain" pattern: a DNS name with an optional port
        ("domain", "tool.example.com:8443", True),
        ("domain", "[::1]:5001", False),
        ("domain", "::1", False),
        ("domain", "https://tool.example.com", False),
        # "secondary_domains" items: format hostname
        ("secondary_domains", ["cdn.tool.example.com"], True),
        ("secondary_domains", ["cdn.tool.example.com:443"], False),
        ("secondary_domains", ["https://cdn.tool.example.com"], False),
    ],
)
def test_canvas_domain_rules(path, value, accepted):
    request = body()
    request[TC][path] = value
    assert (canvas_schema_errors(request) == []) is accepted


def test_canvas_schema_wants_the_exact_grant_types_and_absolute_uris():
    # oidc_registration.rb: grant_types contains both REQUIRED_GRANT_TYPES; format uri
    request = body()
    request["grant_types"] = ["implict", "client_credentials"]
    request["jwks_uri"] = "/jwks"
    errors = canvas_schema_errors(request)
    assert any("/grant_types." in e for e in errors)
    assert any("/jwks_uri." in e for e in errors)
    assert canvas_schema_errors({**body(), "scope": None, "logo_uri": None}) == []


# --- Canvas: the answer and the grants -----------------------------------------------------------


def test_canvas_answer_claims_openid_but_the_key_never_holds_it():
    # dynamic_registration_controller.rb render_registration: scope = registration.scopes +
    # ["openid"]; oidc_registration.rb to_model_attrs removes openid before the developer key.
    with Simulator(profile="canvas") as sim:
        answer, _ = register(sim, body(scope=f"openid {SCORE} {NRPS}", placements=["ContentArea"]))
        (registration,) = sim.registrations()
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"].split() == [SCORE, NRPS, "openid"]
    assert registration.claimed_scopes == (SCORE, NRPS, "openid")
    assert registration.scopes == (SCORE, NRPS)
    assert sim.profile.token_grants_overlap is False


@pytest.mark.parametrize("registrations_next", [True, False])
def test_canvas_answers_deployment_id_only_with_registrations_next(registrations_next):
    # create: the deployment exists only with the lti_registrations_next feature;
    # render_registration's .compact drops a nil deployment_id.
    faults = [] if registrations_next else ["canvas_no_deployment"]
    with Simulator(profile="canvas", faults=faults) as sim:
        assert sim.profile.registrations_next is registrations_next
        answer, _ = register(sim, body(placements=["ContentArea"]))
        (registration,) = sim.registrations()
    echo = answer.json()
    assert answer.status_code == 200
    assert ("deployment_id" in echo) is registrations_next
    assert (registration.deployment_id is not None) is registrations_next
    assert "deployment_id" not in echo[TC]


def test_canvas_answer_is_the_filtered_stored_registration():
    # oidc_registration.rb filter!: only the schema's properties are stored and answered.
    request = body(placements=["course_navigation"])
    request["software_id"] = "quiz"
    request[TC]["https://example.com/ext"] = "x"
    request[TC]["messages"][0]["https://example.com/ext"] = "y"
    with Simulator(profile="canvas") as sim:
        echo = register(sim, request)[0].json()
    assert "software_id" not in echo
    assert "https://example.com/ext" not in echo[TC]
    assert "https://example.com/ext" not in echo[TC]["messages"][0]
    assert echo[TC][CANVAS_PREFIX + "registration_config_url"].endswith("/view")


def test_canvas_update_answers_the_registration_as_it_stands():
    # create with existing_registration files an Lti::RegistrationUpdateRequest and renders the
    # current ims_registration, not the new request.
    with Simulator(profile="canvas") as sim:
        first, _ = register(sim, body(placements=["ContentArea"]))
        client_id = first.json()["client_id"]
        url, grant = sim.initiate(BASE + "/register", update_client_id=client_id)
        config = requests.get(
            parse_qs(urlsplit(url).query)["openid_configuration"][0], timeout=5
        ).json()
        changed = body(scope=NRPS, placements=["ContentArea"])
        changed["client_name"] = "Renamed"
        again = requests.post(
            config["registration_endpoint"],
            json=changed,
            headers={"Authorization": f"Bearer {grant.token}"},
            timeout=5,
        )
    assert again.status_code == 200
    assert again.json() == first.json()


@pytest.mark.parametrize("token", [None, "not-a-known-token"])
def test_canvas_refuses_a_bad_registration_token_with_error_message(token):
    # dynamic_registration_controller.rb respond_with_error: {"errorMessage": ...}
    with Simulator(profile="canvas") as sim:
        _, _, config = start(sim)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = requests.post(
            config["registration_endpoint"], json=body(), headers=headers, timeout=5
        )
    assert answer.status_code == 401
    assert set(answer.json()) == {"errorMessage"}


@pytest.mark.parametrize(
    ("edition", "scope", "accepted"),
    [
        # registration.rb scopes_are_valid: LTI_SCOPES (2024), LTI_SCOPES + LTI_HIDDEN_SCOPES now
        ("2024", "https://purl.imsglobal.org/spec/lti/scope/asset.readonly", False),
        ("current", "https://purl.imsglobal.org/spec/lti/scope/asset.readonly", True),
        ("current", "https://canvas.instructure.com/lti/feature_flags/scope/show", True),
        ("current", Scope.TOOL_SETTINGS.value, False),
        ("2024", "openid", True),
    ],
)
def test_canvas_scope_lists_by_edition(edition, scope, accepted):
    with Simulator(profile="canvas") as sim:
        sim.profile.schema_edition = edition
        answer, _ = register(sim, body(scope=scope, placements=["ContentArea"]))
    assert (answer.status_code == 200) is accepted, answer.text
    if not accepted:
        assert answer.json()["errors"] == [f"Invalid scopes: {scope}"]


# --- Moodle --------------------------------------------------------------------------------------


def test_moodle_over_reports_lineitem_that_its_token_endpoint_will_not_grant():
    # registration_helper.php config_to_registration: `gradesynchronization ?? 0 == 2` is
    # `?? (0 == 2)`, so grade sync 1 lists lineitem; token.php grants only
    # lti_get_permitted_service_scopes (gradebookservices: lineitem only with sync 2;
    # basicoutcomes: basicoutcome whenever acceptgrades is not "never").
    with Simulator(profile="moodle") as sim:
        answer, _ = register(sim, body(scope=f"{SCORE} {NRPS}"))
        (registration,) = sim.registrations()
    claimed = answer.json()["scope"].split()
    assert claimed == [SCORE, RESULT, LINEITEM_RO, LINEITEM, NRPS]
    assert LINEITEM not in registration.scopes
    assert set(registration.scopes) == {LINEITEM_RO, RESULT, SCORE, BASIC_OUTCOME, NRPS}
    assert sim.profile.token_grants_overlap is True


def test_moodle_grants_lineitem_when_it_was_asked_for():
    with Simulator(profile="moodle") as sim:
        register(sim, body(scope=LINEITEM))
        (registration,) = sim.registrations()
    assert LINEITEM in registration.scopes


def test_moodle_without_services_grants_nothing():
    with Simulator(profile="moodle") as sim:
        answer, _ = register(sim, body(scope=""))
        (registration,) = sim.registrations()
    assert answer.json()["scope"] == ""
    assert registration.scopes == ()


def test_moodle_answer_always_has_logo_uri_and_description():
    # config_to_registration: `$config->icon ?? ''`, `$config->description ?? ''`
    with Simulator(profile="moodle") as sim:
        echo = register(sim, body())[0].json()
    assert echo["logo_uri"] == ""
    assert echo[TC]["description"] == ""


# --- Moodle 3.10 ---------------------------------------------------------------------------------


def test_moodle_310_configuration_as_its_code_writes_it():
    # mod/lti/openid-configuration.php at moodle/moodle@4dcc2d37
    with Simulator(profile="moodle-legacy") as sim:
        _, _, config = start(sim)
    assert "authorization_endpoint" not in config
    assert PLATFORM_CONFIGURATION not in config
    platform = config[PLATFORM_CONFIGURATION + " "]
    assert platform["product_family_code"] == "moodle"
    assert platform["messages_supported"] == ["LtiResourceLink", "LtiDeepLinkingRequest"]
    assert platform["placements"] == ["AddContentMenu"]


def test_moodle_310_requires_target_link_uri_and_does_not_compare_domains():
    # registration_helper.php at moodle/moodle@84e90d5d: get_parameter(..., required) for
    # domain and target_link_uri; no lti_get_domain_from_url comparison.
    without_target = body()
    del without_target[TC]["target_link_uri"]
    other_domain = body()
    other_domain[TC]["domain"] = "elsewhere.example"
    with Simulator(profile="moodle-legacy") as sim:
        refused, _ = register(sim, without_target)
        accepted, _ = register(sim, other_domain)
    assert (refused.status_code, refused.text) == (
        400,
        "missing required attribute target_link_uri",
    )
    assert accepted.status_code == 200, accepted.text
    with Simulator(profile="moodle") as sim:  # 4.x compares them
        assert register(sim, other_domain)[0].text == "domain_targetlinkuri_mismatch"


def test_moodle_310_answer_lists_every_claim_and_reports_lineitem_correctly():
    # 3.10's config_to_registration: `if ($config->lti_sendname = LTI_SETTING_ALWAYS)` assigns,
    # so every claim is listed; its grade test was `== 2`, so no over-reported lineitem.
    with Simulator(profile="moodle-legacy") as sim:
        answer, _ = register(sim, body(scope=SCORE))
        (registration,) = sim.registrations()
    echo = answer.json()
    assert echo[TC]["claims"] == ["sub", "iss", "name", "family_name", "middle_name", "email"]
    assert "version" not in echo[TC]
    assert echo["scope"].split() == [SCORE, RESULT, LINEITEM_RO]
    assert LINEITEM not in registration.scopes


def test_moodle_310_has_no_update_flow():
    with Simulator(profile="moodle-legacy") as sim:
        assert sim.profile.supports_update is False
        with pytest.raises(ValueError, match="does not support"):
            sim.initiation_url(BASE + "/register", update_client_id="x")


# --- Sakai ---------------------------------------------------------------------------------------


def test_sakai_echoes_the_requested_scope_but_grants_by_the_admins_checkboxes():
    # LTI13Servlet.handleRegistrationEndpointPost echoes the JSON; handleTokenPost grants by
    # allowlineitems / allowoutcomes / allowroster.
    request = body(scope=f"{SCORE} {NRPS}")
    with Simulator(profile="sakai") as sim:
        sim.profile.admin_checkboxes = frozenset({"allowroster"})
        answer, _ = register(sim, request)
        (registration,) = sim.registrations()
    assert answer.status_code == 200
    assert answer.json()["scope"] == f"{SCORE} {NRPS}"
    assert registration.claimed_scopes == (SCORE, NRPS)
    assert SCORE not in registration.scopes and NRPS in registration.scopes
    assert sim.profile.token_grants_overlap is False


def test_sakai_admin_who_ticks_what_was_asked_grants_score_with_lineitems():
    with Simulator(profile="sakai") as sim:
        register(sim, body(scope=SCORE))
        (registration,) = sim.registrations()
    # score needs allowoutcomes and allowlineitems; allowlineitems brings lineitem with it
    assert set(registration.scopes) == {SCORE, RESULT, LINEITEM_RO, LINEITEM}


def test_sakai_configuration_lists_empty_placements_per_message():
    # LTILaunchMessage initialises placements to an empty list, which Jackson writes.
    with Simulator(profile="sakai") as sim:
        _, _, config = start(sim)
    messages = config[PLATFORM_CONFIGURATION]["messages_supported"]
    assert messages == [
        {"type": "LtiResourceLinkRequest", "placements": []},
        {"type": "LtiDeepLinkingRequest", "placements": []},
    ]
    assert config["scopes_supported"] == ["openid"]


@pytest.mark.parametrize(
    ("authorization", "status", "text"),
    [
        (None, 400, '{"error": "invalid_authorization"}'),
        ("Basic abc", 400, '{"error": "invalid_authorization"}'),
        ("Bearer wrong-token", 403, ""),
    ],
)
def test_sakai_registration_token_answers(authorization, status, text):
    with Simulator(profile="sakai") as sim:
        _, _, config = start(sim)
        headers = {"Authorization": authorization} if authorization else {}
        answer = requests.post(
            config["registration_endpoint"], json=body(), headers=headers, timeout=5
        )
    assert (answer.status_code, answer.text) == (status, text)


def test_sakai_token_is_single_use():
    # handleRegistrationEndpointPost stores lti13AutoToken = "Used": a second POST gets 403.
    with Simulator(profile="sakai") as sim:
        grant, _, config = start(sim)
        auth = {"Authorization": f"Bearer {grant.token}"}
        first = requests.post(config["registration_endpoint"], json=body(), headers=auth, timeout=5)
        second = requests.post(
            config["registration_endpoint"], json=body(), headers=auth, timeout=5
        )
    assert (first.status_code, second.status_code) == (200, 403)
    # LTI13Util.timeStampCheck: the token starts with the second it was made
    assert abs(int(grant.token.split(":")[0]) - grant.issued_at) < 2


# --- every profile -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "overlap"),
    [(name, name in ("moodle", "moodle-legacy")) for name in PROFILES],
)
def test_token_grants_overlap_only_for_moodle(profile, overlap):
    # moodle/moodle mod/lti/token.php array_intersect; Canvas (lib/canvas/oauth/provider.rb) and
    # Sakai (handleTokenPost) refuse the whole request.
    assert PROFILE_CLASSES[profile].token_grants_overlap is overlap


# Brightspace fetches the tool's keyset while registering; the e2e tests cover it.
@pytest.mark.parametrize("profile", [p for p in PROFILES if p != "brightspace"])
def test_registration_scopes_never_hold_openid(profile):
    with Simulator(profile=profile) as sim:
        request = body(scope=f"openid {SCORE}", placements=["ContentArea"])
        answer, _ = register(sim, request)
        assert answer.status_code in (200, 201), answer.text
        (registration,) = sim.registrations()
    assert "openid" not in registration.scopes


# --- Gatehouse's own bodies against the LMSes' rules ---------------------------------------------

TOOL_SETTINGS = {
    "name": "Quiz Tool",
    "description": "Quizzes for every course",
    "logo_uri": "https://tool.example.com/logo.png",
    "contacts": ["help@tool.example.com"],
    "secondary_domains": ["cdn.tool.example.com"],
    "scopes": ["openid", SCORE, LINEITEM, NRPS],
    "custom_parameters": {"course": "$Context.id"},
    "messages": [
        {
            "type": "LtiResourceLinkRequest",
            "label": "Quizzes",
            "placements": ["course_navigation", "ContentArea"],
            "canvas": {"display_type": "full_width_with_nav", "visibility": "members"},
        },
        {
            "type": "LtiDeepLinkingRequest",
            "placements": ["ContentArea", "RichTextEditor", "editor_button"],
            "canvas": {"display_type": "new_window"},
        },
    ],
    "canvas": {"privacy_level": "public"},
}


# The same tool written with Canvas-prefixed names, including names Canvas never prefixes
# (resource_placement.rb add_extension_prefix_if_necessary, CONTENT_AREA, RICH_TEXT_EDITOR).
PREFIXED_TOOL_SETTINGS = {
    **TOOL_SETTINGS,
    "messages": [
        {
            "type": "LtiResourceLinkRequest",
            "placements": [CANVAS_PREFIX + "course_navigation", CANVAS_PREFIX + "ContentArea"],
        },
        {
            "type": "LtiDeepLinkingRequest",
            "placements": [
                CANVAS_PREFIX + "RichTextEditor",
                CANVAS_PREFIX + "ActivityAssetProcessor",
                CANVAS_PREFIX + "editor_button",
            ],
        },
    ],
}
TOOLS = {"plain": TOOL_SETTINGS, "prefixed": PREFIXED_TOOL_SETTINGS}


def gatehouse_body(profile, tool_settings=TOOL_SETTINGS):
    """Build Gatehouse's registration body for this profile's real OpenID configuration."""
    with Simulator(profile=profile) as sim:
        _, config_url, document = start(sim, "https://tool.example.com/lti/register")
    platform = validate_openid_config(document, config_url, allow_insecure=True)
    settings = load_settings({}, {"tool": tool_settings})
    tool = resolve_tool(settings.tool.as_dict(), "https://tool.example.com")
    return build_registration_request(tool, platform).body


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("edition", CANVAS_EDITIONS)
@pytest.mark.parametrize("profile", PROFILES)
def test_gatehouse_body_passes_canvas_schema(profile, edition, tool):
    request = gatehouse_body(profile, TOOLS[tool])
    assert canvas_schema_errors(request, edition) == [], json.dumps(request, indent=1)


@pytest.mark.parametrize("moodle", ["moodle", "moodle-legacy"])
@pytest.mark.parametrize("profile", PROFILES)
def test_gatehouse_body_passes_moodles_checks(profile, moodle):
    request = gatehouse_body(profile)
    checker = Simulator(profile=moodle).profile
    try:
        checker.validate(request, None)
    except Rejection as refusal:  # pragma: no cover - the message is the point
        pytest.fail(f"{moodle} refuses Gatehouse's {profile} body: {refusal.body}")
