"""Secrets sealed at rest under GATEHOUSE_ENCRYPTION_KEY, on SQLite and PostgreSQL."""

import json
import logging
import re
import threading

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from support.postgres import dump, run_sql

from app import create_app
from app.cli import main
from app.domain import keys
from app.domain.sealing import PREFIX, Sealer, SealError, key_id, new_key
from app.web.login import hash_password

BASE = "https://localhost"
OLD, NEW = new_key(), new_key()


def raw(store, table, key):
    """Return a table's rows as stored: what a database dump shows."""
    return store.dump_table(table, (key,))


def secret_values(store):
    """Return the stored private keys and generated SECRET_KEY, as stored."""
    pems = [row["private_pem"] for row in raw(store, "tool_keys", "kid")]
    settings = [row["value"] for row in raw(store, "app_settings", "name")]
    return pems + settings


def sealed_under(value, key):
    return value.startswith(f"{PREFIX}{key_id(key)}:")


def sign_and_verify(app):
    """Sign with the tool's current key; verify with the key set LMSes fetch at /lti/keys."""
    kid, key = app.extensions["gatehouse.jwks"].signing_key()
    token = jwt.encode({"alg": "RS256", "kid": kid}, {"iss": "gatehouse"}, key)
    published = KeySet.import_key_set(app.test_client().get("/lti/keys").json)
    return jwt.decode(token, published, algorithms=["RS256"]).claims


def test_with_a_key_no_private_key_or_secret_is_stored_in_the_clear(make_app):
    app = make_app(ENCRYPTION_KEY=NEW, SECRET_KEY=None)
    store = app.extensions["gatehouse.store"]
    keys.rotate(store, sealer=app.extensions["gatehouse.sealer"])
    values = secret_values(store)
    assert len(values) == 3  # two tool keys and the generated SECRET_KEY
    assert all(sealed_under(value, NEW) for value in values)
    everything = dump(store)
    assert "PRIVATE KEY" not in everything
    assert app.config["SECRET_KEY"] not in everything
    # ...and what was sealed still signs: hand-offs, assertions, the published key set.
    assert sign_and_verify(app) == {"iss": "gatehouse"}
    assert len(app.test_client().get("/lti/keys").json["keys"]) == 2


def test_what_an_open_attempt_holds_for_the_gates_is_sealed(make_app, simulator):
    app = make_app({"registration": {"gates": ["signin"]}}, ENCRYPTION_KEY=NEW)
    store = app.extensions["gatehouse.store"]
    store.create_account("admin@school.example", "Ada", hash_password("correct horse battery"))
    sim = simulator("moodle")
    url, grant = sim.initiate(BASE + "/lti/register")
    client = app.test_client()
    started = client.get(url.replace(BASE, ""), base_url=BASE)
    rid = started.headers["Location"].rsplit("/", 1)[-1]
    (held,) = [r["pending_secret"] for r in raw(store, "registrations", "id") if r["id"] == rid]
    assert sealed_under(held, NEW)
    assert grant.token not in dump(store)
    page = client.get(f"/lti/register/{rid}/signin", base_url=BASE).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    done = client.post(
        f"/lti/register/{rid}/signin",
        data={
            "email": "admin@school.example",
            "password": "correct horse battery",
            "csrf_token": token,
        },
        base_url=BASE,
        follow_redirects=True,
    )
    # A new Moodle tool waits for Activate: the close page holds the dialog until Done.
    assert done.status_code == 200
    assert 'data-lti-close="after-reading"' in done.get_data(as_text=True)
    assert store.get_registration(rid).state == "completed"
    assert sim.posts_for(grant.token) == 1  # the sealed token opened and reached the LMS


def test_a_plain_database_is_sealed_by_its_first_start_with_a_key(make_app, caplog):
    plain = make_app(SECRET_KEY=None)
    store = plain.extensions["gatehouse.store"]
    keys.rotate(store)
    assert "PRIVATE KEY" in dump(store)
    jwks = plain.test_client().get("/lti/keys").json
    session = plain.session_interface.get_signing_serializer(plain).dumps({"user": "ada"})

    caplog.set_level(logging.WARNING)
    sealed = make_app(ENCRYPTION_KEY=NEW, SECRET_KEY=None)
    assert "Sealed 3 stored secrets" in caplog.text
    assert all(sealed_under(value, NEW) for value in secret_values(store))
    assert "PRIVATE KEY" not in dump(store)
    # Nothing lost: same keys for LMSes, same SECRET_KEY for the sessions signed before.
    assert sealed.test_client().get("/lti/keys").json == jwks
    assert sealed.config["SECRET_KEY"] == plain.config["SECRET_KEY"]
    assert sealed.session_interface.get_signing_serializer(sealed).loads(session) == {"user": "ada"}
    assert sign_and_verify(sealed) == {"iss": "gatehouse"}


