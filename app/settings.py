"""Load and validate Gatehouse's settings: a TOML file, then GATEHOUSE_* environment overrides.

`load_settings()` returns a frozen `Settings`: one dataclass per table, read as
`settings.registration.expires_in`, lists as tuples, tables of strings read-only.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType, UnionType
from typing import Any, get_args, get_type_hints
from urllib.parse import urlsplit

from limits.storage import SCHEMES as LIMITS_SCHEMES

from .lti.constants import MessageType, is_service_scope
from .lti.lms.canvas import UNSAFE_DISPLAY_TYPES as CANVAS_UNSAFE_DISPLAY_TYPES
from .lti.registration import host_with_port, is_https_url, normalise_url

log = logging.getLogger(__name__)

ENV_PREFIX = "GATEHOUSE_"
# Environment variables that carry secrets or the file path, not settings.
RESERVED_ENV = frozenset(
    {
        "GATEHOUSE_CONFIG",
        "GATEHOUSE_API_KEY",
        "GATEHOUSE_OIDC_CLIENT_SECRET",
        "GATEHOUSE_WEBHOOK_SECRET",
        "GATEHOUSE_SMTP_PASSWORD",
        "GATEHOUSE_ENCRYPTION_KEY",
        # Lets a demo run on SQLite on a Heroku dyno (see app/storage).
        "GATEHOUSE_ALLOW_EPHEMERAL_SQLITE",
        # Where the default SQLite file goes (see app/storage.instance_path).
        "GATEHOUSE_INSTANCE_PATH",
        # `make run`'s what-to-do-next banner (see app/gunicorn_config.py).
        "GATEHOUSE_BANNER",
        # Test harness switches (see app/testing/crashpoints.py and tests/support).
        "GATEHOUSE_TEST_CRASH_AT",
        "GATEHOUSE_REQUIRE_BROWSER",
        "GATEHOUSE_REQUIRE_POSTGRES",
        "GATEHOUSE_REQUIRE_REDIS",
        "GATEHOUSE_REQUIRE_MOODLE",
        "GATEHOUSE_MOODLE_PORT",
        "GATEHOUSE_MOODLE_DIR",
    }
)
SECRET_ENV = (
    "SECRET_KEY",
    "DATABASE_URL",
    "GATEHOUSE_API_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "GATEHOUSE_OIDC_CLIENT_SECRET",
    "GATEHOUSE_ENCRYPTION_KEY",
    "REDIS_URL",
)
DEFAULT_CONFIG_FILE = "gatehouse.toml"
LIMIT_KEYS = ("register", "signin", "api", "launch", "signin_account", "signin_global")
# The storages of the `limits` library behind flask-limiter; the async+ ones need asyncio.
LIMITS_STORAGE_SCHEMES = tuple(sorted(s for s in LIMITS_SCHEMES if not s.startswith("async+")))
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ISSUER_PATTERN_RE = re.compile(r"^(https?://\S+|(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?)$")
LIMIT_RE = re.compile(
    r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*"
    r"(;\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*)*$"
)
# Canvas's `domain` pattern (instructure/canvas-lms, lib/schemas/lti/ims/lti_tool_configuration.rb):
# DNS labels or an IPv4 address, with an optional :port; no IPv6 literal.
_LABEL = r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
DOMAIN_RE = re.compile(rf"^({_LABEL}\.)*{_LABEL}(:[0-9]{{1,5}})?$")
# JSON Schema's `hostname` format (RFC 1123), which Canvas requires of `secondary_domains`
# (same file): labels of at most 63 characters, no port.
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)


class ConfigError(Exception):
    """Start-up refused: the message names each bad key (or missing secret) and why."""

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        if len(problems) == 1:
            text = problems[0]
        else:
            text = f"{len(problems)} problems in the configuration:" + "".join(
                f"\n  - {problem}" for problem in problems
            )
        super().__init__(text)


class _Problems:
    """Collect configuration faults, so that start-up names every one of them at once."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, *problems: str) -> None:
        """Keep these faults."""
        self.found.extend(problems)

    @contextmanager
    def check(self) -> Iterator[None]:
        """Run a check, keeping what it refuses instead of stopping there."""
        try:
            yield
        except ConfigError as exc:
            self.add(*exc.problems)

    def raise_any(self) -> None:
        """Refuse the configuration when anything was found."""
        if self.found:
            raise ConfigError(*self.found)


