"""The tool's RSA signing keys: created on first start, kept in the database, served as a JWKS."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

from joserfc.jwk import RSAKey

from ..lti.constants import SIGNING_ALG
from ..storage import now_iso
from .sealing import Sealer

PLAIN = Sealer()  # no encryption key: keys are stored as plain PEM

KEY_SIZE = 2048
JWKS_CACHE_SECONDS = 30.0
DEFAULT_GRACE = timedelta(days=3)


def generate_key() -> tuple[str, str]:
    """Return (kid, private PEM) of a new RSA key; the kid is its RFC 7638 thumbprint."""
    key = RSAKey.generate_key(KEY_SIZE, auto_kid=True)
    return key.kid, key.as_pem(private=True).decode()


def public_jwk(kid: str, private_pem: str) -> dict:
    """Return the public JWK of a stored key, marked for RS256 signatures."""
    key = RSAKey.import_key(private_pem)
    return {**key.as_dict(private=False), "kid": kid, "alg": SIGNING_ALG, "use": "sig"}


def generate_sealed(sealer: Sealer):
    """Return a `generate_key` whose PEM comes sealed by `sealer`, as the store keeps it."""

    def generate() -> tuple[str, str]:
        kid, pem = generate_key()
        return kid, sealer.seal(pem)

    return generate


def rotate(
    store, grace: timedelta = DEFAULT_GRACE, sealer: Sealer = PLAIN
) -> tuple[str, list[str]]:
    """Add a new current key; keep publishing the old ones until the grace period ends."""
    kid, pem = generate_sealed(sealer)()
    retire_at = now_iso(datetime.now(UTC) + grace)
    return kid, store.rotate_tool_keys(kid, pem, retire_at)


def published(keys, sealer: Sealer = PLAIN) -> list[dict]:
    """Return the public JWKs of the keys still published: current, or in their grace period."""
    stamp = now_iso()
    return [
        public_jwk(key.kid, sealer.open(key.private_pem))
        for key in keys
        if key.retire_at is None or key.retire_at > stamp
    ]


class KeySetCache:
    """Serve the JWKS from memory; a rotation shows within JWKS_CACHE_SECONDS."""

    def __init__(self, store, sealer: Sealer = PLAIN):
        self.store = store
        self.sealer = sealer
        self._lock = threading.Lock()
        self._body: bytes | None = None
        self._loaded_at = 0.0
        self._current: tuple[str, str] | None = None  # (kid, private PEM) read with the body
        self._signing: tuple[str, RSAKey] | None = None

    def body(self) -> bytes:
        """Return the JSON body of the key set, rebuilding it when the cache is stale."""
        if self._body is not None and time.monotonic() - self._loaded_at < JWKS_CACHE_SECONDS:
            return self._body
        with self._lock:
            if self._body is None or time.monotonic() - self._loaded_at >= JWKS_CACHE_SECONDS:
                keys = self.store.list_tool_keys()
                current = next((k for k in keys if k.retire_at is None), keys[0])
                self._body = json.dumps({"keys": published(keys, self.sealer)}).encode()
                self._current = (current.kid, self.sealer.open(current.private_pem))
                self._signing = None
                self._loaded_at = time.monotonic()
            return self._body

    def signing_key(self) -> tuple[str, RSAKey]:
        """Return (kid, private key) of the current key: what hand-offs and assertions use.

        Taken from the same read as the key set, so a rotation takes over both within
        JWKS_CACHE_SECONDS and nothing is signed with a key that platforms cannot find at
        /lti/keys yet.
        """
        self.body()
        with self._lock:
            if self._signing is None:
                kid, pem = self._current
                self._signing = (kid, RSAKey.import_key(pem))
            return self._signing

    def published(self) -> list[dict]:
        """Return the public keys still published: the current one and those in their grace."""
        return published(self.store.list_tool_keys(), self.sealer)

    def invalidate(self) -> None:
        """Drop the cached body so the next request reads the database."""
        self._body = None
        self._signing = None
