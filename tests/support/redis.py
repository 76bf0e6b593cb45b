"""A private, throw-away redis-server for the tests of shared rate limits.

It listens on 127.0.0.1 at a free port, keeps nothing on disk (no RDB snapshots, no append-only
file) and runs from a temporary folder; it never touches a system Redis. Without redis-server
the Redis tests are skipped, unless GATEHOUSE_REQUIRE_REDIS is set (CI), which makes that a
failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import redis

from app.testing import free_port

# Read once at import: the suite's clean_environment fixture empties GATEHOUSE_* per test.
REQUIRED = bool(os.environ.get("GATEHOUSE_REQUIRE_REDIS"))


class Unavailable(Exception):
    """Redis cannot run here (no redis-server, or it would not start)."""


class RedisServer:
    """One redis-server process: start, flush, kill, stop."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.root = tempfile.mkdtemp(prefix="gatehouse-redis-")
        self.log = os.path.join(self.root, "server.log")
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, port: int | None = None, timeout: float = 10.0) -> RedisServer:
        """Start the server (on `port`, or a free one) and return once it answers PING."""
        if not os.access(self.binary, os.X_OK):
            raise Unavailable("no redis-server (Debian package redis-server)")
        for _attempt in range(3):  # another process may take the port between check and start
            self.port = port or free_port()
            self.process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
                [
                    self.binary,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self.root,
                    "--logfile",
                    self.log,
                    "--daemonize",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                if self.answers():
                    return self
                time.sleep(0.05)
            self.kill()
        raise Unavailable(f"redis-server would not start; see {self.log}")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def flush(self) -> None:
        """Forget every counter: each test starts with an empty database."""
        self.client().flushall()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
