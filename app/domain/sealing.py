"""Secrets sealed at rest: the private keys and stored secrets, under GATEHOUSE_ENCRYPTION_KEY.

A sealed value reads `sealed:v1:<key id>:<Fernet token>`: Fernet (AES-128-CBC with an
HMAC-SHA256, from the `cryptography` library) is authenticated, so a wrong key or a changed
value is refused rather than opened into garbage. The key id (the first 8 hex digits of the
key's SHA-256) names the key a value was sealed with, so an error can say which key is missing
and a rotation knows which values still need it. A value without the prefix is plain: databases
from before sealing, or deploys without a key.

The store reads and writes the columns as text (`SqlStore.secret_values` and `reseal`); this
module decides what the text is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken

ENV = "GATEHOUSE_ENCRYPTION_KEY"
PREFIX = "sealed:v1:"
# Shorter than this, a value that is not a Fernet key is refused rather than derived from.
MIN_SECRET_LENGTH = 32
NEW_KEY_COMMAND = "gatehouse keys new-encryption-key"
ROTATE_COMMAND = "gatehouse keys rotate-encryption"


class SealError(Exception):
    """Stored secrets cannot be opened or sealed: the message names the key and what to do."""


def new_key() -> str:
    """Return a new encryption key, as GATEHOUSE_ENCRYPTION_KEY takes it."""
    return Fernet.generate_key().decode()


def fernet_for(key: str) -> Fernet:
    """Return the cipher of a key: a Fernet key as made by `new_key`, or one derived from any
    random secret of at least MIN_SECRET_LENGTH characters (what Heroku's `generator: secret`
    makes: 64 hex digits, 256 bits) by SHA-256."""
    try:
        if len(base64.urlsafe_b64decode(key.encode())) == 32:
            return Fernet(key.encode())
    except (ValueError, binascii.Error):
        pass
    if len(key) < MIN_SECRET_LENGTH:
        raise SealError(
            f"{ENV} holds a value that is not an encryption key: use one made by "
            f"`{NEW_KEY_COMMAND}` (or a random secret of at least {MIN_SECRET_LENGTH} "
            "characters), and separate a new and an old key with a comma"
        )
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def key_id(key: str) -> str:
    """Name a key without revealing it: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def is_sealed(value: str | None) -> bool:
    """Return True when a stored value is sealed (not plain)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def sealed_with(value: str) -> str:
    """Return the key id a sealed value names."""
    return value[len(PREFIX) :].split(":", 1)[0]


class Sealer:
    """Seal under the first key; open with any of them (the others are the old ones)."""

    def __init__(self, keys: Iterable[str] = ()):
        self._fernets: dict[str, Fernet] = {}
        for key in keys:
            self._fernets.setdefault(key_id(key), fernet_for(key))
        self.current = next(iter(self._fernets), None)

    @classmethod
    def from_value(cls, value: str | None) -> Sealer:
        """Build the sealer GATEHOUSE_ENCRYPTION_KEY describes: `new` or `new,old[,older]`."""
        return cls(part.strip() for part in (value or "").split(",") if part.strip())

    @property
    def active(self) -> bool:
        """Return True when a key is set: new secrets are sealed."""
        return self.current is not None

    @property
    def key_ids(self) -> list[str]:
        """Return the ids of the keys this sealer holds, the current one first."""
        return list(self._fernets)

    def seal(self, text: str) -> str:
        """Return `text` sealed under the current key; plain text when no key is set."""
        if self.current is None:
            return text
        token = self._fernets[self.current].encrypt(text.encode()).decode()
        return f"{PREFIX}{self.current}:{token}"

    def open(self, value: str) -> str:
        """Return the plain text of a stored value (plain values come back as they are)."""
        if not is_sealed(value):
            return value
        kid = sealed_with(value)
        fernet = self._fernets.get(kid)
        if fernet is None:
            raise SealError(self._missing(kid))
        try:
            return fernet.decrypt(value[len(PREFIX) + len(kid) + 1 :].encode()).decode()
        except InvalidToken:
            raise SealError(
                f"a secret sealed with key id {kid} does not open with {ENV}: the stored value "
                "was changed or damaged; restore it from a backup"
            ) from None

    def reseal(self, value: str) -> str:
        """Return `value` sealed under the current key; unchanged when it already is."""
        if is_sealed(value) and sealed_with(value) == self.current:
            self.open(value)  # a damaged value is refused now, not at its first use
            return value
        return self.seal(self.open(value))

    def _missing(self, kid: str) -> str:
        if self.current is None:
            return (
                f"the database holds secrets sealed with an encryption key (key id {kid}), but "
                f"{ENV} is not set: set {ENV} to the key this database was sealed with, then "
                "start again"
            )
        held = ", ".join(self.key_ids)
        return (
            f"{ENV} does not open the database's secrets: they are sealed with key id {kid}, "
            f"and {ENV} holds key id {held}. Set the key they were sealed with; to move to a "
            f'new key, set {ENV}="<new key>,<old key>" and run `{ROTATE_COMMAND}`'
        )


def seal_at_rest(store, sealer: Sealer) -> int:
    """Check at start that every stored secret opens, and seal the plain ones when a key is set.

    Raise SealError (naming GATEHOUSE_ENCRYPTION_KEY) when a sealed secret does not open; return
    how many plain values were sealed. A database from before sealing is sealed by the first
    start with a key, in one transaction.
    """
    values = store.secret_values()
    for value in values:
        sealer.open(value)
    if not sealer.active or all(is_sealed(value) for value in values):
        return 0
    return store.reseal(lambda value: value if is_sealed(value) else sealer.seal(value))


def rotate_encryption(store, sealer: Sealer) -> int:
    """Re-seal every stored secret under the current key in one transaction; return how many.

    The old keys must be in the sealer (after the new one). Rerunning changes nothing more.
    """
    if not sealer.active:
        raise SealError(
            f"{ENV} is not set: set it to the new key, then the old one, comma-separated"
        )
    return store.reseal(sealer.reseal)
