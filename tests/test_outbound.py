"""SafeClient against hostile URLs and misbehaving platforms, over real sockets on loopback.

Production mode needs https and a public address, and there is no internet here. So the tests
run a real TLS platform on 127.77.0.1 with a certificate for `platform.example` (and a few
other names) signed by a throwaway CA, and give the client two injected seams:

* `resolver`: an offline DNS table, so `platform.example` resolves to 127.77.0.1;
* `is_allowed_address`: the production address rules plus one exception, 127.77.0.1 itself,
  which stands in for a public address. Every other loopback or private address is still
  refused by the real rules.

Everything after those two answers is the production code path: the client checks every
address, opens its own socket to the checked one, runs TLS with SNI and certificate checks on
the host name, and sends `Host: platform.example:<port>`. A request that went anywhere but
the pinned address would not reach the platform; one that verified the address instead of
the name would fail the certificate check.
"""

import html
import ipaddress
import json
import re
import select
import socket
import ssl
import struct
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from werkzeug.wrappers import Request, Response

from app.lti.constants import PLATFORM_CONFIGURATION
from app.lti.discovery import get_openid_config, validate_openid_config
from app.lti.errors import (
    InvalidRegistrationResponse,
    OutcomeUnknown,
    PlatformConfigError,
    PlatformRefused,
    PlatformUnreachable,
    RegistrationError,
    UnsafeURL,
)
from app.lti.http import SafeClient, address_allowed
from app.lti.registration import (
    build_registration_request,
    parse_registration_response,
    register_tool_in_platform,
    resolve_tool,
)
from app.testing import LoopbackServer

