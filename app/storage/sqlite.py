"""The SQLite store: sqlite-utils, WAL, short write transactions taken with BEGIN IMMEDIATE."""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from . import (
    Deployment,
    Platform,
    Registration,
    RegistrationStates,
    ToolKey,
    now_iso,
)

BUSY_TIMEOUT_MS = 15000

migrations = Migrations("gatehouse")


@migrations(name="0001_initial")
def _initial(db: sqlite_utils.Database) -> None:
    db["platforms"].create(
        {
            "id": str,
            "issuer": str,
            "client_id": str,
            "name": str,
            "authorization_endpoint": str,
            "token_endpoint": str,
            "jwks_uri": str,
            "authorization_server": str,
            "registration_client_uri": str,
            "product_family_code": str,
            "version": str,
            "scopes": str,
            "active": int,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"issuer", "client_id", "name", "active", "created_at", "updated_at"},
    )
    db["platforms"].create_index(["issuer", "client_id"], unique=True)
    db["deployments"].create(
        {
            "platform_id": str,
            "deployment_id": str,
            "active": int,
            "source": str,
            "created_at": str,
        },
        pk=("platform_id", "deployment_id"),
        foreign_keys=[("platform_id", "platforms", "id")],
    )
    db["registrations"].create(
        {
            "id": str,
            "state": str,
            "openid_configuration_url": str,
            "issuer": str,
            "product_family_code": str,
            "platform_version": str,
            "platform_config": str,
            "request": str,
            "adjustments": str,
            "response_status": int,
            "response_body": str,
            "client_id": str,
            "deployment_id": str,
            "platform_id": str,
            "error": str,
            "created_at": str,
            "updated_at": str,
            "expires_at": str,
        },
        pk="id",
        not_null={"state", "created_at", "updated_at", "expires_at"},
    )
    db["registrations"].create_index(["state", "expires_at"])
    db["registrations"].create_index(["created_at"])
    db["tool_keys"].create(
        {"kid": str, "private_pem": str, "created_at": str, "retire_at": str},
        pk="kid",
        not_null={"private_pem", "created_at"},
    )
    db["app_settings"].create({"name": str, "value": str}, pk="name")


