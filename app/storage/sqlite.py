"""The SQLite store: sqlite-utils, WAL, short write transactions taken with BEGIN IMMEDIATE."""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from . import (
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
    TermsAcceptance,
    ToolKey,
    TransitionRefused,
    now_iso,
)
from ._common import (
    EXPORT_TABLES,
    MIGRATION_NAMES,
    approvals,
    conflict_message,
    filters,
    launch_state_status,
    learned_values,
    move_payment,
    move_registration,
    new_platform_values,
    notification_changes,
    only_service_scopes,
    platform_values,
    to_account,
    to_audit_entry,
    to_deployment,
    to_launch_state,
    to_platform,
    to_registration,
    where_clause,
)
from .states import RegistrationState, ending_in

BUSY_TIMEOUT_MS = 15000

migrations = Migrations("gatehouse")


@migrations(name=MIGRATION_NAMES[0])
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


@migrations(name=MIGRATION_NAMES[1])
def _gates(db: sqlite_utils.Database) -> None:
    db["registrations"].add_column("pending_secret", str)
    db["registrations"].add_column("account_id", str)
    db["registrations"].add_column("platform_created", int)
    db["platforms"].add_column("registration_id", str)
    db["accounts"].create(
        {
            "id": str,
            "email": str,
            "name": str,
            "password_hash": str,
            "oidc_issuer": str,
            "oidc_subject": str,
            "created_at": str,
            "last_login_at": str,
        },
        pk="id",
        not_null={"email", "created_at"},
    )
    db["accounts"].create_index(["email"], unique=True)
    db["accounts"].create_index(["oidc_issuer", "oidc_subject"], unique=True)
    db["terms_acceptances"].create(
        {
            "id": int,
            "registration_id": str,
            "version": str,
            "accepted_at": str,
            "account_id": str,
            "email": str,
            "signer_name": str,
            "ip": str,
            "user_agent": str,
        },
        pk="id",
        not_null={"registration_id", "version", "accepted_at", "signer_name"},
    )
    db["terms_acceptances"].create_index(["registration_id", "version"])
    db["payments"].create(
        {
            "session_id": str,
            "registration_id": str,
            "account_id": str,
            "mode": str,
            "amount": int,
            "currency": str,
            "status": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="session_id",
        not_null={"registration_id", "status", "created_at", "updated_at"},
    )
    db["payments"].create_index(["registration_id"])


@migrations(name=MIGRATION_NAMES[2])
def _api_console(db: sqlite_utils.Database) -> None:
    db["platforms"].add_column("auth_method", str, not_null_default="JWK_SET")
    db["platforms"].add_column("auth_key", str)
    db["platforms"].add_column("invitation_id", str)
    db["registrations"].add_column("invitation_id", str)
    db["registrations"].add_column("done_token_hash", str)
    db["accounts"].add_column("is_owner", int, not_null_default=0)
    db["api_keys"].create(
        {
            "id": str,
            "name": str,
            "secret_hash": str,
            "created_at": str,
            "last_used_at": str,
            "revoked_at": str,
        },
        pk="id",
        not_null={"name", "secret_hash", "created_at"},
    )
    db["invitations"].create(
        {
            "id": str,
            "code": str,
            "name": str,
            "uses_allowed": int,
            "uses": int,
            "expires_at": str,
            "created_at": str,
            "revoked_at": str,
        },
        pk="id",
        not_null={"code", "name", "uses", "created_at"},
    )
    db["invitations"].create_index(["code"], unique=True)
    db["audit_log"].create(
        {
            "id": int,
            "at": str,
            "actor": str,
            "action": str,
            "subject_type": str,
            "subject_id": str,
            "detail": str,
        },
        pk="id",
        not_null={"at", "actor", "action"},
    )
    db["audit_log"].create_index(["at"])
    db["notifications"].create(
        {
            "id": int,
            "event": str,
            "payload": str,
            "created_at": str,
            "attempts": int,
            "next_attempt_at": str,
            "delivered_at": str,
            "last_error": str,
        },
        pk="id",
        not_null={"event", "payload", "created_at", "attempts"},
    )
    db["notifications"].create_index(["delivered_at", "next_attempt_at"])


@migrations(name=MIGRATION_NAMES[3])
def _signin_throttle(db: sqlite_utils.Database) -> None:
    db["signin_throttle"].create(
        {"key": str, "failures": int, "locked_until": str, "updated_at": str},
        pk="key",
        not_null={"failures", "updated_at"},
    )


@migrations(name=MIGRATION_NAMES[4])
def _launch(db: sqlite_utils.Database) -> None:
    db["launch_states"].create(
        {
            "state_hash": str,
            "nonce": str,
            "platform_id": str,
            "target_link_uri": str,
            "created_at": str,
            "expires_at": str,
            "used_at": str,
        },
        pk="state_hash",
        not_null={"nonce", "platform_id", "created_at", "expires_at"},
    )
    db["launch_states"].create_index(["expires_at"])
    db["platforms"].add_column("last_launch_at", str)


@migrations(name=MIGRATION_NAMES[5])
def _token_once_audit_filters(db: sqlite_utils.Database) -> None:
    db["registrations"].add_column("token_digest", str)
    db["registrations"].create_index(["token_digest"])
    # One POST per registration token: a claimed attempt (request set) spends its token.
    db.execute(
        "CREATE UNIQUE INDEX idx_registrations_token_spent ON registrations (token_digest) "
        "WHERE token_digest IS NOT NULL AND request IS NOT NULL"
    )
    # The console filters the audit log by each of these.
    for column in ("action", "actor", "subject_id"):
        db["audit_log"].create_index([column])


@migrations(name=MIGRATION_NAMES[6])
def _learned_scopes(db: sqlite_utils.Database) -> None:
    # What the token endpoint really granted and refused of the answer's claimed scopes.
    db["platforms"].add_column("usable_scopes", str)
    db["platforms"].add_column("refused_scopes", str)
    # Canvas's answer claims `openid`, which its token endpoint refuses: never a service scope.
    for row in list(db.query("SELECT id, scopes FROM platforms")):
        kept = only_service_scopes(row["scopes"])
        if kept is not None:
            db.execute("UPDATE platforms SET scopes = ? WHERE id = ?", [kept, row["id"]])


class SQLiteStore:
    """Gatehouse's records in one SQLite file; one connection per thread."""

    # The driver's base error: what a health check treats as "database unreachable".
    Error = sqlite3.Error

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    @property
    def location(self) -> str:
        """Return where the records live, for messages."""
        return self.path

    @property
    def db(self) -> sqlite_utils.Database:
        """Return this thread's connection, opening it on first use."""
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
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
                row["kid"] for row in db.query("SELECT kid FROM tool_keys WHERE retire_at IS NULL")
            ]
            db.execute("UPDATE tool_keys SET retire_at = ? WHERE retire_at IS NULL", [retire_at])
            db["tool_keys"].insert(
                {"kid": kid, "private_pem": private_pem, "created_at": now_iso()}
            )
            db.execute(
                "DELETE FROM tool_keys WHERE retire_at IS NOT NULL AND retire_at <= ?", [now_iso()]
            )
        return old

    # Registrations

    def create_registration(
        self, openid_configuration_url: str, expires_at: str, token_digest: str | None = None
    ) -> Registration:
        """Record a new attempt in the pending state and return it.

        `token_digest` names the LMS's registration token (a hash, never the token): an
        attempt that claims it for registering spends it for every other attempt.
        """
        stamp = now_iso()
        reg_id = secrets.token_urlsafe(24)
        with self._write() as db:
            db["registrations"].insert(
                {
                    "id": reg_id,
                    "state": RegistrationState.PENDING,
                    "openid_configuration_url": openid_configuration_url,
                    "adjustments": "[]",
                    "created_at": stamp,
                    "updated_at": stamp,
                    "expires_at": expires_at,
                    "token_digest": token_digest,
                }
            )
        return self.get_registration(reg_id)

    def keep_pending_secret(self, reg_id: str, secret: dict[str, Any]) -> None:
        """Keep what finishing later needs (token, real endpoints) until the attempt ends."""
        self._update(reg_id, pending_secret=json.dumps(secret))

    def get_pending_secret(self, reg_id: str) -> dict[str, Any] | None:
        """Return the kept secret of an open attempt, or None."""
        row = self._one("SELECT pending_secret FROM registrations WHERE id = ?", [reg_id])
        return json.loads(row["pending_secret"]) if row and row["pending_secret"] else None

    def set_registration_account(self, reg_id: str, account_id: str) -> None:
        """Record which account approved the attempt."""
        self._update(reg_id, account_id=account_id)

    def expire_registrations(self) -> int:
        """Mark open attempts past their time as expired and drop their secrets."""
        with self._write() as db:
            query, params = move_registration(
                "expire", {"pending_secret": None}, "?", None, " AND expires_at <= ?", [now_iso()]
            )
            return db.execute(query, params).rowcount

    def get_registration(self, reg_id: str) -> Registration | None:
        """Return one attempt, or None."""
        row = self._one("SELECT * FROM registrations WHERE id = ?", [reg_id])
        return to_registration(row) if row else None

    def list_registrations(
        self, limit: int = 50, offset: int = 0, state: str | None = None
    ) -> list[Registration]:
        """Return attempts, newest first, optionally in one state."""
        where, params = filters(("state = ?", state))
        sql = "SELECT * FROM registrations" + where_clause(where)  # noqa: S608 - constant clauses
        rows = self.db.query(
            sql + " ORDER BY created_at DESC LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return [to_registration(row) for row in rows]

    def count_registrations(self, state: str | None = None) -> int:
        """Return how many attempts there are, optionally in one state."""
        where, params = filters(("state = ?", state))
        sql = "SELECT count(*) FROM registrations" + where_clause(where)  # noqa: S608
        return self.db.execute(sql, params).fetchone()[0]

    def set_registration_invitation(self, reg_id: str, invitation_id: str) -> None:
        """Record the invitation link an attempt started from."""
        self._update(reg_id, invitation_id=invitation_id)

    def set_done_token(self, reg_id: str, token_hash: str) -> None:
        """Store the hash of the single-use close-page token of a completed attempt."""
        self._update(reg_id, done_token_hash=token_hash)

    def consume_done_token(self, reg_id: str, token_hash: str) -> bool:
        """Use the close-page token once; False when it is wrong or already used."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE registrations SET done_token_hash = NULL WHERE id = ? AND "
                "done_token_hash = ?",
                [reg_id, token_hash],
            )
            return cursor.rowcount == 1

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
        self, reg_id: str, request: dict[str, Any], adjustments: list[Any]
    ) -> bool:
        """Move a pending attempt to registering; False when another request already did.

        False too when another attempt already spent the same registration token.
        """
        try:
            with self._write() as db:
                query, params = move_registration(
                    "claim",
                    {"request": json.dumps(request), "adjustments": json.dumps(adjustments)},
                    "?",
                    reg_id,
                    " AND expires_at > ?",
                    [now_iso()],
                )
                return db.execute(query, params).rowcount == 1
        except sqlite3.IntegrityError:  # idx_registrations_token_spent: the token is spent
            return False

    def record_platform_response(self, reg_id: str, status: int, body: str) -> None:
        """Write the LMS's answer before anything else happens with it."""
        self._update(reg_id, response_status=status, response_body=body)

    def fail_registration(
        self,
        reg_id: str,
        error: dict[str, Any],
        state: str = RegistrationState.FAILED,
        release_token: bool = False,
    ) -> bool:
        """End an attempt failed (or expired, or of unknown outcome) with the error the admin saw.

        False when the transition table does not allow it from the attempt's state (it was
        completed or ended meanwhile): nothing is changed then. `release_token` frees the
        LMS's registration token for another attempt: only when nothing reached the LMS.
        """
        changes: dict[str, Any] = {"error": json.dumps(error), "pending_secret": None}
        if release_token:
            changes["token_digest"] = None
        query, params = move_registration(ending_in(state), changes, "?", reg_id)
        with self._write() as db:
            return db.execute(query, params).rowcount == 1

    def latest_for_token(self, token_digest: str) -> Registration | None:
        """Return the newest attempt started with this registration token, or None."""
        row = self._one(
            "SELECT * FROM registrations WHERE token_digest = ? ORDER BY created_at DESC LIMIT 1",
            [token_digest],
        )
        return to_registration(row) if row else None

    def stale_registering(self, updated_before: str) -> list[Registration]:
        """Return attempts stuck in `registering` since before the given time (dead workers)."""
        rows = self.db.query(
            "SELECT * FROM registrations WHERE state = ? AND updated_at < ? ORDER BY created_at",
            [RegistrationState.REGISTERING, updated_before],
        )
        return [to_registration(row) for row in rows]

    def claim_stale(self, reg_id: str, updated_at: str) -> bool:
        """Take a stale attempt for recovery; False when another worker already took it."""
        with self._write() as db:
            query, params = move_registration(
                "recover", {}, "?", reg_id, " AND updated_at = ?", [updated_at]
            )
            return db.execute(query, params).rowcount == 1

    def purge_expired(self) -> int:
        """Drop the held token and platform documents of attempts that ended unfinished."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE registrations SET pending_secret = NULL, platform_config = NULL "
                "WHERE state = ? AND (pending_secret IS NOT NULL OR platform_config IS NOT NULL)",
                [RegistrationState.EXPIRED],
            )
            return cursor.rowcount

    def complete_registration(
        self,
        reg_id: str,
        platform: dict[str, Any],
        deployment_id: str | None,
        activate: bool,
        invitation_id: str | None = None,
        rename: bool = False,
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
            values = platform_values(platform, reg_id, invitation_id)
            if row:
                platform_id, created = row[0], False
                if not rename:  # keep the name the owner may have given it
                    values.pop("name")
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
            query, params = move_registration(
                "complete",
                {
                    "platform_id": platform_id,
                    "client_id": platform["client_id"],
                    "deployment_id": deployment_id,
                    "platform_created": int(created),
                    "pending_secret": None,
                },
                "?",
                reg_id,
            )
            if db.execute(query, params).rowcount != 1:
                # Rolls the platform back too: the attempt was completed or ended meanwhile.
                raise TransitionRefused(f"registration {reg_id}: complete")
        return self.get_platform(platform_id), created

    def _update(self, reg_id: str, **values: Any) -> None:
        with self._write() as db:
            db["registrations"].update(reg_id, {**values, "updated_at": now_iso()})

    # Platforms

    def get_platform(self, platform_id: str) -> Platform | None:
        """Return one platform by id, or None."""
        row = self._one("SELECT * FROM platforms WHERE id = ?", [platform_id])
        return to_platform(row) if row else None

    def find_platform(self, issuer: str, client_id: str) -> Platform | None:
        """Return the platform with this issuer and client_id, or None."""
        row = self._one(
            "SELECT * FROM platforms WHERE issuer = ? AND client_id = ?", [issuer, client_id]
        )
        return to_platform(row) if row else None

    def list_platforms(
        self,
        *,
        platform_id: str | None = None,
        issuer: str | None = None,
        client_id: str | None = None,
        search: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Platform]:
        """Return platforms matching the filters, newest first."""
        where, params = filters(
            ("id = ?", platform_id), ("issuer = ?", issuer), ("client_id = ?", client_id)
        )
        if search:
            where.append("(name LIKE ? OR issuer LIKE ? OR client_id LIKE ?)")
            params += [f"%{search}%"] * 3
        sql = "SELECT * FROM platforms" + where_clause(where)  # noqa: S608 - constant clauses
        sql += " ORDER BY created_at DESC, id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [to_platform(row) for row in self.db.query(sql, params)]

    def count_platforms(self, search: str | None = None) -> int:
        """Return how many platforms match a search (all when None)."""
        if search:
            return self.db.execute(
                "SELECT count(*) FROM platforms WHERE name LIKE ? OR issuer LIKE ? "
                "OR client_id LIKE ?",
                [f"%{search}%"] * 3,
            ).fetchone()[0]
        return self.db.execute("SELECT count(*) FROM platforms").fetchone()[0]

    def create_platform(self, values: dict[str, Any], active: bool) -> Platform:
        """Register a platform by hand; raise Conflict when (issuer, client_id) exists."""
        stamp = now_iso()
        platform_id = secrets.token_urlsafe(15)
        try:
            with self._write() as db:
                db["platforms"].insert(
                    {
                        **new_platform_values(values),
                        "id": platform_id,
                        "active": int(active),
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                )
        except sqlite3.IntegrityError:
            raise Conflict(conflict_message(values)) from None
        return self.get_platform(platform_id)

    def update_platform(self, platform_id: str, values: dict[str, Any]) -> Platform | None:
        """Change a platform's fields; raise Conflict on a duplicate (issuer, client_id)."""
        if "active" in values:
            values = {**values, "active": int(values["active"])}
        try:
            with self._write() as db:
                if not db.execute("SELECT 1 FROM platforms WHERE id = ?", [platform_id]).fetchone():
                    return None
                db["platforms"].update(platform_id, {**values, "updated_at": now_iso()})
        except sqlite3.IntegrityError:
            raise Conflict(conflict_message(values)) from None
        return self.get_platform(platform_id)

    def delete_platform(self, platform_id: str) -> bool:
        """Delete a platform and its deployments; False when it did not exist."""
        with self._write() as db:
            db.execute("DELETE FROM deployments WHERE platform_id = ?", [platform_id])
            cursor = db.execute("DELETE FROM platforms WHERE id = ?", [platform_id])
            return cursor.rowcount == 1

    def learn_scopes(
        self, platform: Platform, granted: Iterable[str], refused: Iterable[str]
    ) -> Platform | None:
        """Record what the token endpoint granted and refused, merged with what is known.

        The write lock makes read, merge and write one step, so two workers learning at once
        keep each other's knowledge; learning about a registration since replaced is dropped.
        """
        with self._write() as db:
            row = next(iter(db.query("SELECT * FROM platforms WHERE id = ?", [platform.id])), None)
            values = learned_values(row, platform, granted, refused) if row else None
            if values:
                db.execute(
                    "UPDATE platforms SET usable_scopes = ?, refused_scopes = ? WHERE id = ?",
                    [values["usable_scopes"], values["refused_scopes"], platform.id],
                )
        return self.get_platform(platform.id)

    def record_launch(self, platform_id: str) -> None:
        """Note that a launch from this platform was verified just now."""
        with self._write() as db:
            db.execute(
                "UPDATE platforms SET last_launch_at = ? WHERE id = ?", [now_iso(), platform_id]
            )

    # Launch states (OIDC login state and nonce)

    def create_launch_state(
        self,
        state_hash: str,
        nonce: str,
        platform_id: str,
        target_link_uri: str | None,
        expires_at: str,
    ) -> None:
        """Keep the state (hashed) and nonce of an OIDC login until its launch comes back."""
        with self._write() as db:
            db["launch_states"].insert(
                {
                    "state_hash": state_hash,
                    "nonce": nonce,
                    "platform_id": platform_id,
                    "target_link_uri": target_link_uri,
                    "created_at": now_iso(),
                    "expires_at": expires_at,
                    "used_at": None,
                }
            )

    def consume_launch_state(self, state_hash: str) -> tuple[LaunchState | None, str]:
        """Use a launch state once: return it and `LaunchStateStatus.OK`, or why not."""
        with self._write() as db:
            row = next(
                db.query("SELECT * FROM launch_states WHERE state_hash = ?", [state_hash]), None
            )
            status = launch_state_status(row)
            if status == LaunchStateStatus.OK:
                db.execute(
                    "UPDATE launch_states SET used_at = ? WHERE state_hash = ?",
                    [now_iso(), state_hash],
                )
        return to_launch_state(row), status

    def purge_launch_states(self, before: str) -> int:
        """Forget launch states that expired before `before` (used ones are kept till then)."""
        with self._write() as db:
            return db.execute("DELETE FROM launch_states WHERE expires_at < ?", [before]).rowcount

    # Deployments

    def add_deployment(
        self, platform_id: str, deployment_id: str, active: bool = True, source: str = "api"
    ) -> tuple[Deployment, bool]:
        """Add a deployment (or return the existing one); True when it was created."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO deployments "
                "(platform_id, deployment_id, active, source, created_at) VALUES (?, ?, ?, ?, ?)",
                [platform_id, deployment_id, int(active), source, now_iso()],
            )
            created = cursor.rowcount == 1
        return self.get_deployment(platform_id, deployment_id), created

    def get_deployment(self, platform_id: str, deployment_id: str) -> Deployment | None:
        """Return one deployment, or None."""
        row = self._one(
            "SELECT * FROM deployments WHERE platform_id = ? AND deployment_id = ?",
            [platform_id, deployment_id],
        )
        return to_deployment(row) if row else None

    def set_deployment_active(
        self, platform_id: str, deployment_id: str, active: bool
    ) -> Deployment | None:
        """Activate or deactivate a deployment; None when it does not exist."""
        with self._write() as db:
            db.execute(
                "UPDATE deployments SET active = ? WHERE platform_id = ? AND deployment_id = ?",
                [int(active), platform_id, deployment_id],
            )
        return self.get_deployment(platform_id, deployment_id)

    def delete_deployment(self, platform_id: str, deployment_id: str) -> bool:
        """Remove a deployment; False when it did not exist."""
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM deployments WHERE platform_id = ? AND deployment_id = ?",
                [platform_id, deployment_id],
            )
            return cursor.rowcount == 1

    def list_deployments(self, platform_id: str) -> list[Deployment]:
        """Return the deployments of a platform, oldest first."""
        rows = self.db.query(
            "SELECT * FROM deployments WHERE platform_id = ? ORDER BY created_at, deployment_id",
            [platform_id],
        )
        return [to_deployment(row) for row in rows]

    # Accounts

    def create_account(
        self,
        email: str,
        name: str | None = None,
        password_hash: str | None = None,
        oidc_issuer: str | None = None,
        oidc_subject: str | None = None,
    ) -> Account:
        """Create an account; raise AccountExists when the e-mail address is taken."""
        account_id = secrets.token_urlsafe(12)
        try:
            with self._write() as db:
                db["accounts"].insert(
                    {
                        "id": account_id,
                        "email": email.strip().lower(),
                        "name": name,
                        "password_hash": password_hash,
                        "oidc_issuer": oidc_issuer,
                        "oidc_subject": oidc_subject,
                        "created_at": now_iso(),
                    }
                )
        except sqlite3.IntegrityError:
            raise AccountExists(email) from None
        return self.get_account(account_id)

    def get_account(self, account_id: str) -> Account | None:
        """Return one account by id, or None."""
        row = self._one("SELECT * FROM accounts WHERE id = ?", [account_id])
        return to_account(row) if row else None

    def find_account_by_email(self, email: str) -> Account | None:
        """Return the account with this e-mail address (case-insensitive), or None."""
        row = self._one("SELECT * FROM accounts WHERE email = ?", [email.strip().lower()])
        return to_account(row) if row else None

    def find_or_create_oidc_account(
        self, issuer: str, subject: str, email: str, name: str | None
    ) -> Account:
        """Return the account of an OpenID Connect identity, linking or creating it."""
        row = self._one(
            "SELECT * FROM accounts WHERE oidc_issuer = ? AND oidc_subject = ?", [issuer, subject]
        )
        if row:
            return to_account(row)
        existing = self.find_account_by_email(email)
        if existing and existing.oidc_subject is None:
            with self._write() as db:
                db["accounts"].update(existing.id, {"oidc_issuer": issuer, "oidc_subject": subject})
            return self.get_account(existing.id)
        return self.create_account(email, name, oidc_issuer=issuer, oidc_subject=subject)

    def touch_login(self, account_id: str) -> None:
        """Record a successful sign-in."""
        with self._write() as db:
            db["accounts"].update(account_id, {"last_login_at": now_iso()})

    # Terms and payments

    def record_terms_acceptance(self, **values: Any) -> None:
        """Record an acceptance: registration_id, version, account, signer, ip, user agent."""
        with self._write() as db:
            db["terms_acceptances"].insert({**values, "accepted_at": now_iso()})

    def terms_acceptance(self, reg_id: str, version: str) -> TermsAcceptance | None:
        """Return the acceptance of a terms version for an attempt, or None."""
        row = self._one(
            "SELECT * FROM terms_acceptances WHERE registration_id = ? AND version = ? "
            "ORDER BY id DESC LIMIT 1",
            [reg_id, version],
        )
        return TermsAcceptance(**row) if row else None

    def record_checkout(self, **values: Any) -> None:
        """Record a new Checkout Session: session_id, registration_id, account, amount, status."""
        stamp = now_iso()
        with self._write() as db:
            db["payments"].insert({**values, "created_at": stamp, "updated_at": stamp})

    def update_payment(
        self,
        session_id: str,
        status: str,
        amount: int | None = None,
        currency: str | None = None,
    ) -> Payment | None:
        """Move a payment forward to `status` (recording the amount Stripe reports).

        Return the payment as stored, None when unknown: a move backwards (a late event, since
        Stripe does not order them) changes nothing, and the returned status says so.
        """
        query, params = move_payment(session_id, status, amount, currency, "?")
        with self._write() as db:
            db.execute(query, params)
        row = self._one("SELECT * FROM payments WHERE session_id = ?", [session_id])
        return Payment(**row) if row else None

    def payments_for(self, reg_id: str) -> list[Payment]:
        """Return the payments of an attempt, newest first."""
        rows = self.db.query(
            "SELECT * FROM payments WHERE registration_id = ? ORDER BY created_at DESC", [reg_id]
        )
        return [Payment(**row) for row in rows]

    def approval_of(self, reg_id: str | None) -> dict[str, Any]:
        """Return who approved an attempt, the terms they accepted, and the payment made."""
        approval = self.approvals_of([reg_id] if reg_id else [])
        entry = approval.get(reg_id) or {"account": None, "terms": None, "payment": None}
        return {key: entry[key] for key in ("account", "terms", "payment")}

    def approvals_of(self, reg_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Return each attempt's approval (see _common.approvals) in a fixed number of queries."""
        return approvals(lambda sql, params: self.db.query(sql, params), "?", reg_ids)

    def set_owner(self, account_id: str, owner: bool) -> None:
        """Give or take away access to the owner console."""
        with self._write() as db:
            db["accounts"].update(account_id, {"is_owner": int(owner)})

    # Sign-in throttling (per account and per address, shared by every worker)

    def signin_locked_until(self, keys: list[str]) -> str | None:
        """Return the latest lock time among keys that are still locked, or None."""
        marks = ",".join("?" * len(keys))
        row = self.db.execute(
            f"SELECT max(locked_until) FROM signin_throttle WHERE key IN ({marks}) "  # noqa: S608
            "AND locked_until > ?",
            [*keys, now_iso()],
        ).fetchone()
        return row[0] if row else None

    def record_signin_failure(self, keys: list[str], lock_for) -> None:
        """Count a failure for each key; lock a key for `lock_for(failures)` seconds or not."""
        from datetime import UTC, datetime, timedelta

        with self._write() as db:
            for key in keys:
                row = db.execute(
                    "SELECT failures FROM signin_throttle WHERE key = ?", [key]
                ).fetchone()
                failures = (row[0] if row else 0) + 1
                seconds = lock_for(failures)
                until = now_iso(datetime.now(UTC) + timedelta(seconds=seconds)) if seconds else None
                db["signin_throttle"].upsert(
                    {
                        "key": key,
                        "failures": failures,
                        "locked_until": until,
                        "updated_at": now_iso(),
                    },
                    pk="key",
                )

    def clear_signin_failures(self, key: str) -> None:
        """Forget the failures of a key after a successful sign-in."""
        with self._write() as db:
            db.execute("DELETE FROM signin_throttle WHERE key = ?", [key])

    # API keys

    def create_api_key(self, key_id: str, name: str, secret_hash: str) -> ApiKey:
        """Store a new API key's hash."""
        with self._write() as db:
            db["api_keys"].insert(
                {"id": key_id, "name": name, "secret_hash": secret_hash, "created_at": now_iso()}
            )
        return self.get_api_key(key_id)

    def get_api_key(self, key_id: str) -> ApiKey | None:
        """Return one API key record (with its hash), or None."""
        row = self._one("SELECT * FROM api_keys WHERE id = ?", [key_id])
        return ApiKey(**row) if row else None

    def list_api_keys(self) -> list[ApiKey]:
        """Return every API key, newest first."""
        return [
            ApiKey(**row)
            for row in self.db.query("SELECT * FROM api_keys ORDER BY created_at DESC")
        ]

    def touch_api_key(self, key_id: str) -> None:
        """Record that a key was used."""
        with self._write() as db:
            db["api_keys"].update(key_id, {"last_used_at": now_iso()})

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; False when it does not exist or was already revoked."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [now_iso(), key_id],
            )
            return cursor.rowcount == 1

    # Invitations

    def create_invitation(
        self, name: str, uses_allowed: int | None, expires_at: str | None
    ) -> Invitation:
        """Create a per-customer registration link."""
        invitation_id = secrets.token_urlsafe(9)
        with self._write() as db:
            db["invitations"].insert(
                {
                    "id": invitation_id,
                    "code": secrets.token_urlsafe(18),
                    "name": name,
                    "uses_allowed": uses_allowed,
                    "uses": 0,
                    "expires_at": expires_at,
                    "created_at": now_iso(),
                }
            )
        return self.get_invitation(invitation_id)

    def get_invitation(self, invitation_id: str) -> Invitation | None:
        """Return one invitation by id, or None."""
        row = self._one("SELECT * FROM invitations WHERE id = ?", [invitation_id])
        return Invitation(**row) if row else None

    def find_invitation(self, code: str) -> Invitation | None:
        """Return the invitation with this code, or None."""
        row = self._one("SELECT * FROM invitations WHERE code = ?", [code])
        return Invitation(**row) if row else None

    def list_invitations(self) -> list[Invitation]:
        """Return every invitation, newest first."""
        return [
            Invitation(**row)
            for row in self.db.query("SELECT * FROM invitations ORDER BY created_at DESC")
        ]

    def release_invitation(self, invitation_id: str) -> None:
        """Give back a use taken by an attempt the LMS did not complete."""
        with self._write() as db:
            db.execute(
                "UPDATE invitations SET uses = uses - 1 WHERE id = ? AND uses > 0", [invitation_id]
            )

    def revoke_invitation(self, invitation_id: str) -> bool:
        """Revoke an invitation; False when unknown or already revoked."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE invitations SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [now_iso(), invitation_id],
            )
            return cursor.rowcount == 1

    def use_invitation(self, invitation_id: str) -> bool:
        """Count one use if the invitation is still usable; False when it is not."""
        stamp = now_iso()
        with self._write() as db:
            cursor = db.execute(
                "UPDATE invitations SET uses = uses + 1 WHERE id = ? AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > ?) "
                "AND (uses_allowed IS NULL OR uses < uses_allowed)",
                [invitation_id, stamp],
            )
            return cursor.rowcount == 1

    # Audit log and notifications

    def audit(
        self,
        actor: str,
        action: str,
        subject_type: str | None = None,
        subject_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append a line to the audit log."""
        with self._write() as db:
            db["audit_log"].insert(
                {
                    "at": now_iso(),
                    "actor": actor,
                    "action": action,
                    "subject_type": subject_type,
                    "subject_id": subject_id,
                    "detail": json.dumps(detail) if detail is not None else None,
                }
            )

    def list_audit(
        self, limit: int = 50, offset: int = 0, subject_id: str | None = None
    ) -> list[AuditEntry]:
        """Return audit lines, newest first, optionally about one record."""
        where, params = filters(("subject_id = ?", subject_id))
        sql = "SELECT * FROM audit_log" + where_clause(where)  # noqa: S608 - constant clauses
        rows = self.db.query(sql + " ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset])
        return [to_audit_entry(row) for row in rows]

    def enqueue_notification(self, event: str, payload: str) -> int:
        """Queue a webhook event for delivery; return its id."""
        stamp = now_iso()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO notifications (event, payload, created_at, attempts, "
                "next_attempt_at) VALUES (?, ?, ?, 0, ?)",
                [event, payload, stamp, stamp],
            )
            return cursor.lastrowid

    def claim_notifications(self, lease_until: str, limit: int = 10) -> list[Notification]:
        """Take due notifications for delivery, hiding them from others until `lease_until`."""
        stamp = now_iso()
        with self._write() as db:
            rows = list(
                db.query(
                    "SELECT * FROM notifications WHERE delivered_at IS NULL AND next_attempt_at "
                    "IS NOT NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                    [stamp, limit],
                )
            )
            for row in rows:
                db.execute(
                    "UPDATE notifications SET next_attempt_at = ?, attempts = attempts + 1 "
                    "WHERE id = ?",
                    [lease_until, row["id"]],
                )
        return [Notification(**{**row, "attempts": row["attempts"] + 1}) for row in rows]

    def finish_notification(
        self,
        notification_id: int,
        *,
        delivered: bool,
        error: str | None = None,
        retry_at: str | None = None,
    ) -> None:
        """Record a delivery attempt: delivered, retried at `retry_at`, or given up (None)."""
        values = notification_changes(delivered, error, retry_at, now_iso())
        with self._write() as db:
            db["notifications"].update(notification_id, values)

    def list_notifications(self, limit: int = 50) -> list[Notification]:
        """Return notifications, newest first."""
        return [
            Notification(**row)
            for row in self.db.query(
                "SELECT * FROM notifications ORDER BY id DESC LIMIT ?", [limit]
            )
        ]

    # Export and import

    def dump_table(self, table: str) -> list[dict[str, Any]]:
        """Return every row of an exported table, in primary-key order."""
        order = ", ".join(EXPORT_TABLES[table])
        return list(self.db.query(f"SELECT * FROM {table} ORDER BY {order}"))  # noqa: S608 - names from EXPORT_TABLES

    def load_rows(self, table: str, rows: list[dict[str, Any]]) -> int:
        """Insert or replace rows of an exported table; return how many were written."""
        keys = EXPORT_TABLES[table]
        with self._write() as db:
            for row in rows:
                db[table].upsert(row, pk=keys if len(keys) > 1 else keys[0])
        return len(rows)

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        return next(iter(self.db.query(sql, params)), None)

    def find_oidc_account(self, issuer: str, subject: str) -> Account | None:
        """Return the account linked to an OpenID Connect identity, or None."""
        row = self._one(
            "SELECT * FROM accounts WHERE oidc_issuer = ? AND oidc_subject = ?", [issuer, subject]
        )
        return to_account(row) if row else None

    # Console lists: the audit log filtered, invitations and API keys by page

    def list_audit_matching(
        self,
        limit: int = 50,
        offset: int = 0,
        *,
        action: str | None = None,
        actor: str | None = None,
        subject_id: str | None = None,
    ) -> list[AuditEntry]:
        """Return audit lines, newest first, that match every filter given (exact values)."""
        where, params = filters(
            ("action = ?", action), ("actor = ?", actor), ("subject_id = ?", subject_id)
        )
        sql = "SELECT * FROM audit_log" + where_clause(where)  # noqa: S608 - constant clauses
        rows = self.db.query(sql + " ORDER BY id DESC LIMIT ? OFFSET ?", [*params, limit, offset])
        return [to_audit_entry(row) for row in rows]

    def count_audit_matching(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        subject_id: str | None = None,
    ) -> int:
        """Return how many audit lines match every filter given."""
        where, params = filters(
            ("action = ?", action), ("actor = ?", actor), ("subject_id = ?", subject_id)
        )
        sql = "SELECT count(*) FROM audit_log" + where_clause(where)  # noqa: S608
        return self.db.execute(sql, params).fetchone()[0]

    def audit_choices(self) -> dict[str, list[str]]:
        """Return the distinct actions and actors of the audit log, sorted (filter menus)."""
        return {
            column: sorted(
                row[column]
                for row in self.db.query(
                    f"SELECT DISTINCT {column} FROM audit_log"  # noqa: S608 - two constants
                )
            )
            for column in ("action", "actor")
        }

    def list_invitations_page(self, limit: int, offset: int = 0) -> list[Invitation]:
        """Return one page of invitations, newest first."""
        return [
            Invitation(**row)
            for row in self.db.query(
                "SELECT * FROM invitations ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                [limit, offset],
            )
        ]

    def count_invitations(self) -> int:
        """Return the number of invitations."""
        return self.db.execute("SELECT count(*) FROM invitations").fetchone()[0]

    def list_api_keys_page(self, limit: int, offset: int = 0) -> list[ApiKey]:
        """Return one page of API keys, newest first."""
        return [
            ApiKey(**row)
            for row in self.db.query(
                "SELECT * FROM api_keys ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                [limit, offset],
            )
        ]

    def count_api_keys(self) -> int:
        """Return the number of API keys, revoked ones included."""
        return self.db.execute("SELECT count(*) FROM api_keys").fetchone()[0]

    def claim_unknown(self, reg_id: str) -> bool:
        """Move an attempt of unknown outcome to registering while the owner finishes it.

        False when it is not of unknown outcome (any more): another owner got there first.
        """
        with self._write() as db:
            query, params = move_registration("resolve", {}, "?", reg_id)
            return db.execute(query, params).rowcount == 1
