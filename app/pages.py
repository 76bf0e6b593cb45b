"""Page helpers shared by blueprints: error pages and the headers every response carries."""

from __future__ import annotations

from flask import Flask, Response, current_app, g, render_template, request
from werkzeug.exceptions import HTTPException

from .lti.errors import RegistrationError


def settings() -> dict:
    """Return the validated Gatehouse settings of the current app."""
    return current_app.config["GATEHOUSE"]


def base_url() -> str:
    """Return the public base URL: the configured one, else the request's (behind ProxyFix)."""
    return settings()["base_url"] or request.url_root.rstrip("/")


def allow_framing() -> None:
    """Mark this response as part of the LMS flow: frameable by LMS pages, never cached."""
    g.frameable = True


def render_error(error: RegistrationError, *, in_flow: bool = True):
    """Render a readable error page for the admin, with a way back to the LMS."""
    if in_flow:
        allow_framing()
    return render_template("register/error.html", error=error.as_dict()), error.status


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if g.get("frameable"):
        insecure = settings()["security"]["allow_insecure_platforms"]
        ancestors = "https: http:" if insecure else "https:"
        headers["Cache-Control"] = "no-store"
    else:
        ancestors = "'none'"
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        f"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}",
    )
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def _http_error(error: HTTPException):
    if request.path.startswith("/lti/"):
        allow_framing()
    page = render_template("error_page.html", code=error.code, name=error.name,
                           description=error.description)
    return page, error.code


def _unexpected_error(error: Exception):
    current_app.logger.exception("unhandled error on %s", request.path)
    if request.path.startswith("/lti/"):
        allow_framing()
    page = render_template(
        "error_page.html",
        code=500,
        name="Something went wrong on our side",
        description="Gatehouse hit an unexpected error. Nothing was registered; please try "
        "again, and tell the tool's owner if it happens again.",
    )
    return page, 500


def init_app(app: Flask) -> None:
    """Install the headers and error pages."""
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
