"""Crashes and load against real gunicorn processes sharing one database, on each backend."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app.storage import open_store
from app.testing import Gunicorn


def gatehouse(database_url, workers=1, **env):
    """Return Gatehouse under gunicorn, configured through the environment as in production."""
    return Gunicorn(
        env={
            "DATABASE_URL": database_url,
            "SECRET_KEY": "reliability",
            "GATEHOUSE_TOOL__NAME": "Quiz Tool",
            "GATEHOUSE_SECURITY__ALLOW_INSECURE_PLATFORMS": "true",
            "GATEHOUSE_OUTBOUND__DEADLINE": "3",
            "GATEHOUSE_REGISTRATION__RECOVERY_AFTER": "4",
            # Fifty registrations from one address: this measures concurrency, not the limits.
            "GATEHOUSE_LIMITS__ENABLED": "false",
            **env,
        },
        workers=workers,
        label="gatehouse",
        url_host="localhost",
    )


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def store(database_url, tmp_path):
    """Open the database the gunicorn workers share, as the test's own view of it."""
    store = open_store(database_url, str(tmp_path))
    yield store
    store.close()


@pytest.mark.parametrize("point", ["before_post", "after_response", "before_close"])
def test_a_worker_killed_at_any_step_loses_nothing_and_posts_once(
    database_url, store, simulator, point
):
    sim = simulator("moodle")
    # The worker gunicorn respawns after the kill runs a sweeper too: a long recovery delay
    # keeps it from finishing the attempt before we look at what the crash left behind.
    with gatehouse(
        database_url, GATEHOUSE_TEST_CRASH_AT=point, GATEHOUSE_REGISTRATION__RECOVERY_AFTER="600"
    ) as server:
        url, grant = sim.initiate(server.url + "/lti/register")
        crashed_at = server.url
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=30)
    (attempt,) = store.list_registrations()[0]
    assert attempt.state == ("completed" if point == "before_close" else "registering")

    # A restarted Gatehouse (no crash this time) recovers what the dead worker left.
    key = "reliability-api-key-0123456789"
    with gatehouse(database_url, GATEHOUSE_API_KEY=key) as server:
        assert wait_for(lambda: store.get_registration(attempt.id).state != "registering")
        # The owner's API shows the true state; the admin reloading the dialog sees it too,
        # and nothing is sent to the LMS again.
        shown = requests.get(
            f"{server.url}/admin/registrations/{attempt.id}",
            timeout=10,
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        again = requests.get(url.replace(crashed_at, server.url, 1), timeout=30)
    attempt = store.get_registration(attempt.id)
    assert shown["state"] == attempt.state and shown["clientId"] == attempt.client_id
    assert again.url.endswith(f"/lti/register/{attempt.id}")
    assert ("Outcome unknown" if attempt.state == "unknown" else "data-lti-close") in again.text
    assert sim.posts_for(grant.token) == (0 if point == "before_post" else 1)
    # Every client_id the LMS issued has a platform, or a visible attempt saying what to check.
    for client_id in sim.issued_client_ids:
        assert store.find_platform(sim.issuer, client_id) is not None
    if point == "before_post":
        assert attempt.state == "unknown"
        assert attempt.error["title"] == "Outcome unknown: check the LMS"
        assert store.list_platforms()[0] == []
    else:
        assert attempt.state == "completed"
        assert len(store.list_platforms()[0]) == 1
    if point == "after_response":
        assert any(entry.action == "registration.recovered" for entry in store.list_audit()[0])


def test_fifty_concurrent_registrations_on_four_workers(database_url, store, simulator):
    sims = [simulator(profile) for profile in ("generic", "canvas", "moodle", "sakai")]
    with gatehouse(database_url, workers=4) as server:

        def register(n):
            return sims[n % len(sims)].register(server.url + "/lti/register", timeout=60)

        with ThreadPoolExecutor(max_workers=50) as pool:
            reports = list(pool.map(register, range(50)))
    failures = [r.render() for r in reports if not r.ok]
    assert failures == []
    platforms = store.list_platforms()[0]
    assert len(platforms) == 50
    assert {(p.issuer, p.client_id) for p in platforms} == {
        (r.issuer, r.client_id) for r in reports
    }
    assert all(r.state == "completed" for r in store.list_registrations(limit=100)[0])
    for sim in sims:
        assert all(sim.posts_for(record.token) == 1 for record in sim.records)