@pytest.mark.parametrize(
    "given, says",
    [
        (None, "GATEHOUSE_ENCRYPTION_KEY is not set"),
        (OLD, "GATEHOUSE_ENCRYPTION_KEY does not open the database's secrets"),
    ],
    ids=["missing", "wrong"],
)
def test_start_up_refuses_sealed_secrets_without_their_key(make_app, given, says):
    make_app(ENCRYPTION_KEY=NEW)
    with pytest.raises(SealError) as refused:
        make_app(ENCRYPTION_KEY=given)
    message = str(refused.value)
    assert message.startswith("Gatehouse refuses to start:")
    assert says in message and f"key id {key_id(NEW)}" in message


def test_a_changed_sealed_value_is_refused_not_opened(make_app):
    store = make_app(ENCRYPTION_KEY=NEW).extensions["gatehouse.store"]
    (row,) = raw(store, "tool_keys", "kid")
    run_sql(
        store,
        "UPDATE tool_keys SET private_pem = ? WHERE kid = ?",
        [row["private_pem"][:-8] + "AAAAAAA=", row["kid"]],
    )
    with pytest.raises(SealError, match="was changed or damaged"):
        make_app(ENCRYPTION_KEY=NEW)


def test_without_a_key_production_start_up_warns_and_tests_do_not(make_app, caplog):
    caplog.set_level(logging.WARNING)
    make_app()
    assert "GATEHOUSE_ENCRYPTION_KEY is not set" not in caplog.text
    production = make_app(TESTING=False)
    # Production starts the sweeper: stop it before the test's database goes.
    production.extensions["gatehouse.maintenance"].set()
    for thread in threading.enumerate():
        if thread.name == "gatehouse-maintenance":
            thread.join(timeout=30)
    assert "GATEHOUSE_ENCRYPTION_KEY is not set" in caplog.text
    assert "gatehouse keys new-encryption-key" in caplog.text


@pytest.fixture
def gatehouse(runner, monkeypatch, database_url):
    """Run `gatehouse <args>` on the test's database with GATEHOUSE_ENCRYPTION_KEY = `key`."""

    def run(args, key=None, url=database_url):
        monkeypatch.setenv("DATABASE_URL", url)
        if key is None:
            monkeypatch.delenv("GATEHOUSE_ENCRYPTION_KEY", raising=False)
        else:
            monkeypatch.setenv("GATEHOUSE_ENCRYPTION_KEY", key)
        return runner.invoke(main, args)

    return run


