"""End to end through /lti/register: each configuration rule, what the admin is told, what is kept.

Real simulated LMSes on 127.0.0.1 (their faults and configuration overrides break one rule each),
Gatehouse served for real on localhost.
"""

import html
import re
from urllib.parse import urlsplit

import pytest
import requests

from app.lti.constants import PLATFORM_CONFIGURATION, TOOL_CONFIGURATION, Scope
from app.simulator import REMOVE
from app.testing import LoopbackServer

SCORE = Scope.AGS_SCORE.value
LINEITEM = Scope.AGS_LINEITEM.value
NRPS = Scope.NRPS_MEMBERSHIP.value
DISPLAY_TYPE = "https://canvas.instructure.com/lti/display_type"


def text_of(markup):
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def visible_text(response):
    """Return what the admin reads without expanding any collapsed <details> block."""
    return text_of(re.sub(r"<details[^>]*>.*?</details>", "", response.text, flags=re.S))


def collapsed_text(response):
    """Return the collapsed "Adjusted for <LMS>" line's content."""
    found = re.search(r'<details class="adjusted"[^>]*>(.*?)</details>', response.text, re.S)
    return text_of(found.group(1)) if found else ""


def assert_refused(store, response, *texts):
    assert response.status_code == 502
    assert "data-lti-close-button" in response.text
    assert 'data-lti-close="auto"' not in response.text
    page = text_of(response.text)
    for expected in texts:
        assert expected in page, page
    assert store.list_platforms()[0] == []
    (attempt,) = store.list_registrations()[0]
    assert attempt.state == "failed"
    return attempt


# --- every rule of the OpenID configuration validation (app/lti/discovery.py) ------------------
# The https rules (issuer-https, https-only) apply only in production mode, where a loopback LMS
# is refused before anything is fetched; tests/test_discovery.py covers them.

CONFIG_RULES = [
    ({"faults": {"config_not_json"}}, "config-json", "is not JSON"),
    ({"faults": {"config_not_object"}}, "config-json", "is not a JSON object"),
    ({"config_overrides": {"issuer": REMOVE}}, "required-field", "has no 'issuer'"),
    (
        {"config_overrides": {"authorization_endpoint": REMOVE}},
        "required-field",
        "has no 'authorization_endpoint'",
    ),
    ({"config_overrides": {"token_endpoint": REMOVE}}, "required-field", "has no 'token_endpoint'"),
    ({"config_overrides": {"token_endpoint": "  "}}, "required-field", "has no 'token_endpoint'"),
    ({"faults": {"no_jwks_uri"}}, "required-field", "has no 'jwks_uri'"),
    ({"faults": {"no_registration_endpoint"}}, "required-field", "has no 'registration_endpoint'"),
    (
        {"config_overrides": {"jwks_uri": "/api/lti/security/jwks"}},
        "endpoint-url",
        "jwks_uri '/api/lti/security/jwks' is not an absolute URL",
    ),
    (
        {"config_overrides": {"registration_endpoint": "ftp://lms.example.edu/register"}},
        "endpoint-url",
        "registration_endpoint 'ftp://lms.example.edu/register' is not an absolute",
    ),
    (
        {"config_overrides": {"issuer": "lms.example.edu"}},
        "issuer-url",
        "'lms.example.edu' is not an absolute URL",
    ),
    ({"faults": {"http_issuer_with_query"}}, "issuer-no-query", "query or fragment"),
    ({"faults": {"issuer_mismatch"}}, "issuer-host-match", "not on the same host"),
    (
        {"config_overrides": {"issuer": "{base_url}/tenant-a"}},
        "issuer-prefix",
        "does not start with the issuer",
    ),
    (
        {"faults": {"no_rs256"}},
        "rs256",
        "id_token_signing_alg_values_supported does not include 'RS256'",
    ),
    (
        {"config_overrides": {"id_token_signing_alg_values_supported": "RS256"}},
        "rs256",
        "id_token_signing_alg_values_supported does not include 'RS256'",
    ),
    (
        {"faults": {"no_token_endpoint_rs256"}},
        "rs256",
        "token_endpoint_auth_signing_alg_values_supported does not include 'RS256'",
    ),
    (
        {"faults": {"no_private_key_jwt"}},
        "private-key-jwt",
        "token_endpoint_auth_methods_supported does not include 'private_key_jwt'",
    ),
]


