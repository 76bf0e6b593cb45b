"""Accounts that approve registrations: sign-in lockouts, password checks, identity linking.

Password hashes are made and checked by a `PasswordHasher` the caller passes (werkzeug's, in
app/web/login.py, beside the Flask-Login wiring): this layer imports no web framework.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..lti.text import N_
from ..storage import Account, now_iso

MIN_PASSWORD_LENGTH = 10


class PasswordHasher(Protocol):
    """Makes and checks password hashes; `dummy_hash` is checked when the e-mail is unknown."""

    dummy_hash: str

    def hash(self, password: str) -> str:
        """Return a new hash of `password`."""
        ...

    def check(self, password_hash: str, password: str) -> bool:
        """Return True when `password` matches `password_hash`."""
        ...


class SigninLocked(Exception):
    """Too many failed sign-ins for this account or address; try again later."""

    def __init__(self, retry_after: int):
        super().__init__(f"locked for {retry_after} s")
        self.retry_after = retry_after


FREE_FAILURES = 5
MAX_LOCK_SECONDS = 3600


def lock_seconds(failures: int) -> int:
    """Back off after FREE_FAILURES failures: 30 s, 60 s, 120 s … up to an hour."""
    if failures < FREE_FAILURES:
        return 0
    return min(30 * 2 ** (failures - FREE_FAILURES), MAX_LOCK_SECONDS)


def locked_message(locked: SigninLocked) -> str:
    """Say plainly how long to wait after too many failed sign-ins."""
    minutes = (locked.retry_after + 59) // 60
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"Too many failed sign-ins. For your safety, try again in {wait}."


def record_failure(store, keys: list[str]) -> None:
    """Count a failed sign-in for each key and lock those that failed too often."""
    for key, failures in store.record_signin_failure(keys).items():
        seconds = lock_seconds(failures)
        if seconds:
            store.lock_signin(key, now_iso(datetime.now(UTC) + timedelta(seconds=seconds)))


def authenticate(
    store, passwords: PasswordHasher, email: str, password: str, address: str | None = None
) -> Account | None:
    """Return the account when the e-mail and password match, else None.

    Raises SigninLocked while the account or the address is locked after repeated failures.
    """
    keys = [f"email:{email.strip().lower()}"] + ([f"ip:{address}"] if address else [])
    locked_until = store.signin_locked_until(keys)
    if locked_until:
        remaining = datetime.fromisoformat(locked_until.replace("Z", "+00:00")) - datetime.now(UTC)
        raise SigninLocked(max(1, int(remaining.total_seconds()) + 1))
    account = store.find_account_by_email(email)
    if account is None or not account.password_hash:
        # Checking anyway keeps the timing of both answers alike.
        passwords.check(passwords.dummy_hash, password)
        account = None
    elif not passwords.check(account.password_hash, password):
        account = None
    if account is None:
        record_failure(store, keys)
        return None
    store.clear_signin_failures(keys[0])
    return account


class OidcLinkRefused(Exception):
    """An identity provider account matches a local account's e-mail but may not sign in as it.

    `reason` is "owner" (owners sign in with their password), "unverified" (the provider did not
    assert that it verified the e-mail) or "linked" (another identity already uses the account).
    """

    def __init__(self, reason: str, email: str):
        super().__init__(f"not linking an identity to {email}: {reason}")
        self.reason = reason
        self.email = email


def asserts_verified(claims: dict[str, Any]) -> bool:
    """Return True when the provider says it verified the e-mail (true, or "true" as some send)."""
    verified = claims.get("email_verified")
    return verified is True or (isinstance(verified, str) and verified.lower() == "true")


def oidc_account(
    store, issuer: str, subject: str, email: str, name: str | None, email_verified: bool
) -> Account:
    """Return the account of an OpenID Connect identity: known, newly linked, or new.

    An identity is linked to an existing account with the same e-mail only when the provider
    asserts that it verified the address, and never to an owner account; otherwise whoever
    controls an identity provider account could take over a local one.
    Raises OidcLinkRefused when the e-mail belongs to an account the identity may not use.
    """
    known = store.find_oidc_account(issuer, subject)
    if known is not None:
        return known
    existing = store.find_account_by_email(email)
    if existing is not None:
        if existing.is_owner:
            raise OidcLinkRefused("owner", existing.email)
        if existing.oidc_subject is not None:
            raise OidcLinkRefused("linked", existing.email)
        if not email_verified:
            raise OidcLinkRefused("unverified", existing.email)
    if existing is not None:  # verified, and no other identity uses it: link this one
        linked = store.link_oidc(existing.id, issuer, subject)
        if linked is None:  # another sign-in linked its identity meanwhile
            raise OidcLinkRefused("linked", existing.email)
        return linked
    return store.create_account(email, name, oidc_issuer=issuer, oidc_subject=subject)


def oidc_refusal_message(refused: OidcLinkRefused, label: str) -> str:
    """Say plainly why "Sign in with …" did not sign the admin in, and what to do instead."""
    if refused.reason == "owner":
        return N_(
            "%(email)s is an owner account of this tool, so it cannot be used through "
            "%(label)s. Sign in below with its e-mail address and password.",
            email=refused.email,
            label=label,
        )
    if refused.reason == "unverified":
        return N_(
            "An account for %(email)s already exists here, and %(label)s did not confirm "
            "that this e-mail address is verified, so the two were not joined. Sign in below "
            "with the account's password, or verify the address with %(label)s and try again.",
            email=refused.email,
            label=label,
        )
    return N_(
        "An account for %(email)s already exists here and is joined to a different "
        "%(label)s sign-in. Use that one, or sign in below with the account's e-mail address "
        "and password.",
        email=refused.email,
        label=label,
    )
