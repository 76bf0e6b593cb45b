"""What SQLite and PostgreSQL do differently, and nothing else: the store's SQL is written once.

The store writes `?` placeholders and the subset of SQL both databases accept (`ON CONFLICT`,
`RETURNING`, `IN (...)`); a dialect converts the placeholders, fills in the column types of
the migration files, and knows its driver: connections, write transactions and their locks,
row locks, case-insensitive matching and the error a unique index raises.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class Dialect:
    """What both databases supply; the store sees only this.

    Each also has `location` (where the records live, for messages), `connection()` (lend a
    connection in autocommit mode), `transaction(lock)` (a short write transaction, `lock`
    naming a table to serialise it against) and `close()` (connections reopen on next use).
    """

    name: str
    # The driver's base error: what a health check treats as "database unreachable".
    Error: type[Exception]
    # What inserting a duplicate into a unique index raises.
    UniqueViolation: type[Exception]
    # The column types of the migration files: {text} byte-ordered text, {id} an integer key
    # the database numbers, {bigint} a 64-bit integer.
    types: dict[str, str]
    # Appended to a SELECT in a write transaction: lock the rows read (SQLite's write lock
    # already covers the whole database), or skip those another worker has locked.
    for_update = ""
    skip_locked = ""
    # Follows a column: match a `%pattern%` parameter ignoring case, with no escape character.
    ilike: str
    # The table of applied migrations, and how to read and add names; what makes instances
    # that migrate at once wait for each other, inside the migration's transaction (nothing
    # in SQLite: the migration's BEGIN IMMEDIATE already excludes other writers).
    records_ddl: str
    applied_sql: str
    record_sql: str
    migration_lock: str | None = None

    def ddl(self, statement: str) -> str:
        """Return a migration statement with this database's column types."""
        for token, sql_type in self.types.items():
            statement = statement.replace(token, sql_type)
        return statement

    def query(self, statement: str) -> str:
        """Return a statement written with `?` placeholders in the driver's style."""
        return statement


