"""Which client address and scheme to believe: `trusted_proxies` and the X-Forwarded-* headers.

With `trusted_proxies = N` (N proxies in front of Gatehouse, each adding to X-Forwarded-For),
werkzeug's ProxyFix believes the last N entries; with 0, the default, the headers are ignored,
since on a Gatehouse reachable without a proxy every client could choose its own address (and so
escape the per-address limits and lockouts, and sign terms as anyone). Forwarded headers that
arrive while none are trusted are logged once per process, naming the setting to change.
"""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

FORWARDED_HEADERS = {
    "HTTP_X_FORWARDED_FOR": "X-Forwarded-For",
    "HTTP_X_FORWARDED_PROTO": "X-Forwarded-Proto",
    "HTTP_X_FORWARDED_HOST": "X-Forwarded-Host",
    "HTTP_X_FORWARDED_PORT": "X-Forwarded-Port",
    "HTTP_X_FORWARDED_PREFIX": "X-Forwarded-Prefix",
}


class UntrustedForwardedHeaders:
    """WSGI middleware: serve as is; log the first request carrying X-Forwarded-* headers."""

    def __init__(self, wsgi_app, logger: logging.Logger) -> None:
        self.wsgi_app = wsgi_app
        self.logger = logger
        self.warned = False  # one app per worker process: once per process

    def __call__(self, environ, start_response):
        if not self.warned:
            names = [name for key, name in FORWARDED_HEADERS.items() if key in environ]
            if names:
                self.warned = True
                # The header values are the client's to choose: never logged.
                self.logger.warning(
                    "A request from %s carried %s, which Gatehouse ignores because "
                    "trusted_proxies is 0: client addresses, the scheme and the host come from "
                    "the connection. If Gatehouse runs behind proxies that set these headers, set "
                    "trusted_proxies (GATEHOUSE_TRUSTED_PROXIES) to their number (1 on Heroku); "
                    "without a proxy, leave it at 0. (Logged once.)",
                    environ.get("REMOTE_ADDR", "?"),
                    ", ".join(names),
                )
        return self.wsgi_app(environ, start_response)


def init_app(app: Flask) -> None:
    """Believe X-Forwarded-* from `trusted_proxies` proxies, or warn once that they arrive."""
    proxies = app.config["GATEHOUSE"].trusted_proxies
    if proxies:
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=proxies,
            x_proto=proxies,
            x_host=proxies,
            x_port=proxies,
            x_prefix=proxies,
        )
    else:
        app.wsgi_app = UntrustedForwardedHeaders(app.wsgi_app, app.logger)
