"""Abuse limits: 429 with Retry-After on the registration URL, sign-in and the API, and
lockout back-off per account and per address after failed sign-ins."""

import logging
import re
import threading
import time

import pytest
from flask_limiter import Limiter
from support.postgres import run_sql

from app.domain import apikeys
from app.domain.accounts import lock_seconds
from app.settings import ConfigError, load_settings
from app.web.limits import SweptMemoryStorage, ThrottledErrors, limiter
from app.web.login import hash_password

BASE = "https://localhost"


def limited(make_app, **limits):
    return make_app({"limits": {"enabled": True, **limits}})


def test_registration_url_answers_429_with_retry_after(make_app):
    client = limited(make_app, register="3/minute").test_client()
    statuses = [client.get("/lti/register").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # the page explaining the URL, then limited
    blocked = client.get("/lti/register")
    assert int(blocked.headers["Retry-After"]) > 0
    page = blocked.get_data(as_text=True)
    assert "Too many requests" in page and "What to do:</strong> Wait a minute" in page
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


def test_flask_limiters_hooks_stay_off_the_launch_routes_and_the_key_set(make_app, monkeypatch):
    # They would apply no limit there (the launch routes count their own), only cost time.
    worked_out = []
    resolve = Limiter._Limiter__filter_limits

    def counting(self, endpoint, *args, **kwargs):
        worked_out.append(endpoint)
        return resolve(self, endpoint, *args, **kwargs)

    monkeypatch.setattr(Limiter, "_Limiter__filter_limits", counting)
    client = limited(make_app, register="3/minute", launch="3/minute").test_client()
    assert client.get("/lti/keys").status_code == 200
    assert client.get("/lti/login").status_code == 400
    assert client.post("/lti/launch").status_code == 400
    assert worked_out == []
    # The launch limit still counts, and still says so in its 429.
    assert client.post("/lti/login").status_code == 400
    limited_launch = client.post("/lti/launch")
    assert limited_launch.status_code == 429 and int(limited_launch.headers["Retry-After"]) > 0
    # The registration URL still goes through flask-limiter, headers and all.
    registration = client.get("/lti/register")
    assert set(worked_out) == {"lms.register"}
    assert registration.headers["X-RateLimit-Limit"] == "3"


def test_memory_limits_start_no_thread_per_request_and_still_forget_old_counters(make_app):
    app = limited(make_app, launch="1000/minute")
    storage = limiter.storage
    assert isinstance(storage, SweptMemoryStorage)
    client = app.test_client()
    first_timer = storage.timer
    before = threading.active_count()
    for _ in range(30):
        assert client.get("/lti/login").status_code == 400
        time.sleep(0.02)  # the library's own timer (10 ms) would have ended each time
    assert storage.timer is first_timer
    assert threading.active_count() <= before
    # Counters that expired are dropped by the next request after the sweep interval.
    storage.incr("gone", expiry=1)
    storage.expirations["gone"] = time.time() - 1
    storage._swept -= SweptMemoryStorage.SWEEP_SECONDS
    assert client.get("/lti/login").status_code == 400
    assert "gone" not in storage.storage and "gone" not in storage.expirations


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


@pytest.mark.parametrize("key", ["register", "signin_account", "signin_global"])
@pytest.mark.parametrize("value", ["lots", "10/fortnight", "/minute"])
def test_bad_limits_are_refused(make_app, key, value):
    with pytest.raises(ConfigError, match=f"limits.{key}"):
        make_app({"limits": {key: value}})


# Addresses: X-Forwarded-For counts only from the proxies trusted_proxies says are there.


def sign_in_attempt(client, token, email, address="10.0.0.1", **headers):
    return client.post(
        "/console/login",
        base_url=BASE,
        data={"email": email, "password": "guess guess", "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def test_a_spoofed_forwarded_for_does_not_change_the_address(make_app):
    app = limited(make_app)  # the defaults: trusted_proxies = 0
    client = app.test_client()
    token = csrf(client.get("/console/login", base_url=BASE))
    statuses = [
        sign_in_attempt(
            client, token, f"user{n}@x.example", **{"X-Forwarded-For": f"198.51.100.{n}"}
        ).status_code
        for n in range(25)
    ]
    # The address's lockout (5 failures) holds, whatever address each request claims.
    assert statuses == [200] * 5 + [429] * 20


def test_behind_one_trusted_proxy_the_forwarded_address_counts(make_app):
    app = make_app({"limits": {"enabled": True, "signin": "100/minute"}, "trusted_proxies": 1})
    client = app.test_client()
    token = csrf(client.get("/console/login", base_url=BASE))
    for n in range(5):
        # One client behind the proxy (its address forwarded), the proxy's own address fixed.
        sign_in_attempt(client, token, f"user{n}@x.example", **{"X-Forwarded-For": "203.0.113.7"})
    same = sign_in_attempt(client, token, "new@x.example", **{"X-Forwarded-For": "203.0.113.7"})
    other = sign_in_attempt(client, token, "new@x.example", **{"X-Forwarded-For": "203.0.113.8"})
    assert same.status_code == 429
    assert other.status_code == 200
    # A client may prepend addresses of its own: only the entry the proxy added counts.
    prepended = sign_in_attempt(
        client, token, "new@x.example", **{"X-Forwarded-For": "192.0.2.1, 203.0.113.7"}
    )
    assert prepended.status_code == 429


def warnings_about_forwarding(caplog):
    return [r.getMessage() for r in caplog.records if "trusted_proxies is 0" in r.getMessage()]


def test_untrusted_forwarded_headers_are_logged_once(make_app, caplog):
    caplog.set_level(logging.WARNING)
    client = make_app().test_client()
    client.get("/")
    assert warnings_about_forwarding(caplog) == []  # no header, nothing to say
    for n in range(3):
        client.get("/", headers={"X-Forwarded-For": f"198.51.100.{n}, forged"})
        client.get("/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"})
    (warning,) = warnings_about_forwarding(caplog)
    assert "X-Forwarded-For" in warning
    assert "GATEHOUSE_TRUSTED_PROXIES" in warning and "1 on Heroku" in warning
    assert "198.51.100" not in warning and "forged" not in warning  # the values are not logged
    # Where the proxy is trusted there is nothing to warn about.
    caplog.clear()
    trusting = make_app({"trusted_proxies": 1}).test_client()
    trusting.get("/", headers={"X-Forwarded-For": "203.0.113.7"})
    assert warnings_about_forwarding(caplog) == []


def test_terms_evidence_records_the_real_address(make_app, tmp_path, simulator):
    terms_file = tmp_path / "terms.md"
    terms_file.write_text("# Terms\n")
    app = make_app(
        {
            "registration": {"gates": ["terms"]},
            "gates": {"terms": {"version": "1", "path": str(terms_file)}},
        }
    )
    store = app.extensions["gatehouse.store"]
    client = app.test_client()
    url, _grant = simulator("moodle").initiate(BASE + "/lti/register")
    rid = client.get(url.replace(BASE, ""), base_url=BASE).headers["Location"].rsplit("/", 1)[-1]
    page = client.get(f"/lti/register/{rid}/terms", base_url=BASE)
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    ).group(1)
    answer = client.post(
        f"/lti/register/{rid}/terms",
        base_url=BASE,
        data={
            "signer_name": "Ada",
            "email": "ada@school.example",
            "accept": "y",
            "csrf_token": token,
        },
        environ_base={"REMOTE_ADDR": "192.0.2.44"},
        headers={"X-Forwarded-For": "203.0.113.99"},
    )
    assert answer.status_code in (302, 303)
    (terms,) = store.terms_for(rid)
    assert (terms.version, terms.ip) == ("1", "192.0.2.44")


# Failed sign-ins per account and overall: rotating addresses does not help.


def test_failed_sign_ins_are_limited_per_account_across_addresses(make_app):
    app = limited(make_app, signin_account="3/minute")
    store = app.extensions["gatehouse.store"]
    account = store.create_account("owner@tool.example", "O", hash_password("right password"))
    store.set_owner(account.id, True)
    client = app.test_client()
    token = csrf(client.get("/console/login", base_url=BASE))
    spellings = ["owner@tool.example", " Owner@Tool.Example", "OWNER@tool.example "]
    for n, email in enumerate(spellings):
        assert sign_in_attempt(client, token, email, address=f"10.1.0.{n}").status_code == 200
    blocked = sign_in_attempt(client, token, "owner@tool.example", address="10.1.0.9")
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    # The right password waits too: the account is under attack.
    right = client.post(
        "/console/login",
        base_url=BASE,
        data={"email": "owner@tool.example", "password": "right password", "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.1.0.10"},
    )
    assert right.status_code == 429
    # Another account is not affected.
    assert (
        sign_in_attempt(client, token, "other@tool.example", address="10.1.0.11").status_code == 200
    )


def test_a_successful_sign_in_does_not_count_against_the_account(make_app):
    app = limited(make_app, signin_account="2/minute")
    store = app.extensions["gatehouse.store"]
    account = store.create_account("owner@tool.example", "O", hash_password("right password"))
    store.set_owner(account.id, True)
    for n in range(4):
        client = app.test_client()
        token = csrf(client.get("/console/login", base_url=BASE))
        signed_in = client.post(
            "/console/login",
            base_url=BASE,
            data={"email": "owner@tool.example", "password": "right password", "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"10.2.0.{n}"},
        )
        assert signed_in.status_code == 302


def test_failed_sign_ins_are_limited_overall_across_addresses_and_accounts(make_app):
    app = limited(make_app, signin_global="4/minute")
    client = app.test_client()
    token = csrf(client.get("/console/login", base_url=BASE))
    statuses = [
        sign_in_attempt(client, token, f"user{n}@x.example", address=f"10.3.0.{n}").status_code
        for n in range(6)
    ]
    assert statuses == [200] * 4 + [429] * 2


# Where the counters live: limits.storage_uri, else REDIS_URL, else each worker's memory.


def limits_of(environ):
    return load_settings({"GATEHOUSE_TOOL__NAME": "T", **environ}).limits


def test_redis_url_is_used_unless_limits_storage_uri_is_set():
    assert limits_of({}).storage_uri is None  # memory, per worker
    redis_url = "redis://:secret@redis.internal:6379/0"
    assert limits_of({"REDIS_URL": redis_url}).storage_uri == redis_url
    chosen = {"REDIS_URL": redis_url, "GATEHOUSE_LIMITS__STORAGE_URI": "memory://"}
    assert limits_of(chosen).storage_uri == "memory://"


@pytest.mark.parametrize(
    "uri", ["http://:hunter2@cache.example/0", "hunter2", "async+redis://:hunter2@h:6379"]
)
def test_a_storage_flask_limiter_cannot_use_is_refused_by_name(uri):
    with pytest.raises(ConfigError, match="limits.storage_uri") as refused:
        limits_of({"GATEHOUSE_LIMITS__STORAGE_URI": uri})
    assert "hunter2" not in str(refused.value)  # URIs carry passwords: only the scheme is shown
    assert "redis://" in str(refused.value)


def test_storage_errors_are_logged_once_a_minute_with_a_count():
    throttle = ThrottledErrors(interval=60.0)

    def record(level=logging.ERROR):
        return logging.LogRecord("app.web.limits", level, __file__, 1, "Redis down", None, None)

    assert throttle.filter(record())
    assert not throttle.filter(record()) and not throttle.filter(record())
    assert throttle.filter(record(logging.INFO))  # only errors are throttled
    throttle._last -= 61  # a minute later
    later = record()
    assert throttle.filter(later)
    assert later.getMessage() == "Redis down (2 more like it since the last one logged)"
