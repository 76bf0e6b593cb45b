"""Shared limits: counters in a real Redis (tests/support/redis.py) hold across gunicorn
instances, and when Redis dies the limits fail open with a logged error while registrations and
launches go on."""

import logging

import pytest
import requests

from app.testing import Gunicorn, LoopbackServer


def gatehouse(database_url, **env):
    """Return Gatehouse under gunicorn, configured through the environment as in production."""
    return Gunicorn(
        env={
            "DATABASE_URL": database_url,
            "SECRET_KEY": "shared limits",
            "GATEHOUSE_TOOL__NAME": "Quiz Tool",
            "GATEHOUSE_SECURITY__ALLOW_INSECURE_PLATFORMS": "true",
            **env,
        },
        label="gatehouse",
    )


@pytest.mark.sqlite_only("the limit counters are in Redis; the database plays no part")
def test_two_instances_sharing_one_redis_share_one_limit(tmp_path, redis_url):
    database_url = f"sqlite:///{tmp_path / 'gatehouse.db'}"
    limit = {"GATEHOUSE_LIMITS__REGISTER": "3/minute", "GATEHOUSE_LIMITS__LAUNCH": "2/minute"}
    # One instance finds Redis through REDIS_URL (as on Heroku), the other through the setting.
    with gatehouse(database_url, REDIS_URL=redis_url, **limit) as first:
        with gatehouse(database_url, GATEHOUSE_LIMITS__STORAGE_URI=redis_url, **limit) as second:
            statuses = [
                requests.get(server.url + "/lti/register", timeout=10).status_code
                for server in (first, second, first, second, second)
            ]
            # Launches count their own limit (app/web/limits.py launch_limit), shared too.
            launches = [
                requests.get(server.url + "/lti/login", timeout=10)
                for server in (second, first, first, second)
            ]
    assert statuses == [200, 200, 200, 429, 429]
    assert [answer.status_code for answer in launches] == [400, 400, 429, 429]
    assert 0 < int(launches[-1].headers["Retry-After"]) <= 60


def logged_errors(caplog):
    return [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("app")]


@pytest.mark.sqlite_only("the limit counters are in Redis; the database plays no part")
def test_with_redis_down_limits_fail_open_and_registrations_and_launches_go_on(
    make_app, redis_server, redis_url, simulator, caplog
):
    app = make_app(
        {
            "limits": {"enabled": True, "register": "2/minute", "storage_uri": redis_url},
            "registration": {"auto_activate": True},
        }
    )
    with LoopbackServer(app, "localhost") as server:
        register = server.url + "/lti/register"
        assert [requests.get(register, timeout=10).status_code for _ in range(3)] == [200, 200, 429]
        assert redis_server.client().keys("LIMITS*")  # the counters are in Redis

        redis_server.kill()
        caplog.clear()
        caplog.set_level(logging.ERROR)
        # The limit no longer holds (fail open): the LMS registers and launches regardless.
        assert requests.get(register, timeout=10).status_code == 200
        sim = simulator("canvas")
        report = sim.register(register)
        assert report.ok, report.render()
        launched = sim.launch(report.client_id)
        assert launched.status == 200, launched.text
        assert 'data-lti-launch="verified"' in launched.text
        errors = logged_errors(caplog)
        assert errors and all(r.name == "app.web.limits" for r in errors)
        assert "rate limit" in errors[0].getMessage().lower()

        # Redis back (empty, as after a crash): the limit holds again, with no restart.
        redis_server.start(port=redis_server.port)
        statuses = [requests.get(register, timeout=10).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]


@pytest.mark.sqlite_only("the limit counters are in Redis; the database plays no part")
def test_a_redis_down_at_start_is_logged_once_and_requests_are_served(make_app, caplog):
    from app.testing import free_port

    caplog.set_level(logging.ERROR)
    dead = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    app = make_app({"limits": {"enabled": True, "register": "1/minute", "storage_uri": dead}})
    (error,) = [
        r.getMessage() for r in logged_errors(caplog) if "limits.storage_uri" in r.getMessage()
    ]
    assert "does not answer" in error and "hunter2secret" not in error
    caplog.clear()
    client = app.test_client()
    assert [client.get("/lti/register").status_code for _ in range(3)] == [200, 200, 200]
    # Every request failed to reach Redis; the log says so once, not once per request.
    (failed,) = logged_errors(caplog)
    assert "rate limit" in failed.getMessage().lower()
    assert "hunter2secret" not in caplog.text
