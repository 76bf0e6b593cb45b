import dataclasses
import json

import pytest

from app.lti.constants import PLATFORM_CONFIGURATION, TOOL_CONFIGURATION
from app.lti.discovery import validate_openid_config
from app.lti.errors import InvalidRegistrationResponse, PlatformRefused
from app.lti.http import SafeClient
from app.lti.registration import (
    InsecureToolURL,
    build_registration_request,
    parse_registration_response,
    register_tool_in_platform,
    resolve_tool,
    summarize_error,
)
from app.settings import load_settings

SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def platform(family="examplelms", scopes=("openid", SCORE, NRPS), messages=None, **extra):
    document = {
        "issuer": "https://lms.example.edu",
        "authorization_endpoint": "https://lms.example.edu/auth",
        "token_endpoint": "https://lms.example.edu/token",
        "jwks_uri": "https://lms.example.edu/jwks",
        "registration_endpoint": "https://lms.example.edu/register",
        "scopes_supported": list(scopes),
        PLATFORM_CONFIGURATION: {
            "product_family_code": family,
            "version": "1",
            "messages_supported": messages
            if messages is not None
            else [
                {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
                {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]},
            ],
        },
        **extra,
    }
    return validate_openid_config(document, "https://lms.example.edu/openid")


def tool(**tool_settings):
    settings = load_settings({}, {"tool": {"name": "Quiz Tool", **tool_settings}})
    return resolve_tool(settings.tool.as_dict(), "https://tool.example.com")


def test_required_fields_have_exact_spec_values():
    body = build_registration_request(tool(), platform()).body
    assert body["application_type"] == "web"
    assert body["response_types"] == ["id_token"]
    assert body["grant_types"] == ["implicit", "client_credentials"]
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["client_name"] == "Quiz Tool"
    assert body["initiate_login_uri"] == "https://tool.example.com/lti/login"
    assert body["redirect_uris"] == ["https://tool.example.com/lti/launch"]
    assert body["jwks_uri"] == "https://tool.example.com/lti/keys"
    assert body["scope"] == ""
    config = body[TOOL_CONFIGURATION]
    assert config["domain"] == "tool.example.com"
    assert config["target_link_uri"] == "https://tool.example.com/lti/launch"
    assert "deployment_id" not in config
    assert isinstance(config["claims"], list) and isinstance(config["messages"], list)


def test_optional_urls_are_omitted_not_empty():
    body = build_registration_request(tool(), platform()).body
    for key in ("logo_uri", "client_uri", "policy_uri", "tos_uri", "contacts"):
        assert key not in body
    full = build_registration_request(
        tool(logo_uri="https://tool.example.com/logo.png", contacts=["help@tool.example.com"]),
        platform(),
    ).body
    assert full["logo_uri"] == "https://tool.example.com/logo.png"
    assert full["contacts"] == ["help@tool.example.com"]


def test_domain_keeps_a_non_default_port():
    settings = load_settings({}, {"tool": {"name": "T"}})
    profile = resolve_tool(settings.tool.as_dict(), "http://127.0.0.1:5001")
    body = build_registration_request(profile, platform()).body
    assert body[TOOL_CONFIGURATION]["domain"] == "127.0.0.1:5001"
    profile = resolve_tool(settings.tool.as_dict(), "https://tool.example.com:443")
    assert profile.domain == "tool.example.com"


def test_scope_is_a_space_separated_string_of_supported_scopes_only():
    request = build_registration_request(tool(scopes=[SCORE, LINEITEM, NRPS]), platform())
    assert request.body["scope"] == f"{SCORE} {NRPS}"
    assert any(LINEITEM in note for note in request.adjustments)


def test_sakai_scope_list_is_advisory():
    request = build_registration_request(
        tool(scopes=[SCORE, NRPS]), platform(family="sakailms.org", scopes=["openid"])
    )
    assert request.body["scope"] == f"{SCORE} {NRPS}"


