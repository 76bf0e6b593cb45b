"""A database the last release made upgrades in place under today's code, losing nothing.

The databases were built by tests/fixtures/build_release_db.py with the release's own code
(commit `RELEASE`); the manifest beside them holds every row as that release stored it.
"""

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from fixtures.build_release_db import MIGRATION_TABLES, read_tables
from werkzeug.security import check_password_hash

from app import create_app
from app.cli import main
from app.storage import open_store

RELEASE = "adb498c"
FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = json.loads((FIXTURES / f"gatehouse-{RELEASE}.json").read_text())
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SETTINGS = {
    "tool": {"name": "Quiz Tool", "scopes": [SCORE, LINEITEM]},
    "security": {"allow_insecure_platforms": True},
    "limits": {"enabled": False},
}


@pytest.fixture
def released(backend, blank_database_url, request):
    """Return (DATABASE_URL, manifest) of a database as the release left it, not yet upgraded."""
    if backend == "sqlite":
        shutil.copyfile(FIXTURES / f"gatehouse-{RELEASE}.sqlite3", blank_database_url[10:])
    else:
        psql = Path(request.getfixturevalue("postgres_cluster").bindir) / "psql"
        subprocess.run(  # noqa: S603 - the test cluster's psql and our committed dump
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", blank_database_url]
            + ["-f", FIXTURES / f"gatehouse-{RELEASE}.sql"],
            check=True,
            capture_output=True,
        )
    return blank_database_url, MANIFEST[backend]


def migrate(url, tmp_path):
    store = open_store(url, str(tmp_path))
    try:
        return store.migrate()
    finally:
        store.close()


def expected_after_upgrade(table, row):
    """Return a release row as the upgrade must leave it: only 0007's scope change."""
    if table == "platforms":
        scopes = json.loads(row["scopes"])
        # 0007 keeps service scopes (URIs), in their order, and drops `openid` and its kind.
        kept = [scope for scope in scopes if "://" in scope]
        if kept != scopes:
            return {**row, "scopes": json.dumps(kept)}
    return row


def as_stored(table, row):
    return row


def differences(before, after, expect=expected_after_upgrade):
    """List each release row the upgraded database lost or changed, table by table."""
    found = []
    for table, rows in before.items():
        if table not in after:
            found.append(f"table {table} is gone")
            continue
        columns = set(rows[0]) if rows else set()
        missing = columns - set(after[table][0] if after[table] else columns)
        if missing:
            found.append(f"{table} lost columns {sorted(missing)}")
            continue
        kept = [{c: row[c] for c in columns} for row in after[table]]
        for row in rows:
            wanted = expect(table, row)
            if wanted in kept:
                kept.remove(wanted)
            else:
                found.append(f"{table}: {wanted} is lost or changed")
        if table not in MIGRATION_TABLES and kept:
            found.append(f"{table} has rows the release did not write: {kept}")
    return found


def test_the_release_fixture_is_realistic():
    # What the other tests rely on being in the fixture, so a rebuild cannot quietly drop it.
    for backend in ("sqlite", "postgres"):
        tables = MANIFEST[backend]["tables"]
        assert {r["state"] for r in tables["registrations"]} >= {
            "completed",
            "failed",
            "pending",
            "expired",
        }
        assert any("openid" in json.loads(r["scopes"]) for r in tables["platforms"])
        for table in ("accounts", "api_keys", "invitations", "tool_keys", "audit_log"):
            assert len(tables[table]) >= 2, table
        for table in ("deployments", "launch_states", "payments", "terms_acceptances"):
            assert tables[table], table


def test_an_upgrade_keeps_every_row_of_the_release(released, tmp_path):
    url, release = released
    assert differences(release["tables"], read_tables(url), as_stored) == []  # untouched yet

    applied = migrate(url, tmp_path)

    assert "0007_learned_scopes" in applied
    upgraded = read_tables(url)
    assert differences(release["tables"], upgraded) == []
    # The learned columns exist and say "not learned yet" for every platform.
    assert [(p["usable_scopes"], p["refused_scopes"]) for p in upgraded["platforms"]] == [
        (None, None)
    ] * len(release["tables"]["platforms"])
    assert migrate(url, tmp_path) == []


