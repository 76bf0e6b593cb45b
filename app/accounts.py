"""Accounts that approve registrations: Flask-Login wiring and password checks."""

from __future__ import annotations

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


def authenticate(store, email: str, password: str) -> Account | None:
    """Return the account when the e-mail and password match, else None."""
    account = store.find_account_by_email(email)
    if account is None or not account.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return account if check_password_hash(account.password_hash, password) else None


def init_app(app: Flask) -> None:
    """Install Flask-Login; sessions never use remember-me cookies inside the LMS frame."""
    login_manager.init_app(app)
