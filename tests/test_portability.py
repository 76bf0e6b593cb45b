"""`gatehouse export` then `gatehouse import`: SQLite to PostgreSQL, exactly."""

import json

import pytest
from click.testing import CliRunner

from app.cli import main


@pytest.fixture
def sqlite_with_data(make_app, simulator, tmp_path):
    """A SQLite Gatehouse with registrations from three LMSes, one failed, and a rotated key."""
    from tests.conftest import LiveServer

    app = make_app()
    store = app.extensions["gatehouse.store"]
    with LiveServer(app) as server:
        for profile in ("canvas", "moodle", "brightspace"):
            assert simulator(profile).register(server.url + "/lti/register").ok
        simulator("canvas", faults={"refuse_registration"}).register(
            server.url + "/lti/register")
    store.add_deployment(store.list_platforms()[0].id, "added-later", active=False)
    from app import keys

    keys.rotate(store)
    return app


def run(args, database_url, monkeypatch, **kwargs):
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(main, args, **kwargs)
    assert result.exit_code == 0, result.output
    return result


def test_export_then_import_round_trips_exactly(sqlite_with_data, postgres_url, tmp_path,
                                                monkeypatch):
    sqlite_url = sqlite_with_data.config["DATABASE_URL"]
    exported = tmp_path / "gatehouse.json"
    run(["export", "--include-secrets", "-o", str(exported)], sqlite_url, monkeypatch)
    first = json.loads(exported.read_text())
    assert [len(first["tables"][t]) for t in ("platforms", "registrations", "tool_keys")] == [
        3, 4, 2]
    imported = run(["import", str(exported)], postgres_url, monkeypatch)
    assert "Imported 3 platforms, 4 deployments, 2 tool_keys, 4 registrations." in imported.output
    again = tmp_path / "again.json"
    run(["export", "--include-secrets", "-o", str(again)], postgres_url, monkeypatch)
    second = json.loads(again.read_text())
    assert second["tables"] == first["tables"]
    # Importing twice replaces rather than duplicates.
    run(["import", str(exported)], postgres_url, monkeypatch)
    run(["export", "--include-secrets", "-o", str(again)], postgres_url, monkeypatch)
    assert json.loads(again.read_text())["tables"] == first["tables"]


def test_without_secrets_only_public_keys_leave(sqlite_with_data, tmp_path, monkeypatch):
    sqlite_url = sqlite_with_data.config["DATABASE_URL"]
    out = tmp_path / "public.json"
    result = run(["export", "-o", str(out)], sqlite_url, monkeypatch)
    assert "public keys only" in result.output
    text = out.read_text()
    assert "PRIVATE KEY" not in text and "pending_secret" not in text
    keys = json.loads(text)["tables"]["tool_keys"]
    assert all(k["public_jwk"]["kty"] == "RSA" and "d" not in k["public_jwk"] for k in keys)
    target = f"sqlite:///{tmp_path / 'other.db'}"
    imported = run(["import", str(out)], target, monkeypatch)
    assert "0 tool_keys" in imported.output and "own tool key" in imported.output


def test_import_refuses_what_is_not_an_export(tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text('{"platforms": []}')
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    result = CliRunner().invoke(main, ["import", str(bad)])
    assert result.exit_code == 1 and "not a Gatehouse export" in result.output


def test_heroku_files_name_real_settings():
    from pathlib import Path

    from app.config import RESERVED_ENV, SECRET_ENV, env_name, iter_keys

    root = Path(__file__).resolve().parent.parent
    manifest = json.loads((root / "app.json").read_text())
    known = {env_name(k) for k in iter_keys() if "[]" not in k} | set(SECRET_ENV) | set(
        RESERVED_ENV) | {"WEB_CONCURRENCY"}
    assert set(manifest["env"]) <= known
    assert manifest["addons"][0]["plan"] == "heroku-postgresql"
    assert "release: gatehouse migrate" in (root / "Procfile").read_text()
    assert (root / "requirements.txt").read_text().strip() == ".[postgres]"
