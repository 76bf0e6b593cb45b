"""Who is signed in: Flask-Login's wiring and werkzeug's password hashes (scrypt).

A session names its account *and* the account's session version (`<id>:<version>`), checked on
every request: signing out and changing the password bump the version, so every session of the
account ends at once, a copied cookie included (the cookie is signed, not stored server-side).
"""

from __future__ import annotations

from flask import Flask
from flask_login import LoginManager, UserMixin, current_user
from werkzeug.security import check_password_hash, generate_password_hash

from ..storage import Account
from .context import get_store

login_manager = LoginManager()


class User(UserMixin):
    """The signed-in account, as Flask-Login sees it."""

    def __init__(self, account: Account):
        self.account = account
        self.id = account.id

    def get_id(self) -> str:
        """Return what the session keeps: the account id and its session version."""
        return session_id(self.account)


def session_id(account: Account) -> str:
    """Return the session's name for an account: `<account id>:<session version>`."""
    return f"{account.id}:{account.session_version}"


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    account_id, _, version = user_id.rpartition(":")
    account = get_store().get_account(account_id) if account_id else None
    if account is None or str(account.session_version) != version:
        return None  # signed out, password changed, or a session from before versions
    return User(account)


def hash_password(password: str) -> str:
    """Hash a password with werkzeug's default (scrypt)."""
    return generate_password_hash(password)


class WerkzeugPasswords:
    """The `PasswordHasher` (app/domain/accounts.py) the sign-in forms and the CLI use."""

    # Verifying against this when the e-mail is unknown keeps the timing of both answers alike.
    dummy_hash = generate_password_hash("gatehouse-timing-equaliser")

    def hash(self, password: str) -> str:
        """Hash a password with werkzeug's default (scrypt)."""
        return hash_password(password)

    def check(self, password_hash: str, password: str) -> bool:
        """Return True when `password` matches the stored hash."""
        return check_password_hash(password_hash, password)


PASSWORDS = WerkzeugPasswords()


def init_app(app: Flask) -> None:
    """Install Flask-Login; sessions never use remember-me cookies inside the LMS frame."""
    # Templates get `current_user` as Flask-Login's proxy, loaded when a page reads it: its
    # own context processor loads the user for every page (a session check hashing the
    # client's address and browser), though only the console and the sign-in gate show one.
    login_manager.init_app(app, add_context_processor=False)
    app.context_processor(lambda: {"current_user": current_user})
