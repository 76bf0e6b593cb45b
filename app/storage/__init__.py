"""The store: one narrow interface over SQLite or PostgreSQL; above it, no code sees SQL.

records.py holds what the store takes and returns (frozen dataclasses, its errors), states.py
the registration and payment states with their transition table, sql.py the one `SqlStore`
whose SQL both databases run, dialect.py what truly differs between them (placeholders, locks,
connections), migrations.py the runner of the schema/*.sql files. Nothing here imports Flask:
app/web/context.py attaches the store to the app.
"""

from __future__ import annotations

import os
from typing import Any

from .dialect import PostgreSQL, SQLite
from .records import (
    Account,
    AccountExists,
    ApiKey,
    AuditEntry,
    Conflict,
    Deployment,
    Invitation,
    LaunchState,
    LaunchStateStatus,
    Notification,
    Payment,
    Platform,
    Registration,
    StorageError,
    TermsAcceptance,
    ToolKey,
    now_iso,
    storable,
)
from .sql import SqlStore
from .states import (
    FINAL_STATES,
    OPEN_STATES,
    PaymentStatus,
    RegistrationState,
    TransitionRefused,
)

__all__ = [
    "FINAL_STATES",
    "OPEN_STATES",
    "Account",
    "AccountExists",
    "ApiKey",
    "AuditEntry",
    "Conflict",
    "Deployment",
    "Invitation",
    "LaunchState",
    "LaunchStateStatus",
    "Notification",
    "Payment",
    "PaymentStatus",
    "Platform",
    "Registration",
    "RegistrationState",
    "SqlStore",
    "StorageError",
    "TermsAcceptance",
    "ToolKey",
    "TransitionRefused",
    "instance_path",
    "now_iso",
    "open_store",
    "storable",
]

DEFAULT_SQLITE_FILE = "gatehouse.sqlite3"


def instance_path() -> str:
    """Return the instance folder: GATEHOUSE_INSTANCE_PATH, else instance/ in the working dir."""
    # Never beside the code: installed from a wheel, that would be site-packages.
    return os.path.abspath(os.environ.get("GATEHOUSE_INSTANCE_PATH") or "instance")


def __getattr__(name: str) -> Any:
    # `storage.INSTANCE_PATH`, as the CLI reads it, is worked out when read, never at import, so
    # the app and the command agree even when the environment changes after the import.
    if name == "INSTANCE_PATH":
        return instance_path()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _refuse_ephemeral_sqlite() -> None:
    """Refuse SQLite on a Heroku dyno, whose disk is wiped at least once a day."""
    if os.environ.get("DYNO") and not os.environ.get("GATEHOUSE_ALLOW_EPHEMERAL_SQLITE"):
        raise StorageError(
            "DATABASE_URL: this is a Heroku dyno (DYNO is set), whose disk is wiped on every "
            "deploy and restart, so SQLite would lose every registered platform. Attach Heroku "
            "Postgres (it sets DATABASE_URL=postgres://...) and install gatehouse[postgres], or "
            "set GATEHOUSE_ALLOW_EPHEMERAL_SQLITE=1 for a throw-away demo."
        )


def open_store(database_url: str | None, instance_path: str):
    """Return the store for a DATABASE_URL (SQLite when unset)."""
    if not database_url:
        _refuse_ephemeral_sqlite()
        os.makedirs(instance_path, exist_ok=True)
        return SqlStore(SQLite(os.path.join(instance_path, DEFAULT_SQLITE_FILE)))
    if database_url.startswith("sqlite:///"):
        _refuse_ephemeral_sqlite()
        path = database_url[len("sqlite:///") :]
        if not path:
            raise StorageError("DATABASE_URL: sqlite:/// needs a file path")
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        return SqlStore(SQLite(path))
    if database_url.startswith(("postgres://", "postgresql://")):
        try:
            return SqlStore(PostgreSQL(database_url))
        except ImportError as exc:
            raise StorageError(
                "DATABASE_URL is a PostgreSQL URL but the PostgreSQL driver is not installed: "
                f"pip install 'gatehouse[postgres]' ({exc})"
            ) from None
    scheme = database_url.split(":", 1)[0]
    raise StorageError(
        f"DATABASE_URL: the scheme {scheme!r} is not supported; use sqlite:///path/to/file.db "
        "or postgresql://user:password@host/database"
    )