def test_new_encryption_key_prints_a_key_gatehouse_accepts(gatehouse):
    result = gatehouse(["keys", "new-encryption-key"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert Sealer.from_value(key).current == key_id(key)
    assert "GATEHOUSE_ENCRYPTION_KEY" in result.stderr
    assert gatehouse(["keys", "new-encryption-key"]).stdout.strip() != key


def test_rotate_encryption_reseals_everything_under_the_new_key(make_app, gatehouse, simulator):
    app = make_app({"registration": {"gates": ["signin"]}}, ENCRYPTION_KEY=OLD, SECRET_KEY=None)
    store = app.extensions["gatehouse.store"]
    url, _grant = simulator("moodle").initiate(BASE + "/lti/register")
    app.test_client().get(url.replace(BASE, ""), base_url=BASE)  # an attempt held at the gate
    assert gatehouse(["keys", "rotate", "--grace-hours", "1"], OLD).exit_code == 0
    jwks = app.test_client().get("/lti/keys").json
    held = [r["pending_secret"] for r in raw(store, "registrations", "id")]
    assert len(held) == 1 and sealed_under(held[0], OLD)

    result = gatehouse(["keys", "rotate-encryption"], f"{NEW},{OLD}")
    assert result.exit_code == 0, result.output
    assert f"Re-sealed 4 stored secrets under key id {key_id(NEW)}" in result.output
    values = secret_values(store) + [r["pending_secret"] for r in raw(store, "registrations", "id")]
    assert len(values) == 4 and all(sealed_under(value, NEW) for value in values)
    again = gatehouse(["keys", "rotate-encryption"], f"{NEW},{OLD}")
    assert "Re-sealed 0 stored secrets" in again.output  # idempotent
    assert [r["pending_secret"] for r in raw(store, "registrations", "id")] == values[-1:]

    after = make_app(ENCRYPTION_KEY=NEW, SECRET_KEY=None)  # the new key alone opens everything
    assert after.test_client().get("/lti/keys").json == jwks
    assert after.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    assert sign_and_verify(after) == {"iss": "gatehouse"}
    with pytest.raises(SealError, match="does not open"):
        make_app(ENCRYPTION_KEY=OLD)


def test_rotate_encryption_without_the_old_key_changes_nothing(make_app, gatehouse):
    store = make_app(ENCRYPTION_KEY=OLD, SECRET_KEY=None).extensions["gatehouse.store"]
    before = secret_values(store)
    result = gatehouse(["keys", "rotate-encryption"], NEW)
    assert result.exit_code == 1
    assert "GATEHOUSE_ENCRYPTION_KEY" in result.output and f"key id {key_id(OLD)}" in result.output
    assert secret_values(store) == before
    assert gatehouse(["keys", "rotate-encryption"]).exit_code == 1  # no key at all


def test_commands_refuse_a_sealed_database_without_its_key(make_app, gatehouse):
    make_app(ENCRYPTION_KEY=NEW)
    for args in (["keys", "rotate"], ["export", "--include-secrets"]):
        result = gatehouse(args)
        assert result.exit_code == 1
        assert "GATEHOUSE_ENCRYPTION_KEY is not set" in result.output


def test_an_export_stays_sealed_and_its_import_needs_the_key(make_app, gatehouse, tmp_path):
    source = make_app(ENCRYPTION_KEY=NEW)
    jwks = source.test_client().get("/lti/keys").json
    exported = tmp_path / "export.json"
    result = gatehouse(["export", "--include-secrets", "-o", str(exported)], NEW)
    assert result.exit_code == 0 and "private keys sealed" in result.output
    document = json.loads(exported.read_text())
    assert document["secretsSealed"] is True
    assert "PRIVATE KEY" not in exported.read_text()
    (row,) = document["tables"]["tool_keys"]
    assert sealed_under(row["private_pem"], NEW)

    target = f"sqlite:///{tmp_path / 'target.db'}"
    refused = gatehouse(["import", str(exported)], url=target)
    assert refused.exit_code == 1
    assert "sealed (key id" in refused.output and "GATEHOUSE_ENCRYPTION_KEY" in refused.output
    mine = new_key()  # the target's own key first, the exporting one after it
    assert gatehouse(["import", str(exported)], f"{mine},{NEW}", url=target).exit_code == 0
    moved = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": target,
            "SECRET_KEY": "x",
            "ENCRYPTION_KEY": mine,
            "SETTINGS": {"tool": {"name": "Quiz Tool"}},
        }
    )
    assert moved.test_client().get("/lti/keys").json == jwks
    (stored,) = raw(moved.extensions["gatehouse.store"], "tool_keys", "kid")
    assert sealed_under(stored["private_pem"], mine)


def test_an_export_without_secrets_needs_no_key_to_read(make_app, gatehouse):
    make_app(ENCRYPTION_KEY=NEW)
    result = gatehouse(["export"], NEW)
    assert result.exit_code == 0
    assert "public_jwk" in result.stdout and PREFIX not in result.stdout


def test_keys_rotate_from_the_command_line_seals_the_new_key(make_app, gatehouse):
    app = make_app(ENCRYPTION_KEY=NEW)
    assert gatehouse(["keys", "rotate"], NEW).exit_code == 0
    pems = [
        row["private_pem"] for row in raw(app.extensions["gatehouse.store"], "tool_keys", "kid")
    ]
    assert len(pems) == 2 and all(sealed_under(pem, NEW) for pem in pems)
