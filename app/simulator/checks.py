"""Small value checks and text helpers shared by the simulator's LMS profiles."""

from __future__ import annotations

import functools
import html
import importlib.resources
import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import referencing
from referencing.jsonschema import DRAFT202012

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Canvas's tool-configuration schema: a hostname with an optional port, no scheme or path.
DOMAIN_RE = re.compile(r"^(?!-)[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_SCRIPT_RE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")
# Gatehouse's close page: "auto" posts the close message on load; "after-reading" waits for the
# admin's Done button because the page says something the admin must read first.
CLOSE_MARKER_RE = re.compile(
    r"""data-lti-close\s*=\s*["']?(auto|after-reading)["'\s>/]""", re.IGNORECASE
)
# An inline script posting the spec's close message (ltijs and other tools close this way).
CLOSE_MESSAGE_RE = re.compile(
    r"""<script\b[^>]*>[^<]*postMessage\s*\(\s*\{[^}]*["']org\.imsglobal\.lti\.close["']""",
    re.IGNORECASE,
)


def is_uri(value: Any) -> bool:
    """Tell whether value is an absolute URI with a scheme and a host."""
    if not isinstance(value, str) or not value:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc)


def is_http_uri(value: Any) -> bool:
    """Tell whether value is an absolute http or https URL with a host."""
    return is_uri(value) and urlsplit(value).scheme.lower() in ("http", "https")


def host_port(url: str) -> str:
    """Return the host[:port] of url as written (lowercased), the way `domain` is compared."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def origin(url: str) -> str:
    """Return scheme://host:port of url, with the default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def php_empty(value: Any) -> bool:
    """Tell whether PHP's empty() would call value empty (Moodle's notion of missing)."""
    return value in (None, "", "0", 0, False) or value == [] or value == {}


def type_name(value: Any) -> str:
    """Name value's JSON type the way JSON-schema error messages do."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def visible_text(page: str, limit: int = 400) -> str:
    """Return the text a person would read on an HTML page: tags stripped, spaces collapsed."""
    text = _SCRIPT_RE.sub(" ", page)
    text = _TAG_RE.sub(" ", text)
    text = _SPACE_RE.sub(" ", html.unescape(text)).strip()
    return text[:limit] + ("…" if len(text) > limit else "")


def compact(value: Any, limit: int = 240) -> str:
    """Render a response body on one short line for a report."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = _SPACE_RE.sub(" ", text).strip()
    return text[:limit] + ("…" if len(text) > limit else "")


# --- data files transcribed from the LMSes' code (app/simulator/data/) --------------------------

DATA_PACKAGE = "app.simulator"
CANVAS_EDITIONS = ("2024", "current")
# json_schemer (Canvas's validator, lib/schemas/base.rb) asserts formats; these are the three the
# Canvas schema uses, with json_schemer's meaning: an absolute URI, an address with an @, and an
# RFC 1123 host name (no port, no IP literal brackets).
_HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@functools.cache
def load_data(path: str) -> Any:
    """Return a JSON data file under app/simulator/data/ (e.g. "canvas/placements.json")."""
    resource = importlib.resources.files(DATA_PACKAGE).joinpath("data", *path.split("/"))
    return json.loads(resource.read_text(encoding="utf-8"))


def canvas_placement_enum() -> list[str]:
    """Return every placement name Canvas's registration schema accepts, in its own order.

    lib/schemas/lti/ims/lti_tool_configuration.rb: PLACEMENTS as is, PLACEMENTS through
    Lti::ResourcePlacement.add_extension_prefix_if_necessary (which leaves STANDARD_PLACEMENTS
    alone), then ContentArea and RichTextEditor.
    """
    data = load_data("canvas/placements.json")
    placements: list[str] = []
    for names in data["by_message_type"].values():
        placements += [p for p in names if p not in placements]
    prefixed = [
        p if p in data["standard_placements"] else data["extension_prefix"] + p for p in placements
    ]
    return placements + prefixed + list(data["dynamic_registration_placements"])


def _is_absolute_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme) and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme) is not None


def _is_email(value: object) -> bool:
    return not isinstance(value, str) or EMAIL_RE.match(value) is not None


def _is_hostname(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not value or len(value) > 253:
        return False
    return all(_HOSTNAME_LABEL_RE.match(label) for label in value.rstrip(".").split("."))


FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
FORMAT_CHECKER.checks("uri")(_is_absolute_uri)
FORMAT_CHECKER.checks("email")(_is_email)
FORMAT_CHECKER.checks("hostname")(_is_hostname)


@functools.cache
def canvas_validator(edition: str = "2024") -> jsonschema.protocols.Validator:
    """Return a validator for Canvas's registration schema, one display-type edition bound in."""
    if edition not in CANVAS_EDITIONS:
        raise ValueError(f"Unknown Canvas edition {edition!r}; choose one of {CANVAS_EDITIONS}")
    schema = load_data("canvas/registration.schema.json")
    display_types = load_data("canvas/display_types.json")["editions"][edition]["values"]
    message_types = list(load_data("canvas/placements.json")["by_message_type"])
    enums = {
        "urn:gatehouse:canvas:placement": {"enum": canvas_placement_enum()},
        "urn:gatehouse:canvas:message-type": {"enum": message_types},
        "urn:gatehouse:canvas:display-type": {"enum": [None, *display_types]},
    }
    registry: referencing.Registry = referencing.Registry().with_resources(
        (uri, DRAFT202012.create_resource(body)) for uri, body in enums.items()
    )
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, registry=registry, format_checker=FORMAT_CHECKER)


def canvas_schema_errors(body: Any, edition: str = "2024") -> list[str]:
    """Return Canvas's 422 messages for what body breaks in its registration schema.

    Worded the way Schemas::Base.simple_validation_error words json_schemer errors:
    "<value> <pointer>. Schema: <schema>", or "The following fields are required: ..." at the
    root.
    """
    messages = []
    errors = sorted(canvas_validator(edition).iter_errors(body), key=lambda e: list(e.path))
    for error in errors:
        pointer = "".join(
            "/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path
        )
        if error.validator == "required" and not pointer:
            messages.append(f"The following fields are required: {error.message}")
        elif error.validator == "required":
            messages.append(f"{error.message} {pointer}. Schema: {compact(error.schema, 200)}")
        else:
            messages.append(
                f"{compact(error.instance, 120)} {pointer}. Schema: "
                f"{compact(error.validator_value, 200)} ({error.validator})"
            )
    return messages
