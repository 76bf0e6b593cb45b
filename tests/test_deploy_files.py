"""The one-click deploys (README, Deploying): render.yaml and app.json describe an app that starts.

Neither platform can be reached from a test, so each file is checked against what its platform
documents (Render's Blueprint spec, https://render.com/docs/blueprint-spec; Heroku's app.json
schema, https://devcenter.heroku.com/articles/app-json-schema), against the Procfile, and by
starting Gatehouse with the environment the file would give it.
"""

import base64
import json
import os
import secrets
import threading
from pathlib import Path

import pytest
import yaml
from support import run_served_script

from app import create_app
from app.domain.sealing import Sealer

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINT = yaml.safe_load((ROOT / "render.yaml").read_text())
APP_JSON = json.loads((ROOT / "app.json").read_text())
PROCFILE = dict(
    line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
)
# Blueprint spec: each envVars entry takes its value from exactly one of these.
RENDER_SOURCES = ("value", "generateValue", "fromDatabase", "fromService", "fromGroup", "sync")
# What the app cannot start or serve a deploy without (app/__init__.py, app/settings.py: tool.name
# is the one required setting) and what a deploy behind the platform's router must set (README,
# "What the operator sets").
REQUIRED = ("DATABASE_URL", "SECRET_KEY", "GATEHOUSE_ENCRYPTION_KEY", "GATEHOUSE_TOOL__NAME")


def web_service():
    (service,) = [s for s in BLUEPRINT["services"] if s["type"] == "web"]
    return service


def render_environment(tmp_path):
    """Return the environment Render would give the web service (its database: SQLite here)."""
    databases = {db["name"] for db in BLUEPRINT.get("databases", [])}
    env = {}
    for var in web_service()["envVars"]:
        if "fromDatabase" in var:
            assert var["fromDatabase"]["name"] in databases
            assert var["fromDatabase"]["property"] == "connectionString"
            env[var["key"]] = f"sqlite:///{tmp_path / 'render.db'}"
        elif var.get("generateValue"):
            # "a base64-encoded 256-bit value" (Blueprint spec, generateValue).
            env[var["key"]] = base64.b64encode(secrets.token_bytes(32)).decode()
        elif "value" in var:
            env[var["key"]] = str(var["value"])
    return env


def heroku_environment(tmp_path):
    """Return the environment Heroku would give the app (its Postgres add-on: SQLite here)."""
    env = {}
    if any(addon["plan"].startswith("heroku-postgresql") for addon in APP_JSON["addons"]):
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'heroku.db'}"
    for key, spec in APP_JSON["env"].items():
        if spec.get("generator") == "secret":
            env[key] = secrets.token_hex(32)  # Heroku's secret: 64 hex digits
        elif "value" in spec:
            env[key] = spec["value"]
    return env


def test_render_runs_the_procfiles_commands_and_checks_health():
    service = web_service()
    assert service["runtime"] == "python"
    assert service["startCommand"] == PROCFILE["web"]
    assert service["preDeployCommand"] == PROCFILE["release"]
    assert service["buildCommand"] == "pip install -r requirements.txt"
    assert (ROOT / "requirements.txt").read_text().strip() == ".[postgres]"
    assert service["healthCheckPath"] == "/healthz"
    # preDeployCommand runs on paid instance types only (Blueprint spec): not on `free`.
    assert service.get("plan", "starter") != "free"


def test_each_render_variable_has_exactly_one_source():
    for var in web_service()["envVars"]:
        sources = [s for s in RENDER_SOURCES if s in var]
        assert len(sources) == 1, var
        assert isinstance(var.get("value", ""), str), f"{var['key']}: quote the value"
    keys = [var["key"] for var in web_service()["envVars"]]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("platform", ["render", "heroku"])
def test_the_deploy_sets_what_the_app_requires_and_starts(platform, tmp_path, monkeypatch):
    env = (render_environment if platform == "render" else heroku_environment)(tmp_path)
    missing = [key for key in REQUIRED if not env.get(key)]
    assert missing == []
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = set(threading.enumerate())
    app = create_app()
    try:
        settings = app.config["GATEHOUSE"]
        assert settings.trusted_proxies == 1  # the platform's router, and no more
        assert settings.tool.name == "My LTI tool"
        assert Sealer.from_value(os.environ["GATEHOUSE_ENCRYPTION_KEY"]).active
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200
    finally:
        # A production app starts the maintenance sweeper: stop it with the test, or it outlives
        # the test's database and later tests wait for it (tests/test_sealing.py joins them).
        app.extensions["gatehouse.maintenance"].set()
        for thread in set(threading.enumerate()) - before:
            if thread.name != "gatehouse-maintenance":
                continue
            thread.join(timeout=30)


def test_render_and_heroku_describe_the_same_app():
    render = {var["key"]: var for var in web_service()["envVars"]}
    for key, spec in APP_JSON["env"].items():
        if spec.get("required") is False and "value" not in spec and "generator" not in spec:
            continue  # optional, nothing to set: GATEHOUSE_BASE_URL is derived from requests
        assert key in render, f"{key} is set on Heroku but not on Render"
        if spec.get("generator") == "secret":
            assert render[key].get("generateValue") is True, key
        else:
            assert render[key]["value"] == spec["value"], key
    assert APP_JSON["scripts"]["postdeploy"] == PROCFILE["release"]


def test_heroku_app_json_has_the_documented_shape():
    # Heroku's app.json schema: env values are strings; a generator is only "secret".
    for key, spec in APP_JSON["env"].items():
        assert set(spec) <= {"description", "value", "required", "generator"}, key
        assert spec["description"], key
        assert isinstance(spec.get("value", ""), str), key
        assert spec.get("generator", "secret") == "secret", key
    assert APP_JSON["buildpacks"] == [{"url": "heroku/python"}]


def test_the_wsgi_entry_freezes_what_start_up_made_and_serves(tmp_path):
    # gunicorn imports wsgi.py in each worker: what start-up made is frozen (gc.freeze), so
    # the collector's full passes while serving skip it; requests are served as ever.
    script = (
        "import gc, wsgi\n"
        "frozen = gc.get_freeze_count()\n"
        "assert wsgi.app.test_client().get('/lti/keys').status_code == 200\n"
        "print(frozen)\n"
    )
    output = run_served_script(script, tmp_path / "served.db")
    assert int(output.strip().splitlines()[-1]) > 10_000  # the app's modules and objects
