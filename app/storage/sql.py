"""The one store: Gatehouse's records in SQLite or PostgreSQL, its SQL written once.

Statements use `?` placeholders and SQL both databases accept; the dialect converts them and
supplies what differs (locks, row locks, case-insensitive match, connections). Values always
travel as parameters; table and column names in built statements come from code only.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from .dialect import Dialect
from .migrations import migrate
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
    TermsAcceptance,
    ToolKey,
    now_iso,
)
from .states import (
    RegistrationState,
    TransitionRefused,
    ending_in,
    payment_sources,
    sources,
    target,
)

T = TypeVar("T")

# Columns an open attempt holds (its token, the LMS's secrets): no record ever carries them.
HELD = ("pending_secret", "done_token_hash", "token_digest")
# Columns holding secrets, which app/domain/sealing.py seals: (table, key column, value column,
# which rows). The store reads and writes them as text; it never knows whether they are sealed.
SECRET_COLUMNS = (
    ("tool_keys", "kid", "private_pem", "private_pem IS NOT NULL"),
    ("app_settings", "name", "value", "name = 'secret_key' AND value IS NOT NULL"),
    ("registrations", "id", "pending_secret", "pending_secret IS NOT NULL"),
)
TAKEN = "another platform has this issuer and client_id"


def marks(values: Iterable[Any]) -> str:
    """Return `?, ?, ?`: one placeholder per value of an `IN (...)` list."""
    return ", ".join("?" for _ in values)


def to_account(**row: Any) -> Account:
    """Build an Account from a row."""
    return Account(**{**row, "is_owner": bool(row["is_owner"])})


def to_platform(**row: Any) -> Platform:
    """Build a Platform from a row (scope lists are JSON, active an integer)."""
    row.update(scopes=tuple(json.loads(row["scopes"] or "[]")), active=bool(row["active"]))
    for key in ("usable_scopes", "refused_scopes"):
        row[key] = None if row[key] is None else tuple(json.loads(row[key]))
    return Platform(**row)


def to_deployment(**row: Any) -> Deployment:
    """Build a Deployment from a row."""
    return Deployment(**{**row, "active": bool(row["active"])})


def to_registration(**row: Any) -> Registration:
    """Build a Registration from a row, leaving out the held secret and token hashes."""
    data = {k: v for k, v in row.items() if k not in HELD}
    if data["platform_created"] is not None:
        data["platform_created"] = bool(data["platform_created"])
    for key in ("platform_config", "request", "error"):
        data[key] = json.loads(data[key]) if data[key] else None
    # Notable adjustments are stored as {"text", "notable"} objects among the plain strings.
    stored = json.loads(data["adjustments"] or "[]")
    data["adjustments"] = tuple(a["text"] if isinstance(a, dict) else a for a in stored)
    data["notable_adjustments"] = tuple(
        a["text"] for a in stored if isinstance(a, dict) and a.get("notable")
    )
    return Registration(**data)


def to_audit_entry(**row: Any) -> AuditEntry:
    """Build an AuditEntry from a row (detail is JSON text)."""
    return AuditEntry(**{**row, "detail": json.loads(row["detail"]) if row["detail"] else None})


def filters(*pairs: tuple[str, Any]) -> tuple[str, list[Any]]:
    """Return a WHERE clause of the constant conditions whose value is set, and the values.

    A condition with several placeholders takes a list of values.
    """
    where, params = [], []
    for condition, value in pairs:
        if value is not None:
            where.append(condition)
            params += value if isinstance(value, list) else [value]
    return (" WHERE " + " AND ".join(where) if where else ""), params


class Session:
    """A connection that takes `?` placeholders and answers rows as dicts."""

    def __init__(self, conn: Any, dialect: Dialect):
        self.conn, self.dialect = conn, dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; return the driver's cursor."""
        return self.conn.execute(self.dialect.query(sql), list(params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Return every row of a query."""
        return [dict(row) for row in self.execute(sql, params).fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """Return the first row of a query, or None."""
        rows = self.rows(sql, params)  # read to the end: no statement is left open
        return rows[0] if rows else None

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Return the first column of the first row, or None."""
        row = self.one(sql, params)
        return next(iter(row.values())) if row else None

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a change; return how many rows it touched."""
        return self.execute(sql, params).rowcount

    def insert(self, table: str, values: dict[str, Any], *, returning: bool = False) -> Any:
        """Insert one row; with `returning`, return it as stored (no second query)."""
        columns = ", ".join(values)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks(values)})"  # noqa: S608 - names from code
        if returning:
            return self.one(sql + " RETURNING *", list(values.values()))
        self.execute(sql, list(values.values()))
        return None

    def update(self, table: str, values: dict[str, Any], where: str, *params: Any) -> int:
        """Set `values` on the rows `where` matches (a constant condition); return how many."""
        return self.count(self._update_sql(table, values, where), [*values.values(), *params])

    def update_one(
        self, table: str, values: dict[str, Any], where: str, *params: Any
    ) -> dict[str, Any] | None:
        """Set `values` on the row `where` matches; return it as stored, or None."""
        sql = self._update_sql(table, values, where) + " RETURNING *"
        return self.one(sql, [*values.values(), *params])

    @staticmethod
    def _update_sql(table: str, values: dict[str, Any], where: str) -> str:
        sets = ", ".join(f"{column} = ?" for column in values)
        return f"UPDATE {table} SET {sets} WHERE {where}"  # noqa: S608 - names and conditions from code

    def add_deployment(
        self, platform_id: str, deployment_id: str, active: bool, source: str
    ) -> bool:
        """Add a deployment unless the platform has it; True when it was added."""
        return 1 == self.count(
            "INSERT INTO deployments (platform_id, deployment_id, active, source, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [platform_id, deployment_id, int(active), source, now_iso()],
        )

    def move(self, transition: str, values: dict[str, Any], where: str, *params: Any) -> int:
        """Run a named transition as one guarded UPDATE; return how many attempts moved.

        The target state (and `values`) is set only on the attempts `where` matches (a constant
        condition whose values are `params`) that are in one of the transition's from-states.
        """
        froms = sources(transition)
        changes = {**values, "state": target(transition), "updated_at": now_iso()}
        guarded = f"{where} AND state IN ({marks(froms)})"
        return self.update("registrations", changes, guarded, *params, *froms)


class SqlStore:
    """Gatehouse's records in one database, SQLite or PostgreSQL (see `dialect`)."""

    def __init__(self, dialect: Dialect):
        self.dialect = dialect
        # The driver's base error: what a health check treats as "database unreachable".
        self.Error = dialect.Error

    @property
    def location(self) -> str:
        """Return where the records live, for messages (never a password)."""
        return self.dialect.location

    def close(self) -> None:
        """Close the connections (they reopen on next use)."""
        self.dialect.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        with self.dialect.connection() as conn:
            yield Session(conn, self.dialect)

    def _single(self) -> contextlib.AbstractContextManager[Session]:
        """Lend a session for a write that is one statement: atomic on its own, no BEGIN/COMMIT
        around it (connections autocommit, as reads use them)."""
        return self._read()

    @contextlib.contextmanager
    def _write(self, lock: str | None = None) -> Iterator[Session]:
        """Run a short write transaction; `lock` serialises it against others on that table."""
        with self.dialect.transaction(lock) as conn:
            yield Session(conn, self.dialect)

    def _all(self, make: Callable[..., T], sql: str, params: Sequence[Any] = ()) -> list[T]:
        """Return `make(**row)` for every row of a query: the rows as records."""
        with self._read() as db:
            return [make(**row) for row in db.rows(sql, params)]

    def _first(self, make: Callable[..., T], sql: str, params: Sequence[Any] = ()) -> T | None:
        """Return the first row of a query as a record, or None."""
        found = self._all(make, sql, params)
        return found[0] if found else None

    def _page(
        self,
        make: Callable[..., T],
        table: str,
        where: tuple[str, list[Any]],
        order: str,
        limit: int | None,
        offset: int,
    ) -> tuple[list[T], int]:
        """Return a page of the rows `where` matches (all when `limit` is None) and their total.

        `where` is a constant clause and its values, from `filters`; `order` constant columns.
        """
        clause, params = where
        sql = f"SELECT * FROM {table}{clause} ORDER BY {order}"  # noqa: S608 - constants
        if limit is None:
            rows = self._all(make, sql, params)
            return rows, len(rows)
        rows = self._all(make, sql + " LIMIT ? OFFSET ?", [*params, limit, offset])
        if offset == 0 and len(rows) < limit:  # the whole of it: no need to count
            return rows, len(rows)
        return rows, self._value(f"SELECT count(*) AS n FROM {table}{clause}", params)  # noqa: S608

    def _value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._read() as db:
            return db.value(sql, params)

    def _change(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._write() as db:
            return db.count(sql, params)

    def _update(self, table: str, values: dict[str, Any], where: str, *params: Any) -> int:
        """Set `values` on the rows `where` matches, in a write of its own; return how many."""
        with self._write() as db:
            return db.update(table, values, where, *params)

    def migrate(self) -> list[str]:
        """Apply pending migrations (schema/*.sql) once across instances; return their names."""
        return migrate(self.dialect, now_iso())

    def ping(self) -> bool:
        """Return True when the database answers a query."""
        return self._value("SELECT 1 AS one") == 1

    # Settings kept in the database because the disk of a Heroku dyno is not.

    def get_or_create_setting(self, name: str, make_value) -> str:
        """Return a stored setting, storing `make_value()` first when it is missing."""
        query = "SELECT value FROM app_settings WHERE name = ?"
        value = self._value(query, [name])
        if value:
            return value
        with self._write() as db:  # another instance may store it first: then that value wins
            db.execute(
                "INSERT INTO app_settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [name, make_value()],
            )
            return db.value(query, [name])

    # Secrets (SECRET_COLUMNS): read and rewritten as text, sealed or not, by app/domain/sealing.py

    def secret_values(self) -> list[str]:
        """Return every stored secret value (private keys, the generated SECRET_KEY, held ones)."""
        with self._read() as db:
            return [
                row["v"]
                for table, _key, column, where in SECRET_COLUMNS
                for row in db.rows(f"SELECT {column} AS v FROM {table} WHERE {where}")  # noqa: S608 - constants
            ]

    def reseal(self, transform: Callable[[str], str]) -> int:
        """Replace each secret value by `transform(value)`, all in one transaction; return how
        many changed. An exception from `transform` leaves every value as it was."""
        changed = 0
        with self._write(lock="tool_keys") as db:
            for table, key, column, where in SECRET_COLUMNS:
                rows = db.rows(
                    f"SELECT {key} AS k, {column} AS v FROM {table} WHERE {where}"  # noqa: S608 - constants
                    + db.dialect.for_update
                )
                for row in rows:
                    value = transform(row["v"])
                    if value != row["v"]:
                        changed += db.update(table, {column: value}, f"{key} = ?", row["k"])
        return changed

    # Tool keys

    def list_tool_keys(self) -> list[ToolKey]:
        """Return all tool keys, newest first."""
        return self._all(ToolKey, "SELECT * FROM tool_keys ORDER BY created_at DESC, kid")

    def ensure_tool_key(self, make_key) -> None:
        """Create the first tool key with `make_key()` when there is none."""
        if self._value("SELECT 1 AS one FROM tool_keys LIMIT 1"):
            return
        with self._write(lock="tool_keys") as db:
            if db.value("SELECT 1 AS one FROM tool_keys LIMIT 1"):
                return
            kid, pem = make_key()
            db.insert("tool_keys", {"kid": kid, "private_pem": pem, "created_at": now_iso()})

    def rotate_tool_keys(self, kid: str, private_pem: str, retire_at: str) -> list[str]:
        """Add a new current key and schedule the others to retire; return their kids."""
        with self._write(lock="tool_keys") as db:
            old = [r["kid"] for r in db.rows("SELECT kid FROM tool_keys WHERE retire_at IS NULL")]
            db.execute("UPDATE tool_keys SET retire_at = ? WHERE retire_at IS NULL", [retire_at])
            db.insert(
                "tool_keys", {"kid": kid, "private_pem": private_pem, "created_at": now_iso()}
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
        stamp, reg_id = now_iso(), secrets.token_urlsafe(24)
        with self._write() as db:
            row = db.insert(
                "registrations",
                {
                    "id": reg_id,
                    "state": RegistrationState.PENDING,
                    "openid_configuration_url": openid_configuration_url,
                    "adjustments": "[]",
                    "created_at": stamp,
                    "updated_at": stamp,
                    "expires_at": expires_at,
                    "token_digest": token_digest,
                },
                returning=True,
            )
        return to_registration(**row)

    def _set(self, reg_id: str, **values: Any) -> None:
        self._update("registrations", {**values, "updated_at": now_iso()}, "id = ?", reg_id)

    def keep_pending_secret(self, reg_id: str, secret: str) -> None:
        """Keep what finishing later needs (token, real endpoints) until the attempt ends."""
        self._set(reg_id, pending_secret=secret)

    def get_pending_secret(self, reg_id: str) -> str | None:
        """Return the kept secret of an open attempt (as kept: the domain seals it), or None."""
        return self._value("SELECT pending_secret FROM registrations WHERE id = ?", [reg_id])

    def set_registration_account(self, reg_id: str, account_id: str) -> None:
        """Record which account approved the attempt."""
        self._set(reg_id, account_id=account_id)

    def expire_registrations(self) -> int:
        """Mark open attempts past their time as expired and drop their secrets."""
        with self._write() as db:
            return db.move("expire", {"pending_secret": None}, "expires_at <= ?", now_iso())

    def get_registration(self, reg_id: str) -> Registration | None:
        """Return one attempt, or None."""
        return self._first(to_registration, "SELECT * FROM registrations WHERE id = ?", [reg_id])

    def registrations_with_reference(self, reference: str) -> list[Registration]:
        """Return the attempts whose id starts with `reference` (a page footer's), newest first."""
        return self._all(
            to_registration,
            "SELECT * FROM registrations WHERE substr(id, 1, ?) = ? ORDER BY created_at DESC "
            "LIMIT 20",
            [len(reference), reference],
        )

    def list_registrations(
        self, limit: int | None = 50, offset: int = 0, state: str | None = None
    ) -> tuple[list[Registration], int]:
        """Return a page of attempts, newest first, optionally in one state, and their total."""
        where = filters(("state = ?", state))
        return self._page(to_registration, "registrations", where, "created_at DESC", limit, offset)

    def registration_counts(self) -> dict[str, int]:
        """Return how many attempts are in each state (states without any are left out)."""
        with self._read() as db:
            rows = db.rows("SELECT state, count(*) AS n FROM registrations GROUP BY state")
        return {row["state"]: int(row["n"]) for row in rows}

    def registrations_per_day(self, since: str) -> list[dict[str, Any]]:
        """Return completed registrations per day started and LMS family: day, family, n."""
        with self._read() as db:
            return db.rows(
                "SELECT substr(created_at, 1, 10) AS day, "
                "coalesce(product_family_code, '') AS family, count(*) AS n FROM registrations "
                "WHERE state = 'completed' AND created_at >= ? "
                "GROUP BY substr(created_at, 1, 10), coalesce(product_family_code, '') "
                "ORDER BY day, family",
                [since[:10]],
            )

    def registrations_by_institution(self) -> list[dict[str, Any]]:
        """Return the attempts grouped by LMS family and issuer, with the platform's name.

        Each row: family ('' when never read), issuer, name (of a platform an attempt made or
        updated, None when none did), attempts, completed, latest (the newest attempt's start).
        """
        with self._read() as db:
            return db.rows(
                "SELECT coalesce(r.product_family_code, '') AS family, r.issuer, "
                "max(p.name) AS name, count(*) AS attempts, "
                "sum(CASE WHEN r.state = 'completed' THEN 1 ELSE 0 END) AS completed, "
                "max(r.created_at) AS latest "
                "FROM registrations r LEFT JOIN platforms p ON p.id = r.platform_id "
                "WHERE r.issuer IS NOT NULL "
                "GROUP BY coalesce(r.product_family_code, ''), r.issuer "
                "ORDER BY family, r.issuer"
            )

    def set_registration_invitation(self, reg_id: str, invitation_id: str) -> None:
        """Record the invitation link an attempt started from."""
        self._set(reg_id, invitation_id=invitation_id)

    def set_done_token(self, reg_id: str, token_hash: str) -> None:
        """Store the hash of the single-use close-page token of a completed attempt."""
        self._set(reg_id, done_token_hash=token_hash)

    def consume_done_token(self, reg_id: str, token_hash: str) -> bool:
        """Use the close-page token once; False when it is wrong or already used."""
        where = "id = ? AND done_token_hash = ?"
        return 1 == self._update(
            "registrations", {"done_token_hash": None}, where, reg_id, token_hash
        )

    def record_platform_config(self, reg_id: str, config: dict[str, Any]) -> None:
        """Store the validated platform facts of an attempt (never the registration token)."""
        self._set(
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
        values = {"request": json.dumps(request), "adjustments": json.dumps(adjustments)}
        try:
            with self._write() as db:
                return db.move("claim", values, "id = ? AND expires_at > ?", reg_id, now_iso()) == 1
        except self.dialect.UniqueViolation:  # idx_registrations_token_spent: the token is spent
            return False

    def record_platform_response(self, reg_id: str, status: int, body: str) -> None:
        """Write the LMS's answer before anything else happens with it."""
        self._set(reg_id, response_status=status, response_body=body)

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
        with self._write() as db:
            return db.move(ending_in(state), changes, "id = ?", reg_id) == 1

    def latest_for_token(self, token_digest: str) -> Registration | None:
        """Return the newest attempt started with this registration token, or None."""
        return self._first(
            to_registration,
            "SELECT * FROM registrations WHERE token_digest = ? ORDER BY created_at DESC LIMIT 1",
            [token_digest],
        )

    def stale_registering(self, updated_before: str) -> list[Registration]:
        """Return attempts stuck in `registering` since before the given time (dead workers)."""
        return self._all(
            to_registration,
            "SELECT * FROM registrations WHERE state = ? AND updated_at < ? ORDER BY created_at",
            [RegistrationState.REGISTERING, updated_before],
        )

    def claim_stale(self, reg_id: str, updated_at: str) -> bool:
        """Take a stale attempt for recovery; False when another worker already took it."""
        with self._write() as db:
            return db.move("recover", {}, "id = ? AND updated_at = ?", reg_id, updated_at) == 1

    def claim_unknown(self, reg_id: str) -> bool:
        """Move an attempt of unknown outcome to registering while the owner finishes it.

        False when it is not of unknown outcome (any more): another owner got there first.
        """
        with self._write() as db:
            return db.move("resolve", {}, "id = ?", reg_id) == 1

    def purge_expired(self) -> int:
        """Drop the held token and platform documents of attempts that ended unfinished."""
        return self._change(
            "UPDATE registrations SET pending_secret = NULL, platform_config = NULL "
            "WHERE state = ? AND (pending_secret IS NOT NULL OR platform_config IS NOT NULL)",
            [RegistrationState.EXPIRED],
        )

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
        values = {
            **platform,
            "scopes": json.dumps(list(platform["scopes"])),
            "registration_id": reg_id,
        }
        # A new registration may grant differently: what the token endpoint taught is forgotten.
        values.update(usable_scopes=None, refused_scopes=None)
        if invitation_id:
            values["invitation_id"] = invitation_id
        # The platforms lock makes "find, then insert or update" one step across instances.
        with self._write(lock="platforms") as db:
            platform_id = db.value(
                "SELECT id FROM platforms WHERE issuer = ? AND client_id = ?",
                [platform["issuer"], platform["client_id"]],
            )
            created = platform_id is None
            if created:
                platform_id = secrets.token_urlsafe(15)
                values.update(id=platform_id, active=int(activate), created_at=stamp)
                row = db.insert("platforms", {**values, "updated_at": stamp}, returning=True)
            else:
                if not rename:  # keep the name the owner may have given it
                    values.pop("name")
                row = db.update_one(
                    "platforms", {**values, "updated_at": stamp}, "id = ?", platform_id
                )
            if deployment_id:
                db.add_deployment(platform_id, deployment_id, True, "registration")
            finished = {
                "platform_id": platform_id,
                "client_id": platform["client_id"],
                "deployment_id": deployment_id,
                "platform_created": int(created),
                "pending_secret": None,
            }
            if db.move("complete", finished, "id = ?", reg_id) != 1:
                # Rolls the platform back too: the attempt was completed or ended meanwhile.
                raise TransitionRefused(f"registration {reg_id}: complete")
        # As stored: the rest of the transaction changes the deployments and the attempt only.
        return to_platform(**row), created

    # Platforms

    def get_platform(self, platform_id: str) -> Platform | None:
        """Return one platform by id, or None."""
        return self._first(to_platform, "SELECT * FROM platforms WHERE id = ?", [platform_id])

    def find_platform(self, issuer: str, client_id: str) -> Platform | None:
        """Return the platform with this issuer and client_id, or None."""
        return self._first(
            to_platform,
            "SELECT * FROM platforms WHERE issuer = ? AND client_id = ?",
            [issuer, client_id],
        )

    def list_platforms(
        self,
        *,
        platform_id: str | None = None,
        issuer: str | None = None,
        client_id: str | None = None,
        search: str | None = None,
        active: bool | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[list[Platform], int]:
        """Return a page of the platforms matching the filters, newest first, and their total.

        `search` matches name, issuer or client_id, ignoring case.
        """
        like = self.dialect.ilike
        matches = f"(name {like} OR issuer {like} OR client_id {like})"
        where = filters(
            ("id = ?", platform_id),
            ("issuer = ?", issuer),
            ("client_id = ?", client_id),
            (matches, [f"%{search}%"] * 3 if search else None),
            ("active = ?", None if active is None else int(active)),
        )
        return self._page(to_platform, "platforms", where, "created_at DESC, id", limit, offset)

    def create_platform(self, values: dict[str, Any], active: bool) -> Platform:
        """Register a platform by hand; raise Conflict when (issuer, client_id) exists."""
        stamp, platform_id = now_iso(), secrets.token_urlsafe(15)
        row = {"scopes": "[]", "product_family_code": "", "version": ""}
        row.update({k: v for k, v in values.items() if k != "scopes"})
        row.update(id=platform_id, active=int(active), created_at=stamp, updated_at=stamp)
        try:
            with self._write() as db:
                db.insert("platforms", row)
        except self.dialect.UniqueViolation:
            raise Conflict(TAKEN) from None
        return self.get_platform(platform_id)

    def update_platform(self, platform_id: str, values: dict[str, Any]) -> Platform | None:
        """Change a platform's fields; raise Conflict on a duplicate (issuer, client_id)."""
        if "active" in values:
            values = {**values, "active": int(values["active"])}
        try:
            with self._write() as db:
                changes = {**values, "updated_at": now_iso()}
                if db.update("platforms", changes, "id = ?", platform_id) == 0:
                    return None
        except self.dialect.UniqueViolation:
            raise Conflict(TAKEN) from None
        return self.get_platform(platform_id)

    def delete_platform(self, platform_id: str) -> bool:
        """Delete a platform and its deployments; False when it did not exist."""
        with self._write() as db:
            db.execute("DELETE FROM deployments WHERE platform_id = ?", [platform_id])
            db.execute("DELETE FROM owner_alerts WHERE platform_id = ?", [platform_id])
            return db.count("DELETE FROM platforms WHERE id = ?", [platform_id]) == 1

    def learn_scopes(
        self,
        platform_id: str,
        merge: Callable[[Platform], tuple[Sequence[str], Sequence[str]] | None],
    ) -> Platform | None:
        """Store the usable and refused scopes `merge` makes of the platform as stored now.

        The row lock makes read, merge and write one step, so two workers learning at once
        keep each other's knowledge; `merge` returns None when there is nothing to write.
        """
        with self._write() as db:
            row = db.one(
                "SELECT * FROM platforms WHERE id = ?" + self.dialect.for_update,  # noqa: S608
                [platform_id],
            )
            learned = merge(to_platform(**row)) if row else None
            if learned:
                usable, refused = (json.dumps(sorted(scopes)) for scopes in learned)
                values = {"usable_scopes": usable, "refused_scopes": refused}
                db.update("platforms", values, "id = ?", platform_id)
        return self.get_platform(platform_id)

    def record_launch(self, platform_id: str) -> None:
        """Note that a launch from this platform was verified just now, and count it for today."""
        stamp = now_iso()
        with self._write() as db:
            db.update("platforms", {"last_launch_at": stamp}, "id = ?", platform_id)
            db.execute(
                "INSERT INTO launch_days (day, platform_id, product_family_code, launches) "
                "SELECT ?, id, coalesce(product_family_code, ''), 1 FROM platforms WHERE id = ? "
                "ON CONFLICT (day, platform_id) DO UPDATE SET launches = launch_days.launches + 1",
                [stamp[:10], platform_id],
            )

    def launches_per_day(self, since: str) -> list[dict[str, Any]]:
        """Return verified launches per day and LMS family from the day `since` on."""
        with self._read() as db:
            return db.rows(
                "SELECT day, product_family_code AS family, sum(launches) AS n FROM launch_days "
                "WHERE day >= ? GROUP BY day, product_family_code ORDER BY day, family",
                [since[:10]],
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
        with self._single() as db:
            db.insert(
                "launch_states",
                {
                    "state_hash": state_hash,
                    "nonce": nonce,
                    "platform_id": platform_id,
                    "target_link_uri": target_link_uri,
                    "created_at": now_iso(),
                    "expires_at": expires_at,
                },
            )

    def consume_launch_state(self, state_hash: str) -> tuple[LaunchState | None, str]:
        """Use a launch state once: return it and `LaunchStateStatus.OK`, or why not.

        One guarded UPDATE uses it, atomic on its own: of two launches with one state, one
        changes the row and the other finds it used. Only a state it did not use is read again,
        to say why.
        """
        now = now_iso()
        with self._single() as db:
            row = db.one(
                "UPDATE launch_states SET used_at = ? "
                "WHERE state_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING *",
                [now, state_hash, now],
            )
            if row is not None:
                return LaunchState(**row), LaunchStateStatus.OK
            row = db.one("SELECT * FROM launch_states WHERE state_hash = ?", [state_hash])
        if row is None:
            return None, LaunchStateStatus.UNKNOWN
        status = LaunchStateStatus.USED if row["used_at"] else LaunchStateStatus.EXPIRED
        return LaunchState(**row), status

    def purge_launch_states(self, before: str) -> int:
        """Forget launch states that expired before `before` (used ones are kept till then)."""
        return self._change("DELETE FROM launch_states WHERE expires_at < ?", [before])

    # Deployments

    def add_deployment(
        self, platform_id: str, deployment_id: str, active: bool = True, source: str = "api"
    ) -> tuple[Deployment, bool]:
        """Add a deployment (or return the existing one); True when it was created."""
        with self._write() as db:
            created = db.add_deployment(platform_id, deployment_id, active, source)
        return self.get_deployment(platform_id, deployment_id), created

    def get_deployment(self, platform_id: str, deployment_id: str) -> Deployment | None:
        """Return one deployment, or None."""
        return self._first(
            to_deployment,
            "SELECT * FROM deployments WHERE platform_id = ? AND deployment_id = ?",
            [platform_id, deployment_id],
        )

    def set_deployment_active(
        self, platform_id: str, deployment_id: str, active: bool
    ) -> Deployment | None:
        """Activate or deactivate a deployment; None when it does not exist."""
        where = "platform_id = ? AND deployment_id = ?"
        self._update("deployments", {"active": int(active)}, where, platform_id, deployment_id)
        return self.get_deployment(platform_id, deployment_id)

    def delete_deployment(self, platform_id: str, deployment_id: str) -> bool:
        """Remove a deployment; False when it did not exist."""
        return 1 == self._change(
            "DELETE FROM deployments WHERE platform_id = ? AND deployment_id = ?",
            [platform_id, deployment_id],
        )

    def pending_deployments(self, limit: int = 50) -> list[tuple[Deployment, str]]:
        """Return inactive deployments of any platform, newest first, with the platform's name."""
        with self._read() as db:
            rows = db.rows(
                "SELECT d.*, p.name AS platform_name FROM deployments d "
                "JOIN platforms p ON p.id = d.platform_id WHERE d.active = 0 "
                "ORDER BY d.created_at DESC, d.platform_id, d.deployment_id LIMIT ?",
                [limit],
            )
        found = []
        for row in rows:
            name = row.pop("platform_name")
            found.append((to_deployment(**row), name))
        return found

    def list_deployments(self, platform_id: str) -> list[Deployment]:
        """Return the deployments of a platform, oldest first."""
        return self._all(
            to_deployment,
            "SELECT * FROM deployments WHERE platform_id = ? ORDER BY created_at, deployment_id",
            [platform_id],
        )

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
                db.insert(
                    "accounts",
                    {
                        "id": account_id,
                        "email": email.strip().lower(),
                        "name": name,
                        "password_hash": password_hash,
                        "oidc_issuer": oidc_issuer,
                        "oidc_subject": oidc_subject,
                        "created_at": now_iso(),
                    },
                )
        except self.dialect.UniqueViolation:
            raise AccountExists(email) from None
        return self.get_account(account_id)

    def get_account(self, account_id: str) -> Account | None:
        """Return one account by id, or None."""
        return self._first(to_account, "SELECT * FROM accounts WHERE id = ?", [account_id])

    def find_account_by_email(self, email: str) -> Account | None:
        """Return the account with this e-mail address (case-insensitive), or None."""
        query = "SELECT * FROM accounts WHERE email = ?"
        return self._first(to_account, query, [email.strip().lower()])

    def find_oidc_account(self, issuer: str, subject: str) -> Account | None:
        """Return the account linked to an OpenID Connect identity, or None."""
        query = "SELECT * FROM accounts WHERE oidc_issuer = ? AND oidc_subject = ?"
        return self._first(to_account, query, [issuer, subject])

    def link_oidc(self, account_id: str, issuer: str, subject: str) -> Account | None:
        """Link an OpenID Connect identity to an account that has none; None when it has one."""
        identity = {"oidc_issuer": issuer, "oidc_subject": subject}
        self._update("accounts", identity, "id = ? AND oidc_subject IS NULL", account_id)
        account = self.get_account(account_id)
        linked = account and (account.oidc_issuer, account.oidc_subject) == (issuer, subject)
        return account if linked else None

    def touch_login(self, account_id: str) -> None:
        """Record a successful sign-in."""
        self._update("accounts", {"last_login_at": now_iso()}, "id = ?", account_id)

    def end_sessions(self, account_id: str) -> None:
        """End every session of an account (sign-out): bump its session version."""
        self._change(
            "UPDATE accounts SET session_version = session_version + 1 WHERE id = ?", [account_id]
        )

    def set_password(self, account_id: str, password_hash: str) -> bool:
        """Change an account's password and end its sessions; False when there is no account."""
        changed = self._change(
            "UPDATE accounts SET password_hash = ?, session_version = session_version + 1 "
            "WHERE id = ?",
            [password_hash, account_id],
        )
        return changed > 0

    def owner_emails(self) -> list[str]:
        """Return the e-mail addresses of the accounts that may use the owner console."""
        with self._read() as db:
            rows = db.rows("SELECT email FROM accounts WHERE is_owner = 1 ORDER BY email")
        return [row["email"] for row in rows]

    def set_owner(self, account_id: str, owner: bool) -> None:
        """Give or take away access to the owner console."""
        self._update("accounts", {"is_owner": int(owner)}, "id = ?", account_id)

    def accounts_of(self, reg_ids: Sequence[str]) -> dict[str, Account]:
        """Return the account bound to each of these attempts that has one."""
        if not reg_ids:
            return {}
        with self._read() as db:
            rows = db.rows(
                "SELECT r.id AS registration_id, a.* FROM registrations AS r "  # noqa: S608
                f"JOIN accounts AS a ON a.id = r.account_id WHERE r.id IN ({marks(reg_ids)})",
                list(reg_ids),
            )
        return {row.pop("registration_id"): to_account(**row) for row in rows}

    # Sign-in throttling (per account and per address, shared by every worker)

    def signin_locked_until(self, keys: list[str]) -> str | None:
        """Return the latest lock time among keys that are still locked, or None."""
        return self._value(
            "SELECT max(locked_until) AS until FROM signin_throttle "  # noqa: S608
            f"WHERE key IN ({marks(keys)}) "
            "AND locked_until > ?",
            [*keys, now_iso()],
        )

    def record_signin_failure(self, keys: list[str]) -> dict[str, int]:
        """Count a failure for each key; return each key's failures so far."""
        counted = {}
        with self._write() as db:
            for key in keys:
                # The upsert counts atomically, however many workers count at once.
                counted[key] = db.value(
                    "INSERT INTO signin_throttle (key, failures, locked_until, updated_at) "
                    "VALUES (?, 1, NULL, ?) ON CONFLICT (key) DO UPDATE SET "
                    "failures = signin_throttle.failures + 1, updated_at = excluded.updated_at "
                    "RETURNING failures",
                    [key, now_iso()],
                )
        return counted

    def lock_signin(self, key: str, until: str) -> None:
        """Lock a key until `until`, unless it is already locked for longer."""
        where = "key = ? AND (locked_until IS NULL OR locked_until < ?)"
        self._update("signin_throttle", {"locked_until": until}, where, key, until)

    def clear_signin_failures(self, key: str) -> None:
        """Forget the failures of a key after a successful sign-in."""
        self._change("DELETE FROM signin_throttle WHERE key = ?", [key])

    # Terms and payments

    def record_terms_acceptance(self, **values: Any) -> None:
        """Record an acceptance: registration_id, version, account, signer, ip, user agent."""
        with self._write() as db:
            db.insert("terms_acceptances", {**values, "accepted_at": now_iso()})

    def terms_for(self, *reg_ids: str) -> list[TermsAcceptance]:
        """Return every acceptance of the terms for these attempts, newest first."""
        if not reg_ids:
            return []
        return self._all(
            TermsAcceptance,
            "SELECT * FROM terms_acceptances "  # noqa: S608
            f"WHERE registration_id IN ({marks(reg_ids)}) ORDER BY id DESC",
            reg_ids,
        )

    def record_checkout(self, **values: Any) -> None:
        """Record a new Checkout Session: session_id, registration_id, account, amount, status."""
        stamp = now_iso()
        with self._write() as db:
            db.insert("payments", {**values, "created_at": stamp, "updated_at": stamp})

    def update_payment(
        self,
        session_id: str,
        status: str,
        amount: int | None = None,
        currency: str | None = None,
        mismatch: str | None = None,
    ) -> Payment | None:
        """Move a payment forward to `status` (recording the amount Stripe reports, or why
        Stripe's session does not match what was asked).

        Return the payment as stored, None when unknown: a move backwards (a late event, since
        Stripe does not order them) changes nothing, and the returned status says so.
        """
        changes: dict[str, Any] = {"status": status, "updated_at": now_iso()}
        if amount is not None:
            changes["amount"] = amount
        if currency:
            changes["currency"] = currency
        if mismatch:
            changes["mismatch"] = mismatch
        froms = payment_sources(status)
        with self._write() as db:
            where = f"session_id = ? AND status IN ({marks(froms)})"
            db.update("payments", changes, where, session_id, *froms)
        query = "SELECT * FROM payments WHERE session_id = ?"
        return self._first(Payment, query, [session_id])

    def payments_for(self, *reg_ids: str) -> list[Payment]:
        """Return every payment of these attempts, newest first."""
        if not reg_ids:
            return []
        return self._all(
            Payment,
            f"SELECT * FROM payments WHERE registration_id IN ({marks(reg_ids)}) "  # noqa: S608
            "ORDER BY created_at DESC",
            reg_ids,
        )

    # API keys

    def create_api_key(self, key_id: str, name: str, secret_hash: str) -> ApiKey:
        """Store a new API key's hash."""
        with self._write() as db:
            db.insert(
                "api_keys",
                {"id": key_id, "name": name, "secret_hash": secret_hash, "created_at": now_iso()},
            )
        return self.get_api_key(key_id)

    def get_api_key(self, key_id: str) -> ApiKey | None:
        """Return one API key record (with its hash), or None."""
        return self._first(ApiKey, "SELECT * FROM api_keys WHERE id = ?", [key_id])

    def list_api_keys(self, limit: int | None = None, offset: int = 0) -> tuple[list[ApiKey], int]:
        """Return a page of API keys (all by default), newest first, and how many there are."""
        return self._page(ApiKey, "api_keys", filters(), "created_at DESC, id", limit, offset)

    def touch_api_key(self, key_id: str) -> None:
        """Record that a key was used."""
        self._update("api_keys", {"last_used_at": now_iso()}, "id = ?", key_id)

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; False when it does not exist or was already revoked."""
        where = "id = ? AND revoked_at IS NULL"
        return 1 == self._update("api_keys", {"revoked_at": now_iso()}, where, key_id)

    # Invitations

    def create_invitation(
        self, name: str, uses_allowed: int | None, expires_at: str | None
    ) -> Invitation:
        """Create a per-customer registration link."""
        invitation_id = secrets.token_urlsafe(9)
        with self._write() as db:
            db.insert(
                "invitations",
                {
                    "id": invitation_id,
                    "code": secrets.token_urlsafe(18),
                    "name": name,
                    "uses_allowed": uses_allowed,
                    "uses": 0,
                    "expires_at": expires_at,
                    "created_at": now_iso(),
                },
            )
        return self.get_invitation(invitation_id)

    def get_invitation(
        self, invitation_id: str | None = None, *, code: str | None = None
    ) -> Invitation | None:
        """Return the invitation with this id, or with this `code`, or None."""
        column, value = ("code", code) if code is not None else ("id", invitation_id)
        query = f"SELECT * FROM invitations WHERE {column} = ?"  # noqa: S608 - two constants
        return self._first(Invitation, query, [value])

    def list_invitations(
        self, limit: int | None = None, offset: int = 0
    ) -> tuple[list[Invitation], int]:
        """Return a page of invitations (all by default), newest first, and how many there are."""
        order = "created_at DESC, id"
        return self._page(Invitation, "invitations", filters(), order, limit, offset)

    def release_invitation(self, invitation_id: str) -> None:
        """Give back a use taken by an attempt the LMS did not complete."""
        self._change(
            "UPDATE invitations SET uses = uses - 1 WHERE id = ? AND uses > 0", [invitation_id]
        )

    def revoke_invitation(self, invitation_id: str) -> bool:
        """Revoke an invitation; False when unknown or already revoked."""
        where = "id = ? AND revoked_at IS NULL"
        return 1 == self._update("invitations", {"revoked_at": now_iso()}, where, invitation_id)

    def use_invitation(self, invitation_id: str) -> bool:
        """Count one use if the invitation is still usable; False when it is not."""
        # The UPDATE's write (or row) lock re-checks the conditions after a concurrent use.
        return 1 == self._change(
            "UPDATE invitations SET uses = uses + 1 WHERE id = ? AND revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > ?) "
            "AND (uses_allowed IS NULL OR uses < uses_allowed)",
            [invitation_id, now_iso()],
        )

    # Audit log

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
            db.insert(
                "audit_log",
                {
                    "at": now_iso(),
                    "actor": actor,
                    "action": action,
                    "subject_type": subject_type,
                    "subject_id": subject_id,
                    "detail": json.dumps(detail) if detail is not None else None,
                },
            )

    def list_audit(
        self,
        limit: int | None = 50,
        offset: int = 0,
        *,
        action: str | None = None,
        actor: str | None = None,
        subject_id: str | None = None,
    ) -> tuple[list[AuditEntry], int]:
        """Return a page of audit lines, newest first, that match every filter given, and total."""
        where = filters(
            ("action = ?", action), ("actor = ?", actor), ("subject_id = ?", subject_id)
        )
        return self._page(to_audit_entry, "audit_log", where, "id DESC", limit, offset)

    def audit_choices(self) -> dict[str, list[str]]:
        """Return the distinct actions and actors of the audit log, sorted (filter menus)."""
        # Sorted here, not by the database's locale: the same order on both databases.
        with self._read() as db:
            return {
                column: sorted(
                    row[column]
                    for row in db.rows(f"SELECT DISTINCT {column} FROM audit_log")  # noqa: S608 - two constants
                )
                for column in ("action", "actor")
            }

    def latest_actors(self, action: str, subject_ids: Sequence[str]) -> dict[str, str]:
        """Return the actor of the latest audit line with `action` about each subject."""
        if not subject_ids:
            return {}
        with self._read() as db:
            rows = db.rows(
                "SELECT subject_id, actor FROM audit_log WHERE action = ? "  # noqa: S608
                f"AND subject_id IN ({marks(subject_ids)}) ORDER BY id",
                [action, *subject_ids],
            )
        return {row["subject_id"]: row["actor"] for row in rows}  # the latest line wins

    # Notifications: the owner's webhook and e-mail

    def enqueue_notification(self, event: str, payload: str, channel: str = "webhook") -> int:
        """Queue an event for delivery on `channel` ("webhook" or "email"); return its id."""
        stamp = now_iso()
        with self._write() as db:
            return db.value(
                "INSERT INTO notifications (event, payload, created_at, attempts, "
                "next_attempt_at, channel) VALUES (?, ?, ?, 0, ?, ?) RETURNING id",
                [event, payload, stamp, stamp, channel],
            )

    def claim_owner_alert(self, platform_id: str, now: str, quiet_since: str) -> bool:
        """Return True when the owner was not alerted about this platform since `quiet_since`.

        Then the alert is recorded at `now`, in the same statement: of several workers asking
        at once, one gets True.
        """
        with self._write() as db:
            claimed = db.rows(
                "INSERT INTO owner_alerts (platform_id, alerted_at) VALUES (?, ?) "
                "ON CONFLICT (platform_id) DO UPDATE SET alerted_at = excluded.alerted_at "
                "WHERE owner_alerts.alerted_at <= ? RETURNING platform_id",
                [platform_id, now, quiet_since],
            )
        return bool(claimed)

    def claim_notifications(self, lease_until: str, limit: int = 10) -> list[Notification]:
        """Take due notifications for delivery, hiding them from others until `lease_until`."""
        with self._write() as db:
            # SKIP LOCKED (PostgreSQL): a worker claiming at the same moment takes other rows.
            rows = db.rows(
                "SELECT * FROM notifications WHERE delivered_at IS NULL AND next_attempt_at "  # noqa: S608
                "IS NOT NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?"
                + self.dialect.skip_locked,
                [now_iso(), limit],
            )
            if rows:
                ids = [row["id"] for row in rows]
                db.execute(
                    "UPDATE notifications SET next_attempt_at = ?, attempts = attempts + 1 "  # noqa: S608
                    f"WHERE id IN ({marks(ids)})",
                    [lease_until, *ids],
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
        values: dict[str, Any] = {"last_error": error, "next_attempt_at": retry_at}
        if delivered:
            values.update(delivered_at=now_iso(), next_attempt_at=None)
        self._update("notifications", values, "id = ?", notification_id)

    # Export and import: whole tables, in the order and with the keys the caller gives

    def dump_table(self, table: str, key: Sequence[str]) -> list[dict[str, Any]]:
        """Return every row of a table as a dict, ordered by its primary `key` columns."""
        with self._read() as db:
            return db.rows(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")  # noqa: S608 - names from code

    def load_rows(self, table: str, rows: list[dict[str, Any]], key: Sequence[str]) -> int:
        """Insert rows, replacing those with the same primary `key`; return how many."""
        with self._write() as db:
            # Column names come from the export file: only the table's own may be named.
            known = {c[0] for c in db.execute(f"SELECT * FROM {table} LIMIT 0").description}  # noqa: S608
            for row in rows:
                if not set(row) <= known:
                    raise ValueError(f"{table} has no column {sorted(set(row) - known)[0]!r}")
                others = [column for column in row if column not in key]
                changes = ", ".join(f"{column} = excluded.{column}" for column in others)
                db.execute(
                    f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks(row)}) "  # noqa: S608 - names from code and the export's own columns
                    f"ON CONFLICT ({', '.join(key)}) DO "
                    + (f"UPDATE SET {changes}" if others else "NOTHING"),
                    list(row.values()),
                )
        return len(rows)
