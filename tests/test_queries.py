"""Lists cost the same number of SQL statements however many rows a page shows (no N+1)."""

import contextlib
import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from support.postgres import run_sql
from werkzeug.security import generate_password_hash

from app.domain import apikeys
from app.domain.gates import approval_of, approvals_of
from app.storage import now_iso

BASE = "https://localhost"
OWNER = "owner@tool.example"
PASSWORD = "correct horse battery"


@contextlib.contextmanager
def statements(store, monkeypatch):
    """Collect every SQL statement the store sends to its database while the block runs."""
    seen = []
    if store.dialect.name == "sqlite":  # the driver reports each statement it runs
        conn = (
            store.dialect.db.conn
        )  # this thread's connection, the one the test client's views use
        conn.set_trace_callback(seen.append)
        try:
            yield seen
        finally:
            conn.set_trace_callback(None)
        return
    # PostgreSQL: every statement, Connection.execute's included, goes through Cursor.execute.
    execute = psycopg.Cursor.execute

    def counted(cursor, query, *args, **kwargs):
        seen.append(query)
        return execute(cursor, query, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", counted)
        yield seen


def add_approved_attempts(store, count, key_name):
    """Add `count` completed attempts, each with an approver, terms, payments and a completer."""
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    for _ in range(count):
        n = len(store.list_registrations(limit=100)[0])
        registration = store.create_registration(f"https://lms{n}.example/openid", later)
        account = store.create_account(f"admin{n}@school.example", f"Admin {n}", "x")
        store.set_registration_account(registration.id, account.id)
        store.record_terms_acceptance(
            registration_id=registration.id,
            version=f"v{n}",
            signer_name=f"Admin {n}",
            account_id=account.id,
        )
        store.record_checkout(
            session_id=f"cs_paid_{n}", registration_id=registration.id, status="open"
        )
        store.update_payment(f"cs_paid_{n}", "paid", amount=1500, currency="usd")
        store.record_checkout(
            session_id=f"cs_open_{n}", registration_id=registration.id, status="open"
        )
        store.audit(
            f"api key {key_name}", "registration.completed", "registration", registration.id
        )
        run_sql(
            store, "UPDATE registrations SET state = 'completed' WHERE id = ?", [registration.id]
        )


def test_the_registrations_api_list_costs_the_same_queries_for_one_row_or_many(
    app, store, monkeypatch
):
    _record, key = apikeys.create(store, "billing")
    client = app.test_client()

    def listed():
        with statements(store, monkeypatch) as seen:
            response = client.get(
                "/admin/registrations", base_url=BASE, headers={"Authorization": f"Bearer {key}"}
            )
        assert response.status_code == 200
        return response.get_json()["registrations"], len(seen)

    add_approved_attempts(store, 1, "billing")
    one, one_cost = listed()
    add_approved_attempts(store, 4, "billing")
    five, five_cost = listed()

    assert len(one) == 1 and len(five) == 5
    for attempt in five:  # every row still says who approved it and which key completed it
        assert re.fullmatch(r"admin\d@school\.example", attempt["approvedBy"])
        assert attempt["approvedByApiKey"] == "billing"
    assert five_cost == one_cost


def test_the_consoles_registrations_page_costs_the_same_queries_for_one_row_or_many(
    app, store, monkeypatch
):
    account = store.create_account(
        OWNER, "Olive Owner", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    )
    store.set_owner(account.id, True)
    browser = app.test_client()
    login = browser.get("/console/login", base_url=BASE).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
    signed_in = browser.post(
        "/console/login",
        base_url=BASE,
        data={"email": OWNER, "password": PASSWORD, "csrf_token": token},
    )
    assert signed_in.status_code == 302

    def page():
        with statements(store, monkeypatch) as seen:
            response = browser.get("/console/registrations", base_url=BASE)
        assert response.status_code == 200
        rows = re.findall(
            r'<tr data-registration="[^"]+">(.*?)</tr>', response.get_data(as_text=True), re.S
        )
        return rows, len(seen)

    add_approved_attempts(store, 1, "billing")
    one, one_cost = page()
    add_approved_attempts(store, 4, "billing")
    five, five_cost = page()

    assert len(one) == 1 and len(five) == 5
    for row in five:  # the approval column, terms and paid payment are all still there
        assert re.search(r"admin\d@school\.example, then API key ‘billing’", row)
        assert "$15.00" in row and "(paid)" in row
    assert five_cost == one_cost


def test_approvals_of_answers_for_many_attempts_as_approval_of_does_for_each(store):
    add_approved_attempts(store, 3, "billing")
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    bare = store.create_registration("https://bare.example/openid", later)
    ids = [r.id for r in store.list_registrations()[0]]
    many = approvals_of(store, [*ids, bare.id])  # an id given twice is answered once
    assert set(many) == set(ids)
    for rid in ids:
        one = approval_of(store, rid)
        assert {key: many[rid][key] for key in one} == one
    assert many[bare.id] == {
        "account": None,
        "terms": None,
        "payment": None,
        "latest_payment": None,
        "completed_by": None,
    }
    named = [rid for rid in ids if rid != bare.id]
    assert all(many[rid]["latest_payment"].status == "open" for rid in named)
    assert all(many[rid]["payment"].status == "paid" for rid in named)
    assert all(many[rid]["completed_by"] == "api key billing" for rid in named)
    assert approvals_of(store, []) == {}


def test_the_close_pages_approval_costs_three_statements(store, monkeypatch):
    add_approved_attempts(store, 1, "billing")
    later = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    bare = store.create_registration("https://bare.example/openid", later)
    approved = next(r for r in store.list_registrations()[0] if r.account_id)
    with statements(store, monkeypatch) as bare_cost:
        assert approval_of(store, bare.id) == {"account": None, "terms": None, "payment": None}
    with statements(store, monkeypatch) as approved_cost:
        approval = approval_of(store, approved.id)
    assert approval["account"].id == approved.account_id
    assert approval["terms"].version and approval["payment"].status == "paid"
    # The account, the terms and the payments; not the audit log, which the page does not show.
    assert len(bare_cost) == len(approved_cost) == 3


@pytest.mark.sqlite_only("SQLite's trace sees the statements of the view's own thread only")
def test_a_registration_costs_sixteen_statements_besides_its_transactions(
    app, store, simulator, monkeypatch
):
    """The registration URL's statements, one by one: what each step must write or read."""
    url = simulator("generic").initiation_url("https://localhost/lti/register")
    client = app.test_client()
    with statements(store, monkeypatch) as seen:
        page = client.get(url.removeprefix("https://localhost"), base_url="https://localhost")
    assert page.status_code == 200 and 'data-lti-close="auto"' in page.text
    done = [s.split()[0] for s in seen if not s.startswith(("BEGIN", "COMMIT"))]
    assert done == [
        "SELECT",  # an earlier attempt with this token?
        "INSERT",  # the attempt, returned as stored
        "UPDATE",  # the LMS's configuration
        "UPDATE",  # claimed for registering, before the POST
        "UPDATE",  # the LMS's answer, before anything else
        *("SELECT", "INSERT", "INSERT", "UPDATE"),  # the platform, its deployment, completed
        "INSERT",  # the audit line
        "INSERT",  # and its "awaiting activation" line: the owner is told (auto_activate is off)
        *("SELECT", "SELECT"),  # the close page: the attempt, the deployments
        *("SELECT", "SELECT", "SELECT"),  # who approved it: account, terms, payment
    ]
    assert sum(s.startswith("BEGIN") for s in seen) == 7