STAND_IN = ipaddress.ip_address("127.77.0.1")  # plays a public address (see module docstring)
CERT_NAMES = ("platform.example", "other.example", "rebind.example")
DNS = {
    "platform.example": ["127.77.0.1"],
    "other.example": ["127.77.0.1"],
    "wrong.example": ["127.77.0.1"],  # not in the certificate
    "loopback.example": ["127.0.0.1"],
    "v6loop.example": ["::1"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": ["93.184.215.14", "10.0.0.7"],
}
DEADLINE = 1.0
CONNECT_TIMEOUT = 0.5
WHAT = "OpenID configuration URL"

URL_RULES = {
    "url-syntax",
    "url-absolute",
    "url-scheme",
    "url-userinfo",
    "url-host",
    "https-only",
    "public-address-only",
    "redirect-downgrade",
    "request-header",
}
ALLOWED = None  # development mode lets the URL through the address rules


def fake_dns(host, port):
    """Answer from the DNS table, as getaddrinfo would; unknown names do not exist."""
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return list(DNS[host])


def stand_in_policy(ip):
    """Production rules, except that the stand-in platform address counts as public."""
    return ip == STAND_IN or address_allowed(ip, allow_insecure=False)


def page_text(response):
    """Return the page's words without its footer, whose time differs on every render."""
    page = re.sub(r"<footer\b.*?</footer>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


# --- a TLS platform on 127.77.0.1 --------------------------------------------------------------


def make_certificates(directory):
    """Write a CA and a certificate for CERT_NAMES signed by it; return the file paths."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Gatehouse test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERT_NAMES[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in CERT_NAMES]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {name: str(path) for name, path in paths.items()}


class Platform:
    """The TLS platform: redirects on demand and echoes what reached it."""

    def __init__(self, files):
        self.requests = []  # (path, headers) of each request
        self.sni = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files["cert"], files["key"])
        context.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        self.server = LoopbackServer(
            self.app, str(STAND_IN), name="tls-platform", ssl_context=context
        )

    @property
    def port(self):
        return self.server.port

    def url(self, path, host="platform.example"):
        return f"https://{host}:{self.port}{path}"

    def app(self, environ, start_response):
        request = Request(environ)
        self.requests.append((request.full_path.rstrip("?"), dict(request.headers)))
        path = request.path
        if path.startswith("/hop/"):
            left = int(path.rsplit("/", 1)[1])
            response = (
                Response("", 302, headers={"Location": f"/hop/{left - 1}"})
                if left
                else self.echo(request)
            )
        elif path == "/to":
            target = request.args["u"].replace("{port}", str(self.port))
            response = Response("", 302, headers={"Location": target})
        elif path in ("/loop", "/a", "/b"):
            target = {"/loop": "/loop", "/a": "/b", "/b": "/a"}[path]
            response = Response("", 302, headers={"Location": target})
        elif path == "/setcookie":
            response = Response("", 302, headers={"Location": "/echo"})
            response.set_cookie("session", "platform-cookie")
        else:
            response = self.echo(request)
        return response(environ, start_response)

    def echo(self, request):
        body = {
            "host": request.headers.get("Host"),
            "authorization": request.headers.get("Authorization"),
            "cookie": request.headers.get("Cookie"),
        }
        return Response(json.dumps(body), 200, content_type="application/json")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def platform(tls_files):
    platform = Platform(tls_files)
    with platform.server:
        yield platform


@pytest.fixture
def production(tls_files):
    def make(**options):
        settings = {
            "resolver": fake_dns,
            "is_allowed_address": stand_in_policy,
            "ca_bundle": tls_files["ca"],
            "connect_timeout": CONNECT_TIMEOUT,
            "deadline": 2.0,
        }
        return SafeClient(**(settings | options))

    return make


@pytest.fixture
def development(tls_files):
    # 127.77.0.1 is loopback, which development mode allows without any exception.
    return SafeClient(
        allow_insecure=True,
        resolver=fake_dns,
        ca_bundle=tls_files["ca"],
        connect_timeout=CONNECT_TIMEOUT,
        deadline=2.0,
    )


def via(url):
    """Return the platform path that redirects to `url` ({port} is the platform's port)."""
    return "/to?u=" + quote(url, safe="")


# --- hostile URLs and redirect chains ------------------------------------------------------------

# A URL, or a path on the TLS platform (which is then fetched as https://platform.example:port),
# with the rule production mode refuses it by and the one development mode does (ALLOWED: the
# address rules let it through; what happens on the wire is then up to the network).
PUBLIC = "public-address-only"
HOSTILE = [
    # id, URL or platform path, rule in production, rule in development
    ("plain-http", "http://127.0.0.1/", "https-only", ALLOWED),
    ("loopback", "https://127.0.0.1/", PUBLIC, ALLOWED),
    ("loopback-127/8", "https://127.0.0.53/", PUBLIC, ALLOWED),
    ("decimal", "https://2130706433/", PUBLIC, ALLOWED),
    ("octal", "https://0177.0.0.1/", PUBLIC, ALLOWED),
    ("hex", "https://0x7f000001/", PUBLIC, ALLOWED),
    ("hex-dotted", "https://0x7f.0.0.1/", PUBLIC, ALLOWED),
    ("short-127.1", "https://127.1/", PUBLIC, ALLOWED),
    ("ip-trailing-dot", "https://127.0.0.1./", PUBLIC, ALLOWED),
    ("short-10.1", "https://10.1/", PUBLIC, PUBLIC),
    ("ipv6-loopback", "https://[::1]/", PUBLIC, ALLOWED),
    ("v4-mapped", "https://[::ffff:127.0.0.1]/", PUBLIC, ALLOWED),
    ("v4-mapped-hex", "https://[::ffff:7f00:1]/", PUBLIC, ALLOWED),
    ("v4-mapped-metadata", "https://[::ffff:169.254.169.254]/", PUBLIC, PUBLIC),
    ("ipv6-link-local", "https://[fe80::1]/", PUBLIC, PUBLIC),
    ("ipv6-unique-local", "https://[fc00::1]/", PUBLIC, PUBLIC),
    ("ipv6-multicast", "https://[ff02::1]/", PUBLIC, PUBLIC),
    ("ipv6-unspecified", "https://[::]/", PUBLIC, PUBLIC),
    ("nat64-of-10.0.0.1", "https://[64:ff9b::a00:1]/", PUBLIC, PUBLIC),
    ("6to4-of-127.0.0.1", "https://[2002:7f00:1::]/", PUBLIC, PUBLIC),
    ("teredo", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", PUBLIC, PUBLIC),
    ("ipv6-documentation", "https://[2001:db8::1]/", PUBLIC, PUBLIC),
    ("cloud-metadata", "https://169.254.169.254/latest/meta-data", PUBLIC, PUBLIC),
    ("private-10", "https://10.0.0.1/", PUBLIC, PUBLIC),
    ("private-192.168", "https://192.168.1.1/", PUBLIC, PUBLIC),
    ("private-172.16", "https://172.16.0.1/", PUBLIC, PUBLIC),
    ("shared-cgnat", "https://100.64.0.1/", PUBLIC, PUBLIC),
    ("unspecified", "https://0.0.0.0/", PUBLIC, PUBLIC),
    ("zero", "https://0/", PUBLIC, PUBLIC),
    ("multicast", "https://224.0.0.1/", PUBLIC, PUBLIC),
    ("reserved", "https://240.0.0.1/", PUBLIC, PUBLIC),
    ("broadcast", "https://255.255.255.255/", PUBLIC, PUBLIC),
    ("benchmark", "https://198.18.0.1/", PUBLIC, PUBLIC),
    ("documentation", "https://192.0.2.1/", PUBLIC, PUBLIC),
    ("userinfo", "https://user:pw@example.com/", "url-userinfo", "url-userinfo"),
    ("userinfo-loopback", "https://user@127.0.0.1/", "url-userinfo", "url-userinfo"),
    ("empty-userinfo", "https://@platform.example/", "url-userinfo", "url-userinfo"),
    ("localhost", "https://localhost/", PUBLIC, ALLOWED),
    ("localhost-dot", "https://localhost./", PUBLIC, ALLOWED),
    ("localhost-case", "https://LocalHost/", PUBLIC, ALLOWED),
    ("sub-localhost", "https://app.localhost/", PUBLIC, ALLOWED),
    ("name-resolving-to-loopback", "https://loopback.example/", PUBLIC, ALLOWED),
    ("name-resolving-to-ipv6-loopback", "https://v6loop.example/", PUBLIC, ALLOWED),
    ("name-resolving-to-metadata", "https://metadata.example/", PUBLIC, PUBLIC),
    ("name-resolving-public-and-private", "https://mixed.example/", PUBLIC, PUBLIC),
    ("percent-encoded", "https://%31%32%37.0.0.1/", "url-host", "url-host"),
    ("percent-encoded-name", "https://local%68ost/", "url-host", "url-host"),
    ("ipv6-zone", "https://[fe80::1%25eth0]/", "url-host", "url-host"),
    ("idna-fullwidth-localhost", "https://ｌｏｃａｌｈｏｓｔ/", PUBLIC, ALLOWED),
    ("idna-fullwidth-digits", "https://１２７.０.０.１/", PUBLIC, ALLOWED),
    ("idna-invalid", "https://☃.net/", "url-host", "url-host"),
    ("five-part-number", "https://1.2.3.4.5/", "url-host", "url-host"),
    ("number-too-big", "https://4294967296/", "url-host", "url-host"),
    ("bracketed-ipv4", "https://[127.0.0.1]/", "url-syntax", "url-syntax"),
    ("backslash", "https://example.com\\@127.0.0.1/", "url-syntax", "url-syntax"),
    ("space", "https://exa mple.com/", "url-syntax", "url-syntax"),
    ("crlf", "https://example.com/\r\nX-Injected: 1", "url-syntax", "url-syntax"),
    ("bad-port", "https://127.0.0.1:99999/", "url-syntax", "url-syntax"),
    ("ftp", "ftp://example.com/", "url-scheme", "url-scheme"),
    ("file", "file:///etc/passwd", "url-scheme", "url-scheme"),
    ("gopher", "gopher://127.0.0.1:6379/_INFO", "url-scheme", "url-scheme"),
    ("dict", "dict://127.0.0.1:11211/stat", "url-scheme", "url-scheme"),
    ("javascript", "javascript:alert(1)", "url-scheme", "url-scheme"),
    ("data", "data:application/json,{}", "url-scheme", "url-scheme"),
    ("scheme-relative", "//platform.example/x", "url-absolute", "url-absolute"),
    ("no-host", "https:///x", "url-absolute", "url-absolute"),
    # Redirect chains that start at the allowed platform.
    ("to-private", via("https://10.0.0.1/"), PUBLIC, PUBLIC),
    ("to-metadata", via("https://169.254.169.254/latest/meta-data/"), PUBLIC, PUBLIC),
    ("to-name-of-metadata", via("https://metadata.example/"), PUBLIC, PUBLIC),
    ("to-scheme-relative-private", via("//10.0.0.1/x"), PUBLIC, PUBLIC),
    ("to-loopback", via("https://127.0.0.1:{port}/echo"), PUBLIC, ALLOWED),
    ("to-hex-loopback", via("https://0x7f000001:{port}/echo"), PUBLIC, ALLOWED),
    ("to-ipv6-loopback", via("https://[::1]:{port}/echo"), PUBLIC, ALLOWED),
    ("to-name-of-loopback", via("https://loopback.example:{port}/echo"), PUBLIC, ALLOWED),
    ("to-mixed-name", via("https://mixed.example:{port}/echo"), PUBLIC, PUBLIC),
    ("to-userinfo", via("https://u:p@platform.example/"), "url-userinfo", "url-userinfo"),
    ("https-to-http", via("http://platform.example/"), "redirect-downgrade", "redirect-downgrade"),
    ("to-file", via("file:///etc/passwd"), "url-scheme", "url-scheme"),
    ("to-gopher", via("gopher://127.0.0.1:6379/_INFO"), "url-scheme", "url-scheme"),
    ("to-percent-encoded", via("https://%31%32%37.0.0.1/"), "url-host", "url-host"),
    ("redirect-loop", "/loop", "redirect-loop", "redirect-loop"),
    ("redirect-loop-two-steps", "/a", "redirect-loop", "redirect-loop"),
    ("four-redirects", "/hop/4", "redirect-limit", "redirect-limit"),
]


HOSTILE_CASES = [pytest.param(*row[1:], id=row[0]) for row in HOSTILE]


def hostile_url(platform, url):
    is_path = url.startswith("/") and not url.startswith("//")
    return platform.url(url) if is_path else url


def assert_refused(error, rule):
    assert error.rule == rule, error.detail
    expected = UnsafeURL if rule in URL_RULES else PlatformUnreachable
    assert isinstance(error, expected)
    assert error.detail and "Traceback" not in error.detail


@pytest.mark.parametrize(("url", "production_rule", "development_rule"), HOSTILE_CASES)
def test_production_refuses_hostile_urls(
    platform, production, url, production_rule, development_rule
):
    client = production()
    with pytest.raises(RegistrationError) as info:
        client.get(hostile_url(platform, url), headers={}, what=WHAT)
    assert_refused(info.value, production_rule)


@pytest.mark.parametrize(("url", "production_rule", "development_rule"), HOSTILE_CASES)
def test_development_allows_only_loopback(
    platform, development, url, production_rule, development_rule
):
    url = hostile_url(platform, url)
    if development_rule is not None:
        with pytest.raises(RegistrationError) as info:
            development.get(url, headers={}, what=WHAT)
        assert_refused(info.value, development_rule)
    elif "/to?" in url:
        # The hop is allowed; nobody serves https on 127.0.0.1:<port>, so it fails on the wire.
        with pytest.raises(PlatformUnreachable) as info:
            development.get(url, headers={}, what=WHAT)
        assert info.value.rule in ("connection", "tls")
    else:
        development.check_url(url, WHAT)


def test_the_stand_in_platform_is_reached_by_name_over_verified_tls(platform, production):
    response = production().get(platform.url("/echo"), headers={}, what=WHAT)
    assert response.status == 200
    assert response.json()["host"] == f"platform.example:{platform.port}"
    assert platform.sni[-1] == "platform.example"
    assert response.url == platform.url("/echo")


def test_three_redirects_are_followed(platform, production):
    response = production().get(platform.url("/hop/3"), headers={}, what=WHAT)
    assert response.status == 200
    assert response.url == platform.url("/hop/0")


def test_the_certificate_is_checked_for_the_host_name_not_the_pinned_address(platform, production):
    with pytest.raises(PlatformUnreachable) as info:
        production().get(platform.url("/echo", host="wrong.example"), headers={}, what=WHAT)
    assert info.value.rule == "tls"
    assert "wrong.example" in info.value.detail


def test_an_untrusted_certificate_is_refused(platform, production):
    with pytest.raises(PlatformUnreachable) as info:
        production(ca_bundle=None).get(platform.url("/echo"), headers={}, what=WHAT)
    assert info.value.rule == "tls"


def test_credentials_follow_redirects_on_the_same_origin_only(platform, production):
    client = production()
    headers = {"Authorization": "Bearer registration-token"}
    same = client.get(platform.url(via("/echo")), headers=headers, what=WHAT)
    assert same.json()["authorization"] == "Bearer registration-token"
    elsewhere = via("https://other.example:{port}/echo")
    other = client.get(platform.url(elsewhere), headers=headers, what=WHAT)
    assert other.json()["host"] == f"other.example:{platform.port}"
    assert other.json()["authorization"] is None


def test_cookies_are_not_kept(platform, production):
    response = production().get(platform.url("/setcookie"), headers={}, what=WHAT)
    assert response.json()["cookie"] is None


def test_posts_are_not_redirected(platform, production):
    before = len(platform.requests)
    response = production().post_json(
        platform.url(via("/echo")), {"a": 1}, headers={}, what="registration endpoint"
    )
    assert response.status == 302
    assert [path for path, _ in platform.requests[before:]] == [via("/echo")]


def test_proxy_settings_in_the_environment_are_ignored(platform, production, monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as trap:
        proxy = f"http://127.0.0.1:{trap.getsockname()[1]}"
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy)
        response = production().get(platform.url("/echo"), headers={}, what=WHAT)
        assert response.status == 200
        assert select.select([trap], [], [], 0.1)[0] == []


@pytest.mark.parametrize("token", ["x\r\nX-Evil: 1", "x\nHost: 10.0.0.1", "t\u20acken"])
def test_tokens_that_cannot_be_a_header_are_refused(platform, production, token):
    before = len(platform.requests)
    with pytest.raises(UnsafeURL) as info:
        production().get(
            platform.url("/echo"), headers={"Authorization": f"Bearer {token}"}, what=WHAT
        )
    assert info.value.rule == "request-header"
    assert len(platform.requests) == before


# --- DNS rebinding ------------------------------------------------------------------------------


class Rebinding:
    """A resolver whose first answer is the platform and every later one is 127.0.0.1."""

    def __init__(self):
        self.calls = 0

    def __call__(self, host, port):
        self.calls += 1
        return [str(STAND_IN)] if self.calls == 1 else ["127.0.0.1"]


def test_dns_rebinding_cannot_move_the_connection(platform, production):
    rebinding = Rebinding()
    # A trap on 127.0.0.1 at the platform's port: a second lookup would lead there.
    with socket.create_server(("127.0.0.1", platform.port)) as trap:
        response = production(resolver=rebinding).get(
            platform.url("/echo", host="rebind.example"), headers={}, what=WHAT
        )
        assert select.select([trap], [], [], 0.2)[0] == [], "a connection reached 127.0.0.1"
    assert rebinding.calls == 1
    assert response.status == 200
    assert response.json()["host"] == f"rebind.example:{platform.port}"
    assert platform.sni[-1] == "rebind.example"


def test_each_redirect_is_resolved_and_checked_again(platform, production):
    rebinding = Rebinding()
    url = platform.url(via("https://rebind.example:{port}/echo"), host="rebind.example")
    with pytest.raises(UnsafeURL) as info:
        production(resolver=rebinding).get(url, headers={}, what=WHAT)
    assert info.value.rule == "public-address-only"
    assert "127.0.0.1" in info.value.detail
    assert rebinding.calls == 2


def test_a_checked_url_is_checked_again_when_it_is_fetched(platform, production):
    client = production(resolver=Rebinding())
    url = platform.url("/echo", host="rebind.example")
    client.check_url(url, "registration endpoint")  # what flow.discover does
    with pytest.raises(UnsafeURL) as info:
        client.post_json(url, {}, headers={}, what="registration endpoint")
    assert info.value.rule == "public-address-only"


# --- platform faults, served for real on 127.0.0.1 ----------------------------------------------

HUGE = 20 * 1024 * 1024
NOT_JSON_PAGE = b"<!doctype html><title>Dashboard</title><h1>Welcome to the LMS</h1>"


def platform_config(base, registration_path):
    """Return a valid OpenID configuration whose registration endpoint is `registration_path`."""
    return {
        "issuer": base,
        "authorization_endpoint": base + "/auth",
        "token_endpoint": base + "/token",
        "jwks_uri": base + "/jwks",
        "registration_endpoint": f"{base}/{registration_path}",
        "scopes_supported": ["openid"],
        "response_types_supported": ["id_token"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss"],
        PLATFORM_CONFIGURATION: {
            "product_family_code": "faulty-lms",
            "version": "1.0",
            "messages_supported": [{"type": "LtiResourceLinkRequest"}],
        },
    }


class FaultServer:
    """A raw HTTP server on 127.0.0.1 whose paths misbehave the way broken platforms do."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.requests = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        self.listener.close()

    def handle(self, conn):
        with conn:
            try:
                conn.settimeout(5)
                path, headers = self.read_request(conn)
                self.requests.append((path, headers))
                self.answer(conn, path)
            except OSError:
                pass  # the client went away, as clients of broken platforms do

    def read_request(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionAbortedError
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers.get("Content-Length", 0))
        while len(body) < length:
            body += conn.recv(65536)
        return lines[0].split()[1], headers

    def drip(self, conn, first=b""):
        """Send `first`, then one byte every 0.1 s until the client gives up (or 10 s pass)."""
        conn.sendall(first)
        for _ in range(100):
            if self.stopped.wait(0.1):
                return
            conn.sendall(b" ")

    def answer(self, conn, path):
        name = path.split("?")[0].strip("/")
        if name.startswith("cfg/"):
            config = platform_config(self.base, name[4:])
            return send(conn, 200, json.dumps(config).encode())
        if name == "json":
            return send(conn, 200, json.dumps(platform_config(self.base, "x")).encode())
        if name == "no-headers":
            conn.settimeout(10)
            return conn.recv(1)  # until the client gives up
        if name == "slow-headers":
            return self.drip(conn, b"HTTP/1.1 200 OK\r\nX-Slow: ")
        if name == "slow-body":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999\r\n"
            return self.drip(conn, head + b"\r\n{")
        if name == "status-500":
            return send(conn, 500, b"Internal Server Error", "text/plain")
        if name == "not-json":
            return send(conn, 200, b'{"issuer": "https://lms.example", ')
        if name == "html":
            return send(conn, 200, NOT_JSON_PAGE, "text/html")
        if name == "deep-json":
            return send(conn, 200, b"[" * 100_000 + b"]" * 100_000)
        if name == "deep-config":
            config = json.dumps(platform_config(self.base, "x"))[:-1]
            return send(conn, 200, f'{config}, "x": {"[" * 600}{"]" * 600}}}'.encode())
        if name == "huge-body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            return send_repeated(conn, HUGE)
        if name == "huge-declared":
            return self.drip(conn, head_with_length(HUGE))
        if name == "lying-length":
            conn.sendall(head_with_length(64))
            return send_repeated(conn, HUGE)
        if name == "chunked-and-length":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for _ in range(HUGE // 65536):
                conn.sendall(b"10000\r\n" + b"x" * 65536 + b"\r\n")
            return conn.sendall(b"0\r\n\r\n")
        if name == "short-body":
            return conn.sendall(head_with_length(1000) + b'{"issuer": ')
        if name == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return None
        if name == "close":
            return None
        if name == "not-http":
            return conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
        if name == "utf8-redirect":
            return conn.sendall("HTTP/1.1 302 Found\r\nLocation: /café\r\n\r\n".encode())
        if name == "loop":
            return conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /loop\r\n\r\n")
        if name == "no-client-id":
            return send(conn, 200, json.dumps({"client_name": "Quiz Tool"}).encode())
        return send(conn, 404, b"not found", "text/plain")


def head_with_length(length):
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def send(conn, status, body, content_type="application/json"):
    conn.sendall(
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def send_repeated(conn, size):
    block = b'{"x": "' + b"x" * 65520 + b'"}\n'
    sent = 0
    while sent < size:
        conn.sendall(block)
        sent += len(block)


@pytest.fixture(scope="module")
def faults():
    server = FaultServer()
    server.thread.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def unaccepting():
    """Return the URL of a port that listens but never accepts: its backlog is full."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    held = []
    for _ in range(8):
        sock = socket.socket()
        sock.settimeout(0.2)
        held.append(sock)
        try:
            sock.connect(("127.0.0.1", port))
        except TimeoutError:
            break  # the next connection attempt will hang too
    else:
        pytest.fail("could not fill the listen backlog")
    yield f"http://127.0.0.1:{port}/.well-known/openid-configuration"
    for sock in held:
        sock.close()
    listener.close()


def fault_url(fault, step, faults, unaccepting):
    if fault == "connect-timeout":
        return unaccepting
    return f"{faults.base}/{fault}" if step == "config" else f"{faults.base}/cfg/{fault}"


def run_step(client, url, step):
    """Run the protocol step against the platform at `url`, as the flow does."""
    document = get_openid_config(client, url, "registration-token")
    platform = validate_openid_config(document, url, allow_insecure=True)
    if step == "config":
        return platform
    tool = resolve_tool({"name": "Quiz Tool"}, "http://localhost:5000")
    request = build_registration_request(tool, platform)
    status, body = register_tool_in_platform(client, platform, request, "registration-token")
    return parse_registration_response(status, body, request.scopes)


FAULTS = [
    pytest.param(
        "connect-timeout", "config", PlatformUnreachable, "connect-timeout", id="connect-timeout"
    ),
    pytest.param("no-headers", "config", PlatformUnreachable, "deadline", id="no-headers"),
    pytest.param("slow-headers", "config", PlatformUnreachable, "deadline", id="slow-headers"),
    pytest.param("slow-body", "config", PlatformUnreachable, "deadline", id="slow-body"),
    pytest.param("status-500", "config", PlatformRefused, "platform-response", id="5xx"),
    pytest.param("not-json", "config", PlatformConfigError, "config-json", id="not-json"),
    pytest.param("html", "config", PlatformConfigError, "config-json", id="wrong-content-type"),
    pytest.param("deep-json", "config", PlatformConfigError, "config-json", id="deep-json"),
    pytest.param("deep-config", "config", PlatformConfigError, "config-json", id="deep-config"),
    pytest.param("huge-body", "config", PlatformUnreachable, "response-size", id="20-MiB"),
    pytest.param(
        "huge-declared", "config", PlatformUnreachable, "response-size", id="20-MiB-content-length"
    ),
    pytest.param(
        "lying-length", "config", PlatformConfigError, "config-json", id="lying-content-length"
    ),
    pytest.param(
        "chunked-and-length",
        "config",
        PlatformUnreachable,
        "response-size",
        id="chunked-with-small-content-length",
    ),
    pytest.param("short-body", "config", PlatformUnreachable, "connection", id="truncated"),
    pytest.param("reset", "config", PlatformUnreachable, "connection", id="reset"),
    pytest.param("close", "config", PlatformUnreachable, "connection", id="closed"),
    pytest.param("not-http", "config", PlatformUnreachable, "http-protocol", id="not-http"),
    pytest.param("loop", "config", PlatformUnreachable, "redirect-loop", id="redirect-loop"),
    pytest.param(
        "no-client-id",
        "register",
        InvalidRegistrationResponse,
        "response-client-id",
        id="no-client-id",
    ),
    pytest.param(
        "status-500", "register", PlatformRefused, "platform-response", id="registration-5xx"
    ),
    pytest.param(
        "not-json",
        "register",
        InvalidRegistrationResponse,
        "response-json",
        id="registration-not-json",
    ),
    pytest.param(
        "slow-body", "register", PlatformUnreachable, "deadline", id="registration-slow-body"
    ),
    pytest.param("reset", "register", PlatformUnreachable, "connection", id="registration-reset"),
]


@pytest.mark.parametrize(("fault", "step", "error", "rule"), FAULTS)
def test_platform_faults_end_in_a_named_error_within_the_deadline(
    faults, unaccepting, fault, step, error, rule
):
    client = SafeClient(allow_insecure=True, connect_timeout=CONNECT_TIMEOUT, deadline=DEADLINE)
    started = time.monotonic()
    with pytest.raises(RegistrationError) as info:
        run_step(client, fault_url(fault, step, faults, unaccepting), step)
    assert time.monotonic() - started < DEADLINE + 2
    assert type(info.value) is error
    assert info.value.rule == rule, info.value.detail


def test_one_watchdog_thread_keeps_every_deadline(faults, monkeypatch):
    # A slow drip still ends at the deadline, and many requests start no thread of their own:
    # one watchdog per process keeps them all (a Timer thread per request used to).
    client = SafeClient(allow_insecure=True, connect_timeout=CONNECT_TIMEOUT, deadline=DEADLINE)
    started = time.monotonic()
    with pytest.raises(PlatformUnreachable) as info:
        run_step(client, fault_url("slow-body", "config", faults, None), "config")
    assert info.value.rule == "deadline"
    assert time.monotonic() - started < DEADLINE + 2
    caller, started_here = threading.current_thread(), []
    start = threading.Thread.start

    def counted(thread):
        if threading.current_thread() is caller:
            started_here.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    for _ in range(20):
        with pytest.raises(RegistrationError):
            client.get(f"{faults.base}/huge-declared", headers={}, what=WHAT)
    assert started_here == []
    watchdogs = [t for t in threading.enumerate() if t.name == "gatehouse-deadlines"]
    assert len(watchdogs) == 1


def test_a_declared_size_over_the_cap_is_refused_before_reading(faults):
    client = SafeClient(allow_insecure=True, deadline=5)
    started = time.monotonic()
    with pytest.raises(PlatformUnreachable) as info:
        client.get(f"{faults.base}/huge-declared", headers={}, what=WHAT)
    assert time.monotonic() - started < 1  # the body only drips: it was never waited for
    assert "announced 20971520 bytes" in info.value.detail


def test_a_lying_content_length_is_all_that_is_read(faults):
    client = SafeClient(allow_insecure=True)
    response = client.get(f"{faults.base}/lying-length", headers={}, what=WHAT)
    assert len(response.body) == 64


def test_a_redirect_to_a_utf8_path_is_followed(faults):
    response = SafeClient(allow_insecure=True).get(
        f"{faults.base}/utf8-redirect", headers={}, what=WHAT
    )
    assert response.url == f"{faults.base}/caf%C3%A9"
    assert faults.requests[-1][0] == "/caf%C3%A9"


def test_odd_ipv4_spellings_connect_to_the_address_they_mean(faults):
    client = SafeClient(allow_insecure=True)
    response = client.get(f"http://2130706433:{faults.port}/json", headers={}, what=WHAT)
    assert response.status == 200
    assert response.url == f"{faults.base}/json"
    assert faults.requests[-1][1]["Host"] == f"127.0.0.1:{faults.port}"


@pytest.mark.parametrize(("fault", "step", "error", "rule"), FAULTS)
def test_platform_faults_through_the_registration_url(
    make_app, faults, unaccepting, fault, step, error, rule
):
    """Each fault ends in a readable page within the deadline, with the attempt recorded.

    Trying again with the LMS's token works when nothing reached the LMS's registration
    endpoint. Once the LMS answered, or may have, the token is spent: the same start shows
    the same outcome and nothing is POSTed again; a success status without a usable answer,
    or an answer cut off, is recorded as "outcome unknown" rather than as nothing registered.
    """
    app = make_app({"outbound": {"connect_timeout": CONNECT_TIMEOUT, "deadline": DEADLINE}})
    store = app.extensions["gatehouse.store"]
    query = urlencode(
        {
            "openid_configuration": fault_url(fault, step, faults, unaccepting),
            "registration_token": "registration-token-" + fault,
        }
    )
    reached_lms = step == "register"
    unknown = reached_lms and error is not PlatformRefused
    posts = sum(1 for path, _ in faults.requests if path == f"/{fault}")
    with LoopbackServer(app, "localhost") as server:
        started = time.monotonic()
        response = requests.get(f"{server.url}/lti/register?{query}", timeout=30)
        assert time.monotonic() - started < DEADLINE * 2 + 2  # the config GET and the POST
        again = requests.get(f"{server.url}/lti/register?{query}", timeout=30)
    assert response.status_code == error.status
    assert "data-lti-close-button" in response.text
    text = page_text(response)
    assert (OutcomeUnknown.title if unknown else error.title) in text
    assert f"Rule: {rule}" in text
    assert "Traceback" not in response.text
    assert store.list_platforms()[0] == []
    attempts = store.list_registrations()[0]
    assert attempts[-1].state == ("unknown" if unknown else "failed")
    assert attempts[-1].error["rule"] == rule
    if reached_lms:
        assert "data-retry" not in response.text
        assert len(attempts) == 1  # the second load showed the first attempt again
        assert page_text(again) == text
        assert sum(1 for path, _ in faults.requests if path == f"/{fault}") == posts + 1
    else:
        assert len(attempts) == 2  # a new try with the same token
