"""The store contract on both backends: choosing a backend, migrations, and the compare-and-set
claims that keep several workers (or several machines) from doing the same thing twice."""

import re
import sqlite3
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import run_served_script
from support.postgres import rows_of, run_sql

from app.storage import StorageError, TransitionRefused, now_iso, open_store
from app.storage.dialect import SQLite
from app.storage.migrations import MIGRATION_NAMES
from app.storage.states import (
    TRANSITIONS,
    PaymentStatus,
    RegistrationState,
    transition_table_markdown,
)

WORKERS = 6


@pytest.fixture
def open_stores(blank_database_url, tmp_path):
    """Open stores on the test's database, as separate processes or machines would."""
    opened = []

    def factory(count=1, migrate=True):
        stores = [open_store(blank_database_url, str(tmp_path)) for _ in range(count)]
        if migrate:
            stores[0].migrate()
        opened.extend(stores)
        return stores

    yield factory
    for store in opened:
        store.close()


def race(count, work):
    """Run `work(i)` in `count` threads released at the same moment; return the results."""
    barrier = threading.Barrier(count)
    results = [None] * count
    errors = []

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # reported below, with the thread's own traceback lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return results


@pytest.mark.parametrize("url", ["postgres://u:p@db.example/gh", "postgresql://db.example/gh"])
def test_postgres_urls_choose_the_postgres_store_without_connecting(url, tmp_path):
    store = open_store(url, str(tmp_path))
    assert store.dialect.name == "postgresql"
    assert "p@" not in store.location