def test_messages_and_placements_follow_what_the_platform_advertises():
    messages = [
        {"type": "LtiResourceLinkRequest", "placements": ["course_navigation", "global_nav"]},
        {
            "type": "LtiDeepLinkingRequest",
            "placements": ["ContentArea", "RichTextEditor"],
            "label": "Add a quiz",
        },
        {"type": "LtiSubmissionReviewRequest"},
    ]
    request = build_registration_request(tool(messages=messages), platform())
    sent = request.body[TOOL_CONFIGURATION]["messages"]
    assert sent == [
        {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
        {"type": "LtiDeepLinkingRequest", "label": "Add a quiz", "placements": ["ContentArea"]},
    ]
    assert len(request.adjustments) == 3


def test_resource_link_is_sent_even_when_not_listed():
    request = build_registration_request(
        tool(), platform(messages=[{"type": "LtiDeepLinkingRequest"}])
    )
    types = [m["type"] for m in request.body[TOOL_CONFIGURATION]["messages"]]
    assert types == ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]


def test_canvas_extensions_only_for_canvas():
    messages = [
        {
            "type": "LtiResourceLinkRequest",
            "placements": ["course_navigation"],
            "canvas": {"visibility": "admins", "default_enabled": False},
        },
    ]
    settings = {"messages": messages, "canvas": {"privacy_level": "public"}}
    canvas = build_registration_request(tool(**settings), platform(family="canvas")).body
    config = canvas[TOOL_CONFIGURATION]
    assert config["https://canvas.instructure.com/lti/privacy_level"] == "public"
    message = config["messages"][0]
    assert message["https://canvas.instructure.com/lti/visibility"] == "admins"
    assert message["https://canvas.instructure.com/lti/course_navigation/default_enabled"] is False
    moodle = build_registration_request(tool(**settings), platform(family="moodle")).body
    assert "canvas.instructure.com" not in json.dumps(moodle)


def test_canvas_accepts_generic_placement_names():
    messages = [{"type": "LtiDeepLinkingRequest", "placements": ["RichTextEditor"]}]
    body = build_registration_request(tool(messages=messages), platform(family="canvas")).body
    assert body[TOOL_CONFIGURATION]["messages"][0]["placements"] == ["RichTextEditor"]


CANVAS_RL = "https://canvas.instructure.com/lti/"


def canvas_platform():
    """A Canvas that lists placements the way Canvas does (a few of them)."""
    return platform(
        family="canvas",
        messages=[
            {
                "type": "LtiResourceLinkRequest",
                "placements": ["course_navigation", "link_selection", "assignment_selection"],
            },
            {
                "type": "LtiDeepLinkingRequest",
                "placements": ["link_selection", "assignment_selection", "editor_button"],
            },
        ],
    )


def sent_messages(request):
    return {m["type"]: m for m in request.body[TOOL_CONFIGURATION]["messages"]}


def test_canvas_always_gets_placements_for_the_default_messages():
    request = build_registration_request(tool(), canvas_platform())
    sent = sent_messages(request)
    # Configured without placements: Canvas's own choice, now explicit.
    assert sent["LtiResourceLinkRequest"]["placements"] == ["link_selection"]
    # Configured with the generic names: kept as they are (Canvas maps them).
    assert sent["LtiDeepLinkingRequest"]["placements"] == ["ContentArea", "RichTextEditor"]
    assert any(
        "Placed the LtiResourceLinkRequest message in link_selection" in note
        for note in request.adjustments
    )


def test_canvas_deep_linking_without_placements_gets_content_selection_placements():
    request = build_registration_request(
        tool(messages=[{"type": "LtiDeepLinkingRequest"}]), canvas_platform()
    )
    assert sent_messages(request)["LtiDeepLinkingRequest"]["placements"] == [
        "link_selection",
        "assignment_selection",
        "editor_button",
    ]