@pytest.mark.parametrize(
    ("options", "rule", "text"),
    CONFIG_RULES,
    ids=[f"{rule}-{n}" for n, (_, rule, _) in enumerate(CONFIG_RULES)],
)
def test_each_configuration_rule_gets_a_readable_page_and_stores_nothing(
    live, simulator, store, options, rule, text
):
    sim = simulator("generic", **options)
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    attempt = assert_refused(
        store, response, "Your LMS's configuration is not usable", text, f"Rule: {rule}"
    )
    assert f'data-lti-error="{rule}"' in response.text
    assert attempt.error["rule"] == rule
    assert sim.config_fetches  # the LMS really served the broken configuration
    assert sim.records == []  # and nothing was POSTed to it


# The platform-configuration object's rules are tolerance rules (reference §8 items 8 and 12):
# Gatehouse registers anyway, with what it could read or defaults.
@pytest.mark.parametrize(
    ("profile", "options", "family", "version"),
    [
        ("generic", {"faults": {"no_platform_config"}}, "unknown", ""),
        ("moodle-legacy", {}, "moodle", "3.10.1 (Build: 20210118)"),
        (
            "generic",
            {
                "faults": {"no_platform_config"},
                "config_overrides": {
                    PLATFORM_CONFIGURATION + " ": {
                        "product_family_code": "oldlms",
                        "version": "0.9",
                        "messages_supported": ["LtiResourceLink", "LtiDeepLinkingRequest"],
                    }
                },
            },
            "oldlms",
            "0.9",
        ),
    ],
    ids=["missing-object", "moodle-3.10", "trailing-space-key-and-string-messages"],
)
def test_platform_configuration_object_quirks_still_register(
    live, simulator, store, profile, options, family, version
):
    sim = simulator(profile, **options)
    report = sim.register(live.register_url)
    assert report.ok, report.render()
    platform = store.find_platform(sim.issuer, report.client_id)
    assert (platform.product_family_code, platform.version) == (family, version)


# --- what is stored from the LMS's answer -------------------------------------------------------


def test_generic_lms_registration_client_uri_authorization_server_and_version(
    live, simulator, store
):
    sim = simulator("generic")
    report = sim.register(live.register_url)
    assert report.ok, report.render()
    platform = store.find_platform(sim.issuer, report.client_id)
    (record,) = sim.records
    assert platform.registration_client_uri == record.response["registration_client_uri"]
    assert platform.registration_client_uri == (
        f"{sim.base_url}/lti/registrations/{report.client_id}"
    )
    assert platform.authorization_server == sim.base_url + "/lti/token"  # as advertised
    assert platform.version == "1.0"


def test_authorization_server_falls_back_to_the_token_endpoint(live, simulator, store):
    sim = simulator(
        "generic",
        config_overrides={
            "authorization_server": REMOVE,
            "token_endpoint": "{base_url}/oauth2/token?realm=lti",
        },
    )
    report = sim.register(live.register_url)
    assert report.ok, report.render()
    platform = store.find_platform(sim.issuer, report.client_id)
    assert platform.token_endpoint == sim.base_url + "/oauth2/token?realm=lti"
    assert platform.authorization_server == platform.token_endpoint


def test_moodle_version_is_stored_and_it_gives_no_client_uri(live, simulator, store):
    sim = simulator("moodle")
    report = sim.register(live.register_url)
    platform = store.find_platform(sim.issuer, report.client_id)
    assert platform.version == sim.profile.version == "4.5.6 (Build: 20250811)"
    assert platform.registration_client_uri is None
    assert platform.authorization_server == platform.token_endpoint  # Moodle sends none


def test_canvas_registration_client_uri_and_bare_host_authorization_server(live, simulator, store):
    sim = simulator("canvas")
    report = sim.register(live.register_url)
    platform = store.find_platform(sim.issuer, report.client_id)
    (record,) = sim.records
    assert platform.registration_client_uri == record.response["registration_client_uri"]
    assert platform.registration_client_uri.startswith(sim.alt_base_url + "/api/lti/")
    assert platform.authorization_server == urlsplit(sim.base_url).netloc
    assert platform.version == "OpenSource"


# --- what the admin is told on the close page ---------------------------------------------------


def test_close_page_names_withheld_and_dropped_scopes_without_expanding(live, simulator, store):
    offered = ["openid", SCORE, NRPS]  # this LMS does not offer lineitem at all
    sim = simulator(
        "generic", withhold_scopes=[NRPS], config_overrides={"scopes_supported": offered}
    )
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    # Services missing: the dialog stays open until the admin has read why and clicks Done
    # (Moodle removes its dialog the moment the close message arrives).
    assert response.status_code == 200 and 'data-lti-close="after-reading"' in response.text
    assert ">Done, back to gatehouse-simulator</button>" in response.text
    visible = visible_text(response)
    # Asked for and not granted by the LMS (from its answer): named plainly.
    assert "did not grant 1 of the 2 services the tool asked for" in visible
    assert f"Course members (names and roles) {NRPS}" in visible
    # Never asked for, because the LMS does not offer it: named too.
    assert f"Did not request the scope {LINEITEM} (the LMS does not offer it)." in visible
    (platform,) = store.list_platforms()[0]
    assert platform.scopes == (SCORE,)
    sent = sim.records[0].body["scope"].split()
    assert NRPS in sent and LINEITEM not in sent


