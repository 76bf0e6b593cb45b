"""Page helpers shared by blueprints: error pages and the headers every response carries."""

from __future__ import annotations

import re

from flask import Flask, Response, abort, current_app, g, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from .gates import approval_of
from .lti import lms as lms_families
from .lti.errors import RegistrationError
from .lti.http import is_loopback_host
from .storage import storable


class FrameSessionInterface(SecureCookieSessionInterface):
    """Session cookies that survive a cross-site LMS frame: SameSite=None; Secure; Partitioned.

    Browsers treat http://localhost as secure, so loopback keeps these attributes over plain
    http too. Secure is relaxed (SameSite=Lax instead) only for plain-http development on another
    host, which needs `security.allow_insecure_platforms`. Any other plain-http request keeps
    Secure, since it is usually production behind a TLS proxy Gatehouse does not trust, and is
    logged once: browsers will not send such a cookie back until the proxy is trusted.
    """

    def __init__(self) -> None:
        self._warned = False

    def _relaxed(self, app: Flask) -> bool:
        if request.is_secure or is_loopback_host(request.host.rsplit(":", 1)[0].strip("[]")):
            return False
        if app.config["GATEHOUSE"]["security"]["allow_insecure_platforms"]:
            return True
        if not self._warned:
            self._warned = True
            app.logger.warning(
                "A request for %s arrived over plain http; session cookies stay Secure, so "
                "browsers will not keep them over http. If a proxy terminates TLS in front of "
                "Gatehouse, set trusted_proxies to the number of proxies (now %s) so its "
                "X-Forwarded-Proto is believed, and base_url to the public https address.",
                request.host,
                app.config["GATEHOUSE"]["trusted_proxies"],
            )
        return False

    def get_cookie_secure(self, app: Flask) -> bool:
        return not self._relaxed(app)

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Lax" if self._relaxed(app) else "None"

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return not self._relaxed(app) and app.config["SESSION_COOKIE_PARTITIONED"]


def settings() -> dict:
    """Return the validated Gatehouse settings of the current app."""
    return current_app.config["GATEHOUSE"]


def base_url() -> str:
    """Return the public base URL: the configured one, else the request's (behind ProxyFix)."""
    return settings()["base_url"] or request.url_root.rstrip("/")


def allow_framing() -> None:
    """Mark this response as part of the LMS flow: frameable by LMS pages, never cached."""
    g.frameable = True


def render_error(
    error: RegistrationError, *, in_flow: bool = True, template: str = "register/error.html"
):
    """Render a readable error page for the admin, with a way back to the LMS."""
    if in_flow:
        allow_framing()
    return render_template(template, error=error.as_dict()), error.status


def render_close(registration):
    """Render the page that closes the LMS dialog, from the stored outcome (refresh-safe)."""
    from .storage import get_store

    store = get_store()
    platform = store.get_platform(registration.platform_id)
    requested = ((registration.request or {}).get("scope") or "").split()
    withheld = [s for s in requested if s not in platform.scopes]
    allow_framing()
    return render_template(
        "register/close.html",
        registration=registration,
        platform=platform,
        withheld=withheld,
        # An LMS removes its dialog the moment the close message arrives (Moodle's
        # toolconfigure page does), so a page with something to read waits for "Done".
        must_read=bool(withheld or registration.notable_adjustments),
        family=registration.product_family_code,
        family_name=lms_families.family_name(registration.product_family_code),
        deployments=store.list_deployments(platform.id),
        approval=approval_of(store, registration.id),
    )


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
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        f"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}",
    )
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def frame_ancestors() -> str:
    """Return who may frame flow pages: configured origins, else any https (and http in dev)."""
    security = settings()["security"]
    if security["frame_ancestors"]:
        return " ".join(security["frame_ancestors"])
    return "https: http:" if security["allow_insecure_platforms"] else "https:"


def money(amount: int | None, currency: str | None) -> str:
    """Format a Stripe amount in minor units, e.g. 1500 usd -> 15.00 USD."""
    if amount is None:
        return "amount pending"
    return f"{amount / 100:,.2f} {(currency or '').upper()}".strip()


def _csrf_error(error: CSRFError):
    if request.path.startswith("/lti/"):
        allow_framing()
        rid = request.view_args.get("rid") if request.view_args else None
        return render_template("gates/cookies_blocked.html", rid=rid), 400
    return _http_error(error)


def _http_error(error: HTTPException):
    if request.path.startswith(("/api/", "/admin/")):
        from .api import envelope

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
        from .api import envelope

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


def _refuse_unstorable():
    """Refuse, at the door, form and query values no database can store.

    PostgreSQL refuses NUL characters and unpaired surrogates in text, so a form field or
    launch parameter holding one would end in a database error. The API answers them in its
    own envelope (`app/api`); the Stripe webhook's body is JSON, read raw.
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


MARKS = re.compile(r"\*\*(.+?)\*\*|`(.+?)`")


def marked(text: str) -> Markup:
    """Return LMS step text as HTML: **words on screen** in bold, `ids` as code, all escaped."""

    def tag(match: re.Match) -> str:
        bold, code = match.groups()
        return f"<strong>{bold}</strong>" if bold is not None else f"<code>{code}</code>"

    return Markup(MARKS.sub(tag, str(escape(text))))  # noqa: S704 - escaped before marking


def init_app(app: Flask) -> None:
    """Install the headers and error pages."""
    app.before_request(_refuse_unstorable)
    app.after_request(_security_headers)
    app.add_template_filter(money)
    app.add_template_filter(marked)
    app.add_template_global(lms_families.for_family, "lms_family")
    app.add_template_global(lms_families.FAMILIES, "lms_families")
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