BUSY_TIMEOUT_MS = 15000


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch a new file to WAL, retrying while other connections hold it.

    The switch needs the file to itself, and where two connections opening a new file at once
    would deadlock SQLite answers "database is locked" at once, without the busy timeout
    (https://www.sqlite.org/lang_transaction.html, "deadlock"): several workers starting on a
    fresh database meet exactly that, so the switch is retried until the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode = wal").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("could not switch the database to WAL: it stays locked")
        time.sleep(0.02)


class SQLite(Dialect):
    """One SQLite file in WAL mode; one connection per thread, writes under BEGIN IMMEDIATE."""

    name = "sqlite"
    Error = sqlite3.Error
    UniqueViolation = sqlite3.IntegrityError
    types = {"{text}": "TEXT", "{id}": "INTEGER PRIMARY KEY", "{bigint}": "INTEGER"}
    ilike = "LIKE ?"  # SQLite's LIKE ignores ASCII case and has no escape character
    # sqlite-utils' Migrations recorded SQLite's migrations in this table: it stays.
    records_ddl = (
        'CREATE TABLE IF NOT EXISTS "_sqlite_migrations" ("id" INTEGER PRIMARY KEY, '
        '"migration_set" TEXT, "name" TEXT, "applied_at" TEXT);\n'
        'CREATE UNIQUE INDEX IF NOT EXISTS "idx__sqlite_migrations_migration_set_name" '
        'ON "_sqlite_migrations" ("migration_set", "name")'
    )
    applied_sql = "SELECT name FROM _sqlite_migrations WHERE migration_set = 'gatehouse'"
    record_sql = (
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('gatehouse', ?, ?)"
    )

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()

    @property
    def location(self) -> str:
        """Return the file's path."""
        return self.path

    def _conn(self) -> sqlite3.Connection:
        """Return this thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row  # by name or by index, as sqlite-utils reads
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Readers never wait for the writer; the file stays so.
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                _enable_wal(conn)
            self._local.conn = conn
        return conn

    @property
    def db(self) -> Any:
        """Return this thread's connection as a sqlite-utils Database (introspection, tests).

        Imported here, not by the store: sqlite-utils loads numpy when it is installed, about
        15 MB more in every worker for what serving never uses.
        """
        import sqlite_utils

        db = getattr(self._local, "db", None)
        if db is None or db.conn is not self._conn():
            db = self._local.db = sqlite_utils.Database(self._conn())
        return db

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Lend this thread's connection."""
        yield self._conn()

    @contextlib.contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[sqlite3.Connection]:
        """Take the database's write lock up front (BEGIN IMMEDIATE): `lock` adds nothing."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            self._local.db = None


# Any 64-bit number, the same in every instance: who holds it applies migrations.
MIGRATION_LOCK = int.from_bytes(b"gatehous", "big")
CONNECT_TIMEOUT_S = 10
# Readers and writers never wait on a lock longer than SQLite's busy timeout.
LOCK_TIMEOUT = "15s"
# More than a gunicorn worker's threads plus the notifier and maintenance threads.
POOL_SIZE = 16


class PostgreSQL(Dialect):
    """A PostgreSQL database shared by any number of instances, through a psycopg_pool pool.

    Text columns use the "C" collation so ordering and comparisons (timestamps, ids) are byte
    order, as in SQLite. Where SQLite serialises writers with BEGIN IMMEDIATE, read-then-write
    transactions here lock a table or the rows they read.
    """

    name = "postgresql"
    types = {
        "{text}": 'text COLLATE "C"',
        "{id}": "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "{bigint}": "bigint",
    }
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    ilike = "ILIKE ? ESCAPE ''"
    records_ddl = (
        'CREATE TABLE IF NOT EXISTS gatehouse_migrations (name text COLLATE "C" PRIMARY KEY, '
        'applied_at text COLLATE "C" NOT NULL)'
    )
    applied_sql = "SELECT name FROM gatehouse_migrations"
    record_sql = "INSERT INTO gatehouse_migrations (name, applied_at) VALUES (?, ?)"
    # Instances starting at once queue: the first applies, the rest then see it done.
    migration_lock = f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"

    def __init__(self, url: str):
        # Only here: the driver and its pool are the optional `postgres` extra.
        import psycopg
        import psycopg_pool  # noqa: F401 - missing, it is missing now rather than on first use

        self.Error = psycopg.Error
        self.UniqueViolation = psycopg.errors.UniqueViolation
        self.url = url  # a new URL takes effect once the pool is closed
        self._lock = threading.Lock()
        self._pool: Any = None  # opened on first use: choosing the store never connects
        self._pid = os.getpid()
        self._inherited: list[Any] = []

    @property
    def location(self) -> str:
        """Return the database URL without its password, for messages."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    def query(self, statement: str) -> str:
        """Return the statement with psycopg's `%s` placeholders (and a literal % doubled)."""
        return statement.replace("%", "%%").replace("?", "%s")

    def _pool_now(self) -> Any:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        with self._lock:
            if self._pool is not None and os.getpid() != self._pid:
                # Forked: the parent's sockets are not ours to use, nor to close.
                self._inherited.append(self._pool)
                self._pool, self._pid = None, os.getpid()
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.url,
                    min_size=0,
                    max_size=POOL_SIZE,
                    timeout=CONNECT_TIMEOUT_S,
                    kwargs={
                        "autocommit": True,
                        "row_factory": dict_row,
                        "connect_timeout": CONNECT_TIMEOUT_S,
                        "options": f"-c lock_timeout={LOCK_TIMEOUT}",
                    },
                    open=True,
                )
            return self._pool

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """Lend a pooled connection in autocommit mode."""
        with self._pool_now().connection() as conn:
            yield conn

    @contextlib.contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[Any]:
        """Run a transaction; `lock` takes that table's lock against other such writers."""
        from psycopg import sql

        with self.connection() as conn, conn.transaction():
            if lock:
                statement = sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE")
                conn.execute(statement.format(sql.Identifier(lock)))
            yield conn

    def close(self) -> None:
        """Close the pool; a new one opens on next use."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
