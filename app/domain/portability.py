"""Move Gatehouse's records between databases: `gatehouse export` and `gatehouse import`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..storage import now_iso
from .keys import DEFAULT_GRACE, PLAIN, public_jwk
from .sealing import ENV, Sealer, SealError, is_sealed, sealed_with

FORMAT = "gatehouse-export"
VERSION = 1
# What moves between databases, in the order it must be loaded, with each table's primary key.
EXPORT_TABLES: dict[str, tuple[str, ...]] = {
    "platforms": ("id",),
    "deployments": ("platform_id", "deployment_id"),
    "tool_keys": ("kid",),
    "registrations": ("id",),
}
# Held only while an attempt is open: never exported.
NEVER_EXPORTED = {"registrations": ("pending_secret", "done_token_hash", "token_digest")}


class ExportFormatError(Exception):
    """The file is not a Gatehouse export this version can read."""


def export_data(store, include_secrets: bool = False, sealer: Sealer = PLAIN) -> dict[str, Any]:
    """Return platforms, deployments, keys and registrations as one JSON-ready document.

    Private keys are included only when asked, and sealed when `sealer` has a key (an export
    never carries a plain private key then); the registration token an open attempt holds
    never is.
    """
    tables: dict[str, list[dict[str, Any]]] = {}
    for table, key in EXPORT_TABLES.items():
        rows = store.dump_table(table, key)
        for row in rows:
            for column in NEVER_EXPORTED.get(table, ()):
                row.pop(column, None)
        if table == "tool_keys" and include_secrets and sealer.active:
            rows = [{**row, "private_pem": sealer.reseal(row["private_pem"])} for row in rows]
        if table == "tool_keys" and not include_secrets:
            rows = [
                {
                    "kid": row["kid"],
                    "created_at": row["created_at"],
                    "retire_at": row["retire_at"],
                    "public_jwk": public_jwk(row["kid"], sealer.open(row["private_pem"])),
                }
                for row in rows
            ]
        tables[table] = rows
    return {
        "format": FORMAT,
        "version": VERSION,
        "exportedAt": now_iso(),
        "includesSecrets": include_secrets,
        # Sealed private keys need the exporting Gatehouse's GATEHOUSE_ENCRYPTION_KEY to import.
        "secretsSealed": any(is_sealed(row.get("private_pem")) for row in tables["tool_keys"]),
        "tables": tables,
    }


@dataclass(frozen=True)
class Imported:
    """What an import wrote: rows per table, and the tool keys it put in charge or retired."""

    counts: dict[str, int]
    current_kid: str | None = None
    # (kid, retire_at) of this database's own keys, which the export's keys replace.
    retired: list[tuple[str, str]] = field(default_factory=list)


def import_data(store, document: Any, sealer: Sealer = PLAIN) -> Imported:
    """Load an export into `store` (rows with the same keys are replaced).

    Private keys are stored sealed under `sealer`'s current key when it has one (plain ones
    in the export too); sealed ones need their key in `sealer`, else SealError.

    When the export carries private keys, its current key becomes the current signing key:
    keys of this database that the export lacks retire after the usual rotation grace period,
    so what they signed before the import still verifies.
    """
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExportFormatError(f"this is not a Gatehouse export (no format {FORMAT!r})")
    if document.get("version") != VERSION:
        raise ExportFormatError(f"export version {document.get('version')!r} is not supported")
    tables = document.get("tables")
    if not isinstance(tables, dict):
        raise ExportFormatError("the export has no tables")
    counts: dict[str, int] = {}
    current_kid = None
    retired: list[dict[str, Any]] = []
    for table, key in EXPORT_TABLES.items():
        rows = tables.get(table) or []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ExportFormatError(f"tables.{table} must be a list of objects")
        if table == "tool_keys":
            rows = [
                {**r, "private_pem": _unsealed_here(r["private_pem"], sealer)}
                for r in rows
                if r.get("private_pem")
            ]
            current_kid = _current_kid(rows)
            if current_kid is not None:
                retired = _retire_others(store, {r["kid"] for r in rows})
            # One write: the imported keys and the retirements take over together.
            store.load_rows(table, rows + retired, key)
            counts[table] = len(rows)
            continue
        counts[table] = store.load_rows(table, rows, key)
    return Imported(counts, current_kid, [(r["kid"], r["retire_at"]) for r in retired])


def _current_kid(rows: list[dict[str, Any]]) -> str | None:
    """Return the kid of the newest key not scheduled to retire (the one that signs)."""
    current = [r for r in rows if r.get("retire_at") is None and r.get("kid")]
    if not current:
        return None
    # As the store lists keys: newest first, the smaller kid first on a tie.
    current.sort(key=lambda r: r["kid"])
    return max(current, key=lambda r: str(r.get("created_at") or ""))["kid"]


def _retire_others(store, kept: set[str]) -> list[dict[str, Any]]:
    """Return this database's keys missing from `kept`, set to retire after the grace period."""
    retire_at = now_iso(datetime.now(UTC) + DEFAULT_GRACE)
    return [
        {**row, "retire_at": retire_at}
        for row in store.dump_table("tool_keys", EXPORT_TABLES["tool_keys"])
        if row["kid"] not in kept and (row["retire_at"] is None or row["retire_at"] > retire_at)
    ]


def _unsealed_here(private_pem: Any, sealer: Sealer) -> str:
    """Return an exported private key as this database keeps it: sealed under our key, if any."""
    if not isinstance(private_pem, str):
        raise ExportFormatError("tables.tool_keys: private_pem must be a string")
    if is_sealed(private_pem) and sealed_with(private_pem) not in sealer.key_ids:
        raise SealError(
            f"the export's private keys are sealed (key id {sealed_with(private_pem)}): set "
            f"{ENV} to the key of the Gatehouse that exported them (after this database's own "
            'key, if it has one: "<this key>,<exporting key>"), then import again'
        )
    return sealer.reseal(private_pem) if sealer.active else private_pem
