"""The one outbound HTTP client: every call to a platform goes through `SafeClient`."""

from __future__ import annotations

import errno
import heapq
import http.client
import ipaddress
import itertools
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import certifi
import idna

from . import nesting
from .errors import PlatformUnreachable, UnsafeURL

MAX_REDIRECTS = 3
USER_AGENT = "Gatehouse/0.1 (LTI Dynamic Registration)"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
READ_CHUNK = 64 * 1024
# Headers that must not follow a redirect to another origin (requests drops them too).
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]
AddressPolicy = Callable[[IPAddress], bool]

# Spaces, control characters and backslashes (which browsers read as "/") make parsers disagree
# about where the host ends, so URLs containing them are refused rather than guessed at.
UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
HEADER_TEXT = re.compile(r"[\t\x20-\x7e]*")  # what a header may carry, tabs to tildes
# Characters left alone when re-quoting a path or query, as requests does (requote_uri).
URI_SAFE = "!#$%&'()*+,/:;=?@[]~"

_v4 = ipaddress.IPv4Network
_v6 = ipaddress.IPv6Network
# Address blocks that are not on the public internet (IANA special-purpose registries), each
# with the words the admin reads. Python's `is_global` misses some of these on older versions
# (multicast, NAT64), so the table is explicit; the first match names the reason.
BLOCKED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_v4("0.0.0.0/8"), "an unspecified address (0.0.0.0/8 reaches this machine)"),
    (_v4("10.0.0.0/8"), "a private network address"),
    (_v4("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_v4("127.0.0.0/8"), "a loopback address (this machine)"),
    (_v4("169.254.0.0/16"), "a link-local address (where cloud metadata services live)"),
    (_v4("172.16.0.0/12"), "a private network address"),
    (_v4("192.0.0.0/24"), "a reserved protocol address"),
    (_v4("192.0.2.0/24"), "a documentation address"),
    (_v4("192.88.99.0/24"), "a reserved (deprecated 6to4 relay) address"),
    (_v4("192.168.0.0/16"), "a private network address"),
    (_v4("198.18.0.0/15"), "a benchmarking address"),
    (_v4("198.51.100.0/24"), "a documentation address"),
    (_v4("203.0.113.0/24"), "a documentation address"),
    (_v4("224.0.0.0/4"), "a multicast address"),
    (_v4("255.255.255.255/32"), "the broadcast address"),
    (_v4("240.0.0.0/4"), "a reserved address"),
    (_v6("::/128"), "an unspecified address (it reaches this machine)"),
    (_v6("::1/128"), "a loopback address (this machine)"),
    (_v6("::/96"), "a deprecated IPv4-compatible address"),
    (_v6("::ffff:0:0:0/96"), "a reserved (IPv4-translated) address"),
    (_v6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_v6("100::/64"), "a discard-only address"),
    (_v6("2001:db8::/32"), "a documentation address"),
    (_v6("2001::/23"), "a reserved protocol address (Teredo, benchmarking, ORCHID…)"),
    (_v6("3fff::/20"), "a documentation address"),
    (_v6("fc00::/7"), "a private (unique local) address"),
    (_v6("fe80::/10"), "a link-local address"),
    (_v6("fec0::/10"), "a private (site-local) address"),
    (_v6("ff00::/8"), "a multicast address"),
)
NAT64 = _v6("64:ff9b::/96")
GLOBAL_UNICAST_V6 = _v6("2000::/3")


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
        """Parse the body as JSON; raise ValueError when it is not (nesting.TooDeep included)."""
        return nesting.loads(self.body)


def shown_url(url: str, limit: int = 200) -> str:
    """Return `url` as a message may show it: never its query (where tokens travel), "?…" instead.

    The fragment goes too; what is left is cut at `limit` characters.
    """
    head, query_mark, _ = url.partition("?")
    head = head.partition("#")[0] + ("?…" if query_mark else "")
    return head if len(head) <= limit else head[: limit - 1] + "…"


def address_refusal(ip: IPAddress) -> str | None:
    """Say why an address is not on the public internet, or return None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None:
            embedded = ip.sixtofour
        if embedded is not None:
            # Mapped, NAT64 and 6to4 addresses lead to the IPv4 address inside them.
            reason = address_refusal(embedded)
            return f"an IPv6 form of {embedded}, {reason}" if reason else None
        if ip.teredo is not None:
            server, client = ip.teredo
            for inner in (client, server):
                reason = address_refusal(inner)
                if reason:
                    return f"a Teredo address tunnelling to {inner}, {reason}"
    for network, reason in BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return reason
    if isinstance(ip, ipaddress.IPv6Address) and ip not in GLOBAL_UNICAST_V6:
        return "a reserved address"
    if not ip.is_global:
        return "an address that is not globally routable"
    return None


def is_loopback_address(ip: IPAddress) -> bool:
    """Return True for 127.0.0.0/8 and ::1, also when written as an IPv4-mapped IPv6 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def address_allowed(ip: IPAddress, *, allow_insecure: bool) -> bool:
    """Return True when Gatehouse may connect to `ip`: public, or loopback in development."""
    return address_refusal(ip) is None or (allow_insecure and is_loopback_address(ip))


@lru_cache(maxsize=1024)  # every request asks (the session cookie's attributes), for few hosts
def is_loopback_host(host: str) -> bool:
    """Return True for loopback names and addresses (the only hosts tests may use)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def system_resolver(host: str, port: int) -> list[str]:
    """Look a host name up with the operating system's resolver (getaddrinfo)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@lru_cache(maxsize=1024)  # pure: a registration checks the same few hosts several times
def canonical_host(host: str) -> tuple[str, IPAddress | None]:
    """Return the host as Gatehouse names and resolves it, and its address when it is one.

    Raise ValueError, saying why, for hosts that are not plain names or addresses. Odd IPv4
    spellings (2130706433, 0177.0.0.1, 0x7f.1, 127.1) are read the way browsers and the C
    library read them, so the address checked is the address a connection would reach.
    """
    if "%" in host:
        raise ValueError("it is percent-encoded or carries an IPv6 zone")
    if ":" in host:
        ip = ipaddress.IPv6Address(host)
        return ip.compressed, ip
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError(f"it is not a valid international domain name ({exc})") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]  # "example.com." is "example.com", fully qualified
    if not HOST_NAME.fullmatch(host) or len(host) > 253:
        raise ValueError("it contains characters a host name cannot have")
    if any(len(label) > 63 for label in host.split(".")):
        raise ValueError("one of its labels is longer than 63 characters")
    ipv4 = _ipv4_number(host)
    if ipv4 is not None:
        return str(ipv4), ipv4
    return host, None


