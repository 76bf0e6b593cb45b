"""Small value checks and text helpers shared by the simulator's LMS profiles."""

from __future__ import annotations

import html
import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Canvas's tool-configuration schema: a hostname with an optional port, no scheme or path.
DOMAIN_RE = re.compile(r"^(?!-)[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_SCRIPT_RE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")
CLOSE_MARKER_RE = re.compile(r"""data-lti-close\s*=\s*["']?auto["'\s>/]""", re.IGNORECASE)
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


def is_loopback_host(host: str | None) -> bool:
    """Tell whether host names this machine (localhost, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
