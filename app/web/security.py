"""What every request and response passes: refused input, security headers, framing."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, request

from ..storage import storable
from .context import settings

# Where _default_headers keeps the headers it worked out, with the settings they came from.
HEADERS_KEY = "gatehouse.security_headers"


def allow_framing() -> None:
    """Mark this response as part of the LMS flow: frameable by LMS pages, never cached."""
    g.frameable = True


def _security_headers(response: Response) -> Response:
    headers = response.headers
    frameable = bool(g.get("frameable"))
    present = {name.lower() for name, _value in headers}
    for lowered, name, value in _default_headers(frameable, request.is_secure):
        if lowered not in present:  # a view's own value wins
            headers.add(name, value)
    if frameable:
        headers["Cache-Control"] = "no-store"
    return response


def _default_headers(frameable: bool, secure: bool) -> tuple[tuple[str, str, str], ...]:
    """Return the security headers a response gets unless its view set them, as
    (lowercase name, name, value): worked out once per kind of response and settings object
    (they depend on nothing else, and every response needs them)."""
    config = settings()
    kept = current_app.extensions.get(HEADERS_KEY)
    if kept is None or kept[0] is not config:  # settings replaced: start again
        kept = current_app.extensions[HEADERS_KEY] = (config, {})
    table = kept[1]
    found = table.get((frameable, secure))
    if found is None:
        ancestors = frame_ancestors() if frameable else "'none'"
        pairs = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]
        if not frameable:
            pairs.append(("X-Frame-Options", "DENY"))
        pairs.append(
            (
                "Content-Security-Policy",
                f"default-src 'self'; script-src 'self'; style-src 'self'; "
                f"img-src {image_sources()}; object-src 'none'; base-uri 'none'; "
                f"form-action 'self'; frame-ancestors {ancestors}",
            )
        )
        if secure:
            pairs.append(("Strict-Transport-Security", "max-age=31536000"))
        found = table[(frameable, secure)] = tuple((n.lower(), n, v) for n, v in pairs)
    return found


def image_sources() -> str:
    """Return where pages may load images from: Gatehouse itself and the tool's logo's origin."""
    logo = settings().tool.logo_uri
    if not logo:
        return "'self'"
    parts = urlsplit(logo)
    return f"'self' {parts.scheme}://{parts.netloc}"


def frame_ancestors() -> str:
    """Return who may frame flow pages: configured origins, else any https (and http in dev)."""
    security = settings().security
    if security.frame_ancestors:
        return " ".join(security.frame_ancestors)
    return "https: http:" if security.allow_insecure_platforms else "https:"


def _refuse_unstorable():
    """Refuse, at the door, form and query values no database can store.

    PostgreSQL refuses NUL characters and unpaired surrogates in text, so a form field or
    launch parameter holding one would end in a database error. The API answers them in its
    own envelope (`app/web/api`); the Stripe webhook's body is JSON, read raw.
    """
    if request.path.startswith(("/api/", "/admin/", "/webhooks/")):
        return None
    for key, values in request.values.lists():
        if not all(storable(text) for text in (key, *values)):
            abort(
                400,
                description=f"The field {key[:40]!r} holds a character that cannot be "
                "stored (a NUL or an unpaired surrogate). Remove it and send the form again.",
            )
    return None


def init_app(app: Flask) -> None:
    """Refuse unstorable input at the door and put the security headers on every response."""
    app.before_request(_refuse_unstorable)
    app.after_request(_security_headers)
