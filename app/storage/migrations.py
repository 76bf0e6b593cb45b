"""One set of migration files for both databases, applied in name order by one runner.

`schema/NNNN_name.sql` holds each migration's statements, each ending with `;` at the end of a
line, with the column types as tokens the dialect fills in ({text}, {id}, {bigint}). The names
applied are recorded in the table the database has always used: sqlite-utils' own
`_sqlite_migrations` in SQLite, `gatehouse_migrations` in PostgreSQL.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

from ..lti.constants import is_service_scope
from .dialect import Dialect

SCHEMA = files(__package__).joinpath("schema")
MIGRATION_NAMES = tuple(
    sorted(item.name[: -len(".sql")] for item in SCHEMA.iterdir() if item.name.endswith(".sql"))
)


def statements(text: str) -> list[str]:
    """Split a migration file into its statements, leaving out comment-only pieces."""
    pieces = re.split(r";[ \t]*$", text, flags=re.MULTILINE)
    return [piece.strip() for piece in pieces if _has_code(piece)]


def _has_code(piece: str) -> bool:
    lines = [line.strip() for line in piece.splitlines()]
    return any(line and not line.startswith("--") for line in lines)


def only_service_scopes(scopes_json: str | None) -> str | None:
    """Return a stored scope list without `openid` and other non-service scopes.

    None when there is nothing to change (or the value is not a JSON list).
    """
    try:
        scopes = json.loads(scopes_json or "[]")
    except ValueError:
        return None
    if not isinstance(scopes, list):
        return None
    kept = [s for s in scopes if isinstance(s, str) and is_service_scope(s)]
    return json.dumps(kept) if kept != scopes else None


def _keep_service_scopes(conn: Any, dialect: Dialect) -> None:
    # Canvas's answer claims `openid`, which its token endpoint refuses: never a service scope.
    for row in conn.execute("SELECT id, scopes FROM platforms").fetchall():
        kept = only_service_scopes(row["scopes"])
        if kept is not None:
            update = dialect.query("UPDATE platforms SET scopes = ? WHERE id = ?")
            conn.execute(update, [kept, row["id"]])


# What a migration does to the rows after its statements, in the same transaction.
DATA_STEPS = {"0007_learned_scopes": _keep_service_scopes}


def migrate(dialect: Dialect, stamp: str) -> list[str]:
    """Apply the pending migrations in one transaction; return the names applied."""
    with dialect.transaction() as conn:
        if dialect.migration_lock:
            conn.execute(dialect.migration_lock)
        for statement in statements(dialect.records_ddl):
            conn.execute(statement)
        done = {row["name"] for row in conn.execute(dialect.applied_sql).fetchall()}
        pending = [name for name in MIGRATION_NAMES if name not in done]
        for name in pending:
            for statement in statements(SCHEMA.joinpath(f"{name}.sql").read_text("utf-8")):
                conn.execute(dialect.ddl(statement))
            if name in DATA_STEPS:
                DATA_STEPS[name](conn, dialect)
            conn.execute(dialect.query(dialect.record_sql), [name, stamp])
    return pending