def _ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    # The WHATWG URL standard's rule: a host whose last label is a number is an IPv4 address,
    # in up to four parts, each decimal, octal (leading 0) or hex (0x), the last part filling
    # the remaining bytes. Anything else ending in a number is not a valid host.
    labels = host.split(".")
    if not re.fullmatch(r"[0-9]+|0x[0-9a-f]*", labels[-1]):
        return None
    if len(labels) > 4:
        raise ValueError("it ends in a number but is not an IPv4 address")
    numbers = [_ipv4_part(label) for label in labels]
    last_limit = 256 ** (5 - len(numbers))
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= last_limit:
        raise ValueError("it ends in a number but is not an IPv4 address")
    value = numbers[-1]
    for i, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _ipv4_part(label: str) -> int:
    if re.fullmatch(r"0x[0-9a-f]*", label):
        return int(label[2:] or "0", 16)
    if re.fullmatch(r"0[0-7]+", label):
        return int(label, 8)
    if re.fullmatch(r"0|[1-9][0-9]*", label):
        return int(label, 10)
    raise ValueError("it ends in a number but is not an IPv4 address")


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the pinned addresses) and what to call the host."""

    url: str
    scheme: str
    host: str
    port: int
    request_target: str
    addresses: tuple[IPAddress, ...]

    @property
    def origin(self) -> tuple[str, str, int]:
        """Return (scheme, host, port), what redirects compare to keep credentials."""
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        """Return the Host header value: the host, bracketed when IPv6, with a non-default port."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != DEFAULT_PORTS[self.scheme]:
            return f"{name}:{self.port}"
        return name


