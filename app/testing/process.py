"""A server process on loopback (gunicorn serving Gatehouse, or any other): start, wait, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO

from app.testing.serving import free_port

# The checkout: where wsgi.py and bench/ are, so gunicorn can import "wsgi:app".
CHECKOUT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"

# The developer's settings a server under test must not inherit.
PRIVATE_ENV = (
    "GATEHOUSE_",
    "DATABASE_URL",
    "SECRET_KEY",
    "REDIS_URL",
    "DYNO",
    "WEB_CONCURRENCY",
    "PORT",
    "HOST",
)


class ServerFailed(RuntimeError):
    """A server under test did not start or stopped answering."""


def base_environment() -> dict[str, str]:
    """Return this process's environment without any Gatehouse settings of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE_ENV)}


class ServerProcess(ABC):
    """A server process listening on 127.0.0.1: start it, wait until it answers, stop it.

    Subclasses say what to run (command(), environment(), cwd()) and which path answers
    `health_status` once the server is up. Its stderr goes to `log_path` (a temporary file when
    none is given), whose end `log_tail()` returns for error messages.
    """

    health_path = "/"
    health_status = 200

    def __init__(
        self,
        label: str = "server",
        log_path: Path | None = None,
        *,
        url_host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.label = label
        self.log_path = log_path
        self.port = port or free_port()
        self.url = f"http://{url_host}:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @abstractmethod
    def command(self) -> list[str]:
        """Return the command line that starts the server."""

    def environment(self) -> dict[str, str]:
        return base_environment()

    def cwd(self) -> Path:
        return CHECKOUT

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start the process and return once its health path answers."""
        self._log = open(self.log_path, "wb") if self.log_path else tempfile.TemporaryFile()
        self.process = subprocess.Popen(  # noqa: S603 - our own fixed command lines
            self.command(),
            cwd=self.cwd(),
            env=self.environment(),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if self._answers():
                return self
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise ServerFailed(f"{self.label} did not start:\n{tail}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.health_path, timeout=5) as answer:  # noqa: S310 - our own http URL
                return answer.status == self.health_status
        except urllib.error.HTTPError as error:
            return error.code == self.health_status
        except (OSError, ValueError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after `timeout` seconds)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, size: int = 3000) -> str:
        """Return the end of the server's stderr, for error messages."""
        try:
            if self._log is not None:
                length = os.fstat(self._log.fileno()).st_size
                start = max(0, length - size)
                # pread leaves the offset the child shares with us alone
                return os.pread(self._log.fileno(), length - start, start).decode(errors="replace")
            if self.log_path is not None:
                return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            pass
        return "(no log)"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.label} is not started")
        return self.process.pid


class Gunicorn(ServerProcess):
    """A Flask app under gunicorn with Gatehouse's own settings (app/gunicorn_config.py).

    `env` is laid over the developer-free environment; HOST, PORT, WEB_CONCURRENCY and (when
    given) GUNICORN_THREADS come from the arguments.
    """

    health_path = "/healthz"

    def __init__(
        self,
        app: str = "wsgi:app",
        env: dict[str, str] | None = None,
        *,
        workers: int = 1,
        threads: int | None = None,
        label: str = "gunicorn",
        log_path: Path | None = None,
        url_host: str = "127.0.0.1",
    ) -> None:
        super().__init__(label, log_path, url_host=url_host)
        self.app = app
        self.extra_env = dict(env or {})
        self.workers = workers
        self.threads = threads

    def command(self) -> list[str]:
        return [str(GUNICORN), "-c", "python:app.gunicorn_config", self.app]

    def environment(self) -> dict[str, str]:
        threads = {} if self.threads is None else {"GUNICORN_THREADS": str(self.threads)}
        return {
            **base_environment(),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(self.workers),
            **threads,
            **self.extra_env,
        }