@dataclass(frozen=True)
class Key:
    """One setting: its kind, default and allowed values."""

    kind: str
    default: Any = None
    required: bool = False
    choices: tuple = ()
    help: str = ""


_URL = "url"
MESSAGE_TYPES = tuple(m.value for m in MessageType)

CANVAS_MESSAGE = {
    "visibility": Key("choice", choices=("admins", "members", "public")),
    "default_enabled": Key("bool"),
    "display_type": Key(
        "choice",
        choices=(
            "default",
            "full_width",
            "full_width_in_context",
            "full_width_with_nav",
            "in_nav_context",
            "borderless",
            "new_window",
        ),
    ),
    "launch_width": Key("int"),
    "launch_height": Key("int"),
}

MESSAGE = {
    "type": Key("choice", required=True, choices=MESSAGE_TYPES),
    "label": Key("str"),
    "icon_uri": Key(_URL),
    "target_link_uri": Key(_URL),
    "placements": Key("strings"),
    "custom_parameters": Key("strtable", default={}),
    "roles": Key("strings"),
    "canvas": CANVAS_MESSAGE,
}

DEFAULT_MESSAGES = [
    {"type": MessageType.RESOURCE_LINK.value},
    {"type": MessageType.DEEP_LINKING.value, "placements": ["ContentArea", "RichTextEditor"]},
]

SCHEMA: dict[str, Any] = {
    "base_url": Key(_URL, help="Public URL of this service; derived from the request when unset."),
    "trusted_proxies": Key("int", default=0),
    "tool": {
        "name": Key("str", required=True),
        "description": Key("str"),
        "logo_uri": Key(_URL),
        "client_uri": Key(_URL),
        "policy_uri": Key(_URL),
        "tos_uri": Key(_URL),
        "contacts": Key("emails", default=[]),
        "target_link_uri": Key(_URL),
        "initiate_login_uri": Key(_URL),
        "redirect_uris": Key("urls"),
        "jwks_uri": Key(_URL),
        "domain": Key("domain"),
        "secondary_domains": Key("hostnames", default=[]),
        "scopes": Key("strings", default=[]),
        "claims": Key(
            "strings", default=["iss", "sub", "name", "given_name", "family_name", "email"]
        ),
        "custom_parameters": Key("strtable", default={}),
        "messages": Key("messages", default=DEFAULT_MESSAGES),
        "canvas": {
            "privacy_level": Key(
                "choice", choices=("public", "name_only", "email_only", "anonymous")
            ),
            "tool_id": Key("str"),
            "vendor": Key("str"),
        },
    },
    "registration": {
        "auto_activate": Key("bool", default=False),
        "expires_in": Key("int", default=3600),
        "gates": Key("strings", default=[]),
        "pre_approval_url": Key(_URL),
        "unknown_deployments": Key(
            "choice", default="pending", choices=("accept", "pending", "reject")
        ),
        "allowed_issuers": Key("strings", default=[]),
        "blocked_issuers": Key("strings", default=[]),
        "require_invitation": Key("bool", default=False),
        "recovery_after": Key("int", default=120),
    },
    "launch": {
        "tool_url": Key(_URL),
        "token_lifetime": Key("int", default=120),
    },
    "notifications": {
        "webhook_url": Key(_URL),
        "email": {
            "smtp_host": Key("str"),
            "smtp_port": Key("int"),
            "security": Key("choice", default="starttls", choices=("starttls", "ssl", "none")),
            "username": Key("str"),
            "sender": Key("str"),
            "to": Key("emails", default=[]),
            "timeout": Key("number", default=10.0),
        },
    },
    "limits": {
        "enabled": Key("bool", default=True),
        "register": Key("str", default="30/minute;300/hour"),
        "signin": Key("str", default="10/minute;100/hour"),
        "api": Key("str", default="300/minute"),
        "launch": Key("str", default="600/minute"),
        "signin_account": Key("str", default="10/hour;50/day"),
        "signin_global": Key("str", default="60/minute;600/hour"),
        "storage_uri": Key("str"),
    },
    "logging": {
        "format": Key("choice", default="text", choices=("text", "json")),
        "level": Key("choice", default="info", choices=("debug", "info", "warning", "error")),
    },
    "security": {
        "allow_insecure_platforms": Key("bool", default=False),
        "issuer_check": Key("choice", default="strict", choices=("strict", "host", "off")),
        "frame_ancestors": Key("strings", default=[]),
    },
    "gates": {
        "signin": {
            "allow_signup": Key("bool", default=False),
            "oidc": {
                "server_metadata_url": Key(_URL),
                "client_id": Key("str"),
                "scope": Key("str", default="openid email profile"),
                "label": Key("str", default="your organisation's account"),
            },
        },
        "terms": {
            "version": Key("str"),
            "path": Key("str"),
            "title": Key("str", default="Terms of service"),
        },
        "payment": {
            "price_id": Key("str"),
            "mode": Key("choice", default="payment", choices=("payment", "subscription")),
            "api_base": Key(_URL),
        },
    },
    "outbound": {
        "connect_timeout": Key("number", default=5.0),
        "deadline": Key("number", default=10.0),
        "max_response_bytes": Key("int", default=1024 * 1024),
    },
    "ui": {
        "default_locale": Key("str", default="en"),
    },
}


