"""Move Gatehouse's records between databases: `gatehouse export` and `gatehouse import`."""

from __future__ import annotations

from typing import Any

from .keys import public_jwk
from .storage import now_iso
from .storage._common import EXPORT_TABLES, NEVER_EXPORTED

FORMAT = "gatehouse-export"
VERSION = 1


class ExportFormatError(Exception):
    """The file is not a Gatehouse export this version can read."""


def export_data(store, include_secrets: bool = False) -> dict[str, Any]:
    """Return platforms, deployments, keys and registrations as one JSON-ready document.

    Private keys are included only when asked; the registration token an open attempt holds
    never is.
    """
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in EXPORT_TABLES:
        rows = store.dump_table(table)
        for row in rows:
            for column in NEVER_EXPORTED.get(table, ()):
                row.pop(column, None)
        if table == "tool_keys" and not include_secrets:
            rows = [
                {"kid": row["kid"], "created_at": row["created_at"], "retire_at": row["retire_at"],
                 "public_jwk": public_jwk(row["kid"], row["private_pem"])}
                for row in rows
            ]
        tables[table] = rows
    return {
        "format": FORMAT,
        "version": VERSION,
        "exportedAt": now_iso(),
        "includesSecrets": include_secrets,
        "tables": tables,
    }


def import_data(store, document: Any) -> dict[str, int]:
    """Load an export into `store` (rows with the same keys are replaced); return counts."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExportFormatError(f"this is not a Gatehouse export (no format {FORMAT!r})")
    if document.get("version") != VERSION:
        raise ExportFormatError(f"export version {document.get('version')!r} is not supported")
    tables = document.get("tables")
    if not isinstance(tables, dict):
        raise ExportFormatError("the export has no tables")
    counts: dict[str, int] = {}
    for table in EXPORT_TABLES:
        rows = tables.get(table) or []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ExportFormatError(f"tables.{table} must be a list of objects")
        if table == "tool_keys":
            rows = [r for r in rows if r.get("private_pem")]
        counts[table] = store.load_rows(table, rows)
    return counts
