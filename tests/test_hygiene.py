"""Secrets stay out of logs and pages; no stack trace reaches anyone; abandoned attempts are
expired and purged."""

import logging
import re

from app import apikeys, maintenance
from app.accounts import hash_password

BASE = "https://localhost"


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
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True)).group(1)
    for password in ("a wrong password", "the secret password"):
        client.post(resume + "/signin", base_url=BASE,
                    data={"email": "a@b.example", "password": password, "csrf_token": token})
    client.get("/admin/platforms", headers={"Authorization": f"Bearer {key}"})
    client.get("/admin/platforms", headers={"Authorization": f"Bearer {key}x"})
    client.get(resume, base_url=BASE)  # the last gate passed: Gatehouse registers
    assert store.list_platforms()  # the flow really ran
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in ("the secret password", "a wrong password", key, key.split("_", 2)[2],
                   grant.token):
        assert secret not in logged


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
    (attempt,) = store.list_registrations()
    assert store.get_pending_secret(attempt.id) is not None
    assert attempt.platform_config is not None
    store.db.execute("UPDATE registrations SET expires_at = '2000-01-01T00:00:00Z'")
    maintenance.sweep(app)
    attempt = store.get_registration(attempt.id)
    assert attempt.state == "expired"
    assert store.get_pending_secret(attempt.id) is None
    assert attempt.platform_config is None
