import copy

import pytest

from app.lti.constants import PLATFORM_CONFIGURATION
from app.lti.discovery import validate_openid_config
from app.lti.errors import PlatformConfigError

URL = "https://lms.example.edu/api/lti/security/openid-configuration?registration_token=abc"

DOC = {
    "issuer": "https://lms.example.edu",
    "authorization_endpoint": "https://lms.example.edu/api/lti/authorize_redirect",
    "token_endpoint": "https://lms.example.edu/login/oauth2/token",
    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
    "jwks_uri": "https://lms.example.edu/api/lti/security/jwks",
    "registration_endpoint": "https://lms.example.edu/api/lti/registrations",
    "scopes_supported": ["openid", "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
    "response_types_supported": ["id_token"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "claims_supported": ["sub", "iss", "name"],
    PLATFORM_CONFIGURATION: {
        "product_family_code": "examplelms",
        "version": "2026.1.0",
        "messages_supported": [
            {"type": "LtiResourceLinkRequest", "placements": ["ContentArea"]},
            {"type": "LtiDeepLinkingRequest"},
        ],
    },
}


def doc(**changes):
    document = copy.deepcopy(DOC)
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def test_spec_shaped_configuration_is_read():
    config = validate_openid_config(doc(), URL)
    assert config.issuer == "https://lms.example.edu"
    assert config.product_family_code == "examplelms"
    assert config.version == "2026.1.0"
    assert config.placements_for("LtiResourceLinkRequest") == ("ContentArea",)
    assert config.placements_for("LtiDeepLinkingRequest") is None
    assert config.authorization_server is None
    assert config.warnings == ()


def test_issuer_is_kept_byte_for_byte():
    document = doc(issuer="https://LMS.example.edu/Path")
    url = "https://LMS.example.edu/Path/openid"
    assert validate_openid_config(document, url).issuer == "https://LMS.example.edu/Path"


@pytest.mark.parametrize(
    ("changes", "url", "rule"),
    [
        ({"issuer": None}, URL, "required-field"),
        ({"authorization_endpoint": None}, URL, "required-field"),
        ({"token_endpoint": ""}, URL, "required-field"),
        ({"jwks_uri": None}, URL, "required-field"),
        ({"registration_endpoint": None}, URL, "required-field"),
        ({"registration_endpoint": "/api/lti/registrations"}, URL, "endpoint-url"),
        ({"registration_endpoint": "http://lms.example.edu/reg"}, URL, "https-only"),
        ({"issuer": "http://lms.example.edu"}, URL.replace("https", "http"), "issuer-https"),
        ({"issuer": "https://lms.example.edu?x=1"}, URL, "issuer-no-query"),
        ({"issuer": "https://lms.example.edu#top"}, URL, "issuer-no-query"),
        ({"issuer": "https://attacker.example"}, URL, "issuer-host-match"),
        ({"issuer": "https://lms.example.edu:8443"}, URL, "issuer-host-match"),
        ({"issuer": "https://lms.example.edu/moodle"}, URL, "issuer-prefix"),
        ({"id_token_signing_alg_values_supported": ["HS256"]}, URL, "rs256"),
        (
            {"token_endpoint_auth_methods_supported": ["client_secret_basic"]},
            URL,
            "private-key-jwt",
        ),
        ({"token_endpoint_auth_signing_alg_values_supported": ["ES256"]}, URL, "rs256"),
    ],
)
def test_each_rule_refuses_a_bad_configuration(changes, url, rule):
    with pytest.raises(PlatformConfigError) as info:
        validate_openid_config(doc(**changes), url)
    assert info.value.rule == rule
    assert info.value.detail


def test_not_an_object_is_refused():
    with pytest.raises(PlatformConfigError) as info:
        validate_openid_config(["issuer"], URL)
    assert info.value.rule == "config-json"


def test_host_mode_accepts_a_configuration_outside_the_issuer_path():
    document = doc(issuer="https://lms.example.edu/moodle")
    config = validate_openid_config(document, URL, issuer_check="host")
    assert config.issuer == "https://lms.example.edu/moodle"


def test_check_off_accepts_another_host_but_still_requires_https():
    assert validate_openid_config(doc(issuer="https://sso.example.edu"), URL, issuer_check="off")
    with pytest.raises(PlatformConfigError):
        validate_openid_config(doc(issuer="http://sso.example.edu"), URL, issuer_check="off")


def test_insecure_mode_allows_http_platforms():
    url = "http://127.0.0.1:8080/mod/lti/openid-configuration.php"
    document = doc(
        issuer="http://127.0.0.1:8080",
        registration_endpoint="http://127.0.0.1:8080/mod/lti/openid-registration.php",
    )
    config = validate_openid_config(document, url, allow_insecure=True)
    assert config.issuer == "http://127.0.0.1:8080"


def test_canvas_scopes_without_openid_are_fine():
    config = validate_openid_config(doc(scopes_supported=["https://x/score"]), URL)
    assert config.scopes_supported == ("https://x/score",)


def test_old_moodle_string_messages_typo_and_trailing_space_key():
    document = doc()
    lti = document.pop(PLATFORM_CONFIGURATION)
    lti["messages_supported"] = ["LtiResourceLink", "LtiDeepLinkingRequest"]
    lti["placements"] = ["AddContentMenu"]
    document[PLATFORM_CONFIGURATION + " "] = lti
    config = validate_openid_config(document, URL)
    assert [m.type for m in config.messages_supported] == [
        "LtiResourceLinkRequest",
        "LtiDeepLinkingRequest",
    ]
    assert config.placements_for("LtiDeepLinkingRequest") == ("AddContentMenu",)
    assert config.product_family_code == "examplelms"
    assert len(config.warnings) == 2


def test_missing_platform_object_falls_back_to_defaults_with_a_warning():
    config = validate_openid_config(doc(**{PLATFORM_CONFIGURATION: None}), URL)
    assert config.product_family_code == "unknown"
    assert {m.type for m in config.messages_supported} == {
        "LtiResourceLinkRequest",
        "LtiDeepLinkingRequest",
    }
    assert config.warnings


def test_unreadable_message_entries_are_skipped():
    document = doc()
    document[PLATFORM_CONFIGURATION]["messages_supported"] = [42, {"type": "LtiDeepLinkingRequest"}]
    config = validate_openid_config(document, URL)
    assert [m.type for m in config.messages_supported] == ["LtiDeepLinkingRequest"]


def moodle_310(**changes):
    """Moodle 3.10's configuration: no authorization_endpoint, the stray-space key, strings.

    moodle/moodle mod/lti/openid-configuration.php as 3.10 shipped it.
    """
    fields = {
        "issuer": "https://moodle.example.edu",
        "token_endpoint": "https://moodle.example.edu/mod/lti/token.php",
        "jwks_uri": "https://moodle.example.edu/mod/lti/certs.php",
        "registration_endpoint": "https://moodle.example.edu/mod/lti/openid-registration.php",
        "authorization_endpoint": None,
    }
    document = doc(**{**fields, **changes})
    document.pop(PLATFORM_CONFIGURATION)
    document[PLATFORM_CONFIGURATION + " "] = {
        "product_family_code": "moodle",
        "version": "3.10.4 (Build: 20210510)",
        "messages_supported": ["LtiResourceLink", "LtiDeepLinkingRequest"],
        "placements": ["AddContentMenu"],
    }
    return document


MOODLE_URL = "https://moodle.example.edu/mod/lti/openid-configuration.php"


def test_moodle_310_without_authorization_endpoint_gets_moodles_own():
    config = validate_openid_config(moodle_310(), MOODLE_URL)
    assert config.authorization_endpoint == "https://moodle.example.edu/mod/lti/auth.php"
    assert config.product_family_code == "moodle"
    assert [m.type for m in config.messages_supported] == [
        "LtiResourceLinkRequest",
        "LtiDeepLinkingRequest",
    ]
    (note,) = config.filled_in
    assert "https://moodle.example.edu/mod/lti/auth.php" in note and "3.10" in note


def test_other_lms_without_authorization_endpoint_is_still_refused():
    with pytest.raises(PlatformConfigError) as info:
        validate_openid_config(doc(authorization_endpoint=None), URL)
    assert info.value.rule == "required-field"


def test_moodle_with_authorization_endpoint_is_taken_as_given():
    config = validate_openid_config(
        moodle_310(authorization_endpoint="https://moodle.example.edu/custom/auth.php"),
        MOODLE_URL,
    )
    assert config.authorization_endpoint == "https://moodle.example.edu/custom/auth.php"
    assert config.filled_in == ()