class SQLiteStore:
    """Gatehouse's records in one SQLite file; one connection per thread."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    @property
    def db(self) -> sqlite_utils.Database:
        """Return this thread's connection, opening it on first use."""
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            db = sqlite_utils.Database(conn)
            self._local.db = db
        return db

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """Run a short write transaction that takes the write lock up front."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.conn.rollback()
            raise
        else:
            db.execute("COMMIT")

    def migrate(self) -> list[str]:
        """Apply pending migrations under the write lock; return the names applied."""
        db = self.db
        if db.journal_mode != "wal":
            db.enable_wal()
        with self._write():
            pending = [m.name for m in migrations.pending(db)]
            migrations.apply(db)
        return pending

    def ping(self) -> bool:
        """Return True when the database answers a query."""
        return self.db.execute("SELECT 1").fetchone() == (1,)

    # Settings kept in the database because the disk of a Heroku dyno is not.

    def get_or_create_setting(self, name: str, make_value) -> str:
        """Return a stored setting, storing `make_value()` first when it is missing."""
        row = self.db.execute("SELECT value FROM app_settings WHERE name = ?", [name]).fetchone()
        if row:
            return row[0]
        with self._write() as db:
            row = db.execute("SELECT value FROM app_settings WHERE name = ?", [name]).fetchone()
            if row:
                return row[0]
            value = make_value()
            db["app_settings"].insert({"name": name, "value": value})
            return value

    # Tool keys

    def list_tool_keys(self) -> list[ToolKey]:
        """Return all tool keys, newest first."""
        rows = self.db.query("SELECT * FROM tool_keys ORDER BY created_at DESC, kid")
        return [ToolKey(**row) for row in rows]

    def ensure_tool_key(self, make_key) -> None:
        """Create the first tool key with `make_key()` when there is none."""
        if self.db.execute("SELECT 1 FROM tool_keys LIMIT 1").fetchone():
            return
        with self._write() as db:
            if db.execute("SELECT 1 FROM tool_keys LIMIT 1").fetchone():
                return
            kid, pem = make_key()
            db["tool_keys"].insert({"kid": kid, "private_pem": pem, "created_at": now_iso()})

    def rotate_tool_keys(self, kid: str, private_pem: str, retire_at: str) -> list[str]:
        """Add a new current key and schedule the others to retire; return their kids."""
        with self._write() as db:
            old = [
                row["kid"]
                for row in db.query("SELECT kid FROM tool_keys WHERE retire_at IS NULL")
            ]
            db.execute(
                "UPDATE tool_keys SET retire_at = ? WHERE retire_at IS NULL", [retire_at]
            )
            db["tool_keys"].insert(
                {"kid": kid, "private_pem": private_pem, "created_at": now_iso()}
            )
            db.execute("DELETE FROM tool_keys WHERE retire_at IS NOT NULL AND retire_at <= ?",
                       [now_iso()])
        return old

    # Registrations

    def create_registration(self, openid_configuration_url: str, expires_at: str) -> Registration:
        """Record a new attempt in the pending state and return it."""
        stamp = now_iso()
        reg_id = secrets.token_urlsafe(24)
        with self._write() as db:
            db["registrations"].insert(
                {
                    "id": reg_id,
                    "state": RegistrationStates.PENDING,
                    "openid_configuration_url": openid_configuration_url,
                    "adjustments": "[]",
                    "created_at": stamp,
                    "updated_at": stamp,
                    "expires_at": expires_at,
                }
            )
        return self.get_registration(reg_id)

    def get_registration(self, reg_id: str) -> Registration | None:
        """Return one attempt, or None."""
        row = self._one("SELECT * FROM registrations WHERE id = ?", [reg_id])
        return _registration(row) if row else None

    def list_registrations(self, limit: int = 50) -> list[Registration]:
        """Return the newest attempts first."""
        rows = self.db.query(
            "SELECT * FROM registrations ORDER BY created_at DESC LIMIT ?", [limit]
        )
        return [_registration(row) for row in rows]

    def record_platform_config(self, reg_id: str, config: dict[str, Any]) -> None:
        """Store the validated platform facts of an attempt (never the registration token)."""
        self._update(
            reg_id,
            issuer=config["issuer"],
            product_family_code=config["product_family_code"],
            platform_version=config["version"],
            platform_config=json.dumps(config),
        )

    def claim_for_registering(
        self, reg_id: str, request: dict[str, Any], adjustments: list[str]
    ) -> bool:
        """Move a pending attempt to registering; False when another request already did."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE registrations SET state = ?, request = ?, adjustments = ?, "
                "updated_at = ? WHERE id = ? AND state = ? AND expires_at > ?",
                [
                    RegistrationStates.REGISTERING,
                    json.dumps(request),
                    json.dumps(adjustments),
                    now_iso(),
                    reg_id,
                    RegistrationStates.PENDING,
                    now_iso(),
                ],
            )
            return cursor.rowcount == 1

    def record_platform_response(self, reg_id: str, status: int, body: str) -> None:
        """Write the LMS's answer before anything else happens with it."""
        self._update(reg_id, response_status=status, response_body=body)

    def fail_registration(self, reg_id: str, error: dict[str, Any]) -> None:
        """Mark an attempt failed with the error the admin saw."""
        self._update(reg_id, state=RegistrationStates.FAILED, error=json.dumps(error))

    def complete_registration(
        self,
        reg_id: str,
        platform: dict[str, Any],
        deployment_id: str | None,
        activate: bool,
    ) -> tuple[Platform, bool]:
        """Create or update the platform, add its deployment and finish the attempt atomically.

        Returns the platform and True when it was created, False when an existing
        (issuer, client_id) was updated in place.
        """
        stamp = now_iso()
        with self._write() as db:
            row = db.execute(
                "SELECT id FROM platforms WHERE issuer = ? AND client_id = ?",
                [platform["issuer"], platform["client_id"]],
            ).fetchone()
            values = {**platform, "scopes": json.dumps(list(platform["scopes"]))}
            if row:
                platform_id, created = row[0], False
                db["platforms"].update(platform_id, {**values, "updated_at": stamp})
            else:
                platform_id, created = secrets.token_urlsafe(15), True
                db["platforms"].insert(
                    {
                        **values,
                        "id": platform_id,
                        "active": int(activate),
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                )
            if deployment_id:
                db.execute(
                    "INSERT OR IGNORE INTO deployments "
                    "(platform_id, deployment_id, active, source, created_at) "
                    "VALUES (?, ?, 1, 'registration', ?)",
                    [platform_id, deployment_id, stamp],
                )
            db.execute(
                "UPDATE registrations SET state = ?, platform_id = ?, client_id = ?, "
                "deployment_id = ?, updated_at = ? WHERE id = ?",
                [
                    RegistrationStates.COMPLETED,
                    platform_id,
                    platform["client_id"],
                    deployment_id,
                    stamp,
                    reg_id,
                ],
            )
        return self.get_platform(platform_id), created

    def _update(self, reg_id: str, **values: Any) -> None:
        with self._write() as db:
            db["registrations"].update(reg_id, {**values, "updated_at": now_iso()})

    # Platforms

    def get_platform(self, platform_id: str) -> Platform | None:
        """Return one platform by id, or None."""
        row = self._one("SELECT * FROM platforms WHERE id = ?", [platform_id])
        return _platform(row) if row else None

    def find_platform(self, issuer: str, client_id: str) -> Platform | None:
        """Return the platform with this issuer and client_id, or None."""
        row = self._one(
            "SELECT * FROM platforms WHERE issuer = ? AND client_id = ?", [issuer, client_id]
        )
        return _platform(row) if row else None

    def list_platforms(self) -> list[Platform]:
        """Return every platform, newest first."""
        rows = self.db.query("SELECT * FROM platforms ORDER BY created_at DESC")
        return [_platform(row) for row in rows]

    def list_deployments(self, platform_id: str) -> list[Deployment]:
        """Return the deployments of a platform, oldest first."""
        rows = self.db.query(
            "SELECT * FROM deployments WHERE platform_id = ? ORDER BY created_at, deployment_id",
            [platform_id],
        )
        return [Deployment(**{**row, "active": bool(row["active"])}) for row in rows]

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        return next(iter(self.db.query(sql, params)), None)


def _platform(data: dict[str, Any]) -> Platform:
    data["scopes"] = tuple(json.loads(data["scopes"] or "[]"))
    data["active"] = bool(data["active"])
    return Platform(**data)


def _registration(data: dict[str, Any]) -> Registration:
    for key in ("platform_config", "request", "error"):
        data[key] = json.loads(data[key]) if data[key] else None
    data["adjustments"] = tuple(json.loads(data["adjustments"] or "[]"))
    return Registration(**data)
