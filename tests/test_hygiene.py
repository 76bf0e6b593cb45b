"""Secrets stay out of logs and pages; no stack trace reaches anyone; abandoned attempts are
expired and purged; the layers of app/ import one way, without cycles."""

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import grimp
from support.fake_stripe import FakeStripe
from support.postgres import run_sql

from app.domain import apikeys
from app.web import workers
from app.web.login import hash_password

BASE = "https://localhost"
STRIPE_KEY = "sk_test_hygiene_51QxSecretKeyNeverLogged"
STRIPE_WRONG_KEY = "sk_test_hygiene_51QxRotatedOldKeyNeverLogged"
WEBHOOK_SECRET = "whsec_hygiene_SigningSecretNeverLogged"


def logged_text(records) -> str:
    """Return everything the records would put in a log: messages, tracebacks, stacks."""
    formatter = logging.Formatter()
    parts = []
    for record in records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
        parts.extend(text for text in (record.exc_text, record.stack_info) if text)
    return "\n".join(parts)


def test_passwords_api_keys_and_tokens_never_reach_the_logs(make_app, simulator, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app({"registration": {"gates": ["signin"]}})
    store = app.extensions["gatehouse.store"]
    store.create_account("a@b.example", "A", hash_password("the secret password"))
    _record, key = apikeys.create(store, "logs")
    client = app.test_client()
    sim = simulator("canvas")
    url, grant = sim.initiate(BASE + "/lti/register")
    resume = client.get(url.replace(BASE, ""), base_url=BASE).headers["Location"]
    page = client.get(resume + "/signin", base_url=BASE)
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    ).group(1)
    for password in ("a wrong password", "the secret password"):
        client.post(
            resume + "/signin",
            base_url=BASE,
            data={"email": "a@b.example", "password": password, "csrf_token": token},
        )
    client.get("/admin/platforms", headers={"Authorization": f"Bearer {key}"})
    client.get("/admin/platforms", headers={"Authorization": f"Bearer {key}x"})
    client.get(resume, base_url=BASE)  # the last gate passed: Gatehouse registers
    assert store.list_platforms()[0]  # the flow really ran
    logged = logged_text(caplog.records)
    for secret in (
        "the secret password",
        "a wrong password",
        key,
        key.split("_", 2)[2],
        grant.token,
    ):
        assert secret not in logged


