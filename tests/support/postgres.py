"""A private, throw-away PostgreSQL cluster for the test session, and backend-neutral SQL helpers.

The cluster lives in a temporary folder, listens on 127.0.0.1 at a free port, trusts local
connections and does not fsync. Root cannot run the server, so as root it runs as `postgres`.
It never touches a system cluster. Without the server binaries the PostgreSQL tests are
skipped, unless GATEHOUSE_REQUIRE_POSTGRES is set (CI), which makes that a failure.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import time

from app.testing import free_port

# Read once at import: the suite's clean_environment fixture empties GATEHOUSE_* per test.
REQUIRED = bool(os.environ.get("GATEHOUSE_REQUIRE_POSTGRES"))
SERVICE_USER = "postgres"


class Unavailable(Exception):
    """PostgreSQL cannot run here (no binaries, no psycopg, or it would not start)."""


def find_bindir() -> str | None:
    """Return the newest Debian PostgreSQL bin folder, or the one initdb is on PATH in."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0,
    )
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


class Cluster:
    """One initdb'd cluster: start, create and drop databases, stop."""

    def __init__(self, bindir: str):
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix="gatehouse-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self.port = 0
        self._names = itertools.count(1)
        self._shared = False
        # The tables and applied migrations of the shared database, once migrated here.
        self._schema: tuple[frozenset[str], frozenset[str]] | None = None
        self._as_service = os.geteuid() == 0
        if self._as_service:
            shutil.chown(self.root, user=SERVICE_USER)

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", SERVICE_USER, "--"] if self._as_service else []
        result = subprocess.run(  # noqa: S603 - fixed binaries and arguments
            [*prefix, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            log = ""
            if os.path.exists(self.log):
                with open(self.log) as handle:
                    log = handle.read()[-2000:]
            raise Unavailable(f"{' '.join(args[:1])} failed: {result.stderr or result.stdout}{log}")

    def start(self) -> None:
        """Create the cluster and start the server on a free port."""
        initdb = [
            os.path.join(self.bindir, "initdb"),
            "-D",
            self.data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--no-instructions",
        ]
        try:
            # A natural-language default collation, as hosted databases have (en_US.UTF-8 on
            # Heroku), so the store's byte-order ("C") columns are really put to the test.
            self._run(*initdb, "--locale-provider=icu", "--icu-locale=en-US", "--locale=C.UTF-8")
        except Unavailable:  # before PostgreSQL 15, or built without ICU
            shutil.rmtree(self.data, ignore_errors=True)
            self._run(*initdb)
        for _attempt in range(3):  # another process may take the port between check and start
            self.port = free_port()
            options = (
                f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run(
                    os.path.join(self.bindir, "pg_ctl"),
                    "-D",
                    self.data,
                    "-l",
                    self.log,
                    "-w",
                    "-t",
                    "30",
                    "-o",
                    options,
                    "start",
                )
                return
            except Unavailable:
                time.sleep(0.2)
        raise Unavailable(f"the server would not start; see {self.log}")

    def url(self, database: str = "postgres") -> str:
        """Return a postgres:// URL (the scheme Heroku uses) for a database."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(statement)

    def fresh_database(self, migrated: bool = True) -> str:
        """Return the URL of the shared test database, emptied for a new test.

        With `migrated` (what an app's test wants) the schema stays and every table is emptied,
        which costs a fifth of dropping the schema and migrating it again at each app start;
        the app's own start-up migration then finds nothing to do. Without it the database has
        no table at all, as a new one has. Either way, emptying one database takes about a
        third of the time CREATE DATABASE does.
        """
        import psycopg
        from psycopg import sql

        if not self._shared:
            self._admin("CREATE DATABASE gatehouse_test")
            self._shared = True
        url = self.url("gatehouse_test")
        with psycopg.connect(url, autocommit=True) as conn:
            # A test that left a transaction open would otherwise hang the next one.
            conn.execute("SET lock_timeout = '30s'")
            if migrated and self._schema is not None and self._schema == _schema_of(conn):
                tables = sorted(self._schema[0] - {"gatehouse_migrations"})
                conn.execute(
                    sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                        sql.SQL(", ").join(map(sql.Identifier, tables))
                    )
                )
                return url
            self._schema = None
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        if migrated:
            from app.storage import open_store

            store = open_store(url, self.root)
            try:
                store.migrate()
            finally:
                store.close()
            with psycopg.connect(url, autocommit=True) as conn:
                self._schema = _schema_of(conn)
        return url

    def create_database(self) -> str:
        """Create an empty database and return its URL."""
        name = f"gatehouse_test_{next(self._names)}"
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by create_database, ending any connection left to it."""
        name = url.rsplit("/", 1)[1]
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server and delete the cluster's folder."""
        try:
            self._run(
                os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"
            )
        except Unavailable:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def _schema_of(conn) -> tuple[frozenset[str], frozenset[str]]:
    """Return (table names, applied migration names) of a database's public schema."""
    tables = frozenset(
        row[0]
        for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    )
    migrations = frozenset()
    if "gatehouse_migrations" in tables:
        migrations = frozenset(
            row[0] for row in conn.execute("SELECT name FROM gatehouse_migrations")
        )
    return tables, migrations


def start_cluster() -> Cluster:
    """Start a private cluster, or raise Unavailable saying why not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("psycopg is not installed (pip install -e '.[test,postgres]')") from None
    bindir = find_bindir()
    if bindir is None:
        raise Unavailable(
            "PostgreSQL server binaries not found (apt-get install postgresql; "
            "looked for /usr/lib/postgresql/*/bin/initdb and initdb on PATH)"
        )
    cluster = Cluster(bindir)
    try:
        cluster.start()
    except BaseException:
        shutil.rmtree(cluster.root, ignore_errors=True)
        raise
    return cluster


def run_sql(store, query: str, params=()) -> None:
    """Run one statement straight on a store's database (tests reach under the interface)."""
    if store.dialect.name == "sqlite":
        store.dialect.db.execute(query, params)
        return
    import psycopg

    with psycopg.connect(store.dialect.url, autocommit=True) as conn:
        conn.execute(query.replace("?", "%s"), params)


def dump(store) -> str:
    """Return every stored value as text, to check that a secret is nowhere in the database."""
    if store.dialect.name == "sqlite":
        return "\n".join(store.dialect.db.iterdump())
    import psycopg
    from psycopg import sql

    lines = []
    with psycopg.connect(store.dialect.url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        for table in tables:
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
            lines += [f"{table}: {row!r}" for row in conn.execute(query)]
    return "\n".join(lines)


def rows_of(store, query: str, params=()) -> list[tuple]:
    """Return the rows of one query run straight on a store's database, as tuples."""
    if store.dialect.name == "sqlite":
        return [tuple(row) for row in store.dialect.db.execute(query, params).fetchall()]
    import psycopg

    with psycopg.connect(store.dialect.url, autocommit=True) as conn:
        return [tuple(row) for row in conn.execute(query.replace("?", "%s"), params)]
