"""The tool's RSA signing keys: created on first start, kept in the database, served as a JWKS."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from joserfc.jwk import RSAKey

from ..lti.constants import SIGNING_ALG
from ..storage import ToolKey, now_iso
from .sealing import Sealer

PLAIN = Sealer()  # no encryption key: keys are stored as plain PEM

KEY_SIZE = 2048
JWKS_CACHE_SECONDS = 30.0
# Counting a key from its created_at: it commits a moment later, and machines' clocks differ.
CREATED_AT_MARGIN = 5.0
DEFAULT_GRACE = timedelta(days=3)


def generate_key() -> tuple[str, str]:
    """Return (kid, private PEM) of a new RSA key; the kid is its RFC 7638 thumbprint."""
    key = RSAKey.generate_key(KEY_SIZE, auto_kid=True)
    return key.kid, key.as_pem(private=True).decode()


@lru_cache(maxsize=64)
def imported(private_pem: str) -> RSAKey:
    """Return a stored key's PEM as a key object, read once per process.

    Reading a private key checks it (cryptography's RSA key validation): about 40 ms, which
    every refresh of the key set (JWKS_CACHE_SECONDS) and of the signing key paid again.
    """
    return RSAKey.import_key(private_pem)


def public_jwk(kid: str, private_pem: str) -> dict:
    """Return the public JWK of a stored key, marked for RS256 signatures."""
    key = imported(private_pem)
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
    """Serve the JWKS from memory; a rotation shows within JWKS_CACHE_SECONDS.

    Every worker of every instance keeps its own copy, read from the database at most
    JWKS_CACHE_SECONDS ago. So a new key signs only once it has been in the database that long
    (JWKS_CACHE_SECONDS after this cache first read it): by then every copy publishes it, and an
    LMS that fetches /lti/keys from any instance finds what any instance signed. Until then the
    key that signed before goes on signing; it stays published through its grace period.
    """

    def __init__(self, store, sealer: Sealer = PLAIN, clock=time.monotonic):
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self._lock = threading.Lock()
        self._body: bytes | None = None
        self._expires_at = 0.0
        self._current: tuple[str, str] | None = None  # (kid, private PEM) read with the body
        self._signing: tuple[str, RSAKey] | None = None
        self._first_read: dict[str, float] = {}  # kid -> when (self.clock) it was first read

    def body(self) -> bytes:
        """Return the JSON body of the key set, rebuilding it when the cache is stale."""
        if self._body is not None and self.clock() < self._expires_at:
            return self._body
        with self._lock:
            if self._body is None or self.clock() >= self._expires_at:
                keys = self.store.list_tool_keys()
                current, settles_at = self._signing_key_of(keys)
                self._body = json.dumps({"keys": published(keys, self.sealer)}).encode()
                self._current = (current.kid, self.sealer.open(current.private_pem))
                self._signing = None
                self._expires_at = min(self.clock() + JWKS_CACHE_SECONDS, settles_at)
            return self._body

    def _signing_key_of(self, keys: list[ToolKey]) -> tuple[ToolKey, float]:
        """Return the key to sign with now, and when (self.clock) to read the keys again.

        The keys found at the first read count from their creation (a process starting after
        a rotation has nothing to wait for once the others have had time); a key found later
        counts from the read that found it.
        """
        now, wall = self.clock(), datetime.now(UTC)
        first_read = {}
        for key in keys:
            if key.kid in self._first_read:
                first_read[key.kid] = self._first_read[key.kid]
            elif self._first_read:
                first_read[key.kid] = now
            else:
                age = (
                    wall - datetime.fromisoformat(key.created_at.replace("Z", "+00:00"))
                ).total_seconds()
                first_read[key.kid] = now - max(0.0, age - CREATED_AT_MARGIN)
        self._first_read = first_read

        def settled(key) -> bool:
            return self._first_read[key.kid] + JWKS_CACHE_SECONDS <= now

        current = next((k for k in keys if k.retire_at is None), keys[0])
        if settled(current):
            return current, float("inf")
        stamp = now_iso()
        live = [k for k in keys if k.retire_at is None or k.retire_at > stamp] or keys
        # The newest key every copy publishes by now, else the one that was current before
        # (a new database's first key has none, and no copy can be missing it for long).
        before = next((k for k in live if settled(k)), None) or next(
            (k for k in live if k is not current), current
        )
        return before, self._first_read[current.kid] + JWKS_CACHE_SECONDS

    def signing_key(self) -> tuple[str, RSAKey]:
        """Return (kid, private key) of the current key: what hand-offs and assertions use.

        Taken from the same read as the key set, and a new key only once every process
        publishes it (see the class), so nothing is signed with a key that platforms cannot find
        at /lti/keys of any instance.
        """
        self.body()
        with self._lock:
            if self._signing is None:
                kid, pem = self._current
                self._signing = (kid, imported(pem))
            return self._signing

    def published(self) -> list[dict]:
        """Return the public keys still published: the current one and those in their grace."""
        return published(self.store.list_tool_keys(), self.sealer)

    def invalidate(self) -> None:
        """Drop the cached body so the next request reads the database."""
        self._body = None
        self._signing = None