PRAGMA_COLUMNS = 'SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)'
PRAGMA_FOREIGN_KEYS = 'SELECT "from", "table", "to" FROM pragma_foreign_key_list(?)'
PRAGMA_INDEXES = 'SELECT name, "unique", origin, partial FROM pragma_index_list(?)'
PRAGMA_INDEX_COLUMNS = "SELECT name FROM pragma_index_info(?) ORDER BY seqno"


def schema_of(url):
    """Return the tables, columns, indexes and constraints of a database, comparable."""
    if url.startswith("sqlite:///"):
        # What SQLite knows of each table, not the text of its CREATE statement: sqlite-utils
        # wrote the release's ("id" TEXT, ...) and the migration files write (id TEXT, ...).
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            found = []
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            for (table,) in tables.fetchall():
                found += [("column", table, *c) for c in conn.execute(PRAGMA_COLUMNS, [table])]
                found += [("key", table, *k) for k in conn.execute(PRAGMA_FOREIGN_KEYS, [table])]
                for index, unique, origin, partial in conn.execute(PRAGMA_INDEXES, [table]):
                    columns = [c for (c,) in conn.execute(PRAGMA_INDEX_COLUMNS, [index])]
                    sql = conn.execute(
                        "SELECT sql FROM sqlite_master WHERE name = ?", [index]
                    ).fetchone()[0]
                    where = sql.split(" WHERE ", 1)[1] if partial else None
                    found.append(("index", table, index, unique, origin, *columns, where))
            return sorted(map(str, found))
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, collation_name, "
            "column_default FROM information_schema.columns WHERE table_schema = 'public'"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
        ).fetchall()
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace"
        ).fetchall()
    return sorted(map(str, columns + indexes + constraints))


def test_an_upgraded_database_has_the_schema_a_new_one_has(released, backend, request, tmp_path):
    url, _release = released
    migrate(url, tmp_path)
    if backend == "sqlite":
        new = f"sqlite:///{tmp_path / 'new.db'}"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        new = cluster.create_database()
        request.addfinalizer(lambda: cluster.drop_database(new))
    migrate(new, tmp_path)

    schema = schema_of(new)
    assert any("usable_scopes" in item for item in schema)
    assert schema_of(url) == schema
    applied = [
        sorted(row["name"] for table in MIGRATION_TABLES for row in read_tables(u).get(table, []))
        for u in (url, new)
    ]
    assert applied[0] == applied[1] and "0007_learned_scopes" in applied[0]


def test_the_check_notices_a_lost_or_changed_row(released, tmp_path):
    url, release = released
    migrate(url, tmp_path)
    upgraded = read_tables(url)
    upgraded["audit_log"].pop()
    upgraded["accounts"][0] = {**upgraded["accounts"][0], "password_hash": None}
    upgraded["platforms"] = [{**p, "scopes": "[]"} for p in upgraded["platforms"]]

    found = differences(release["tables"], upgraded)

    assert [line.split(":")[0] for line in found].count("audit_log") == 1
    assert any(line.startswith("accounts:") for line in found)
    # The Canvas platform whose only scope was `openid` keeps an empty list; the others not.
    assert sum(line.startswith("platforms:") for line in found) == 2