def test_a_missing_driver_names_the_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` sees uninstalled
    with pytest.raises(StorageError, match=re.escape("pip install 'gatehouse[postgres]'")):
        open_store("postgres://db.example/gh", str(tmp_path))


def test_an_unknown_scheme_lists_both_supported_ones(tmp_path):
    with pytest.raises(StorageError, match="sqlite:///.*postgresql://"):
        open_store("mysql://db.example/gh", str(tmp_path))


def test_instances_starting_together_apply_each_migration_once(open_stores):
    stores = open_stores(WORKERS, migrate=False)
    applied = race(WORKERS, lambda i: stores[i].migrate())
    assert sorted(applied, key=len) == [[]] * (WORKERS - 1) + [list(MIGRATION_NAMES)]
    assert stores[0].migrate() == []
    assert stores[0].ping()


def test_serving_from_sqlite_leaves_sqlite_utils_and_numpy_unloaded(tmp_path):
    # sqlite-utils imports numpy when it is installed: about 15 MB more in every worker, for the
    # introspection only tests use. A fresh interpreter serves a request and writes without it.
    script = (
        "import sys, wsgi\n"
        "client = wsgi.app.test_client()\n"
        "assert client.get('/lti/register').status_code == 200\n"
        "store = wsgi.app.extensions['gatehouse.store']\n"
        "store.create_launch_state('h', 'n', 'p', None, '2999-01-01T00:00:00.000000Z')\n"
        "print(sorted(m for m in ('sqlite_utils', 'numpy') if m in sys.modules))\n"
    )
    output = run_served_script(script, tmp_path / "served.db")
    assert output.strip().splitlines()[-1] == "[]"


def test_a_new_sqlite_file_switches_to_wal_while_another_connection_writes_it(tmp_path):
    # Switching journal modes needs the file to itself, and SQLite answers "locked" at once,
    # without its busy timeout: workers opening a fresh database together met exactly this.
    path = str(tmp_path / "fresh.db")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE first_writer (x)")
    threading.Timer(0.3, other.execute, ["COMMIT"]).start()
    try:
        assert SQLite(path).db.journal_mode == "wal"
    finally:
        other.close()


def test_only_one_worker_claims_a_pending_registration(open_stores):
    stores = open_stores(WORKERS)
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    reg = stores[0].create_registration("https://lms.example/openid", later)
    won = race(WORKERS, lambda i: stores[i].claim_for_registering(reg.id, {"n": i}, [f"a{i}"]))
    assert won.count(True) == 1
    stored = stores[1].get_registration(reg.id)
    assert stored.state == "registering"
    assert stored.request == {"n": won.index(True)}
    assert stored.adjustments == (f"a{won.index(True)}",)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stored.updated_at)


def test_only_one_worker_recovers_a_stale_attempt_and_the_token_is_used_once(open_stores):
    stores = open_stores(WORKERS)
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    reg = stores[0].create_registration("https://lms.example/openid", later)
    assert stores[0].claim_for_registering(reg.id, {}, [])
    (stale,) = stores[0].stale_registering(now_iso(datetime.now(UTC) + timedelta(seconds=1)))
    assert race(WORKERS, lambda i: stores[i].claim_stale(reg.id, stale.updated_at)).count(True) == 1
    stores[0].set_done_token(reg.id, "hash")
    assert race(WORKERS, lambda i: stores[i].consume_done_token(reg.id, "hash")).count(True) == 1


def test_a_launch_state_is_used_once_across_workers_and_expires(open_stores):
    stores = open_stores(WORKERS)
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    earlier = now_iso(datetime.now(UTC) - timedelta(seconds=1))
    stores[0].create_launch_state("live", "nonce-1", "p1", "https://tool/lti/launch", later)
    stores[0].create_launch_state("old", "nonce-2", "p1", None, earlier)
    outcomes = race(WORKERS, lambda i: stores[i].consume_launch_state("live")[1])
    assert sorted(outcomes) == ["ok"] + ["used"] * (WORKERS - 1)
    state, status = stores[0].consume_launch_state("old")
    assert (status, state.nonce) == ("expired", "nonce-2")
    assert stores[0].consume_launch_state("never")[1] == "unknown"
    assert stores[0].purge_launch_states(now_iso()) == 1  # the expired one; "live" stays
    assert stores[0].consume_launch_state("live")[1] == "used"


def test_an_invitation_is_never_used_more_often_than_allowed(open_stores):
    stores = open_stores(WORKERS)
    invitation = stores[0].create_invitation("School", uses_allowed=2, expires_at=None)
    used = race(WORKERS, lambda i: stores[i].use_invitation(invitation.id))
    assert used.count(True) == 2
    assert stores[0].get_invitation(invitation.id).uses == 2
    assert not stores[0].get_invitation(invitation.id).usable


def test_each_due_notification_is_claimed_by_exactly_one_worker(open_stores):
    stores = open_stores(WORKERS)
    ids = [stores[0].enqueue_notification("registration.completed", f"{n}") for n in range(20)]
    lease = now_iso(datetime.now(UTC) + timedelta(minutes=5))
    claims = race(WORKERS, lambda i: stores[i].claim_notifications(lease, limit=5))
    claimed = sorted(n.id for batch in claims for n in batch)
    assert claimed == sorted(ids)
    assert all(n.attempts == 1 for batch in claims for n in batch)
    assert stores[0].claim_notifications(lease) == []


def test_instances_starting_together_create_one_tool_key(open_stores):
    stores = open_stores(WORKERS)
    race(WORKERS, lambda i: stores[i].ensure_tool_key(lambda i=i: (f"kid-{i}", "PEM")))
    assert len(stores[0].list_tool_keys()) == 1
    values = race(WORKERS, lambda i: stores[i].get_or_create_setting("secret_key", lambda: str(i)))
    assert len(set(values)) == 1


def test_one_platform_per_issuer_and_client_id_when_two_registrations_finish_together(
    open_stores,
):
    stores = open_stores(2)
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    platform = {
        "issuer": "https://lms.example",
        "client_id": "c1",
        "name": "LMS",
        "authorization_endpoint": "https://lms.example/auth",
        "token_endpoint": "https://lms.example/token",
        "jwks_uri": "https://lms.example/jwks",
        "authorization_server": None,
        "registration_client_uri": None,
        "product_family_code": "moodle",
        "version": "4.5",
        "scopes": ["s1"],
    }
    regs = [stores[0].create_registration("https://lms.example/o", later) for _ in range(2)]
    for reg in regs:
        assert stores[0].claim_for_registering(reg.id, {}, [])
    results = race(
        2, lambda i: stores[i].complete_registration(regs[i].id, platform, f"d{i}", activate=True)
    )
    assert sorted(created for _platform, created in results) == [False, True]
    (stored,) = stores[0].list_platforms()[0]
    assert {d.deployment_id for d in stores[0].list_deployments(stored.id)} == {"d0", "d1"}
    assert stored.scopes == ("s1",) and stored.active is True


SCHEMA = Path(__file__).parent.parent / "app" / "storage" / "schema"


def test_a_new_database_gets_each_migration_file_once_and_records_its_name(open_stores):
    (store,) = open_stores(migrate=False)
    files = sorted(path.stem for path in SCHEMA.glob("*.sql"))
    assert files[:7] == [
        "0001_initial",
        "0002_gates",
        "0003_api_console",
        "0004_signin_throttle",
        "0005_launch",
        "0006_token_once_audit_filters",
        "0007_learned_scopes",
    ]  # the names the databases of earlier releases recorded: they are recognised
    assert list(MIGRATION_NAMES) == files

    assert store.migrate() == files
    assert store.migrate() == []
    # Where each database has always recorded them (sqlite-utils' table in SQLite).
    if store.dialect.name == "sqlite":
        query = "SELECT name FROM _sqlite_migrations WHERE migration_set = 'gatehouse'"
    else:
        query = "SELECT name FROM gatehouse_migrations"
    assert sorted(name for (name,) in rows_of(store, query)) == files


def test_a_migration_that_fails_applies_nothing_and_records_nothing(open_stores, monkeypatch):
    from app.storage import migrations

    (store,) = open_stores(migrate=False)

    def broken(conn, dialect):
        raise RuntimeError("the data step failed")

    monkeypatch.setitem(migrations.DATA_STEPS, "0007_learned_scopes", broken)
    with pytest.raises(RuntimeError):
        store.migrate()
    monkeypatch.undo()
    assert store.migrate() == list(MIGRATION_NAMES)  # nothing was half-applied before


def test_sign_in_failures_from_several_workers_all_count(open_stores):
    stores = open_stores(WORKERS)
    counts = race(WORKERS, lambda i: stores[i].record_signin_failure(["acct:a"])["acct:a"])
    assert sorted(counts) == list(range(1, WORKERS + 1))
    assert stores[0].signin_locked_until(["acct:a", "ip:x"]) is None  # counting never locks


def test_a_sign_in_lock_is_only_ever_extended(open_stores):
    (store,) = open_stores()
    soon, later = (now_iso(datetime.now(UTC) + timedelta(minutes=m)) for m in (1, 5))
    store.record_signin_failure(["acct:a", "ip:x"])
    store.lock_signin("acct:a", later)
    store.lock_signin("acct:a", soon)  # a worker that counted fewer failures, late
    assert store.signin_locked_until(["acct:a", "ip:x"]) == later
    store.clear_signin_failures("acct:a")
    assert store.signin_locked_until(["acct:a"]) is None
    assert store.record_signin_failure(["acct:a", "ip:x"]) == {"acct:a": 1, "ip:x": 2}


def test_search_ignores_case_and_order_is_byte_order_as_in_sqlite(open_stores):
    (store,) = open_stores()
    for name, client_id in [("Moodle School", "b"), ("moodle college", "B"), ("Canvas", "a")]:
        store.create_platform(
            {"issuer": "https://lms.example", "client_id": client_id, "name": name}, active=True
        )
    assert {p.name for p in store.list_platforms(search="MOODLE")[0]} == {
        "Moodle School",
        "moodle college",
    }
    assert store.list_platforms(search="moodle", limit=1)[1] == 2
    for client_id, platform_id in [("a", "a_b"), ("b", "B"), ("B", "a-c")]:
        run_sql(
            store,
            "UPDATE platforms SET id = ?, created_at = ? WHERE client_id = ?",
            [platform_id, "2024-01-01T00:00:00.000000Z", client_id],
        )
    # SQLite's BINARY order (uppercase first, '-' before '_'), not a language's collation.
    assert [p.id for p in store.list_platforms()[0]] == ["B", "a-c", "a_b"]


@pytest.mark.backends("postgres")
def test_healthz_answers_503_when_postgres_is_unreachable(make_app):
    from app.testing import free_port

    app = make_app()
    store = app.extensions["gatehouse.store"]
    assert app.test_client().get("/healthz").status_code == 200
    store.close()
    store.dialect.url = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "detail": "database unreachable"}


def test_sqlite_on_a_heroku_dyno_is_refused_unless_allowed(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    monkeypatch.setenv("DYNO", "web.1")
    for database_url in (url, None):
        with pytest.raises(StorageError, match="Heroku Postgres"):
            open_store(database_url, str(tmp_path))
    assert open_store("postgres://db.example/gh", str(tmp_path)).dialect.name == "postgresql"
    monkeypatch.setenv("GATEHOUSE_ALLOW_EPHEMERAL_SQLITE", "1")
    assert open_store(url, str(tmp_path)).ping()


def test_the_migrate_command_fails_the_release_on_a_dyno_with_sqlite(tmp_path, monkeypatch, runner):

    from app.cli import main

    monkeypatch.setenv("DYNO", "release.1")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'g.db'}")
    result = runner.invoke(main, ["migrate"])
    assert result.exit_code == 1 and "GATEHOUSE_ALLOW_EPHEMERAL_SQLITE" in result.output


def test_the_migrate_command_lists_what_it_applies_then_says_up_to_date(
    blank_database_url, monkeypatch, runner
):

    from app.cli import main

    monkeypatch.setenv("DATABASE_URL", blank_database_url)
    first = runner.invoke(main, ["migrate"])
    assert first.exit_code == 0, first.output
    heading, *names = first.output.splitlines()
    assert heading.startswith(f"Applied {len(MIGRATION_NAMES)} migrations to ")
    assert names == [f"  {name}" for name in MIGRATION_NAMES]
    again = runner.invoke(main, ["migrate"])
    assert again.exit_code == 0, again.output
    assert again.output.startswith("The schema of ") and "up to date" in again.output


# Where SQLite keeps its file: these choose the backend themselves, so they run once.


def start():
    """Start the app with what an operator sets: DATABASE_URL from the environment or none."""
    from app import create_app

    return create_app({"SECRET_KEY": "test", "SETTINGS": {"tool": {"name": "Quiz Tool"}}})


def create_account_by_command(runner, email):

    from app.cli import main

    result = runner.invoke(
        main, ["user", "create", "--email", email, "--password", "a long enough password"]
    )
    assert result.exit_code == 0, result.output


def test_a_relative_sqlite_url_is_a_file_under_the_working_directory(tmp_path, monkeypatch, runner):
    from pathlib import Path

    monkeypatch.setenv("DATABASE_URL", "sqlite:///data/gatehouse.db")  # cwd is tmp_path
    store = start().extensions["gatehouse.store"]
    assert (tmp_path / "data" / "gatehouse.db").is_file()  # the folder is made when missing
    assert Path(store.location).resolve() == tmp_path / "data" / "gatehouse.db"
    # The command line, run from the same folder, opens the same file.
    create_account_by_command(runner, "ops@school.example")
    assert store.find_account_by_email("ops@school.example") is not None
    # From another folder the same URL is another file, as for any relative path.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    other = start().extensions["gatehouse.store"]
    assert (elsewhere / "data" / "gatehouse.db").is_file()
    assert other.find_account_by_email("ops@school.example") is None


def test_without_database_url_the_app_and_the_command_share_a_file_under_instance(
    tmp_path, monkeypatch, runner
):
    # The working directory's instance/, never the code's folder (site-packages once installed).
    monkeypatch.delenv("GATEHOUSE_INSTANCE_PATH", raising=False)
    work = tmp_path / "site"
    work.mkdir()
    monkeypatch.chdir(work)
    store = start().extensions["gatehouse.store"]
    instance = work / "instance"
    assert store.location == str(instance / "gatehouse.sqlite3")
    assert (instance / "gatehouse.sqlite3").is_file()
    create_account_by_command(runner, "ops@school.example")
    assert store.find_account_by_email("ops@school.example") is not None
    assert not list(work.glob("*.db")) and not list(work.glob("*.sqlite3"))


def test_gatehouse_instance_path_moves_the_default_file_for_the_app_and_the_command(
    tmp_path, monkeypatch, runner
):
    elsewhere = tmp_path / "var" / "gatehouse"
    monkeypatch.setenv("GATEHOUSE_INSTANCE_PATH", str(elsewhere))
    work = tmp_path / "site"
    work.mkdir()
    monkeypatch.chdir(work)
    store = start().extensions["gatehouse.store"]
    assert store.location == str(elsewhere / "gatehouse.sqlite3")
    create_account_by_command(runner, "ops@school.example")
    assert store.find_account_by_email("ops@school.example") is not None
    assert not (work / "instance").exists()


PLATFORM = {
    "issuer": "https://lms.example",
    "client_id": "c1",
    "name": "LMS",
    "authorization_endpoint": "https://lms.example/auth",
    "token_endpoint": "https://lms.example/token",
    "jwks_uri": "https://lms.example/jwks",
    "authorization_server": None,
    "registration_client_uri": None,
    "product_family_code": "moodle",
    "version": "4.5",
    "scopes": ["s1"],
}


def _complete(store, reg):
    try:
        store.complete_registration(reg.id, PLATFORM, "d1", activate=True)
    except TransitionRefused:
        return False
    return True


# How each named transition of the table is asked of the store; True when it moved.
MOVES = {
    "claim": lambda store, reg: store.claim_for_registering(reg.id, {}, []),
    "expire": lambda store, reg: store.expire_registrations() == 1,
    "fail": lambda store, reg: store.fail_registration(reg.id, {"title": "x"}, state="failed"),
    "outcome_unknown": lambda store, reg: store.fail_registration(reg.id, {}, state="unknown"),
    "recover": lambda store, reg: store.claim_stale(reg.id, reg.updated_at),
    "resolve": lambda store, reg: store.claim_unknown(reg.id),
    "complete": _complete,
}


def test_every_transition_of_the_table_is_one_the_store_runs():
    assert set(MOVES) == set(TRANSITIONS)


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_a_transition_moves_only_from_the_states_the_table_allows(open_stores, name):
    (store,) = open_stores()
    transition = TRANSITIONS[name]
    for state in RegistrationState:
        # Past its time, so `expire` may run; `claim` needs time left, given after.
        past = now_iso(datetime.now(UTC) - timedelta(minutes=1))
        reg = store.create_registration("https://lms.example/o", past)
        if name == "claim":
            later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
            run_sql(store, "UPDATE registrations SET expires_at = ? WHERE id = ?", [later, reg.id])
        run_sql(store, "UPDATE registrations SET state = ? WHERE id = ?", [str(state), reg.id])
        reg = store.get_registration(reg.id)
        moved = MOVES[name](store, reg)
        expected = state in transition.sources
        assert moved is expected, (name, state)
        now = store.get_registration(reg.id).state
        assert now == (transition.target if expected else state), (name, state)
        run_sql(store, "DELETE FROM registrations WHERE id = ?", [reg.id])


def test_a_refused_completion_stores_no_platform(open_stores):
    (store,) = open_stores()
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    reg = store.create_registration("https://lms.example/o", later)
    assert store.fail_registration(reg.id, {"title": "refused"})
    with pytest.raises(TransitionRefused):
        store.complete_registration(reg.id, PLATFORM, "d1", activate=True)
    assert store.list_platforms()[0] == []
    assert store.get_registration(reg.id).state == "failed"
    # A completed attempt is never turned failed afterwards.
    other = store.create_registration("https://lms.example/o", later)
    assert store.claim_for_registering(other.id, {}, [])
    store.complete_registration(other.id, PLATFORM, "d1", activate=True)
    assert store.fail_registration(other.id, {"title": "late"}) is False
    assert store.get_registration(other.id).state == "completed"


def test_a_payment_only_moves_forward(open_stores):
    (store,) = open_stores()
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    reg = store.create_registration("https://lms.example/o", later)
    store.record_checkout(
        session_id="cs_1",
        registration_id=reg.id,
        account_id=None,
        mode="payment",
        amount=None,
        currency=None,
        status="open",
    )
    assert store.update_payment("cs_1", "cancelled").status == "cancelled"
    assert store.update_payment("cs_1", "open").status == "cancelled"
    assert store.update_payment("cs_1", "paid", amount=1500, currency="usd").status == "paid"
    for status in PaymentStatus:
        assert store.update_payment("cs_1", status).status == "paid"
    assert store.update_payment("cs_1", "paid", amount=1600).amount == 1600
    assert store.update_payment("cs_nope", "paid") is None


def test_the_readme_shows_the_transition_table_of_the_code():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    shown = readme.split("<!-- transitions:start -->\n", 1)[1].split("\n<!-- transitions:end -->")[
        0
    ]
    assert shown == transition_table_markdown()


def test_what_a_write_returns_is_what_a_read_finds(open_stores):
    """A new attempt and a completed platform come back as stored, as a later read finds them."""
    (store,) = open_stores()
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    created = store.create_registration("https://lms.example/o", later, "digest-1")
    assert created == store.get_registration(created.id)
    assert created.state == "pending" and created.expires_at == later
    assert store.claim_for_registering(created.id, {}, [])
    platform, new = store.complete_registration(created.id, PLATFORM, "d1", activate=False)
    assert new and platform == store.get_platform(platform.id)
    assert platform.active is False and platform.scopes == tuple(PLATFORM["scopes"])
    # Registered again: the same platform, updated in place, comes back as it now is.
    again = store.create_registration("https://lms.example/o", later, "digest-2")
    assert store.claim_for_registering(again.id, {}, [])
    renamed = {**PLATFORM, "name": "Renamed", "scopes": ["a"]}
    updated, new = store.complete_registration(again.id, renamed, "d2", activate=True, rename=True)
    assert not new and updated.id == platform.id
    assert updated == store.get_platform(platform.id)
    assert updated.name == "Renamed" and updated.scopes == ("a",)
