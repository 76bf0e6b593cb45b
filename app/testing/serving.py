"""A real threaded HTTP server on loopback serving a WSGI app, and a free loopback port."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

logger = logging.getLogger(__name__)


def is_loopback_host(host: str | None) -> bool:
    """Tell whether host names this machine (localhost, *.localhost, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind_address(host: str) -> str:
    """Return the address to bind for host: itself when it is an address, else 127.0.0.1."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return "127.0.0.1"  # localhost and *.localhost: the name resolves here anyway


def free_port(host: str = "127.0.0.1") -> int:
    """Return a loopback port nobody listens on right now."""
    address = _bind_address(host)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


RESPONSE_KEY = "gatehouse.testing.response"


class QuietHandler(WSGIRequestHandler):
    """Log requests at DEBUG through `logging` instead of werkzeug's stderr lines.

    And close the response when the client drops the connection (a browser cancelling a
    stylesheet or script because the LMS removed the frame): werkzeug's own clean-up reads what
    is left of the request first, which raises on a reset connection, so a static file's handle
    stayed open until garbage collection warned about it.
    """

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's name
        logger.debug("%s %s", self.address_string(), message % args)

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        response = (environ or {}).get(RESPONSE_KEY)
        if response is not None:
            response.close()
        super().connection_dropped(error, environ)


class _ClosedOnce:
    """A WSGI response whose close() runs once, whoever calls it first."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._closed = False

    def __iter__(self):
        return iter(self._response)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if hasattr(self._response, "close"):
                self._response.close()


def _closable(wsgi_app: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `wsgi_app` so that QuietHandler can close a response whose client went away."""

    def app(environ: dict, start_response: Callable[..., Any]) -> _ClosedOnce:
        response = environ[RESPONSE_KEY] = _ClosedOnce(wsgi_app(environ, start_response))
        return response

    return app


class LoopbackServer:
    """A threaded werkzeug server on a loopback address, in a daemon thread.

    `host` is the name in `.url` ("127.0.0.1", "localhost", "::1", "127.77.0.1"...); the socket
    binds that address, or 127.0.0.1 for a name, so nothing is reachable from off this machine.
    `port` 0 lets the OS choose. Use it as a context manager, or start() and stop().
    """

    def __init__(
        self,
        wsgi_app: Callable[..., Any],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "loopback-server",
        ssl_context: ssl.SSLContext | None = None,
        request_handler: type[WSGIRequestHandler] = QuietHandler,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"LoopbackServer serves on loopback names or addresses only: {host!r}")
        self.wsgi_app = wsgi_app
        self.host = host
        self.name = name
        self.ssl_context = ssl_context
        self.request_handler = request_handler
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LoopbackServer:
        """Bind the port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = make_server(
            _bind_address(self.host),
            self._port,
            _closable(self.wsgi_app),
            threaded=True,
            request_handler=self.request_handler,
            ssl_context=self.ssl_context,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            name=self.name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def running(self) -> bool:
        """Tell whether the server is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """Return the bound port (the OS's choice when asked for 0), or the one asked for."""
        if self._server is None:
            if self._port:
                return self._port
            raise RuntimeError(f"{self.name} is not started")
        return self._server.server_port

    @property
    def netloc(self) -> str:
        """Return <host>:<port>, an IPv6 address in brackets."""
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """Return http(s)://<host>:<port>, without a trailing slash."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.netloc}"

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
