"""Error pages for the browser and the API's JSON envelope for /api and /admin paths."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .api_json import envelope
from .error_words import HTTP_PAGES as PAGES
from .error_words import HTTP_WHAT_TO_DO
from .security import allow_framing


def _csrf_error(error: CSRFError):
    if request.path.startswith("/lti/"):
        allow_framing()
        rid = request.view_args.get("rid") if request.view_args else None
        return render_template("gates/cookies_blocked.html", rid=rid), 400
    return _http_error(error)


def _page(code: int, name: str, description: str, what_to_do: str | None = None):
    if request.path.startswith("/lti/"):
        allow_framing()
    page = render_template(
        "error_page.html", code=code, name=name, description=description, what_to_do=what_to_do
    )
    return page, code


def _http_error(error: HTTPException):
    code = error.code or 500
    if request.path.startswith(("/api/", "/admin/")):
        return envelope(code, error.name.upper().replace(" ", "_"), error.description or "")
    name, description, what_to_do = PAGES.get(
        code, (error.name, error.description, HTTP_WHAT_TO_DO)
    )
    if code not in PAGES or error.description != type(error).description:
        # A view's own words (abort(404, "…")) say more than the generic line.
        description = error.description or description
    page, code = _page(code, name, description, what_to_do)
    # Keep what the error itself says in headers: Allow on a 405, Retry-After on a 429.
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return page, code, headers


def _unexpected_error(error: Exception):
    current_app.logger.exception("unhandled error on %s", request.path)
    if request.path.startswith(("/api/", "/admin/")):
        return envelope(500, "INTERNAL_ERROR", "Gatehouse hit an unexpected error.")
    return _page(500, *PAGES[500])


def init_app(app: Flask) -> None:
    """Install the error pages."""
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
