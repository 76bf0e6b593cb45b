"""Serve a WSGI app for real on loopback, in a daemon thread, for browser and SDK tests."""

import logging
import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

logger = logging.getLogger(__name__)

# The two names of this machine's loopback interface. Browsers treat them as different *sites*,
# which is how tests put the LMS (127.0.0.1) and the tool (localhost) cross-site to each other.
URL_HOSTS = ("127.0.0.1", "localhost")


class QuietHandler(WSGIRequestHandler):
    """Log requests at DEBUG through `logging` instead of werkzeug's stderr lines."""

    def log(self, type, message, *args):
        logger.debug("%s %s", self.address_string(), message % args)


class LoopbackServer:
    """A threaded werkzeug server on 127.0.0.1, port chosen by the OS.

    `host` only picks the name used in `.url` ("127.0.0.1" or "localhost"); the socket is
    always bound to 127.0.0.1, so nothing is reachable from off this machine.
    """

    def __init__(self, wsgi_app, host: str = "127.0.0.1", name: str = "loopback-server"):
        if host not in URL_HOSTS:
            raise ValueError(f"host must be one of {URL_HOSTS}, got {host!r}")
        self.wsgi_app = wsgi_app
        self.host = host
        self.name = name
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self):
        """Bind a free port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = make_server(
            "127.0.0.1", 0, self.wsgi_app, threaded=True, request_handler=QuietHandler
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
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        """Return http://<host>:<port>, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
