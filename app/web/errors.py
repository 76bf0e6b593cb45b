"""Error pages for the browser and the API's JSON envelope for /api and /admin paths."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..lti.text import N_
from .api_json import envelope
from .error_words import HTTP_PAGES as PAGES
from .error_words import HTTP_WHAT_TO_DO
from .i18n import page_locale, translate
from .security import allow_framing

# Werkzeug's names of the other statuses an LMS admin, teacher or student may meet, marked so
# that the error page shows them translated (its description, when it is Werkzeug's, stays
# English and says so with `lang`).
HTTP_NAMES = (
    N_("Bad Request"),
    N_("Unauthorized"),
    N_("Forbidden"),
    N_("Conflict"),
    N_("Gone"),
    N_("Request Entity Too Large"),
    N_("Too Many Requests"),
    N_("Bad Gateway"),
    N_("Service Unavailable"),
)


def _csrf_error(error: CSRFError):
    if request.path.startswith("/lti/"):
        allow_framing()
        rid = request.view_args.get("rid") if request.view_args else None
        return render_template("gates/cookies_blocked.html", rid=rid), 400
    return _http_error(error)


def _page(code: int, name: str, description: str, what_to_do: str | None = None):
    if request.path.startswith("/lti/"):
        allow_framing()
    shown = translate(description)
    page = render_template(
        "error_page.html",
        code=code,
        name=translate(name),
        description=shown,
        # Words no catalogue holds (Werkzeug's, a limit's) are English: say so to the browser.
        description_lang="en" if shown == description and page_locale() != "en" else None,
        what_to_do=translate(what_to_do),
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
