"""The one outbound HTTP client: every call to a platform goes through `SafeClient`."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from .errors import PlatformUnreachable, UnsafeURL

MAX_REDIRECTS = 3
USER_AGENT = "Gatehouse/0.1 (LTI Dynamic Registration)"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass
class Response:
    """What a platform answered: status, content type and the (capped) body."""

    status: int
    content_type: str
    body: bytes
    url: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """Return the body decoded as UTF-8, replacing undecodable bytes."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Parse the body as JSON; raise ValueError when it is not."""
        return json.loads(self.body)


def is_public_address(address: str) -> bool:
    """Return True when an IP address is globally routable (not private, loopback, ...)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def is_loopback_host(host: str) -> bool:
    """Return True for loopback names and addresses (the only hosts tests may use)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SafeClient:
    """Fetch platform URLs with timeouts, size caps, and address rules against SSRF."""

    def __init__(
        self,
        *,
        allow_insecure: bool = False,
        connect_timeout: float = 5.0,
        deadline: float = 10.0,
        max_bytes: int = 1024 * 1024,
    ):
        self.allow_insecure = allow_insecure
        self.connect_timeout = connect_timeout
        self.deadline = deadline
        self.max_bytes = max_bytes

    def check_url(self, url: str, what: str) -> None:
        """Raise UnsafeURL when `url` is not one Gatehouse may fetch."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise UnsafeURL(f"The {what} {url!r} is not a valid URL.", rule="url-syntax") from None
        if parts.scheme not in ("http", "https") or not host:
            raise UnsafeURL(
                f"The {what} {url!r} is not an absolute http(s) URL.", rule="url-absolute"
            )
        if parts.username is not None or parts.password is not None:
            raise UnsafeURL(
                f"The {what} contains a user name or password, which Gatehouse never sends.",
                rule="url-userinfo",
            )
        if self.allow_insecure:
            return
        if parts.scheme != "https":
            raise UnsafeURL(
                f"The {what} {url!r} does not use https. Platforms must be served over https.",
                rule="https-only",
            )
        for address in self._resolve(host, parts.port or 443, what):
            if not is_public_address(address):
                raise UnsafeURL(
                    f"The {what} host {host!r} resolves to {address}, a private, loopback or "
                    "otherwise non-public address.",
                    rule="public-address-only",
                )

    def _resolve(self, host: str, port: int, what: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise PlatformUnreachable(
                f"The {what} host {host!r} could not be found (DNS lookup failed).",
                rule="dns",
            ) from None
        return sorted({info[4][0] for info in infos})

    def get(self, url: str, *, headers: dict[str, str], what: str) -> Response:
        """GET a URL, following at most three redirects, each one checked."""
        return self._send("GET", url, headers=headers, body=None, what=what)

    def post_json(self, url: str, payload: Any, *, headers: dict[str, str], what: str) -> Response:
        """POST a JSON document; redirects are not followed for POSTs."""
        body = json.dumps(payload).encode()
        headers = {**headers, "Content-Type": "application/json"}
        return self._send("POST", url, headers=headers, body=body, what=what)

    def _send(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None, what: str
    ) -> Response:
        started = time.monotonic()
        headers = {"User-Agent": USER_AGENT, **headers}
        for _hop in range(MAX_REDIRECTS + 1):
            self.check_url(url, what)
            response = self._once(method, url, headers, body, started, what)
            if method != "GET" or response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("location")
            if not location:
                return response
            url = urljoin(url, location)
        raise PlatformUnreachable(
            f"The {what} redirected more than {MAX_REDIRECTS} times.", rule="redirect-limit"
        )

    def _once(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        started: float,
        what: str,
    ) -> Response:
        remaining = self.deadline - (time.monotonic() - started)
        try:
            with requests.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=(min(self.connect_timeout, remaining), remaining),
                allow_redirects=False,
                stream=True,
            ) as raw:
                chunks: list[bytes] = []
                size = 0
                for chunk in raw.iter_content(16384):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PlatformUnreachable(
                            f"The {what} answered with more than {self.max_bytes} bytes.",
                            rule="response-size",
                        )
                    if time.monotonic() - started > self.deadline:
                        raise self._too_slow(what)
                    chunks.append(chunk)
                return Response(
                    status=raw.status_code,
                    content_type=raw.headers.get("Content-Type", ""),
                    body=b"".join(chunks),
                    url=url,
                    headers={k.lower(): v for k, v in raw.headers.items()},
                )
        except requests.exceptions.ConnectTimeout:
            raise PlatformUnreachable(
                f"Connecting to the {what} at {_origin(url)} timed out.", rule="connect-timeout"
            ) from None
        except requests.exceptions.Timeout:
            raise self._too_slow(what) from None
        except requests.exceptions.ConnectionError as exc:
            raise PlatformUnreachable(
                f"The {what} at {_origin(url)} could not be reached: {_reason(exc)}.",
                rule="connection",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise PlatformUnreachable(
                f"The request to the {what} failed: {_reason(exc)}.", rule="connection"
            ) from None

    def _too_slow(self, what: str) -> PlatformUnreachable:
        return PlatformUnreachable(
            f"The {what} did not answer within {self.deadline:g} seconds.", rule="deadline"
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(exc: Exception) -> str:
    text = str(exc.__context__ or exc)
    for marker in ("Connection refused", "Connection reset", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
