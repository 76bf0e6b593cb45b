"""API keys: `gh_<id>_<secret>`, stored as a SHA-256 hash, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

PREFIX = "gh"


def new_key() -> tuple[str, str, str]:
    """Return (key id, full key to show once, hash of its secret to store)."""
    key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{PREFIX}_{key_id}_{secret}", digest(secret)


def digest(secret: str) -> str:
    """Hash a key's secret part (keys are random, so a fast hash is enough)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def identify(store, presented: str) -> str | None:
    """Return who a presented key belongs to ("api key <name>"), or None when it is not valid."""
    bootstrap = os.environ.get("GATEHOUSE_API_KEY")
    if bootstrap and hmac.compare_digest(presented.encode(), bootstrap.encode()):
        return "api key GATEHOUSE_API_KEY"
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    key = store.get_api_key(parts[1])
    if key is None or key.revoked_at is not None:
        # Hash anyway so a wrong id answers as slowly as a wrong secret.
        hmac.compare_digest(digest(parts[2]), "0" * 64)
        return None
    if not hmac.compare_digest(digest(parts[2]), key.secret_hash):
        return None
    store.touch_api_key(key.id)
    return f"api key {key.name}"


def create(store, name: str) -> tuple[object, str]:
    """Create and store a key; return (record, full key)."""
    key_id, full, hashed = new_key()
    return store.create_api_key(key_id, name, hashed), full
