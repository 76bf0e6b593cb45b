"""A real OpenID Provider for sign-in tests: panva's oidc-provider (Node), from tests/support/oidc.

    with OidcProvider("tool", "tool-secret", rp.url + "/callback") as op:
        oauth.register("idp", server_metadata_url=op.metadata_url, ...)
        ...
        page.goto(rp.url + "/login")
        sign_in(page, "alice")          # -> alice@example.org, "User alice", email_verified

The provider accepts any login and password (devInteractions). It puts email and name in UserInfo
only, not in the ID token, as a real provider may: relying-party code must call UserInfo.
"""

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from app.testing import free_port

from . import required

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
NPM_STEP = "npm ci --prefix tests/support/oidc"
START_TIMEOUT = 15  # seconds; it takes about 0.3 s here
ANY_PASSWORD = "any-password"  # devInteractions accept any password


def unavailable_reason() -> str | None:
    """Return why the provider cannot run here (no node, no node_modules), or None."""
    if shutil.which("node") is None:
        return required("node is not installed (the test OpenID Provider needs Node.js 20+)")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return required(f"the test OpenID Provider's packages are missing: run `{NPM_STEP}`")
    return None


class OidcProviderError(RuntimeError):
    """The test OpenID Provider could not be started."""


class OidcProvider:
    """A panva oidc-provider process on 127.0.0.1 with one confidential client.

    The client uses client_secret_basic, the authorization_code grant and PKCE (S256, required).
    Scopes: openid -> sub; email -> email, email_verified; profile -> name. Any login is accepted
    and becomes the `sub`; its email is `<login>@example.org` (verified) and its name
    `User <login>`, unless `accounts` gives other claims for that login, e.g.
    `{"bob": {"email": "bob@school.example", "email_verified": False}}`.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        host="localhost",
        accounts: dict[str, dict] | None = None,
    ):
        if host not in ("localhost", "127.0.0.1"):
            raise ValueError("host must be 'localhost' or '127.0.0.1' (it listens on loopback)")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.host = host
        self.accounts = dict(accounts or {})
        self.port: int | None = None
        self.output: list[str] = []  # the provider's stdout and stderr lines, for diagnostics
        self._process: subprocess.Popen | None = None
        self._readers: list[threading.Thread] = []
        self._listening = threading.Event()

    @property
    def issuer(self) -> str:
        if self.port is None:
            raise RuntimeError("OidcProvider is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def metadata_url(self) -> str:
        """Return the discovery document URL (Authlib's `server_metadata_url`)."""
        return self.issuer + "/.well-known/openid-configuration"

    def start(self) -> "OidcProvider":
        """Spawn `node idp.mjs` on a free port and wait until it prints "listening"."""
        if self._process is not None:
            return self
        reason = unavailable_reason()
        if reason:
            raise OidcProviderError(reason)
        self.port = free_port()
        env = {
            **os.environ,
            "ISSUER": self.issuer,
            "PORT": str(self.port),
            "CLIENT_ID": self.client_id,
            "CLIENT_SECRET": self.client_secret,
            "REDIRECT_URI": self.redirect_uri,
            "ACCOUNTS": json.dumps(self.accounts),
            "NO_COLOR": "1",
        }
        self._listening.clear()
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, our own script
            [shutil.which("node"), "idp.mjs"],
            cwd=OIDC_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self._process.stdout, self._process.stderr)
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                status = self._process.poll()
                self.stop()
                what = f"exited with status {status}" if status is not None else "timed out"
                log = "\n".join(self.output[-20:])
                raise OidcProviderError(
                    f"the test OpenID Provider {what} before listening "
                    f"(if packages are missing, run `{NPM_STEP}`):\n{log}"
                )
        return self

    def _read(self, stream) -> None:
        for line in stream:
            line = line.rstrip("\n")
            self.output.append(line)
            if line == "listening":
                self._listening.set()

    def stop(self) -> None:
        """Terminate the provider process (only the one this object started)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for reader in self._readers:
            reader.join(timeout=2)
        for stream in (process.stdout, process.stderr):
            stream.close()
        self._readers = []

    def __enter__(self) -> "OidcProvider":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def sign_in(self, page, login: str, timeout: float = 10_000) -> None:
        """Sign in on this provider's login page that `page` shows; see `sign_in`."""
        sign_in(page, login, timeout=timeout)


def sign_in(page, login: str, password: str = ANY_PASSWORD, timeout: float = 10_000) -> None:
    """Fill the provider's login form in a Playwright page, submit it, and consent if asked.

    `page` must be showing the provider's login form (after the relying party's redirect).
    Returns once the browser has left the provider's pages, normally at the redirect_uri.
    `timeout` is in milliseconds, like Playwright's.
    """
    form = page.locator('form:has(input[name="prompt"][value="login"])')
    form.wait_for(timeout=timeout)
    form.locator('input[name="login"]').fill(login)
    form.locator('input[name="password"]').fill(password)
    with page.expect_navigation(timeout=timeout):
        form.locator('button[type="submit"]').click()
    consent = page.locator('form:has(input[name="prompt"][value="consent"])')
    if consent.count():
        with page.expect_navigation(timeout=timeout):
            consent.locator('button[type="submit"]').click()