# The typed, frozen shape of the validated settings: one class per table of SCHEMA (and of
# MESSAGE), one field per Key. `_freeze` refuses a table whose keys differ from its class's
# fields, and tests/test_config.py checks every field's type against its Key's kind.


@dataclass(frozen=True)
class Table:
    """A validated settings table: read-only, with lists as tuples."""

    def as_dict(self) -> dict[str, Any]:
        """Return the table as plain dicts and lists (fresh copies), e.g. for JSON."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class CanvasMessageSettings(Table):
    """`canvas = {...}` of one `[[tool.messages]]`: Canvas placement extensions."""

    visibility: str | None
    default_enabled: bool | None
    display_type: str | None
    launch_width: int | None
    launch_height: int | None


@dataclass(frozen=True)
class MessageSettings(Table):
    """One `[[tool.messages]]`: a message type the tool offers, with its placements."""

    type: str
    label: str | None
    icon_uri: str | None
    target_link_uri: str | None
    placements: tuple[str, ...] | None
    custom_parameters: Mapping[str, str]
    roles: tuple[str, ...] | None
    canvas: CanvasMessageSettings


@dataclass(frozen=True)
class CanvasToolSettings(Table):
    """`[tool.canvas]`: Canvas extensions of the tool configuration."""

    privacy_level: str | None
    tool_id: str | None
    vendor: str | None


@dataclass(frozen=True)
class ToolSettings(Table):
    """`[tool]`: what the LMS is told about the tool."""

    name: str
    description: str | None
    logo_uri: str | None
    client_uri: str | None
    policy_uri: str | None
    tos_uri: str | None
    contacts: tuple[str, ...]
    target_link_uri: str | None
    initiate_login_uri: str | None
    redirect_uris: tuple[str, ...] | None
    jwks_uri: str | None
    domain: str | None
    secondary_domains: tuple[str, ...]
    scopes: tuple[str, ...]
    claims: tuple[str, ...]
    custom_parameters: Mapping[str, str]
    messages: tuple[MessageSettings, ...]
    canvas: CanvasToolSettings


@dataclass(frozen=True)
class RegistrationSettings(Table):
    """`[registration]`: who may register, the gates, and when attempts expire."""

    auto_activate: bool
    expires_in: int
    gates: tuple[str, ...]
    pre_approval_url: str | None
    unknown_deployments: str
    allowed_issuers: tuple[str, ...]
    blocked_issuers: tuple[str, ...]
    require_invitation: bool
    recovery_after: int


@dataclass(frozen=True)
class LaunchSettings(Table):
    """`[launch]`: where a verified launch is handed off."""

    tool_url: str | None
    token_lifetime: int


@dataclass(frozen=True)
class EmailSettings(Table):
    """`[notifications.email]`: the SMTP server that tells the owner what awaits them."""

    smtp_host: str | None
    smtp_port: int | None
    security: str
    username: str | None
    sender: str | None
    to: tuple[str, ...]
    timeout: float


@dataclass(frozen=True)
class NotificationSettings(Table):
    """`[notifications]`: the owner's webhook and e-mail."""

    webhook_url: str | None
    email: EmailSettings


