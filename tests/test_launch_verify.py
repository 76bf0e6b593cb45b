"""The id_token checks on their own: algorithms, signatures, key sources and key-set refreshes."""

import base64
import json
import time
from dataclasses import dataclass

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from app.domain.launch import fetch_key_set
from app.lti.errors import InvalidLaunch, LaunchError, PlatformUnreachable
from app.lti.http import SafeClient
from app.lti.launch import (
    LTI_VERSION,
    PlatformKeys,
    client_assertion,
    deep_linking_response,
    token_audience,
    verify_id_token,
)
from app.simulator.launch import new_key
from app.testing import LoopbackServer

ISSUER = "https://lms.example.edu"
JWKS = "https://lms.example.edu/jwks"


@dataclass
class FakePlatform:
    id: str = "p1"
    issuer: str = ISSUER
    client_id: str = "client-1"
    name: str = "Example"
    product_family_code: str = "moodle"
    auth_method: str = "JWK_SET"
    auth_key: str | None = None
    jwks_uri: str = JWKS
    token_endpoint: str = "https://lms.example.edu/token"
    authorization_server: str | None = None


def claims(**changes):
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": "client-1",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
        "sub": "u1",
        "https://purl.imsglobal.org/spec/lti/claim/version": LTI_VERSION,
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "d1",
        "https://purl.imsglobal.org/spec/lti/claim/roles": [],
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "r1"},
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": "https://tool/lti/launch",
    }
    return {**base, **changes}


class KeySetServer:
    """Stands in for the LMS's JWKS URL: counts fetches, serves whatever keys it holds."""

    def __init__(self, *keys):
        self.keys = list(keys)
        self.fetches = 0

    def __call__(self, url):
        assert url == JWKS
        self.fetches += 1
        return {"keys": [k.as_dict(private=False) for k in self.keys]}


def sign(key, payload, alg="RS256"):
    return jwt.encode({"alg": alg, "kid": key.kid}, payload, key)


def test_a_good_token_verifies():
    key = new_key()
    keys = PlatformKeys(KeySetServer(key))
    verified = verify_id_token(sign(key, claims()), FakePlatform(), keys, "n-1")
    assert verified["sub"] == "u1"


def test_only_rs256_is_accepted():
    secret = OctKey.generate_key(256, parameters={"kid": "k"})
    token = jwt.encode({"alg": "HS256", "kid": "k"}, claims(), secret)
    with pytest.raises(InvalidLaunch) as error:
        verify_id_token(token, FakePlatform(), PlatformKeys(KeySetServer()), "n-1")
    assert error.value.rule == "id-token-alg"
    unsigned = "e30." + token.split(".", 1)[1]  # a header of {} (no alg at all)
    with pytest.raises(InvalidLaunch):
        verify_id_token(unsigned, FakePlatform(), PlatformKeys(KeySetServer()), "n-1")


def test_a_signature_by_another_key_with_the_same_kid_fails():
    real, forged = new_key(), new_key()
    forged_token = jwt.encode({"alg": "RS256", "kid": real.kid}, claims(), forged)
    with pytest.raises(InvalidLaunch) as error:
        verify_id_token(forged_token, FakePlatform(), PlatformKeys(KeySetServer(real)), "n-1")
    assert error.value.rule == "id-token-signature"