def test_canvas_defaults_only_use_placements_canvas_offers():
    limited = platform(
        family="canvas",
        messages=[{"type": "LtiDeepLinkingRequest", "placements": ["editor_button"]}],
    )
    request = build_registration_request(
        tool(messages=[{"type": "LtiDeepLinkingRequest"}]), limited
    )
    assert sent_messages(request)["LtiDeepLinkingRequest"]["placements"] == ["editor_button"]


def test_canvas_message_whose_placements_are_all_filtered_falls_back_to_defaults():
    messages = [{"type": "LtiResourceLinkRequest", "placements": ["not_a_canvas_place"]}]
    request = build_registration_request(tool(messages=messages), canvas_platform())
    assert sent_messages(request)["LtiResourceLinkRequest"]["placements"] == ["link_selection"]
    notes = " ".join(request.adjustments)
    assert "not_a_canvas_place" in notes
    assert "Canvas offers none of those the tool's settings name" in notes


def test_canvas_message_with_an_empty_placements_list_is_left_out():
    messages = [
        {"type": "LtiResourceLinkRequest", "placements": []},
        {"type": "LtiDeepLinkingRequest", "placements": ["editor_button"]},
    ]
    request = build_registration_request(tool(messages=messages), canvas_platform())
    assert list(sent_messages(request)) == ["LtiDeepLinkingRequest"]
    assert any("placements list is empty" in note for note in request.adjustments)