def test_close_page_shows_no_differences_when_everything_was_granted(live, simulator):
    sim = simulator("generic")
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert response.status_code == 200 and 'data-lti-close="auto"' in response.text
    assert "data-registration-differences" not in response.text
    assert "did not grant" not in text_of(response.text)


def test_close_page_names_dropped_message_types_and_placements(make_app, simulator):
    messages = [
        {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
        {"type": "LtiSubmissionReviewRequest"},
    ]
    app = make_app({"tool": {"messages": messages}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("sakai")  # no placements, resource link and deep linking only
        response = requests.get(sim.initiation_url(server.url + "/lti/register"), timeout=30)
    assert response.status_code == 200
    # A whole message left out is for the admin to read before the dialog closes.
    assert 'data-lti-close="after-reading"' in response.text
    visible = visible_text(response)
    assert "Left out the LtiSubmissionReviewRequest message" in visible
    # A placement the LMS does not offer is routine: in the collapsed line.
    assert "Left out the LtiResourceLinkRequest placements course_navigation" not in visible
    assert "Left out the LtiResourceLinkRequest placements course_navigation" in collapsed_text(
        response
    )


def test_routine_adaptations_are_collapsed_and_the_dialog_still_closes_by_itself(
    make_app, simulator
):
    # Moodle offers deep linking in ContentArea only: RichTextEditor is left out, which is the
    # tool owner's business, not something the Moodle admin must stop and read (an update: a
    # new Moodle tool holds the dialog for its Activate step).
    messages = [{"type": "LtiDeepLinkingRequest", "placements": ["ContentArea", "RichTextEditor"]}]
    app = make_app({"tool": {"messages": messages}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("moodle")
        first = sim.register(server.url + "/lti/register")
        response = requests.get(
            sim.initiation_url(server.url + "/lti/register", update_client_id=first.client_id),
            timeout=30,
        )
    assert response.status_code == 200 and 'data-lti-close="auto"' in response.text
    assert "Left out the LtiDeepLinkingRequest placements RichTextEditor" not in visible_text(
        response
    )
    assert "Left out the LtiDeepLinkingRequest placements RichTextEditor" in collapsed_text(
        response
    )


# --- Canvas ------------------------------------------------------------------------------------


def test_canvas_gets_placements_for_every_message_and_the_admin_sees_them(live, simulator, store):
    sim = simulator("canvas")
    report = sim.register(live.register_url)
    assert report.ok, report.render()  # the Canvas profile fails a message without placements
    (record,) = sim.records
    messages = record.body[TOOL_CONFIGURATION]["messages"]
    assert {m["type"]: m["placements"] for m in messages} == {
        "LtiResourceLinkRequest": ["link_selection"],
        "LtiDeepLinkingRequest": ["ContentArea", "RichTextEditor"],
    }
    (attempt,) = store.list_registrations()[0]
    assert any("in link_selection" in note for note in attempt.adjustments)
    page = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert "Placed the LtiResourceLinkRequest message in link_selection" in collapsed_text(page)


def test_canvas_before_2025_registers_a_tool_configured_for_new_window(make_app, simulator):
    messages = [
        {
            "type": "LtiResourceLinkRequest",
            "placements": ["course_navigation"],
            "canvas": {"display_type": "new_window"},
        },
        {
            "type": "LtiDeepLinkingRequest",
            "placements": ["editor_button"],
            "canvas": {"display_type": "borderless"},
        },
    ]
    app = make_app({"tool": {"messages": messages}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("canvas", faults={"canvas_rejects_new_window"})
        response = requests.get(sim.initiation_url(server.url + "/lti/register"), timeout=30)
    assert response.status_code == 200, text_of(response.text)
    assert [r.accepted for r in sim.records] == [True]
    sent = sim.records[0].body[TOOL_CONFIGURATION]["messages"]
    assert DISPLAY_TYPE not in sent[0]
    assert sent[1][DISPLAY_TYPE] == "borderless"
    assert "Left out display_type new_window" in visible_text(response)