@dataclass(frozen=True)
class LimitSettings(Table):
    """`[limits]`: request rate limits."""

    enabled: bool
    register: str
    signin: str
    api: str
    launch: str
    signin_account: str
    signin_global: str
    storage_uri: str | None


@dataclass(frozen=True)
class LoggingSettings(Table):
    """`[logging]`: log format and level."""

    format: str
    level: str


@dataclass(frozen=True)
class SecuritySettings(Table):
    """`[security]`: insecure development mode, issuer checks, framing."""

    allow_insecure_platforms: bool
    issuer_check: str
    frame_ancestors: tuple[str, ...]


@dataclass(frozen=True)
class OidcSettings(Table):
    """`[gates.signin.oidc]`: "Sign in with..." through an OpenID provider."""

    server_metadata_url: str | None
    client_id: str | None
    scope: str
    label: str


@dataclass(frozen=True)
class SigninGateSettings(Table):
    """`[gates.signin]`: the sign-in gate."""

    allow_signup: bool
    oidc: OidcSettings


@dataclass(frozen=True)
class TermsGateSettings(Table):
    """`[gates.terms]`: the terms gate."""

    version: str | None
    path: str | None
    title: str


@dataclass(frozen=True)
class PaymentGateSettings(Table):
    """`[gates.payment]`: the Stripe payment gate."""

    price_id: str | None
    mode: str
    api_base: str | None


@dataclass(frozen=True)
class GateSettings(Table):
    """`[gates]`: the settings of each gate."""

    signin: SigninGateSettings
    terms: TermsGateSettings
    payment: PaymentGateSettings


@dataclass(frozen=True)
class OutboundSettings(Table):
    """`[outbound]`: timeouts and size cap of requests to platforms."""

    connect_timeout: float
    deadline: float
    max_response_bytes: int


@dataclass(frozen=True)
class UiSettings(Table):
    """`[ui]`: the pages' language when neither the launch nor the browser names one."""

    default_locale: str


@dataclass(frozen=True)
class Settings(Table):
    """Gatehouse's validated settings: `settings.registration.expires_in`, and so on."""

    base_url: str | None
    trusted_proxies: int
    tool: ToolSettings
    registration: RegistrationSettings
    launch: LaunchSettings
    notifications: NotificationSettings
    limits: LimitSettings
    logging: LoggingSettings
    security: SecuritySettings
    gates: GateSettings
    outbound: OutboundSettings
    ui: UiSettings


def freeze(validated: Mapping[str, Any]) -> Settings:
    """Return validated settings (as `validate` makes them) as a frozen `Settings`."""
    return _freeze(Settings, validated, "")


@functools.cache
def _field_types(cls: type[Table]) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _freeze(cls: type[Table], table: Mapping[str, Any], prefix: str) -> Any:
    types = _field_types(cls)
    if set(types) != set(table):
        # SCHEMA and the classes above disagree: a programming error, not a bad setting.
        raise AssertionError(
            f"{cls.__name__} does not match the settings table {prefix.rstrip('.') or '(top)'}: "
            f"{sorted(set(types) ^ set(table))}"
        )
    return cls(**{name: _frozen(types[name], table[name], prefix + name) for name in types})