def b64(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# A header nested 100,000 levels deep: joserfc's json.loads would end in a RecursionError.
DEEP_HEADER = b64('{"alg": "RS256", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")


@pytest.mark.parametrize(
    "token", ["", "not-a-jwt", "a.b", "a.b.c", f"{DEEP_HEADER}.{b64('{}')}.c2ln"]
)
def test_garbage_is_not_a_jwt(token):
    with pytest.raises(InvalidLaunch) as error:
        verify_id_token(token, FakePlatform(), PlatformKeys(KeySetServer()), "n-1")
    assert error.value.rule == "id-token-format"


def test_platforms_registered_with_a_single_key():
    key = new_key()
    pem = key.as_pem(private=False).decode()
    as_jwk = json.dumps(key.as_dict(private=False))
    never = PlatformKeys(lambda url: pytest.fail("no key set should be fetched"))
    for method, value in (("RSA_KEY", pem), ("JWK_KEY", as_jwk)):
        platform = FakePlatform(auth_method=method, auth_key=value)
        assert verify_id_token(sign(key, claims()), platform, never, "n-1")["sub"] == "u1"
    with pytest.raises(LaunchError) as error:
        verify_id_token(
            sign(key, claims()), FakePlatform(auth_method="RSA_KEY", auth_key="x"), never, "n-1"
        )
    assert error.value.rule == "platform-key"


def test_key_sets_are_cached_and_unknown_kids_refresh_at_most_once_per_interval():
    old, new = new_key(), new_key()
    server = KeySetServer(old)
    keys = PlatformKeys(server, refresh_after=60)
    platform = FakePlatform()
    assert keys.key_for(platform, old.kid) and keys.key_for(platform, old.kid)
    assert server.fetches == 1
    server.keys.append(new)  # the LMS rotates
    assert keys.key_for(platform, new.kid).kid == new.kid
    assert server.fetches == 2
    for _ in range(3):  # made-up kids right after: no new fetches
        with pytest.raises(InvalidLaunch):
            keys.key_for(platform, "made-up")
    assert server.fetches == 2


def test_a_token_without_kid_needs_an_unambiguous_key_set():
    one, two = new_key(), new_key()
    token = jwt.encode({"alg": "RS256"}, claims(), one)
    assert verify_id_token(token, FakePlatform(), PlatformKeys(KeySetServer(one)), "n-1")
    with pytest.raises(InvalidLaunch) as error:
        verify_id_token(token, FakePlatform(), PlatformKeys(KeySetServer(one, two)), "n-1")
    assert error.value.rule == "unknown-kid"


def test_key_set_failures_are_readable():
    def unreachable(url):
        raise PlatformUnreachable("The LMS's key set did not answer within 10 seconds.")

    for fetch, text in (
        (unreachable, "did not answer"),
        (lambda url: {"nothing": []}, "not a usable JSON Web Key Set"),
    ):
        with pytest.raises(LaunchError) as error:
            PlatformKeys(fetch).key_for(FakePlatform(), "k")
        assert error.value.rule == "platform-jwks"
        assert text in error.value.detail


def test_deep_linking_response_rules():
    platform = FakePlatform()
    settings = {
        "deep_link_return_url": "https://lms/return",
        "accept_types": ["link"],
        "accept_multiple": False,
        "data": "opaque",
    }
    response = deep_linking_response(
        platform, "d1", settings, [{"type": "link"}], {"message": "Added", "errorLog": "none"}
    )
    assert response["iss"] == "client-1" and response["aud"] == ISSUER
    assert response["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque"
    assert response["https://purl.imsglobal.org/spec/lti-dl/claim/msg"] == "Added"
    assert response["https://purl.imsglobal.org/spec/lti-dl/claim/errorlog"] == "none"
    with pytest.raises(ValueError, match="accepts only link"):
        deep_linking_response(platform, "d1", settings, [{"type": "file"}], {})
    with pytest.raises(ValueError, match="single content item"):
        deep_linking_response(platform, "d1", settings, [{"type": "link"}] * 2, {})
    with pytest.raises(ValueError, match="string 'type'"):
        deep_linking_response(platform, "d1", settings, ["link"], {})


@pytest.mark.parametrize(
    ("server", "audience"),
    [
        (None, "https://lms.example.edu/token"),
        ("lms.example.edu", "https://lms.example.edu/token"),  # Canvas: a bare host
        ("https://api.brightspace.com/auth/token", "https://api.brightspace.com/auth/token"),
    ],
)
def test_client_assertion_audience(server, audience):
    platform = FakePlatform(authorization_server=server)
    assert token_audience(platform) == audience
    assertion = client_assertion(platform)
    assert assertion["iss"] == assertion["sub"] == "client-1"
    assert assertion["aud"] == audience and assertion["jti"]


def deep_key_set(environ, start_response):
    """A hostile LMS's JWKS URL: a key set nested 100,000 levels deep."""
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"keys": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"]


def test_a_key_set_nested_too_deep_is_refused_by_name_not_a_recursion_error():
    client = SafeClient(allow_insecure=True, deadline=5.0)
    with LoopbackServer(deep_key_set) as server:
        keys = PlatformKeys(lambda url: fetch_key_set(client, url))
        with pytest.raises(LaunchError) as error:
            keys.key_for(FakePlatform(jwks_uri=server.url + "/jwks"), "k")
    assert error.value.rule == "platform-jwks"
    assert "nests more than 32 levels deep" in error.value.detail
