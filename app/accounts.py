"""Accounts that approve registrations: Flask-Login wiring and password checks."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from flask_login import LoginManager, UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from .storage import Account, get_store

MIN_PASSWORD_LENGTH = 10
# Verifying against this when the e-mail is unknown keeps the timing of both answers alike.
_DUMMY_HASH = generate_password_hash("gatehouse-timing-equaliser")

login_manager = LoginManager()


class User(UserMixin):
    """The signed-in account, as Flask-Login sees it."""

    def __init__(self, account: Account):
        self.account = account
        self.id = account.id


@login_manager.user_loader
def _load_user(account_id: str) -> User | None:
    account = get_store().get_account(account_id)
    return User(account) if account else None


def hash_password(password: str) -> str:
    """Hash a password with werkzeug's default (scrypt)."""
    return generate_password_hash(password)


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


def authenticate(store, email: str, password: str, address: str | None = None) -> Account | None:
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
        check_password_hash(_DUMMY_HASH, password)
        account = None
    elif not check_password_hash(account.password_hash, password):
        account = None
    if account is None:
        store.record_signin_failure(keys, lock_seconds)
        return None
    store.clear_signin_failures(keys[0])
    return account


def init_app(app: Flask) -> None:
    """Install Flask-Login; sessions never use remember-me cookies inside the LMS frame."""
    login_manager.init_app(app)
