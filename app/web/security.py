"""What every request and response passes: refused input, security headers, framing."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, request

from ..storage import storable
from .context import settings


def allow_framing() -> None:
    """Mark this response as part of the LMS flow: frameable by LMS pages, never cached."""
    g.frameable = True


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if g.get("frameable"):
        ancestors = frame_ancestors()
        headers["Cache-Control"] = "no-store"
    else:
        ancestors = "'none'"
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {image_sources()}; "
        f"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}",
    )
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


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