def _frozen(hint: Any, value: Any, path: str) -> Any:
    if isinstance(hint, UnionType):  # X | None
        (hint,) = (t for t in get_args(hint) if t is not type(None))
    if isinstance(hint, type) and issubclass(hint, Table):
        return _freeze(hint, value, path + ".")
    if isinstance(value, list):
        (item, _) = get_args(hint)  # tuple[X, ...]
        return tuple(_frozen(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        return MappingProxyType(dict(value))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Table):
        return value.as_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def iter_keys(schema: Mapping[str, Any] = SCHEMA, prefix: str = "") -> Iterator[str]:
    """Yield the dotted path of every setting, for documentation checks."""
    for name, spec in schema.items():
        path = f"{prefix}{name}"
        if isinstance(spec, dict):
            yield from iter_keys(spec, path + ".")
        elif spec.kind == "messages":
            yield path
            yield from iter_keys(MESSAGE, path + "[].")
        else:
            yield path


def env_name(path: str) -> str:
    """Return the environment variable that overrides a dotted setting path."""
    return ENV_PREFIX + path.replace(".", "__").upper()


GATE_NAMES = ("signin", "terms", "payment")
# The pages' catalogues (app/web/i18n.py): English is the source, each other language a folder.
TRANSLATIONS = Path(__file__).parent / "translations"


@functools.cache  # the catalogues are files of the installed package: they do not change
def available_locales() -> tuple[str, ...]:
    """Return the languages the pages can be shown in: English, then each translation."""
    translated = sorted(p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/*.po"))
    return ("en", *translated)


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read the TOML file and environment, apply overrides, and return validated settings."""
    environ = os.environ if environ is None else environ
    raw = _read_file(environ)
    problems = _Problems()
    with problems.check():
        _apply_env(raw, environ)
    if overrides:
        _deep_merge(raw, overrides)
    _use_redis_url(raw, environ)
    # Every fault at once: a refused value is replaced by its default, so the checks after it
    # still run, and the missing secrets are named together with the rest.
    settings = validate(raw, problems)
    with problems.check():
        _check_gates(settings, environ)
    problems.raise_any()
    return freeze(settings)


def _use_redis_url(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Keep rate-limit counters in REDIS_URL's Redis (as Heroku, Render, Dokku set it) unless
    limits.storage_uri is set."""
    limits = raw.setdefault("limits", {})
    if isinstance(limits, dict) and "storage_uri" not in limits and environ.get("REDIS_URL"):
        limits["storage_uri"] = environ["REDIS_URL"]


def _check_gates(settings: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Refuse gates whose settings or secrets are missing, naming everything to set."""
    problems: list[str] = []
    gates = settings["registration"]["gates"]
    for i, name in enumerate(gates):
        if name not in GATE_NAMES:
            problems.append(
                f"registration.gates[{i}]: {name!r} is not a gate; use any of "
                f"{', '.join(GATE_NAMES)}"
            )
        elif gates.index(name) != i:
            problems.append(f"registration.gates: {name!r} is listed twice")
    config = settings["gates"]
    oidc = config["signin"]["oidc"]
    if oidc["server_metadata_url"] or oidc["client_id"]:
        for key in ("server_metadata_url", "client_id"):
            if not oidc[key]:
                problems.append(f"gates.signin.oidc.{key}: required to sign in with OIDC")
        if "signin" in gates and not environ.get("GATEHOUSE_OIDC_CLIENT_SECRET"):
            problems.append(
                "GATEHOUSE_OIDC_CLIENT_SECRET: required in the environment for gates.signin.oidc"
            )
    if "terms" in gates:
        terms = config["terms"]
        missing = [key for key in ("version", "path") if not terms[key]]
        problems += [f"gates.terms.{key}: required by the terms gate" for key in missing]
        if terms["path"] and not os.path.isfile(terms["path"]):
            problems.append(f"gates.terms.path: the file {terms['path']!r} does not exist")
    if settings["notifications"]["webhook_url"] and not environ.get("GATEHOUSE_WEBHOOK_SECRET"):
        problems.append(
            "GATEHOUSE_WEBHOOK_SECRET: required in the environment to sign "
            "notifications.webhook_url events"
        )
    email = settings["notifications"]["email"]
    if email["smtp_host"] and not (email["sender"] and EMAIL_RE.match(email["sender"])):
        raise ConfigError(
            "notifications.email.sender: required with notifications.email.smtp_host, an "
            "e-mail address the SMTP server may send from"
        )
    if email["username"] and not environ.get("GATEHOUSE_SMTP_PASSWORD"):
        raise ConfigError(
            "GATEHOUSE_SMTP_PASSWORD: required in the environment with notifications.email.username"
        )
    if "payment" in gates:
        if not config["payment"]["price_id"]:
            problems.append("gates.payment.price_id: required by the payment gate")
        for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
            if not environ.get(name):
                problems.append(f"{name}: required in the environment by the payment gate")
    if problems:
        raise ConfigError(*problems)


def _read_file(environ: Mapping[str, str]) -> dict[str, Any]:
    path = environ.get("GATEHOUSE_CONFIG")
    if path is None:
        if not os.path.exists(DEFAULT_CONFIG_FILE):
            return {}
        path = DEFAULT_CONFIG_FILE
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"GATEHOUSE_CONFIG: the file {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    problems = _Problems()
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        with problems.check():
            _apply_env_value(raw, name, environ[name])
    problems.raise_any()


def _apply_env_value(raw: dict[str, Any], name: str, text: str) -> None:
    """Set the setting the GATEHOUSE_* variable `name` names to its value `text`."""
    parts = name[len(ENV_PREFIX) :].lower().split("__")
    if not all(parts):
        raise ConfigError(f"{name}: not a setting name (use __ between nested keys)")
    spec = _lookup(parts)
    if spec is None:
        raise ConfigError(f"{name}: unknown setting {'.'.join(parts)}")
    if isinstance(spec, dict):
        raise ConfigError(f"{name}: {'.'.join(parts)} is a table; set its keys instead")
    value = _parse_env_value(text, spec)
    target = raw
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{name}: {'.'.join(parts[:-1])} is not a table")
    target[parts[-1]] = value


def _lookup(parts: list[str]) -> Any:
    node: Any = SCHEMA
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _parse_env_value(text: str, spec: Key) -> Any:
    if spec.kind in ("str", _URL, "domain", "choice"):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _deep_merge(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def validate(raw: Mapping[str, Any], problems: _Problems | None = None) -> dict[str, Any]:
    """Check every key against the schema, fill in defaults; raise ConfigError naming each fault.

    Given `problems`, keep the faults there instead and return the settings with each refused
    value replaced by its default, for the checks that come after.
    """
    found = _Problems() if problems is None else problems
    settings = _validate_table(raw, SCHEMA, "", found)
    registration = settings["registration"]
    for key in ("allowed_issuers", "blocked_issuers"):
        for i, pattern in enumerate(registration[key]):
            if not ISSUER_PATTERN_RE.match(pattern):
                found.add(
                    f"registration.{key}[{i}]: {pattern!r} is neither an issuer URL nor a host "
                    "pattern such as *.instructure.com"
                )
    if registration["expires_in"] <= 0:
        found.add("registration.expires_in: must be a positive number of seconds")
    if registration["recovery_after"] <= settings["outbound"]["deadline"]:
        found.add(
            "registration.recovery_after: must be longer than outbound.deadline (an attempt "
            "still waiting for the LMS is not a crashed one)"
        )
    for key in LIMIT_KEYS:
        if not LIMIT_RE.match(settings["limits"][key]):
            found.add(
                f"limits.{key}: {settings['limits'][key]!r} is not a rate such as "
                "'30/minute' or '10/minute;100/hour'"
            )
    with found.check():
        _check_limits_storage(settings["limits"]["storage_uri"])
    if not 10 <= settings["launch"]["token_lifetime"] <= 3600:
        found.add("launch.token_lifetime: must be between 10 and 3600 seconds")
    if settings["trusted_proxies"] < 0:
        found.add("trusted_proxies: must be 0 or more")
    locales = available_locales()
    if settings["ui"]["default_locale"] not in locales:
        found.add(
            f"ui.default_locale: {settings['ui']['default_locale']!r} is not a language "
            f"Gatehouse's pages are translated into; use one of {', '.join(locales)}"
        )
        settings["ui"]["default_locale"] = "en"
    outbound = settings["outbound"]
    for key in ("connect_timeout", "deadline", "max_response_bytes"):
        if outbound[key] <= 0:
            found.add(f"outbound.{key}: must be greater than 0")
    base_url = settings["base_url"]
    if base_url:
        parts = urlsplit(base_url)
        if parts.query or parts.fragment:
            found.add("base_url: must not contain a query or fragment")
        settings["base_url"] = base_url.rstrip("/")
    if not settings["security"]["allow_insecure_platforms"]:
        with found.check():
            _require_https(settings)
    with found.check():
        _check_domain(settings)
    _warn_canvas_display_types(settings["tool"]["messages"])
    _warn_openid_scopes(settings["tool"]["scopes"])
    if problems is None:
        found.raise_any()
    return settings


def _check_limits_storage(uri: str | None) -> None:
    """Refuse a limits.storage_uri whose scheme flask-limiter cannot use (naming, not echoing, it).

    The URI usually holds a password, so the message shows only its scheme.
    """
    if uri is None:
        return
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in LIMITS_STORAGE_SCHEMES:
        shown = f"the scheme {scheme!r}" if scheme else "a value without a scheme"
        raise ConfigError(
            f"limits.storage_uri: {shown} is not a rate-limit storage; use memory://, "
            "redis://host:6379/0 (rediss:// with TLS), or another storage flask-limiter "
            f"supports: {', '.join(LIMITS_STORAGE_SCHEMES)}"
        )


def _tool_urls(settings: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """Yield (key, URL) for the tool's own URLs that the LMS is given."""
    tool = settings["tool"]
    yield "base_url", settings["base_url"]
    for key in ("target_link_uri", "initiate_login_uri", "jwks_uri", "logo_uri"):
        yield f"tool.{key}", tool[key]
    for i, url in enumerate(tool["redirect_uris"] or ()):
        yield f"tool.redirect_uris[{i}]", url
    for i, message in enumerate(tool["messages"]):
        for key in ("target_link_uri", "icon_uri"):
            yield f"tool.messages[{i}].{key}", message.get(key)


def _require_https(settings: dict[str, Any]) -> None:
    """Refuse plain-http tool URLs in production: LMSes launch and fetch keys through them."""
    for key, url in _tool_urls(settings):
        if url and not is_https_url(url):
            raise ConfigError(
                f"{key}: {url!r} must be an https URL (security.allow_insecure_platforms is "
                "off; LMSes such as Brightspace refuse plain-http tools, and launches carry "
                "signed identity tokens)"
            )


def _check_domain(settings: dict[str, Any]) -> None:
    """Refuse a tool domain an LMS would reject.

    Moodle requires `domain` to equal the host[:port] of `target_link_uri` exactly as written
    (moodle/moodle, mod/lti/classes/local/ltiopenid/registration_helper.php); URLs and the
    domain are normalised when loaded, so the comparison here is exact too. Canvas's domain
    pattern refuses IPv6 literals (lti_tool_configuration.rb), so a launch URL on one cannot
    give the tool a domain.
    """
    domain = settings["tool"]["domain"]
    key, target = "tool.target_link_uri", settings["tool"]["target_link_uri"]
    if not target and settings["base_url"]:
        key, target = "base_url", settings["base_url"] + "/lti/launch"
    if target and ":" in (urlsplit(target).hostname or "") and not domain:
        raise ConfigError(
            f"{key}: {target!r} is on an IPv6 address, which LMSes do not accept as the tool's "
            "domain (Canvas's domain pattern refuses it); use a host name"
        )
    if not domain:
        return
    if not target:
        raise ConfigError(
            "tool.domain: set base_url or tool.target_link_uri too; otherwise the launch URL "
            "follows each request's host and cannot be checked against the domain"
        )
    expected = host_with_port(target)
    if domain != expected:
        raise ConfigError(
            f"tool.domain: {domain!r} must equal the host[:port] of the launch URL {target!r}, "
            f"that is {expected!r} (Moodle refuses a mismatch)"
        )


def _warn_canvas_display_types(messages: list[dict[str, Any]]) -> None:
    for i, message in enumerate(messages):
        display_type = (message.get("canvas") or {}).get("display_type")
        if display_type in CANVAS_UNSAFE_DISPLAY_TYPES:
            log.warning(
                "tool.messages[%d].canvas.display_type = %r: %s, and refusing it fails the "
                "whole registration, so Gatehouse leaves it out of Canvas registrations and "
                "the link opens in Canvas's default display; the admin is told on the close "
                "page.",
                i,
                display_type,
                CANVAS_UNSAFE_DISPLAY_TYPES[display_type],
            )


def _warn_openid_scopes(scopes: list[str]) -> None:
    for i, scope in enumerate(scopes):
        if not is_service_scope(scope):
            log.warning(
                "tool.scopes[%d] = %r is not an LTI service scope, so Gatehouse never asks an "
                "LMS for it (LTI launches need no OpenID scope, and Canvas refused a "
                "registration naming openid: canvas-lms issue 2398).",
                i,
                scope,
            )


def _validate_table(
    raw: Any, schema: Mapping[str, Any], prefix: str, problems: _Problems
) -> dict[str, Any]:
    """Return the table checked against schema; each fault goes to problems, its key defaulted."""
    if not isinstance(raw, Mapping):
        problems.add(f"{prefix.rstrip('.')}: must be a table")
        raw = {}
    for key in raw:
        if key not in schema:
            problems.add(f"{prefix}{key}: unknown key")
    result: dict[str, Any] = {}
    for name, spec in schema.items():
        path = f"{prefix}{name}"
        if isinstance(spec, dict):
            result[name] = _validate_table(raw.get(name, {}), spec, path + ".", problems)
            continue
        if name in raw:
            try:
                result[name] = _check_value(raw[name], spec, path)
                continue
            except ConfigError as exc:
                problems.add(*exc.problems)
        elif spec.required:
            problems.add(
                f"{path}: required key is missing (set it in the TOML file or as {env_name(path)})"
            )
        if spec.kind == "messages":
            # The default messages are tables too: fill in their keys as for configured ones.
            result[name] = _check_value(spec.default, spec, path)
        else:
            result[name] = copy.deepcopy(spec.default)
    return result


def _check_value(value: Any, spec: Key, path: str) -> Any:
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{path}: must be a string, got {type(value).__name__}")
        if spec.required and not value.strip():
            raise ConfigError(f"{path}: must not be empty")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: must be a whole number, got {value!r}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: must be a number, got {value!r}")
        return float(value)
    if kind == "choice":
        if value not in spec.choices:
            allowed = ", ".join(repr(c) for c in spec.choices)
            raise ConfigError(f"{path}: {value!r} is not one of {allowed}")
        return value
    if kind == _URL:
        return _check_url(value, path)
    if kind == "domain":
        if not isinstance(value, str) or not DOMAIN_RE.match(value):
            raise ConfigError(
                f"{path}: must be a host name or IPv4 address with an optional :port, no scheme "
                "and no IPv6 literal (Canvas refuses any other domain)"
            )
        # Hosts are case-insensitive, but Moodle compares the domain with the launch URL's
        # host as written, so both are kept in lower case.
        return value.lower()
    if kind == "hostnames":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: must be a list of strings")
        for i, v in enumerate(value):
            if not HOSTNAME_RE.match(v):
                raise ConfigError(
                    f"{path}[{i}]: {v!r} must be a host name without scheme or port (Canvas "
                    "requires host names here)"
                )
        return [v.lower() for v in value]
    if kind in ("strings", "urls", "emails"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: must be a list of strings")
        if kind == "urls":
            if not value:
                raise ConfigError(f"{path}: must list at least one URL")
            return [_check_url(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if kind == "emails":
            for i, v in enumerate(value):
                if not EMAIL_RE.match(v):
                    raise ConfigError(f"{path}[{i}]: {v!r} is not an e-mail address")
        return list(value)
    if kind == "strtable":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"{path}: must be a table of string values")
        return dict(value)
    if kind == "messages":
        if not isinstance(value, list):
            raise ConfigError(f"{path}: must be an array of tables ([[tool.messages]])")
        problems = _Problems()
        messages = [
            _validate_table(m, MESSAGE, f"{path}[{i}].", problems) for i, m in enumerate(value)
        ]
        problems.raise_any()
        return messages
    raise AssertionError(f"unknown setting kind {kind}")  # pragma: no cover


def _check_url(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{path}: must be a URL string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{path}: {value!r} is not an absolute http(s) URL")
    if parts.username or parts.password:
        raise ConfigError(f"{path}: must not contain a user name or password")
    try:
        return normalise_url(value)
    except ValueError:
        raise ConfigError(
            f"{path}: {value!r} has a port that is not a number from 0 to 65535"
        ) from None
