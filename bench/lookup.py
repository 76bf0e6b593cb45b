"""Platform lookup by (issuer, client_id) as the stored platforms grow: it must stay flat."""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

from app.storage.dialect import SQLite
from app.storage.sql import SqlStore

LOOKUP_SQL = "SELECT * FROM platforms WHERE issuer = ? AND client_id = ?"
SCOPES = json.dumps(
    [
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    ]
)
# One big multi-tenant issuer (Canvas Cloud: many client_ids under one issuer) and many
# self-hosted LMSes with a few registrations each, as a registration service really sees.
SHARED_ISSUER = "https://canvas.instructure.com"
SELF_HOSTED = 5000


def issuer_of(number: int) -> str:
    """Return the issuer of platform number `number`."""
    if number % 5 == 0:
        return SHARED_ISSUER
    return f"https://lms{number % SELF_HOSTED}.university{number % 977}.edu"


def client_id_of(number: int) -> str:
    """Return the client_id of platform number `number`: random-looking, as LMSes issue them."""
    return hashlib.blake2b(number.to_bytes(8, "big"), digest_size=8).hexdigest()


def platform_rows(start: int, stop: int):
    """Yield platform rows numbered start..stop-1, shaped like those Gatehouse stores."""
    stamp = "2026-11-01T00:00:00.000000+00:00"
    for number in range(start, stop):
        issuer = issuer_of(number)
        yield (
            f"{number:032x}",
            issuer,
            client_id_of(number),
            f"LMS {number}",
            issuer + "/api/lti/authorize_redirect",
            issuer + "/login/oauth2/token",
            issuer + "/api/lti/security/jwks",
            issuer + "/login/oauth2/token",
            issuer + f"/api/lti/registrations/{number}",
            "canvas" if issuer == SHARED_ISSUER else "moodle",
            "1.0",
            SCOPES,
            1,
            stamp,
            stamp,
        )


COLUMNS = (
    "id, issuer, client_id, name, authorization_endpoint, token_endpoint, jwks_uri, "
    "authorization_server, registration_client_uri, product_family_code, version, scopes, "
    "active, created_at, updated_at"
)


def fill(path: Path, start: int, stop: int) -> float:
    """Add platforms start..stop-1 to the store at path in one transaction; return seconds."""
    begin = time.perf_counter()
    store = SqlStore(SQLite(str(path)))
    store.migrate()  # the store's own schema and indexes
    db = store.dialect.db
    db.execute("PRAGMA cache_size = -262144")  # loading only: 256 MiB of page cache
    db.execute("BEGIN IMMEDIATE")
    db.conn.executemany(
        f"INSERT INTO platforms ({COLUMNS}) VALUES ({', '.join('?' * 15)})",  # noqa: S608
        platform_rows(start, stop),
    )
    db.execute("COMMIT")
    store.close()
    return time.perf_counter() - begin


def measure(path: Path, stored: int, samples: int, seed: int = 1) -> dict:
    """Time the store's own find_platform on random stored platforms; return percentiles."""
    rng = random.Random(seed)  # noqa: S311 - test data
    numbers = [rng.randrange(stored) for _ in range(samples)]  # the same count at every size
    keys = [(issuer_of(number), client_id_of(number)) for number in numbers]
    store = SqlStore(SQLite(str(path)))  # a fresh connection, as a worker has
    plan = " ".join(
        str(row[-1])
        for row in store.dialect.db.execute(f"EXPLAIN QUERY PLAN {LOOKUP_SQL}", ["x", "y"])
    )
    for issuer, client_id in keys[: min(1000, len(keys))]:  # warm up the connection
        store.find_platform(issuer, client_id)
    times = []
    clock = time.perf_counter_ns
    for issuer, client_id in keys:
        before = clock()
        platform = store.find_platform(issuer, client_id)
        times.append(clock() - before)
        if platform is None or platform.client_id != client_id:
            raise RuntimeError(f"lookup of a stored platform failed: {issuer} {client_id}")
    misses = []
    for n in range(min(1000, samples)):
        before = clock()
        store.find_platform(SHARED_ISSUER, f"absent{n}")
        misses.append(clock() - before)
    _rows, count = store.list_platforms(limit=0)  # no rows: the total alone
    store.close()
    times.sort()
    misses.sort()
    return {
        "platforms": count,
        "lookups": len(times),
        "p50_us": round(percentile(times, 50) / 1000, 2),
        "p99_us": round(percentile(times, 99) / 1000, 2),
        "max_us": round(times[-1] / 1000, 2),
        "miss_p50_us": round(percentile(misses, 50) / 1000, 2),
        "miss_p99_us": round(percentile(misses, 99) / 1000, 2),
        "query_plan": plan,
        "uses_index": "USING INDEX" in plan and "SCAN" not in plan,
    }


def percentile(ordered: list[float], p: float) -> float:
    """Return the p-th percentile of an ordered list (nearest rank)."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def scale(workdir: Path, sizes: list[int], samples: int) -> list[dict]:
    """Grow one store through each size in turn and time lookups at each."""
    path = workdir / "lookup.sqlite3"
    results = []
    stored = 0
    for size in sorted(sizes):
        seconds = fill(path, stored, size)
        stored = size
        result = measure(path, stored, samples)
        result["insert_s"] = round(seconds, 2)
        result["file_mb"] = round(path.stat().st_size / 2**20, 1)
        results.append(result)
    return results