class _Deadline:
    """Shut the open socket down when the request's time is up, whatever it is blocked on.

    Socket timeouts bound each read, not their sum: a platform that sends one byte a second
    (in the TLS handshake, the headers or the body) would never trip them. The watchdog shuts
    the socket down when the whole exchange's time is up; the blocked read then fails and is
    reported as the deadline.
    """

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds
        self.expired = False
        self.cancelled = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        _WATCHDOG.watch(self)

    def remaining(self) -> float:
        """Return the seconds left, never below zero."""
        return max(0.0, self.ends - time.monotonic())

    def watch(self, sock: socket.socket | None) -> None:
        """Make `sock` the socket to shut down at the deadline (None before closing it)."""
        with self._lock:
            self._sock = sock
            if sock is not None and self.expired:
                _shutdown(sock)

    def cancel(self) -> None:
        """Stand the watchdog down for this request; it is over."""
        self.cancelled = True
        self.watch(None)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._sock is not None:
                _shutdown(self._sock)


class _Watchdog:
    """One thread per process that expires every outbound request's `_Deadline` on time.

    A `threading.Timer` per request started and ended a thread for each of a registration's
    outbound requests; one sleeper on a heap of deadlines does the same work. Started on first
    use, and again in a forked child (a gunicorn worker), where the parent's thread is gone.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._pid: int | None = None

    def watch(self, deadline: _Deadline) -> None:
        """Expire `deadline` when its time comes, unless it was cancelled by then."""
        with self._wake:
            if self._pid != os.getpid():
                self._pid, self._heap = os.getpid(), []
                threading.Thread(target=self._run, name="gatehouse-deadlines", daemon=True).start()
            heapq.heappush(self._heap, (deadline.ends, next(self._order), deadline))
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                due = heapq.heappop(self._heap)[2]
            due._expire()


_WATCHDOG = _Watchdog()


def _shutdown(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown, also for a TLS socket: it wakes the reader at once and
        # leaves the TLS state to the thread that owns it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a socket Gatehouse opened itself, to an address it checked."""

    def __init__(self, sock: socket.socket, target: Target) -> None:
        super().__init__(target.host, target.port)
        self.sock = sock

    def connect(self) -> None:
        """Refuse to reconnect: a new connection would need a new, checked resolution."""
        raise http.client.NotConnected("a pinned connection cannot reconnect")


@lru_cache(maxsize=8)
def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    # Verify certificates and host names as requests did, against certifi's CA bundle unless
    # another is given; TLS 1.2 is the least Python's default context accepts.
    return ssl.create_default_context(cafile=ca_bundle or certifi.where())