def test_the_upgraded_store_reads_every_record_as_the_release_wrote_it(released, tmp_path):
    url, release = released
    facts, tables = release["facts"], release["tables"]
    store = open_store(url, str(tmp_path))
    try:
        store.migrate()
        platforms = facts["platforms"]
        canvas = store.get_platform(platforms["canvas"])
        assert canvas.scopes == (SCORE, LINEITEM)  # `openid` gone, the order kept
        assert (canvas.usable_scopes, canvas.refused_scopes) == (None, None)
        assert store.get_platform(platforms["canvas_beta"]).scopes == ()
        assert canvas.invitation_id is not None and canvas.active
        assert not store.get_platform(platforms["blackboard"]).active
        moodle = {d.deployment_id: d.active for d in store.list_deployments(platforms["moodle"])}
        assert moodle == {"3": True, "4": True, "5": False}

        regs = {name: store.get_registration(rid) for name, rid in facts["registrations"].items()}
        assert {name: reg.state for name, reg in regs.items()} == {
            "canvas": "completed",
            "moodle": "completed",
            "failed": "failed",
            "pending": "pending",
            "expired": "expired",
        }
        # Adjustments stored as plain strings read as they are, none of them notable.
        assert regs["canvas"].adjustments == (
            "Canvas: placement set to link_selection",
            "Canvas: privacy level public",
        )
        assert regs["canvas"].notable_adjustments == ()
        assert regs["failed"].adjustments == ("Sakai: no icon",)
        assert regs["failed"].error["rule"] == "platform-refused"
        assert regs["moodle"].platform_id == platforms["moodle"]
        assert regs["canvas"].account_id is not None
        (terms,) = store.terms_for(regs["canvas"].id)
        assert (terms.version, terms.signer_name) == ("2026-01", "Olive Owner")
        assert [p.status for p in store.payments_for(regs["canvas"].id)] == ["paid"]

        owner = store.find_account_by_email(facts["owner_email"])
        assert owner.is_owner and check_password_hash(owner.password_hash, facts["owner_password"])
        linked = store.find_oidc_account("https://idp.school.example", "subject-42")
        assert linked.id == facts["linked_account"]
        assert {(k.name, k.revoked_at is None) for k in store.list_api_keys()[0]} == {
            ("deploy script", True),
            ("old laptop", False),
        }
        assert {i.name for i in store.list_invitations()[0]} == {
            "Northwind College",
            "Southfield School",
        }
        assert {k.kid for k in store.list_tool_keys()} == {
            row["kid"] for row in tables["tool_keys"]
        }
        assert len(store.list_audit(limit=100)[0]) == len(tables["audit_log"])
    finally:
        store.close()


def test_gatehouse_migrate_upgrades_it_and_the_app_serves_it(
    released, runner, monkeypatch, tmp_path
):
    url, release = released
    facts = release["facts"]
    monkeypatch.setenv("DATABASE_URL", url)

    result = runner.invoke(main, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "0007_learned_scopes" in result.output
    assert "up to date" in runner.invoke(main, ["migrate"]).output

    app = create_app(
        {"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret", "SETTINGS": SETTINGS}
    )
    try:
        client = app.test_client()
        # An API key made by the release still opens the API; the revoked one does not.
        answer = client.get(
            "/api/platforms", headers={"Authorization": f"Bearer {facts['api_key']}"}
        )
        assert answer.status_code == 200
        assert {p["id"] for p in answer.get_json()["platforms"]} == set(facts["platforms"].values())
        assert (
            client.get("/api/platforms", headers={"Authorization": "Bearer gh_x_y"}).status_code
            == 401
        )

        # The release's owner signs in with the release's password hash and sees the console.
        base = "https://localhost"
        page = client.get("/console/login", base_url=base).get_data(as_text=True)
        token = page.split('name="csrf_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
        signed_in = client.post(
            "/console/login",
            data={
                "email": facts["owner_email"],
                "password": facts["owner_password"],
                "csrf_token": token,
            },
            base_url=base,
        )
        assert signed_in.status_code == 302
        platforms = client.get("/console/platforms", base_url=base)
        assert platforms.status_code == 200
        assert "Moodle (moodle-client-7)" in platforms.get_data(as_text=True)
        attempts = client.get("/console/registrations", base_url=base)
        assert attempts.status_code == 200
        assert "sakai" in attempts.get_data(as_text=True).lower()
        # An attempt with adjustments in the release's shape (plain strings) shows them.
        canvas = facts["registrations"]["canvas"]
        attempt = client.get(f"/console/registrations/{canvas}", base_url=base)
        assert attempt.status_code == 200
        assert "Canvas: privacy level public" in attempt.get_data(as_text=True)
    finally:
        notifier = app.extensions.get("gatehouse.notifier")
        if notifier is not None:
            notifier.stop()
        app.extensions["gatehouse.store"].close()
