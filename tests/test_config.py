import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import get_type_hints

import pytest

from app import create_app
from app.cli import main
from app.settings import (
    MESSAGE,
    SCHEMA,
    ConfigError,
    MessageSettings,
    RegistrationSettings,
    Settings,
    Table,
    env_name,
    iter_keys,
    load_settings,
)

README = Path(__file__).resolve().parent.parent / "README.md"


def settings_from(toml_text, tmp_path, **env):
    path = tmp_path / "gatehouse.toml"
    path.write_text(toml_text)
    return load_settings({"GATEHOUSE_CONFIG": str(path), **env})


def test_minimal_file_fills_defaults(tmp_path):
    settings = settings_from('[tool]\nname = "Quiz"\n', tmp_path)
    assert settings.tool.name == "Quiz"
    assert settings.registration == RegistrationSettings(
        auto_activate=False,
        expires_in=3600,
        gates=(),
        pre_approval_url=None,
        unknown_deployments="pending",
        allowed_issuers=(),
        blocked_issuers=(),
        require_invitation=False,
        recovery_after=120,
    )
    assert settings.security.allow_insecure_platforms is False
    assert [m.type for m in settings.tool.messages] == [
        "LtiResourceLinkRequest",
        "LtiDeepLinkingRequest",
    ]


def test_default_file_in_working_directory_is_read(tmp_path):
    (tmp_path / "gatehouse.toml").write_text('[tool]\nname = "From the file"\n')
    assert load_settings({}).tool.name == "From the file"


def test_environment_alone_is_enough():
    settings = load_settings(
        {
            "GATEHOUSE_TOOL__NAME": "Env Tool",
            "GATEHOUSE_REGISTRATION__AUTO_ACTIVATE": "true",
            "GATEHOUSE_REGISTRATION__EXPIRES_IN": "600",
            "GATEHOUSE_SECURITY__ALLOW_INSECURE_PLATFORMS": "true",
            "GATEHOUSE_TOOL__SCOPES": '["https://purl.imsglobal.org/spec/lti-ags/scope/score"]',
            "GATEHOUSE_TOOL__DESCRIPTION": "true",
            "GATEHOUSE_BASE_URL": "https://reg.example.com/",
            "GATEHOUSE_API_KEY": "reserved secrets are not settings",
        }
    )
    assert settings.tool.name == "Env Tool"
    assert settings.registration.auto_activate is True
    assert settings.registration.expires_in == 600
    assert settings.security.allow_insecure_platforms is True
    assert settings.tool.scopes == ("https://purl.imsglobal.org/spec/lti-ags/scope/score",)
    # A string setting keeps the text even when it looks like a TOML literal.
    assert settings.tool.description == "true"
    assert settings.base_url == "https://reg.example.com"


def test_environment_overrides_the_file(tmp_path):
    settings = settings_from(
        '[tool]\nname = "File"\n[registration]\nauto_activate = false\n',
        tmp_path,
        GATEHOUSE_TOOL__NAME="Env",
        GATEHOUSE_REGISTRATION__AUTO_ACTIVATE="true",
    )
    assert settings.tool.name == "Env"
    assert settings.registration.auto_activate is True


def test_messages_from_environment_as_inline_tables():
    settings = load_settings(
        {
            "GATEHOUSE_TOOL__NAME": "T",
            "GATEHOUSE_TOOL__MESSAGES": '[{type = "LtiDeepLinkingRequest", label = "Add"}]',
        }
    )
    assert settings.tool.messages[0].label == "Add"