class SafeClient:
    """Fetch platform URLs with timeouts, size caps, and address rules against SSRF.

    How a request is made: parse the URL strictly and spell its host canonically; resolve the
    host once; refuse unless every address it resolved to is allowed (public, or loopback in
    development); then open the TCP connection ourselves to one of those checked addresses.
    TLS runs over that socket with `server_hostname` set to the URL's host, so SNI and the
    certificate check are for the name, not the address, and the Host header names the host
    too. Nothing resolves the name again between the check and the connection, so a DNS
    answer that changes (rebinding) cannot send the request elsewhere; each redirect is a new
    URL and goes through all of this again.

    The HTTP exchange itself is the standard library's `http.client` over that socket, rather
    than requests: requests resolves names inside urllib3's connection pool, reads proxies,
    `.netrc` and CA paths from the environment, and keeps cookies, none of which we want,
    and owning the socket is what lets the deadline shut it down.

    `resolver` (host, port -> addresses) and `is_allowed_address` replace the system resolver
    and the address rules in tests; `ca_bundle` is a PEM file of trusted CAs.
    """

    def __init__(
        self,
        *,
        allow_insecure: bool = False,
        connect_timeout: float = 5.0,
        deadline: float = 10.0,
        max_bytes: int = 1024 * 1024,
        resolver: Resolver | None = None,
        is_allowed_address: AddressPolicy | None = None,
        ca_bundle: str | None = None,
    ):
        self.allow_insecure = allow_insecure
        self.connect_timeout = connect_timeout
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.resolver = resolver or system_resolver
        self.ca_bundle = ca_bundle
        self._address_policy = is_allowed_address

    def is_allowed_address(self, ip: IPAddress) -> bool:
        """Return True when a request may connect to `ip`."""
        if self._address_policy is not None:
            return self._address_policy(ip)
        return address_allowed(ip, allow_insecure=self.allow_insecure)

    # --- checking URLs ------------------------------------------------------------------------

    def check_url(self, url: str, what: str) -> None:
        """Raise UnsafeURL when `url` is not one Gatehouse may fetch."""
        self._target(url, what, self.deadline)

    def _target(self, url: str, what: str, time_left: float) -> Target:
        """Parse, resolve and check `url`; return where to connect."""
        shown = shown_url(url)
        if UNSAFE_URL_CHARS.search(url):
            raise UnsafeURL(
                f"The {what} {shown!r} contains spaces, control characters or backslashes.",
                rule="url-syntax",
            )
        try:
            parts = urlsplit(url)
            port = parts.port
            hostname = parts.hostname
        except ValueError as exc:
            raise UnsafeURL(
                f"The {what} {shown!r} is not a valid URL ({exc}).", rule="url-syntax"
            ) from None
        scheme = parts.scheme.lower()
        if scheme and scheme not in DEFAULT_PORTS:
            raise UnsafeURL(
                f"The {what} {shown!r} uses {scheme}:, but Gatehouse only fetches http(s) URLs.",
                rule="url-scheme",
            )
        if not scheme or not hostname:
            raise UnsafeURL(
                f"The {what} {shown!r} is not an absolute http(s) URL.", rule="url-absolute"
            )
        if "@" in parts.netloc:
            raise UnsafeURL(
                f"The {what} contains a user name or password, which Gatehouse never sends.",
                rule="url-userinfo",
            )
        if port == 0:
            raise UnsafeURL(f"The {what} {shown!r} has port 0.", rule="url-syntax")
        if parts.netloc.startswith("[") and ":" not in hostname:
            raise UnsafeURL(
                f"The {what} {shown!r} has a bracketed host that is not an IPv6 address.",
                rule="url-host",
            )
        try:
            host, literal = canonical_host(hostname)
        except ValueError as exc:
            raise UnsafeURL(
                f"The {what} host {hostname!r} is not a plain host name or address: {exc}.",
                rule="url-host",
            ) from None
        if scheme != "https" and not self.allow_insecure:
            raise UnsafeURL(
                f"The {what} {shown!r} does not use https. Platforms must be served over https.",
                rule="https-only",
            )
        port = port or DEFAULT_PORTS[scheme]
        if literal is not None:
            addresses: tuple[IPAddress, ...] = (literal,)
        elif host in LOOPBACK_NAMES or host.endswith(".localhost"):
            # RFC 6761: localhost names are this machine, whatever a resolver would say.
            addresses = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))
        else:
            addresses = self._resolve(host, port, what, time_left)
        for address in addresses:
            if not self.is_allowed_address(address):
                reason = address_refusal(address) or "an address Gatehouse may not contact"
                where = (
                    f"points at {address}"
                    if literal is not None
                    else f"host {host!r} resolves to {address}"
                )
                raise UnsafeURL(
                    f"The {what} {where}, {reason}. Gatehouse only contacts platforms on "
                    "public internet addresses.",
                    rule="public-address-only",
                )
        netloc = f"[{host}]" if ":" in host else host
        if port != DEFAULT_PORTS[scheme]:
            netloc += f":{port}"
        path = quote(parts.path, safe=URI_SAFE) or "/"
        query = f"?{quote(parts.query, safe=URI_SAFE)}" if parts.query else ""
        return Target(
            url=f"{scheme}://{netloc}{path}{query}",
            scheme=scheme,
            host=host,
            port=port,
            request_target=path + query,
            addresses=addresses,
        )

    def _resolve(self, host: str, port: int, what: str, time_left: float) -> tuple[IPAddress, ...]:
        """Resolve `host` once, within the time left; return its distinct addresses in order."""
        answer: list[Any] = []
        done = threading.Event()

        def lookup() -> None:
            try:
                answer.append(list(self.resolver(host, port)))
            except Exception as exc:  # handed to the caller's thread below
                answer.append(exc)
            finally:
                done.set()

        # getaddrinfo has no timeout of its own; a lookup that hangs is left to finish alone.
        threading.Thread(target=lookup, name="gatehouse-dns", daemon=True).start()
        if not done.wait(max(0.0, time_left)):
            raise PlatformUnreachable(
                f"The {what} host {host!r} could not be looked up in time (DNS is too slow).",
                rule="dns",
            )
        (result,) = answer
        if isinstance(result, OSError | UnicodeError):
            result = []
        elif isinstance(result, Exception):
            raise result
        addresses: list[IPAddress] = []
        for text in result:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise PlatformUnreachable(
                    f"The {what} host {host!r} resolved to {text!r}, which is not an address.",
                    rule="dns",
                ) from None
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise PlatformUnreachable(
                f"The {what} host {host!r} could not be found (DNS lookup failed).",
                rule="dns",
            )
        return tuple(addresses)

    # --- requests -----------------------------------------------------------------------------

    def get(self, url: str, *, headers: dict[str, str], what: str) -> Response:
        """GET a URL, following at most three redirects, each one checked."""
        return self._send("GET", url, headers=headers, body=None, what=what)

    def post_json(self, url: str, payload: Any, *, headers: dict[str, str], what: str) -> Response:
        """POST a JSON document; redirects are not followed for POSTs."""
        body = json.dumps(payload).encode()
        headers = {**headers, "Content-Type": "application/json"}
        return self._send("POST", url, headers=headers, body=body, what=what)

    def post_form(
        self, url: str, fields: dict[str, str], *, headers: dict[str, str], what: str
    ) -> Response:
        """POST an application/x-www-form-urlencoded body (OAuth 2 token requests)."""
        body = urlencode(fields).encode()
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        return self._send("POST", url, headers=headers, body=body, what=what)

    def _send(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None, what: str
    ) -> Response:
        for name, value in headers.items():
            if not HEADER_TEXT.fullmatch(f"{name}{value}"):
                raise UnsafeURL(
                    f"The request to the {what} would carry a header ({name}) with line breaks, "
                    "control characters or non-ASCII text, which Gatehouse never sends.",
                    rule="request-header",
                )
        deadline = _Deadline(self.deadline)
        try:
            visited: list[str] = []
            target = self._target(url, what, deadline.remaining())
            origin = target.origin
            for hops in range(MAX_REDIRECTS + 1):
                visited.append(target.url)
                if target.origin != origin:
                    headers = {
                        k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS
                    }
                response, location = self._once(method, target, headers, body, deadline, what)
                if location is None:
                    return response
                if hops == MAX_REDIRECTS:
                    break
                target = self._follow(target, location, visited, deadline, what)
            raise PlatformUnreachable(
                f"The {what} redirected more than {MAX_REDIRECTS} times.", rule="redirect-limit"
            )
        finally:
            deadline.cancel()

    def _follow(
        self, current: Target, location: str, visited: list[str], deadline: _Deadline, what: str
    ) -> Target:
        """Check where a redirect leads, as a new URL from an untrusted source."""
        what_next = f"address the {what} redirected to"
        try:
            url = urljoin(current.url, location)
        except ValueError:
            url = location  # _target names what is wrong with it
        if current.scheme == "https" and url[:5].lower() == "http:":
            shown = shown_url(url)
            raise UnsafeURL(
                f"The {what} redirected from https to plain http ({shown!r}), which would "
                "expose the request.",
                rule="redirect-downgrade",
            )
        target = self._target(url, what_next, deadline.remaining())
        if target.url in visited:
            raise PlatformUnreachable(
                f"The {what} redirected in a loop (back to {shown_url(target.url)}).",
                rule="redirect-loop",
            )
        return target

    def _once(
        self,
        method: str,
        target: Target,
        headers: dict[str, str],
        body: bytes | None,
        deadline: _Deadline,
        what: str,
    ) -> tuple[Response, str | None]:
        """Make one request to the pinned address; return the response and where it redirects."""
        sock = self._connect(target, deadline, what)
        connection = _PinnedConnection(sock, target)
        raw: http.client.HTTPResponse | None = None
        sent = False  # from here on, the server may have received the request
        try:
            if target.scheme == "https":
                connection.sock = self._tls(sock, target, what)
                deadline.watch(connection.sock)  # the raw socket now belongs to the TLS one
                connection.sock.do_handshake()
            sent = True
            connection.request(
                method,
                target.request_target,
                body=body,
                headers={
                    "Host": target.host_header,
                    "User-Agent": USER_AGENT,
                    "Accept-Encoding": "identity",  # no decompression bombs: the cap is the size
                    "Connection": "close",
                    **headers,
                },
            )
            raw = connection.getresponse()
            location = _header_text(raw.getheader("Location"))
            if method == "GET" and raw.status in REDIRECT_STATUSES and location:
                response_body = b""
            else:
                location = None
                response_body = self._read_body(raw, what)
            if deadline.expired:
                raise self._too_slow(what)
            response = Response(
                status=raw.status,
                content_type=raw.getheader("Content-Type") or "",
                body=response_body,
                url=target.url,
                headers={k.lower(): v for k, v in raw.getheaders()},
            )
            return response, location
        except UnsafeURL:
            raise
        except PlatformUnreachable as error:
            error.sent = sent
            raise
        except (OSError, http.client.HTTPException) as exc:
            error = self._failure(exc, target, deadline, what)
            error.sent = sent
            raise error from None
        finally:
            deadline.watch(None)
            if raw is not None:
                raw.close()
            connection.close()

    def _connect(self, target: Target, deadline: _Deadline, what: str) -> socket.socket:
        """Open a TCP connection to the first checked address that answers."""
        failure: OSError | None = None
        for address in target.addresses:
            remaining = deadline.remaining()
            if remaining <= 0:
                break
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(min(self.connect_timeout, remaining))
            try:
                sock.connect((str(address), target.port))
            except OSError as exc:
                sock.close()
                failure = exc
                continue
            sock.settimeout(deadline.remaining() or 0.001)
            deadline.watch(sock)
            return sock
        if isinstance(failure, TimeoutError):
            raise PlatformUnreachable(
                f"Connecting to the {what} at {_origin(target)} timed out.",
                rule="connect-timeout",
            )
        if failure is None:
            raise self._too_slow(what)
        raise PlatformUnreachable(
            f"The {what} at {_origin(target)} could not be reached: {_reason(failure)}.",
            rule="connection",
        )

    def _tls(self, sock: socket.socket, target: Target, what: str) -> ssl.SSLSocket:
        """Wrap the pinned socket in TLS that verifies the certificate for the URL's host."""
        try:
            return _tls_context(self.ca_bundle).wrap_socket(
                sock, server_hostname=target.host, do_handshake_on_connect=False
            )
        except (OSError, ValueError) as exc:
            sock.close()
            raise PlatformUnreachable(
                f"A secure connection to the {what} at {_origin(target)} could not be set up "
                f"({exc}).",
                rule="tls",
            ) from None

    def _read_body(self, raw: http.client.HTTPResponse, what: str) -> bytes:
        """Read the body up to the size cap; refuse at once when it announces more."""
        if raw.length is not None and raw.length > self.max_bytes:
            raise self._too_big(what, f"announced {raw.length} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = raw.read(READ_CHUNK)
            if not chunk:
                if raw.length:  # http.client returns short bodies without complaint
                    raise http.client.IncompleteRead(b"".join(chunks), raw.length)
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_big(what, f"sent more than {self.max_bytes} bytes")
            chunks.append(chunk)

    def _failure(
        self, exc: Exception, target: Target, deadline: _Deadline, what: str
    ) -> PlatformUnreachable:
        """Name what went wrong on the wire."""
        if deadline.expired or isinstance(exc, TimeoutError):
            return self._too_slow(what)
        origin = _origin(target)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return PlatformUnreachable(
                f"The {what} at {origin} did not present a valid certificate for {target.host} "
                f"({exc.verify_message}).",
                rule="tls",
            )
        if isinstance(exc, ssl.SSLError):
            return PlatformUnreachable(
                f"The secure connection to the {what} at {origin} failed "
                f"({exc.reason or type(exc).__name__}).",
                rule="tls",
            )
        if isinstance(exc, http.client.RemoteDisconnected):
            reason = "it closed the connection without answering"
        elif isinstance(exc, http.client.IncompleteRead):
            reason = "it closed the connection before sending its whole answer"
        elif isinstance(exc, http.client.HTTPException):
            return PlatformUnreachable(
                f"The {what} at {origin} did not answer in HTTP ({type(exc).__name__}).",
                rule="http-protocol",
            )
        else:
            reason = _reason(exc)
        return PlatformUnreachable(
            f"The {what} at {origin} could not be reached: {reason}.", rule="connection"
        )

    def _too_big(self, what: str, how: str) -> PlatformUnreachable:
        return PlatformUnreachable(
            f"The {what} {how}; Gatehouse accepts at most {self.max_bytes} bytes.",
            rule="response-size",
        )

    def _too_slow(self, what: str) -> PlatformUnreachable:
        return PlatformUnreachable(
            f"The {what} did not answer within {self.deadline:g} seconds.", rule="deadline"
        )


def _header_text(value: str | None) -> str | None:
    """Read a header as UTF-8, as servers send it (http.client decodes headers as Latin-1)."""
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _origin(target: Target) -> str:
    return f"{target.scheme}://{target.host_header}"


REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in REASONS:
        return REASONS[exc.errno]
    return type(exc).__name__