def test_stripe_keys_never_reach_the_logs_even_in_tracebacks(
    make_app, simulator, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("STRIPE_SECRET_KEY", STRIPE_KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    with FakeStripe(api_key=STRIPE_KEY, webhook_secret=WEBHOOK_SECRET) as stripe_server:
        app = make_app(
            {
                "registration": {"gates": ["payment"]},
                "gates": {"payment": {"price_id": "price_123", "api_base": stripe_server.url}},
            }
        )
        store = app.extensions["gatehouse.store"]
        client = app.test_client()
        url, _grant = simulator("canvas").initiate(BASE + "/lti/register")
        resume = client.get(url.replace(BASE, ""), base_url=BASE).headers["Location"]
        rid = resume.rsplit("/", 1)[-1]

        def webhook(session_id, secret=WEBHOOK_SECRET):
            payload = json.dumps(
                stripe_server.build_event("checkout.session.completed", session_id)
            )
            return client.post(
                "/webhooks/stripe",
                data=payload,
                base_url=BASE,
                headers={
                    "Stripe-Signature": stripe_server.sign(payload, secret),
                    "Content-Type": "application/json",
                },
            )

        # A rotated-out key: Stripe refuses it, and Gatehouse says so in the log.
        monkeypatch.setenv("STRIPE_SECRET_KEY", STRIPE_WRONG_KEY)
        assert client.get(f"{resume}/payment/checkout", base_url=BASE).status_code == 502
        monkeypatch.setenv("STRIPE_SECRET_KEY", STRIPE_KEY)
        checkout = client.get(f"{resume}/payment/checkout", base_url=BASE)
        session_id = checkout.headers["Location"].rsplit("/", 1)[-1]
        stripe_server.complete_session(session_id)
        assert webhook(session_id, secret="whsec_someone_else").status_code == 400
        # A database hiccup while settling: an unhandled error, logged with its traceback.
        real_update = store.update_payment

        def failing_update(*args, **kwargs):
            raise RuntimeError("database went away while settling a payment")

        monkeypatch.setattr(store, "update_payment", failing_update)
        assert webhook(session_id).status_code == 500
        monkeypatch.setattr(store, "update_payment", real_update)
        assert webhook(session_id).status_code == 200
        returned = client.get(f"{resume}/payment/return?session_id={session_id}", base_url=BASE)
        assert "Payment received" in returned.get_data(as_text=True)
        client.get(resume, base_url=BASE)  # the last gate passed: Gatehouse registers
    assert store.get_registration(rid).state == "completed"  # the flow really ran
    assert any(record.exc_info for record in caplog.records)  # tracebacks are searched too
    logged = logged_text(caplog.records)
    assert "Stripe could not open a Checkout Session" in logged
    assert "database went away" in logged
    for secret in (STRIPE_KEY, STRIPE_WRONG_KEY, WEBHOOK_SECRET):
        assert secret not in logged
        assert secret.split("_", 2)[2] not in logged  # nor its secret part on its own


def test_no_stack_trace_reaches_a_page_or_an_api_client(make_app, monkeypatch):
    app = make_app()
    store = app.extensions["gatehouse.store"]
    _record, key = apikeys.create(store, "t")

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /srv/gatehouse/app.py line 1")

    monkeypatch.setattr(store, "list_platforms", broken)
    monkeypatch.setattr(store, "create_registration", broken)
    client = app.test_client()
    api = client.get("/admin/platforms", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 500
    assert api.get_json()["details"]["message"] == "INTERNAL_ERROR"
    page = client.get("/lti/register?openid_configuration=http://127.0.0.1:9/x")
    assert page.status_code == 500
    for response in (api, page):
        text = response.get_data(as_text=True)
        assert "Traceback" not in text and "secret internals" not in text


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" in client.get("/", base_url=BASE).headers
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_abandoned_attempts_expire_and_their_documents_are_purged(make_app, simulator):
    app = make_app({"registration": {"gates": ["signin"]}})
    store = app.extensions["gatehouse.store"]
    sim = simulator("moodle")
    url = sim.initiation_url(BASE + "/lti/register")
    app.test_client().get(url.replace(BASE, ""), base_url=BASE)
    (attempt,) = store.list_registrations()[0]
    assert store.get_pending_secret(attempt.id) is not None
    assert attempt.platform_config is not None
    run_sql(store, "UPDATE registrations SET expires_at = '2000-01-01T00:00:00Z'")
    workers.sweep(app)
    attempt = store.get_registration(attempt.id)
    assert attempt.state == "expired"
    assert store.get_pending_secret(attempt.id) is None
    assert attempt.platform_config is None


# The layers of app/: the import-linter contracts in pyproject.toml, and no import cycle at all.
CHECKOUT = Path(__file__).resolve().parent.parent


def test_the_layers_import_one_way_and_blueprints_stay_apart():
    # web -> domain -> storage -> lti; no Flask in app.domain or app.lti; no blueprint imports
    # another's module; sibling packages acyclic. In its own interpreter: import-linter
    # configures logging, which would silence the app's loggers for the tests that follow.
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", LINT, str(CHECKOUT / "pyproject.toml")],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


LINT = """
import sys
from importlinter.cli import lint_imports
sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))
"""


def import_cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Return the modules of each import cycle in `package`, one sorted list per cycle.

    A package's __init__ counts as a module: one importing a submodule that imports the
    package back is a cycle too. An import A -> B closes a cycle when B leads back to A.
    """
    modules = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    cycles = set()
    for importer in modules:
        for imported in graph.find_modules_directly_imported_by(importer) & modules:
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.add(tuple(sorted({importer, *back})))
    return sorted(list(c) for c in cycles)


def test_no_module_of_the_product_imports_itself_back():
    graph = grimp.build_graph("app", exclude_type_checking_imports=True, cache_dir=None)
    assert import_cycles(graph, "app") == []


def test_the_cycle_finder_finds_a_package_importing_its_submodule_back():
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg", imported="pkg.a")
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    assert import_cycles(graph, "pkg") == [["pkg", "pkg.a", "pkg.b"]]
