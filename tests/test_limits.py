"""Abuse limits: 429 with Retry-After on the registration URL, sign-in and the API, and
lockout back-off per account and per address after failed sign-ins."""

import re

import pytest
from support.postgres import run_sql

from app.domain import apikeys
from app.domain.accounts import lock_seconds
from app.settings import ConfigError
from app.web.login import hash_password

BASE = "https://localhost"


def limited(make_app, **limits):
    return make_app({"limits": {"enabled": True, **limits}})


def test_registration_url_answers_429_with_retry_after(make_app):
    client = limited(make_app, register="3/minute").test_client()
    statuses = [client.get("/lti/register").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    blocked = client.get("/lti/register")
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too Many Requests" in blocked.get_data(as_text=True)
    assert "frame-ancestors https: http:" in blocked.headers["Content-Security-Policy"]


def test_login_and_launch_share_the_launch_limit(make_app):
    client = limited(make_app, launch="3/minute").test_client()
    statuses = [
        client.get("/lti/login").status_code,
        client.post("/lti/launch").status_code,
        client.post("/lti/login").status_code,
        client.post("/lti/launch").status_code,
    ]
    assert statuses == [400, 400, 400, 429]
    assert int(client.get("/lti/login").headers["Retry-After"]) > 0


def test_api_answers_429_in_the_envelope(make_app):
    app = limited(make_app, api="2/minute")
    _record, key = apikeys.create(app.extensions["gatehouse.store"], "t")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(2):
        assert client.get("/admin/platforms", headers=headers).status_code == 200
    response = client.get("/admin/platforms", headers=headers)
    assert response.status_code == 429
    assert response.get_json()["status"] == 429
    assert response.headers["Retry-After"]


def csrf(page):
    return re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    ).group(1)


def test_console_sign_in_posts_are_rate_limited(make_app):
    client = limited(make_app, signin="2/minute").test_client()
    page = client.get("/console/login", base_url=BASE)
    data = {"email": "x@y.example", "password": "wrong password", "csrf_token": csrf(page)}
    answers = [client.post("/console/login", data=data, base_url=BASE) for _ in range(3)]
    assert answers[-1].status_code == 429
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 60
    assert client.get("/console/login", base_url=BASE).status_code == 200  # GETs are free


def test_lockout_backs_off_per_account(make_app):
    app = make_app()
    store = app.extensions["gatehouse.store"]
    account = store.create_account("owner@tool.example", "O", hash_password("right password"))
    store.set_owner(account.id, True)
    client = app.test_client()
    page = client.get("/console/login", base_url=BASE)
    token = csrf(page)

    def attempt(password, address="10.0.0.1"):
        return client.post(
            "/console/login",
            base_url=BASE,
            data={"email": "owner@tool.example", "password": password, "csrf_token": token},
            environ_base={"REMOTE_ADDR": address},
        )

    for _ in range(4):
        assert attempt("wrong password").status_code == 200
    fifth = attempt("wrong password")
    assert fifth.status_code == 200  # the fifth failure sets the lock
    locked = attempt("right password", address="10.0.0.2")  # another address: same account
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    assert 0 < int(locked.headers["Retry-After"]) <= 31
    run_sql(store, "UPDATE signin_throttle SET locked_until = NULL")
    assert attempt("right password", address="10.0.0.3").status_code == 302


def test_lockout_per_address_covers_many_accounts(make_app):
    app = make_app()
    client = app.test_client()
    token = csrf(client.get("/console/login", base_url=BASE))
    for n in range(5):
        client.post(
            "/console/login",
            base_url=BASE,
            data={"email": f"user{n}@x.example", "password": "guess guess", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "10.9.9.9"},
        )
    locked = client.post(
        "/console/login",
        base_url=BASE,
        data={"email": "new@x.example", "password": "guess guess", "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert locked.status_code == 429


def test_back_off_doubles_up_to_an_hour():
    assert [lock_seconds(n) for n in (1, 4, 5, 6, 7)] == [0, 0, 30, 60, 120]
    assert lock_seconds(50) == 3600


@pytest.mark.parametrize("value", ["lots", "10/fortnight", "/minute"])
def test_bad_limits_are_refused(make_app, value):
    with pytest.raises(ConfigError, match="limits.register"):
        make_app({"limits": {"register": value}})
