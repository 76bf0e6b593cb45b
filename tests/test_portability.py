"""`gatehouse export` then `gatehouse import`: between SQLite and PostgreSQL, exactly."""

import json

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from support import wait_out_key_cache
from support.postgres import run_sql

from app.cli import main
from app.testing import LoopbackServer


@pytest.fixture
def source(make_app, simulator):
    """A Gatehouse with registrations from three LMSes, one failed, and a rotated key."""
    app = make_app()
    store = app.extensions["gatehouse.store"]
    with LoopbackServer(app, "localhost") as server:
        for profile in ("canvas", "moodle", "brightspace"):
            assert simulator(profile).register(server.url + "/lti/register").ok
        simulator("canvas", faults={"refuse_registration"}).register(server.url + "/lti/register")
    platforms, _total = store.list_platforms()
    store.add_deployment(platforms[0].id, "added-later", active=False)
    from app.domain import keys

    keys.rotate(store)
    return app


@pytest.fixture
def target_url(backend, tmp_path, request):
    """Return an empty database on the other backend: where the records move to."""
    if backend == "sqlite":
        try:
            return request.getfixturevalue("postgres_cluster").fresh_database(migrated=False)
        except pytest.skip.Exception:  # no PostgreSQL here: still check SQLite to SQLite
            pass
    return f"sqlite:///{tmp_path / 'moved.db'}"


@pytest.fixture
def run(runner, monkeypatch):
    """Return a function running `gatehouse <args>` on a database; it asserts success."""

    def run(args, database_url, **kwargs):
        monkeypatch.setenv("DATABASE_URL", database_url)
        result = runner.invoke(main, args, **kwargs)
        assert result.exit_code == 0, result.output
        return result

    return run


def test_export_then_import_round_trips_exactly(source, target_url, tmp_path, monkeypatch, run):
    source_url = source.config["DATABASE_URL"]
    exported = tmp_path / "gatehouse.json"
    run(["export", "--include-secrets", "-o", str(exported)], source_url)
    first = json.loads(exported.read_text())
    assert [len(first["tables"][t]) for t in ("platforms", "registrations", "tool_keys")] == [
        3,
        4,
        2,
    ]
    imported = run(["import", str(exported)], target_url)
    assert "Imported 3 platforms, 4 deployments, 2 tool_keys, 4 registrations." in imported.output
    again = tmp_path / "again.json"
    run(["export", "--include-secrets", "-o", str(again)], target_url)
    second = json.loads(again.read_text())
    assert second["tables"] == first["tables"]
    # Importing twice replaces rather than duplicates.
    run(["import", str(exported)], target_url)
    run(["export", "--include-secrets", "-o", str(again)], target_url)
    assert json.loads(again.read_text())["tables"] == first["tables"]


def signs_with(app):
    """Return the kid the app signs with and a token it signed, checked against its /lti/keys."""
    kid, key = app.extensions["gatehouse.jwks"].signing_key()
    token = jwt.encode({"alg": "RS256", "kid": kid}, {"iss": "gatehouse"}, key)
    published = KeySet.import_key_set(app.test_client().get("/lti/keys").json)
    assert jwt.decode(token, published, algorithms=["RS256"]).claims == {"iss": "gatehouse"}
    return kid, token


def test_import_into_a_started_app_puts_the_exports_current_key_in_charge(
    source, target_url, make_app, tmp_path, monkeypatch, run
):
    wait_out_key_cache(source)  # the fixture rotated a moment ago
    source_keys = source.test_client().get("/lti/keys").json["keys"]
    source_kid, source_token = signs_with(source)
    exported = tmp_path / "gatehouse.json"
    run(["export", "--include-secrets", "-o", str(exported)], source.config["DATABASE_URL"])
    # The new deploy started before the import and made its own key, as every start does.
    target = make_app(DATABASE_URL=target_url)
    (own,) = target.test_client().get("/lti/keys").json["keys"]
    assert own["kid"] != source_kid

    imported = run(["import", str(exported)], target_url)
    assert f"Current signing key: {source_kid} (the export's)." in imported.output
    assert f"This database's own key {own['kid']} stays published until " in imported.output

    restarted = make_app(DATABASE_URL=target_url)
    for app in (target, restarted):
        wait_out_key_cache(app)  # until every worker publishes the imported key, none signs
        kid, token = signs_with(app)
        assert kid == source_kid
        assert token == source_token  # the same private key, not just the same kid
        keys = app.test_client().get("/lti/keys").json["keys"]
        # The target's own key stays published through the grace period, for what it signed.
        assert keys == source_keys + [own] or keys == [own] + source_keys
    # Once the grace period is over, the key set is exactly the source's.
    store = restarted.extensions["gatehouse.store"]
    run_sql(
        store,
        "UPDATE tool_keys SET retire_at = '2000-01-01T00:00:00.000000Z' WHERE kid = ?",
        [own["kid"]],
    )
    restarted.extensions["gatehouse.jwks"].invalidate()
    assert restarted.test_client().get("/lti/keys").json["keys"] == source_keys
    assert signs_with(restarted)[0] == source_kid


def test_without_secrets_only_public_keys_leave_and_the_targets_key_keeps_signing(
    source, target_url, make_app, tmp_path, monkeypatch, run
):
    out = tmp_path / "public.json"
    result = run(["export", "-o", str(out)], source.config["DATABASE_URL"])
    assert "public keys only" in result.output
    text = out.read_text()
    assert "PRIVATE KEY" not in text and "pending_secret" not in text
    keys = json.loads(text)["tables"]["tool_keys"]
    assert all(k["public_jwk"]["kty"] == "RSA" and "d" not in k["public_jwk"] for k in keys)
    target = make_app(DATABASE_URL=target_url)
    own_kid = signs_with(target)[0]
    imported = run(["import", str(out)], target_url)
    assert "0 tool_keys" in imported.output and "own tool key" in imported.output
    assert signs_with(make_app(DATABASE_URL=target_url))[0] == own_kid


def test_import_refuses_what_is_not_an_export(tmp_path, monkeypatch, runner):
    bad = tmp_path / "bad.json"
    bad.write_text('{"platforms": []}')
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    result = runner.invoke(main, ["import", str(bad)])
    assert result.exit_code == 1 and "not a Gatehouse export" in result.output


def test_heroku_files_name_real_settings():
    from pathlib import Path

    from app.settings import RESERVED_ENV, SECRET_ENV, env_name, iter_keys

    root = Path(__file__).resolve().parent.parent
    manifest = json.loads((root / "app.json").read_text())
    known = (
        {env_name(k) for k in iter_keys() if "[]" not in k}
        | set(SECRET_ENV)
        | set(RESERVED_ENV)
        | {"WEB_CONCURRENCY"}
    )
    assert set(manifest["env"]) <= known
    assert manifest["addons"][0]["plan"] == "heroku-postgresql"
    assert "release: gatehouse migrate" in (root / "Procfile").read_text()
    assert (root / "requirements.txt").read_text().strip() == ".[postgres]"
