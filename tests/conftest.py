import os

import pytest
from support import postgres as pg

from app import create_app
from app.testing import LoopbackServer

TOOL_SETTINGS = {
    "tool": {
        "name": "Quiz Tool",
        "description": "Auto-graded quizzes.",
        "scopes": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
        ],
    },
    "security": {"allow_insecure_platforms": True},
    # Many registrations come from 127.0.0.1 in the suite; the limit tests turn them on.
    "limits": {"enabled": False},
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """Run every test without the developer's settings, in an empty working directory."""
    for name in list(os.environ):
        if name.startswith("GATEHOUSE_") or name in (
            "DATABASE_URL",
            "SECRET_KEY",
            "DYNO",
            "REDIS_URL",
        ):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def merge(base, extra):
    result = dict(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


BACKENDS = ("sqlite", "postgres")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "backends(*names): run the test's apps only on these storage backends (sqlite, "
        "postgres); without a mark, a test that uses a database runs on both",
    )
    config.addinivalue_line(
        "markers",
        "sqlite_only(why): the test is about SQLite itself (say why); run it on SQLite only",
    )


def pytest_terminal_summary(terminalreporter):
    """Say in one line why the real-Moodle tests did not run, when they did not (`make test`
    prints no skip reasons otherwise)."""
    for report in terminalreporter.stats.get("skipped", []):
        if report.nodeid.startswith("tests/test_moodle.py"):
            _path, _line, reason = report.longrepr
            terminalreporter.write_line(
                f"Real-Moodle tests skipped: {reason.removeprefix('Skipped: ')}"
            )
            return


def backends_for(definition) -> tuple[str, ...]:
    """Return the backends a test runs on: both, unless a mark narrows them."""
    only = definition.get_closest_marker("sqlite_only")
    if only is not None:
        why = only.args[0] if only.args else only.kwargs.get("reason")
        assert isinstance(why, str) and why.strip(), (
            f"{definition.nodeid}: sqlite_only needs the reason the test is SQLite's alone"
        )
        return ("sqlite",)
    marker = definition.get_closest_marker("backends")
    if marker is not None:
        unknown = set(marker.args) - set(BACKENDS)
        assert marker.args and not unknown, f"{definition.nodeid}: unknown backends {unknown}"
        return marker.args
    return BACKENDS


def pytest_generate_tests(metafunc):
    # Every test that reaches the database (through app, client, store, make_app,
    # database_url or backend itself) asks for `backend`, so this covers all of them.
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends_for(metafunc.definition), indirect=True)


@pytest.fixture
def backend(request):
    """Name the storage backend under test (pytest_generate_tests sets it for each test)."""
    # SQLite when a fixture was only asked for at run time (request.getfixturevalue).
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def postgres_cluster():
    """Start one private PostgreSQL cluster for the session; stop it at the end."""
    try:
        cluster = pg.start_cluster()
    except pg.Unavailable as exc:
        if pg.REQUIRED:
            pytest.fail(f"GATEHOUSE_REQUIRE_POSTGRES is set but {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster):
    """Give the test the session's PostgreSQL database, migrated, with every table empty."""
    return postgres_cluster.fresh_database()


@pytest.fixture
def database_url(backend, tmp_path, request):
    """Return the DATABASE_URL of the test's database on its backend."""
    if backend == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'gatehouse.db'}"


@pytest.fixture
def blank_database_url(backend, tmp_path, request):
    """Return the DATABASE_URL of a database without any table yet, as a new deploy has.

    On PostgreSQL it is the same database database_url gives: a test takes one or the other.
    """
    if backend == "postgres":
        return request.getfixturevalue("postgres_cluster").fresh_database(migrated=False)
    return f"sqlite:///{tmp_path / 'blank.db'}"


@pytest.fixture
def make_app(database_url):
    """Build an app on a fresh database; keyword settings are merged onto TOOL_SETTINGS."""
    apps = []

    def factory(settings=None, **config):
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test-secret",
                "SETTINGS": merge(TOOL_SETTINGS, settings),
                **config,
            }
        )
        apps.append(app)
        return app

    yield factory
    for app in apps:  # pooled connections must not outlive the test's database
        if app.config["DATABASE_URL"].startswith("sqlite:"):
            continue
        notifier = app.extensions.get("gatehouse.notifier")
        if notifier is not None:
            notifier.stop()
        app.extensions["gatehouse.store"].close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def store(app):
    return app.extensions["gatehouse.store"]


@pytest.fixture
def runner(tmp_path_factory):
    """Return app.test_cli_runner() for the `gatehouse` command (flaskr's `runner`).

    The commands open the database DATABASE_URL names, as they do in production, never the
    app's: the app here only hosts the runner, on a scratch SQLite file outside the test's
    tmp_path, so the fixture adds no backend and no file of its own to the test's.
    """
    host = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('cli-runner') / 'host.db'}",
            "SECRET_KEY": "test-secret",
            "SETTINGS": TOOL_SETTINGS,
        }
    )
    return host.test_cli_runner()


@pytest.fixture
def live(app):
    """Gatehouse served for real on localhost (the simulated LMS is on 127.0.0.1)."""
    with LoopbackServer(app, "localhost") as server:
        server.register_url = server.url + "/lti/register"
        yield server


@pytest.fixture
def simulator():
    """Start simulated LMSes on loopback; all are stopped after the test."""
    from app.simulator import Simulator

    started = []

    def start(profile="generic", **options):
        sim = Simulator(profile=profile, **options)
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture(scope="session")
def redis_server():
    """Start one private redis-server for the session; stop it at the end."""
    from support import redis as rd

    server = rd.RedisServer()
    try:
        server.start()
    except rd.Unavailable as exc:
        server.stop()
        if rd.REQUIRED:
            pytest.fail(f"GATEHOUSE_REQUIRE_REDIS is set but {exc}", pytrace=False)
        pytest.skip(f"Redis unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """Give the test the session's Redis, empty, running again if a test killed it."""
    if not redis_server.answers():
        redis_server.start(port=redis_server.port)
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium through Playwright, one per test module that asks for it.

    Module scope: two sync_playwright() at once fail, and later modules start theirs.
    """
    from playwright.sync_api import sync_playwright
    from support.browser import launch_browser

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()
