"""The session cookie of pages shown inside the LMS's cross-site frame."""

from __future__ import annotations

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

from ..lti.http import is_loopback_host


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
        if app.config["GATEHOUSE"].security.allow_insecure_platforms:
            return True
        if not self._warned:
            self._warned = True
            app.logger.warning(
                "A request for %s arrived over plain http; session cookies stay Secure, so "
                "browsers will not keep them over http. If a proxy terminates TLS in front of "
                "Gatehouse, set trusted_proxies to the number of proxies (now %s) so its "
                "X-Forwarded-Proto is believed, and base_url to the public https address.",
                request.host,
                app.config["GATEHOUSE"].trusted_proxies,
            )
        return False

    def open_session(self, app: Flask, request):
        """Open the session; without a session cookie, an empty one at once.

        Most requests (launches, the LMS's key-set fetches) carry none: Flask would still build
        its signing serializer for each before finding that out.
        """
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session, response) -> None:
        """Save the session; an empty, unchanged one only varies the response (Flask's outcome).

        Flask works out every cookie attribute first (here, whether the request is loopback
        three times over) and only then finds that it sets no cookie: launches and the
        LMS's key-set fetches carry no session, though Flask-Login looks into it.
        """
        if not session and not session.modified:
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)

    def get_cookie_secure(self, app: Flask) -> bool:
        return not self._relaxed(app)

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Lax" if self._relaxed(app) else "None"

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return not self._relaxed(app) and app.config["SESSION_COOKIE_PARTITIONED"]
