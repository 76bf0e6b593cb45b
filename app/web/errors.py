"""Error pages for the browser and the API's JSON envelope for /api and /admin paths."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .api_json import envelope
from .security import allow_framing


def _csrf_error(error: CSRFError):
    if request.path.startswith("/lti/"):
        allow_framing()
        rid = request.view_args.get("rid") if request.view_args else None
        return render_template("gates/cookies_blocked.html", rid=rid), 400
    return _http_error(error)


def _http_error(error: HTTPException):
    if request.path.startswith(("/api/", "/admin/")):
        code = error.code or 500
        return envelope(code, error.name.upper().replace(" ", "_"), error.description or "")
    if request.path.startswith("/lti/"):
        allow_framing()
    page = render_template(
        "error_page.html", code=error.code, name=error.name, description=error.description
    )
    return page, error.code


def _unexpected_error(error: Exception):
    current_app.logger.exception("unhandled error on %s", request.path)
    if request.path.startswith(("/api/", "/admin/")):
        return envelope(500, "INTERNAL_ERROR", "Gatehouse hit an unexpected error.")
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
    """Install the error pages."""
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