@pytest.mark.parametrize(
    ("toml_text", "env", "message"),
    [
        ("", {}, "tool.name: required key is missing"),
        ('[tool]\nname = "T"\nnmae = "x"\n', {}, "tool.nmae: unknown key"),
        ('colour = "blue"\n[tool]\nname = "T"\n', {}, "colour: unknown key"),
        ("[tool]\nname = 5\n", {}, "tool.name: must be a string"),
        (
            '[tool]\nname = "T"\n[registration]\nauto_activate = "yes"\n',
            {},
            "registration.auto_activate: must be true or false",
        ),
        (
            '[tool]\nname = "T"\n[registration]\nexpires_in = "long"\n',
            {},
            "registration.expires_in: must be a whole number",
        ),
        (
            '[tool]\nname = "T"\n[registration]\nexpires_in = 0\n',
            {},
            "registration.expires_in: must be a positive number",
        ),
        (
            '[tool]\nname = "T"\nlogo_uri = "ftp://x/logo.png"\n',
            {},
            "tool.logo_uri: 'ftp://x/logo.png' is not an absolute http(s) URL",
        ),
        (
            '[tool]\nname = "T"\ntarget_link_uri = "/launch"\n',
            {},
            "tool.target_link_uri: '/launch' is not an absolute http(s) URL",
        ),
        ('[tool]\nname = "T"\nredirect_uris = []\n', {}, "tool.redirect_uris: must list at"),
        (
            '[tool]\nname = "T"\ncontacts = ["not-an-email"]\n',
            {},
            "tool.contacts[0]: 'not-an-email' is not an e-mail address",
        ),
        (
            '[tool]\nname = "T"\ndomain = "https://tool.example"\n',
            {},
            "tool.domain: must be a host name",
        ),
        (
            '[tool]\nname = "T"\ncustom_parameters = { a = 1 }\n',
            {},
            "tool.custom_parameters: must be a table of string values",
        ),
        (
            '[tool]\nname = "T"\n[[tool.messages]]\ntype = "LtiResourceLink"\n',
            {},
            "tool.messages[0].type: 'LtiResourceLink' is not one of",
        ),
        (
            '[tool]\nname = "T"\n[[tool.messages]]\nlabel = "x"\n',
            {},
            "tool.messages[0].type: required key is missing",
        ),
        (
            '[tool]\nname = "T"\n[[tool.messages]]\ntype = "LtiDeepLinkingRequest"\ncolor = 1\n',
            {},
            "tool.messages[0].color: unknown key",
        ),
        (
            '[tool]\nname = "T"\n[tool.canvas]\nprivacy_level = "everyone"\n',
            {},
            "tool.canvas.privacy_level: 'everyone' is not one of",
        ),
        (
            '[tool]\nname = "T"\n[security]\nissuer_check = "loose"\n',
            {},
            "security.issuer_check: 'loose' is not one of",
        ),
        (
            'base_url = "https://x.example/?a=1"\n[tool]\nname = "T"\n',
            {},
            "base_url: must not contain a query",
        ),
        (
            '[tool]\nname = "T"\n[registration]\ngates = ["sigin"]\n',
            {},
            "registration.gates[0]: 'sigin' is not a gate",
        ),
        (
            '[tool]\nname = "T"\n[registration]\ngates = ["terms", "terms"]\n',
            {},
            "registration.gates: 'terms' is listed twice",
        ),
        (
            '[tool]\nname = "T"\n[registration]\ngates = ["terms"]\n',
            {},
            "gates.terms.version: required by the terms gate",
        ),
        (
            '[tool]\nname = "T"\n[registration]\ngates = ["terms"]\n[gates.terms]\n'
            'version = "1"\npath = "missing.md"\n',
            {},
            "gates.terms.path: the file 'missing.md' does not exist",
        ),
        (
            '[tool]\nname = "T"\n[registration]\ngates = ["payment"]\n',
            {},
            "gates.payment.price_id: required by the payment gate",
        ),
        (
            '[tool]\nname = "T"\n[registration]\ngates = ["payment"]\n[gates.payment]\n'
            'price_id = "price_1"\n',
            {},
            "STRIPE_SECRET_KEY: required in the environment",
        ),
        (
            '[tool]\nname = "T"\n[registration]\ngates = ["payment"]\n[gates.payment]\n'
            'price_id = "price_1"\n',
            {"STRIPE_SECRET_KEY": "sk_test_1"},
            "STRIPE_WEBHOOK_SECRET: required in the environment",
        ),
        (
            '[tool]\nname = "T"\n[gates.signin.oidc]\nclient_id = "tool"\n',
            {},
            "gates.signin.oidc.server_metadata_url: required",
        ),
        (
            '[tool]\nname = "T"\n[registration]\ngates = ["signin"]\n[gates.signin.oidc]\n'
            'client_id = "tool"\nserver_metadata_url = "https://idp.example/.well-known/x"\n',
            {},
            "GATEHOUSE_OIDC_CLIENT_SECRET: required",
        ),
        (
            '[tool]\nname = "T"\n',
            {"GATEHOUSE_TOOL__NAM": "x"},
            "GATEHOUSE_TOOL__NAM: unknown setting tool.nam",
        ),
        ('[tool]\nname = "T"\n', {"GATEHOUSE_TOOL": "x"}, "GATEHOUSE_TOOL: tool is a table"),
        (
            '[tool]\nname = "T"\n',
            {"GATEHOUSE_SECURITY__ALLOW_INSECURE_PLATFORMS": "maybe"},
            "security.allow_insecure_platforms: must be true or false",
        ),
        ("[tool\n", {}, "not valid TOML"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(tmp_path, toml_text, env, message):
    with pytest.raises(ConfigError) as info:
        settings_from(toml_text, tmp_path, **env)
    assert message in str(info.value)


HTTPS_REQUIRED = [
    ('base_url = "http://reg.example.com"\n[tool]\nname = "T"\n', "base_url"),
    (
        '[tool]\nname = "T"\ntarget_link_uri = "http://t.example.com/launch"\n',
        "tool.target_link_uri",
    ),
    (
        '[tool]\nname = "T"\ninitiate_login_uri = "http://t.example.com/login"\n',
        "tool.initiate_login_uri",
    ),
    (
        '[tool]\nname = "T"\nredirect_uris = ["https://t.example.com/a", "http://t.example.com/b"]\n',
        "tool.redirect_uris[1]",
    ),
    ('[tool]\nname = "T"\njwks_uri = "http://t.example.com/keys"\n', "tool.jwks_uri"),
    ('[tool]\nname = "T"\nlogo_uri = "http://t.example.com/logo.png"\n', "tool.logo_uri"),
    (
        '[tool]\nname = "T"\n[[tool.messages]]\ntype = "LtiResourceLinkRequest"\n'
        'target_link_uri = "http://t.example.com/nav"\n',
        "tool.messages[0].target_link_uri",
    ),
    (
        '[tool]\nname = "T"\n[[tool.messages]]\ntype = "LtiDeepLinkingRequest"\n'
        'icon_uri = "http://t.example.com/icon.svg"\n',
        "tool.messages[0].icon_uri",
    ),
]


@pytest.mark.parametrize(("toml_text", "key"), HTTPS_REQUIRED)
def test_production_refuses_plain_http_tool_urls_naming_the_key(tmp_path, toml_text, key):
    with pytest.raises(ConfigError) as info:
        settings_from(toml_text, tmp_path)
    assert str(info.value).startswith(f"{key}: 'http://")
    assert "must be an https URL" in str(info.value)
    # Development (insecure mode, the simulator) may use plain http.
    settings_from(toml_text + "[security]\nallow_insecure_platforms = true\n", tmp_path)


def test_production_accepts_https_tool_urls(tmp_path):
    settings = settings_from(
        'base_url = "https://reg.example.com"\n[tool]\nname = "T"\n'
        'logo_uri = "https://cdn.example.com/logo.png"\n'
        'policy_uri = "http://www.example.com/privacy"\n',  # a human page, not the tool's
        tmp_path,
    )
    assert settings.base_url == "https://reg.example.com"


@pytest.mark.parametrize(
    ("toml_text", "message"),
    [
        (
            'base_url = "https://reg.example.com"\n[tool]\nname = "T"\n'
            'domain = "tool.example.com"\n',
            "tool.domain: 'tool.example.com' must equal the host[:port] of the launch URL "
            "'https://reg.example.com/lti/launch', that is 'reg.example.com'",
        ),
        (
            '[tool]\nname = "T"\ndomain = "t.example.com"\n'
            'target_link_uri = "https://t.example.com:8443/launch"\n',
            "that is 't.example.com:8443'",
        ),
        (
            '[tool]\nname = "T"\ndomain = "example.com"\n'
            'target_link_uri = "https://www.example.com/launch"\n',
            "that is 'www.example.com'",
        ),
        (
            '[tool]\nname = "T"\ndomain = "t.example.com"\n',
            "tool.domain: set base_url or tool.target_link_uri too",
        ),
    ],
)
def test_domain_must_be_the_launch_urls_host(tmp_path, toml_text, message):
    with pytest.raises(ConfigError) as info:
        settings_from(toml_text, tmp_path)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "toml_text",
    [
        'base_url = "https://reg.example.com"\n[tool]\nname = "T"\ndomain = "reg.example.com"\n',
        '[tool]\nname = "T"\ndomain = "T.Example.com:8443"\n'
        'target_link_uri = "https://t.example.com:8443/launch"\n',
        '[tool]\nname = "T"\ndomain = "t.example.com"\n'
        'target_link_uri = "https://t.example.com:443/launch"\n',
    ],
)
def test_domain_matching_the_launch_url_is_accepted(tmp_path, toml_text):
    assert settings_from(toml_text, tmp_path).tool.domain


def test_canvas_new_window_is_accepted_with_a_start_up_warning(tmp_path, caplog):
    settings = settings_from(
        '[tool]\nname = "T"\n[[tool.messages]]\ntype = "LtiResourceLinkRequest"\n'
        'canvas = { display_type = "new_window" }\n',
        tmp_path,
    )
    assert settings.tool.messages[0].canvas.display_type == "new_window"
    (record,) = [r for r in caplog.records if "display_type" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert "tool.messages[0].canvas.display_type" in record.getMessage()
    assert "PR #2459" in record.getMessage()
    caplog.clear()
    settings_from(
        '[tool]\nname = "T"\n[[tool.messages]]\ntype = "LtiResourceLinkRequest"\n'
        'canvas = { display_type = "borderless" }\n',
        tmp_path,
    )
    assert not [r for r in caplog.records if "display_type" in r.getMessage()]


def test_missing_explicit_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="GATEHOUSE_CONFIG: the file .* does not exist"):
        load_settings({"GATEHOUSE_CONFIG": str(tmp_path / "missing.toml")})


def test_app_refuses_to_start_with_a_bad_key(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEHOUSE_TOOL__NAME", "T")
    monkeypatch.setenv("GATEHOUSE_TOOL__LOGO", "x")
    with pytest.raises(ConfigError, match="GATEHOUSE_TOOL__LOGO: unknown setting tool.logo"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"})


def test_check_config_command_names_the_bad_key(monkeypatch, runner):
    monkeypatch.setenv("GATEHOUSE_TOOL__NAME", "T")
    monkeypatch.setenv("GATEHOUSE_REGISTRATION__EXPIRES_IN", "soon")
    result = runner.invoke(main, ["check-config"])
    assert result.exit_code == 1
    assert "registration.expires_in: must be a whole number" in result.output


EVERY_GATE = (
    '[tool]\nname = "T"\ndomain = "t.example.com"\n'
    '[registration]\ngates = ["signin", "terms", "payment"]\n'
    '[gates.signin.oidc]\nserver_metadata_url = "https://idp.example.com/.well-known/x"\n'
    'client_id = "tool"\n[gates.terms]\nversion = "1"\npath = "missing.md"\n'
    '[notifications]\nwebhook_url = "https://hooks.example.com/gatehouse"\n'
)
EVERY_FAULT = [
    "GATEHOUSE_TOOL__LOGO: unknown setting tool.logo",
    "registration.expires_in: must be a whole number",
    "tool.domain: set base_url or tool.target_link_uri too",
    "GATEHOUSE_OIDC_CLIENT_SECRET: required in the environment for gates.signin.oidc",
    "gates.terms.path: the file 'missing.md' does not exist",
    "GATEHOUSE_WEBHOOK_SECRET: required in the environment",
    "gates.payment.price_id: required by the payment gate",
    "STRIPE_SECRET_KEY: required in the environment by the payment gate",
    "STRIPE_WEBHOOK_SECRET: required in the environment by the payment gate",
]


def test_every_fault_and_missing_secret_is_named_at_once(tmp_path, monkeypatch, runner):
    env = {"GATEHOUSE_TOOL__LOGO": "x", "GATEHOUSE_REGISTRATION__EXPIRES_IN": "soon"}
    with pytest.raises(ConfigError) as info:
        settings_from(EVERY_GATE, tmp_path, **env)
    message = str(info.value)
    assert message.startswith(f"{len(EVERY_FAULT)} problems in the configuration:\n")
    listed = message.splitlines()[1:]
    assert len(listed) == len(EVERY_FAULT)
    for line, fault in zip(sorted(listed), sorted(EVERY_FAULT), strict=True):
        assert line.startswith(f"  - {fault}"), (line, fault)

    # `gatehouse check-config` says the same, and a bad encryption key on the same list.
    (tmp_path / "gatehouse.toml").write_text(EVERY_GATE)
    monkeypatch.setenv("GATEHOUSE_CONFIG", str(tmp_path / "gatehouse.toml"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GATEHOUSE_ENCRYPTION_KEY", "not a key")
    result = runner.invoke(main, ["check-config"])
    assert result.exit_code == 1
    assert f"{len(EVERY_FAULT) + 1} problems in the configuration" in result.output
    assert all(fault in result.output for fault in EVERY_FAULT)
    assert "GATEHOUSE_ENCRYPTION_KEY" in result.output


def test_insecure_mode_logs_a_loud_warning(make_app, caplog):
    make_app()
    assert any("allow_insecure_platforms is ON" in r.getMessage() for r in caplog.records)


def test_readme_documents_every_setting_and_its_variable():
    text = README.read_text()
    table = re.findall(r"^\|\s*`([^`]+)`", text, flags=re.M)
    for key in iter_keys():
        assert key in table, f"README configuration table lacks {key}"
        if "[]" not in key:
            assert env_name(key) in text, f"README lacks the variable {env_name(key)}"
    for secret in (
        "SECRET_KEY",
        "DATABASE_URL",
        "GATEHOUSE_API_KEY",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "GATEHOUSE_OIDC_CLIENT_SECRET",
        "PORT",
    ):
        assert f"`{secret}`" in text


# --- Domains as Moodle and Canvas compare them (issue 12, 1.6) -------------------------------


@pytest.mark.parametrize(
    ("toml_text", "key", "expected"),
    [
        (
            'base_url = "https://tool.example.com:443"\n[tool]\nname = "T"\n',
            "base_url",
            "https://tool.example.com",
        ),
        (
            'base_url = "HTTPS://Reg.Example.com"\n[tool]\nname = "T"\n',
            "base_url",
            "https://reg.example.com",
        ),
        (
            '[tool]\nname = "T"\ntarget_link_uri = "https://T.example.com:443/Launch?x=1"\n',
            "tool.target_link_uri",
            "https://t.example.com/Launch?x=1",
        ),
        (
            '[tool]\nname = "T"\ntarget_link_uri = "http://Tool.example.com:80/launch"\n'
            "[security]\nallow_insecure_platforms = true\n",
            "tool.target_link_uri",
            "http://tool.example.com/launch",
        ),
        (
            '[tool]\nname = "T"\ntarget_link_uri = "https://t.example.com:8443/launch"\n',
            "tool.target_link_uri",
            "https://t.example.com:8443/launch",
        ),
    ],
)
def test_urls_are_normalised_when_settings_load(tmp_path, toml_text, key, expected):
    settings = settings_from(toml_text, tmp_path)
    value = settings
    for part in key.split("."):
        value = getattr(value, part)
    assert value == expected


def test_domain_is_compared_exactly_after_normalising(tmp_path):
    # LocalHost:8000 would pass a case-insensitive check and fail at Moodle (`!==`).
    settings = settings_from(
        'base_url = "http://LocalHost:8000"\n[tool]\nname = "T"\ndomain = "LocalHost:8000"\n'
        "[security]\nallow_insecure_platforms = true\n",
        tmp_path,
    )
    assert settings.tool.domain == "localhost:8000"
    assert settings.base_url == "http://localhost:8000"
    with pytest.raises(ConfigError, match="that is 'tool.example.com'"):
        settings_from(
            'base_url = "https://tool.example.com"\n[tool]\nname = "T"\n'
            'domain = "tool.example.com:443"\n',
            tmp_path,
        )


@pytest.mark.parametrize(
    ("toml_text", "message"),
    [
        (
            '[tool]\nname = "T"\ndomain = "[::1]:8000"\n',
            "tool.domain: must be a host name or "
            "IPv4 address with an optional :port, no scheme and no IPv6 literal",
        ),
        ('[tool]\nname = "T"\ndomain = "tool_x.example.com"\n', "tool.domain:"),
        (
            'base_url = "https://[2001:db8::1]"\n[tool]\nname = "T"\n',
            "base_url: 'https://[2001:db8::1]/lti/launch' is on an IPv6 address",
        ),
        (
            '[tool]\nname = "T"\nsecondary_domains = ["cdn.example.com:8443"]\n',
            "tool.secondary_domains[0]: 'cdn.example.com:8443' must be a host name without "
            "scheme or port",
        ),
        (
            '[tool]\nname = "T"\nsecondary_domains = ["ok.example.com", "https://x.example"]\n',
            "tool.secondary_domains[1]:",
        ),
        ('[tool]\nname = "T"\nsecondary_domains = ["[::1]"]\n', "tool.secondary_domains[0]:"),
    ],
)
def test_domains_canvas_refuses_are_refused_at_start_up(tmp_path, toml_text, message):
    # Canvas: domain pattern and secondary_domains `format: hostname`
    # (instructure/canvas-lms lib/schemas/lti/ims/lti_tool_configuration.rb).
    with pytest.raises(ConfigError) as info:
        settings_from(toml_text, tmp_path)
    assert message in str(info.value)


def test_secondary_domains_that_are_host_names_are_kept(tmp_path):
    settings = settings_from(
        '[tool]\nname = "T"\nsecondary_domains = ["CDN.example.com", "10.0.0.7"]\n', tmp_path
    )
    assert settings.tool.secondary_domains == ("cdn.example.com", "10.0.0.7")


def test_openid_in_tool_scopes_warns_at_start_up(tmp_path, caplog):
    settings_from('[tool]\nname = "T"\nscopes = ["openid"]\n', tmp_path)
    assert any("tool.scopes[0] = 'openid'" in r.getMessage() for r in caplog.records)


# The Python type each kind of Key validates to; a Key without a default may be None.
KIND_TYPES = {
    "str": str,
    "url": str,
    "domain": str,
    "choice": str,
    "bool": bool,
    "int": int,
    "number": float,
    "strings": tuple[str, ...],
    "urls": tuple[str, ...],
    "emails": tuple[str, ...],
    "hostnames": tuple[str, ...],
    "strtable": Mapping[str, str],
    "messages": tuple[MessageSettings, ...],
}


def check_fields(schema, cls, path):
    hints = get_type_hints(cls)
    assert [f.name for f in dataclasses.fields(cls)] == list(schema), path
    for name, spec in schema.items():
        if isinstance(spec, dict):
            assert issubclass(hints[name], Table), f"{path}{name}"
            check_fields(spec, hints[name], f"{path}{name}.")
            continue
        expected = KIND_TYPES[spec.kind]
        if spec.default is None and not spec.required:
            expected = expected | None
        assert hints[name] == expected, f"{path}{name}: {hints[name]} for a {spec.kind} key"
        if spec.kind == "messages":
            check_fields(MESSAGE, MessageSettings, f"{path}{name}[].")


def test_every_key_has_a_typed_field_and_every_field_a_key():
    check_fields(SCHEMA, Settings, "")


def everything_in(value, path="settings"):
    """Yield (path, value) for the settings and every table, list and mapping inside them."""
    yield path, value
    if isinstance(value, Table):
        for field in dataclasses.fields(value):
            yield from everything_in(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from everything_in(item, f"{path}[{i}]")


def test_settings_are_frozen_at_every_level(tmp_path):
    settings = settings_from(
        '[tool]\nname = "T"\ncontacts = ["a@example.com"]\ncustom_parameters = { a = "b" }\n'
        '[[tool.messages]]\ntype = "LtiResourceLinkRequest"\nplacements = ["link"]\n'
        'custom_parameters = { c = "d" }\ncanvas = { launch_width = 800 }\n',
        tmp_path,
    )
    tables = mappings = 0
    for path, value in everything_in(settings):
        assert not isinstance(value, list | dict), f"{path} is a mutable {type(value).__name__}"
        if isinstance(value, Table):
            tables += 1
            for field in dataclasses.fields(value):
                with pytest.raises(dataclasses.FrozenInstanceError):
                    setattr(value, field.name, None)
        elif isinstance(value, Mapping):
            mappings += 1
            with pytest.raises(TypeError):
                value["x"] = "y"
    # Settings; tool, tool.canvas, the message and its canvas; registration, launch,
    # notifications and its email, limits, logging, security; gates and its signin, oidc,
    # terms, payment; outbound; ui. The two custom_parameters tables are read-only mappings.
    assert tables == 19 and mappings == 2
    assert settings.tool.messages[0].placements == ("link",)
    assert settings.tool.messages[0].custom_parameters == {"c": "d"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.registration.auto_activate = True


def test_the_app_keeps_frozen_settings(make_app):
    app = make_app()
    settings = app.config["GATEHOUSE"]
    assert isinstance(settings, Settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.gates.terms.version = "2"
    with pytest.raises(AttributeError):
        settings.registration.gates.append("terms")


def test_environment_overrides_land_typed():
    settings = load_settings(
        {
            "GATEHOUSE_TOOL__NAME": "T",
            "GATEHOUSE_REGISTRATION__EXPIRES_IN": "600",
            "GATEHOUSE_REGISTRATION__REQUIRE_INVITATION": "true",
            "GATEHOUSE_LIMITS__ENABLED": "false",
            "GATEHOUSE_OUTBOUND__DEADLINE": "7",
            "GATEHOUSE_TRUSTED_PROXIES": "2",
            "GATEHOUSE_REGISTRATION__ALLOWED_ISSUERS": '["*.instructure.com"]',
            "GATEHOUSE_TOOL__CUSTOM_PARAMETERS": '{ course = "$Context.id" }',
        }
    )
    assert type(settings.registration.expires_in) is int and settings.registration.expires_in == 600
    assert settings.registration.require_invitation is True
    assert settings.limits.enabled is False
    assert type(settings.outbound.deadline) is float and settings.outbound.deadline == 7.0
    assert type(settings.trusted_proxies) is int and settings.trusted_proxies == 2
    assert settings.registration.allowed_issuers == ("*.instructure.com",)
    assert dict(settings.tool.custom_parameters) == {"course": "$Context.id"}


def test_as_dict_gives_plain_json_ready_copies(tmp_path):
    settings = settings_from('[tool]\nname = "T"\n[registration]\ngates = ["signin"]\n', tmp_path)
    plain = settings.as_dict()
    assert json.loads(json.dumps(plain)) == plain
    assert plain["registration"]["gates"] == ["signin"]
    assert plain["tool"]["messages"][1]["placements"] == ["ContentArea", "RichTextEditor"]
    assert plain["tool"]["messages"][1]["canvas"]["display_type"] is None
    plain["registration"]["gates"].append("terms")
    plain["tool"]["custom_parameters"]["x"] = "y"
    assert settings.registration.gates == ("signin",)
    assert settings.tool.custom_parameters == {}
    assert settings.tool.as_dict() == plain["tool"] | {"custom_parameters": {}}