def test_canvas_message_is_left_out_when_canvas_offers_no_default_placement():
    stingy = platform(
        family="canvas",
        messages=[
            {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
            {"type": "LtiDeepLinkingRequest", "placements": ["editor_button"]},
        ],
    )
    request = build_registration_request(
        tool(
            messages=[
                {"type": "LtiDeepLinkingRequest", "placements": []},
                {"type": "LtiResourceLinkRequest"},
            ]
        ),
        stingy,
    )
    assert request.body[TOOL_CONFIGURATION]["messages"] == []
    assert any("Canvas offers none of its placements" in n for n in request.adjustments)


def test_every_canvas_message_names_placements_whatever_the_configuration():
    configurations = [
        None,
        [{"type": "LtiResourceLinkRequest"}],
        [{"type": "LtiResourceLinkRequest", "placements": ["nowhere"]}],
        [
            {"type": "LtiDeepLinkingRequest", "placements": ["RichTextEditor"]},
            {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
        ],
    ]
    for messages in configurations:
        settings = {} if messages is None else {"messages": messages}
        request = build_registration_request(tool(**settings), canvas_platform())
        for message in request.body[TOOL_CONFIGURATION]["messages"]:
            assert message["placements"], (messages, message)


def test_other_lms_messages_without_placements_are_sent_as_configured():
    request = build_registration_request(tool(), platform(family="moodle"))
    assert "placements" not in sent_messages(request)["LtiResourceLinkRequest"]


def test_canvas_new_window_is_left_out_and_the_admin_told():
    messages = [
        {
            "type": "LtiResourceLinkRequest",
            "placements": ["course_navigation"],
            "canvas": {"display_type": "new_window", "launch_width": 800},
        }
    ]
    request = build_registration_request(tool(messages=messages), canvas_platform())
    message = sent_messages(request)["LtiResourceLinkRequest"]
    assert CANVAS_RL + "display_type" not in message
    assert message[CANVAS_RL + "launch_width"] == 800
    assert any("display_type new_window" in n and "#2459" in n for n in request.adjustments)


def test_canvas_other_display_types_are_sent():
    messages = [
        {
            "type": "LtiResourceLinkRequest",
            "placements": ["course_navigation"],
            "canvas": {"display_type": "full_width"},
        }
    ]
    request = build_registration_request(tool(messages=messages), canvas_platform())
    message = sent_messages(request)["LtiResourceLinkRequest"]
    assert message[CANVAS_RL + "display_type"] == "full_width"
    assert not any("display_type" in n for n in request.adjustments)


def test_plain_http_tool_urls_are_refused_before_anything_is_sent(simulator):
    sim = simulator("generic")
    http_tool = resolve_tool(
        load_settings(
            {}, {"tool": {"name": "T"}, "security": {"allow_insecure_platforms": True}}
        ).tool.as_dict(),
        "http://reg.example.com",
    )
    request = build_registration_request(http_tool, platform())
    assert ("tool.jwks_uri", "http://reg.example.com/lti/keys") in request.insecure_urls
    lms = dataclasses.replace(platform(), registration_endpoint=sim.base_url + "/lti/registrations")
    with pytest.raises(InsecureToolURL) as info:
        register_tool_in_platform(SafeClient(allow_insecure=False), lms, request, "token")
    assert info.value.rule == "tool-https"
    assert "http://reg.example.com/lti/launch" in info.value.detail
    assert "base_url" in info.value.hint and "trusted_proxies" in info.value.hint
    # In insecure mode (development) the same request goes out.
    status, _ = register_tool_in_platform(SafeClient(allow_insecure=True), lms, request, None)
    assert status == 401  # the simulator wants its token; what matters is that it was asked
    assert len(sim.records) == 1


def test_https_tool_urls_have_nothing_to_refuse():
    assert build_registration_request(tool(), platform()).insecure_urls == ()


def test_response_read_from_tool_configuration_deployment():
    body = json.dumps(
        {
            "client_id": "abc",
            "scope": SCORE,
            TOOL_CONFIGURATION: {"deployment_id": "7"},
            "registration_client_uri": "https://lms.example.edu/reg/1",
        }
    )
    result = parse_registration_response(201, body)
    assert result.client_id == "abc"
    assert result.deployment_id == "7"
    assert result.scopes == (SCORE,)
    assert result.registration_client_uri == "https://lms.example.edu/reg/1"


def test_response_read_from_top_level_deployment_and_numeric_client_id():
    body = json.dumps({"client_id": 10000000000001, "deployment_id": "17:abc"})
    result = parse_registration_response(200, body, requested_scopes=(SCORE,))
    assert result.client_id == "10000000000001"
    assert result.deployment_id == "17:abc"
    assert result.scopes == (SCORE,)


def test_response_without_deployment():
    assert parse_registration_response(200, '{"client_id": "x"}').deployment_id is None


@pytest.mark.parametrize(
    ("status", "body", "rule"),
    [
        (200, "<html>ok</html>", "response-json"),
        (200, "[1, 2]", "response-json"),
        (201, '{"scope": ""}', "response-client-id"),
        (200, '{"client_id": ""}', "response-client-id"),
        (200, '{"client_id": true}', "response-client-id"),
    ],
)
def test_unusable_success_answers(status, body, rule):
    with pytest.raises(InvalidRegistrationResponse) as info:
        parse_registration_response(status, body)
    assert info.value.rule == rule
    assert info.value.lms_body == body


@pytest.mark.parametrize(
    ("status", "body", "summary", "hint"),
    [
        (
            400,
            '{"error": "invalid_client_metadata", "error_description": "bad grant"}',
            "invalid_client_metadata; bad grant",
            "registration details",
        ),
        (
            422,
            '{"errors": [{"message": "domain is invalid"}, "x"]}',
            "domain is invalid; x",
            "registration details",
        ),
        (
            401,
            '{"errorMessage": "JWT did not include expected contents"}',
            "JWT did not include expected contents",
            "expired",
        ),
        (401, "token_already_used", "token_already_used", "already used"),
        (401, "missing_registration_token", "missing_registration_token", "Authorization"),
        (500, "", "(empty body)", "internal error"),
    ],
)
def test_refusals_keep_the_lms_words(status, body, summary, hint):
    with pytest.raises(PlatformRefused) as info:
        parse_registration_response(status, body)
    assert summary in info.value.detail
    assert hint in info.value.hint
    assert info.value.lms_body == body
    assert info.value.lms_status == status


def test_summaries_are_short():
    assert len(summarize_error("x" * 1000)) == 300


# --- Rules from the LMSes' own code (issue 12) ---------------------------------------------


def test_openid_in_the_tool_scopes_is_never_sent():
    # One Canvas release refused a registration naming openid (canvas-lms issue 2398).
    request = build_registration_request(tool(scopes=["openid", SCORE]), platform())
    assert request.scopes == (SCORE,)


def test_openid_in_the_answer_is_no_granted_service():
    # Canvas answers with the registration's scopes plus openid, then refuses openid at its
    # token endpoint (canvas-lms dynamic_registration_controller.rb; developer key scopes).
    body = json.dumps({"client_id": "1", "scope": f"{SCORE} openid {NRPS}"})
    assert parse_registration_response(200, body).scopes == (SCORE, NRPS)
    assert parse_registration_response(200, '{"client_id": "1"}', ("openid", SCORE)).scopes == (
        SCORE,
    )


@pytest.mark.parametrize("display_type", ["new_window", "full_width_with_nav"])
def test_canvas_display_types_some_canvas_refuses_are_left_out(display_type):
    # full_width_with_nav is missing from the 2024 VALID_DISPLAY_TYPES
    # (canvas-lms lib/schemas/internal_lti_configuration.rb): an unknown value is a 422.
    messages = [
        {
            "type": "LtiResourceLinkRequest",
            "placements": ["course_navigation"],
            "canvas": {"display_type": display_type},
        }
    ]
    request = build_registration_request(tool(messages=messages), canvas_platform())
    assert CANVAS_RL + "display_type" not in sent_messages(request)["LtiResourceLinkRequest"]
    assert any(f"display_type {display_type}" in n for n in request.adjustments)


def test_canvas_standard_placements_are_sent_without_canvas_prefix():
    # canvas-lms app/models/lti/resource_placement.rb, add_extension_prefix_if_necessary: the
    # prefix is only for Canvas's own placements; a prefixed ContentArea fails the registration.
    messages = [
        {
            "type": "LtiDeepLinkingRequest",
            "placements": [
                CANVAS_RL + "ContentArea",
                CANVAS_RL + "RichTextEditor",
                CANVAS_RL + "ActivityAssetProcessor",
                CANVAS_RL + "assignment_selection",
                "editor_button",
            ],
        }
    ]
    dl = {
        "type": "LtiDeepLinkingRequest",
        "placements": [
            "link_selection",
            "assignment_selection",
            "editor_button",
            "ActivityAssetProcessor",
        ],
    }
    canvas = platform(
        family="canvas",
        messages=[{"type": "LtiResourceLinkRequest", "placements": ["link_selection"]}, dl],
    )
    sent = sent_messages(build_registration_request(tool(messages=messages), canvas))
    assert sent["LtiDeepLinkingRequest"]["placements"] == [
        "ContentArea",
        "RichTextEditor",
        "ActivityAssetProcessor",
        CANVAS_RL + "assignment_selection",
        "editor_button",
    ]


def test_canvas_placements_canvas_does_not_offer_are_left_out_under_either_spelling():
    messages = [
        {
            "type": "LtiResourceLinkRequest",
            "placements": [CANVAS_RL + "top_navigation", "course_navigation"],
        }
    ]
    request = build_registration_request(tool(messages=messages), canvas_platform())
    assert sent_messages(request)["LtiResourceLinkRequest"]["placements"] == ["course_navigation"]
    assert any("top_navigation" in n for n in request.adjustments)


def test_base_url_is_normalised_so_moodle_sees_the_domain_it_compares():
    # Moodle compares domain with target_link_uri's host[:port] as written (`!==`,
    # mod/lti/classes/local/ltiopenid/registration_helper.php).
    settings = load_settings({}, {"tool": {"name": "Quiz Tool"}})
    profile = resolve_tool(settings.tool.as_dict(), "https://Tool.Example.com:443")
    config = build_registration_request(profile, platform()).body[TOOL_CONFIGURATION]
    assert config["domain"] == "tool.example.com"
    assert config["target_link_uri"] == "https://tool.example.com/lti/launch"
