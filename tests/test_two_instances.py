"""Two instances, one database: two gunicorn instances on one PostgreSQL and one Redis behave as
one Gatehouse for registrations, launches, key rotation, limits and sign-in lockouts.

Nothing is shared between the instances but what production shares: DATABASE_URL, REDIS_URL
and SECRET_KEY. Each test sends some steps to one instance and the rest to the other, as a load
balancer may.
"""

import re
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from joserfc.jwk import RSAKey

from app.cli import main
from app.domain.keys import CREATED_AT_MARGIN, JWKS_CACHE_SECONDS
from app.simulator.launch import login_destination, parse_form
from app.testing import Gunicorn

# PostgreSQL, as several machines need; postgres_cluster and redis_server skip these tests
# without the servers, or fail them when GATEHOUSE_REQUIRE_POSTGRES / _REDIS is set (CI).
pytestmark = pytest.mark.backends("postgres")

OWNER, PASSWORD = "owner@tool.example", "the owner's long password"
SETTINGS = {
    "SECRET_KEY": "two instances, one secret",
    "GATEHOUSE_TOOL__NAME": "Quiz Tool",
    "GATEHOUSE_SECURITY__ALLOW_INSECURE_PLATFORMS": "true",
    # A gate makes a registration more than one request, so it can start on one instance and
    # finish on the other.
    "GATEHOUSE_REGISTRATION__GATES": '["terms"]',
    "GATEHOUSE_GATES__TERMS__VERSION": "1",
    "GATEHOUSE_REGISTRATION__AUTO_ACTIVATE": "true",
    "GATEHOUSE_LIMITS__REGISTER": "5/minute",
}


@pytest.fixture(scope="module")
def shared(postgres_cluster, redis_server, tmp_path_factory):
    """Return the environment both instances share: one PostgreSQL database, one Redis."""
    if not redis_server.answers():  # an earlier test may have killed it
        redis_server.start(port=redis_server.port)
    terms = tmp_path_factory.mktemp("terms") / "terms.md"
    terms.write_text("# Terms\n\nBe kind to the quizzes.\n")
    return {
        **SETTINGS,
        "DATABASE_URL": postgres_cluster.fresh_database(),
        "REDIS_URL": redis_server.url,
        "GATEHOUSE_GATES__TERMS__PATH": str(terms),
    }


def start_pair(env):
    """Start instances A and B together on the same environment; return both."""
    servers = [Gunicorn(env=env, label=label, url_host="localhost") for label in ("A", "B")]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda server: server.start(), servers))
    except Exception:
        for server in servers:  # the one that did start
            server.stop()
        raise
    return servers


@pytest.fixture(scope="module")
def pair(shared):
    first, second = start_pair(shared)
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture(autouse=True)
def fresh_counters(redis_server):
    """Start each test with no limit counted yet (the limits are in the shared Redis)."""
    redis_server.flush()


class Browser(requests.Session):
    """A browser on loopback: like Chromium, it sends Secure cookies to http://localhost.

    Cookies belong to a host, not a port, so A's cookies reach B as they would two instances
    behind one address.
    """

    def request(self, *args, **kwargs):
        for cookie in self.cookies:
            cookie.secure = False
        return super().request(*args, **kwargs)


@pytest.fixture
def api(shared, runner):
    """Return a requests session with a bearer key made by `gatehouse api-key create`."""
    created = runner.invoke(
        main, ["api-key", "create", "--name", "two instances"], env=cli_env(shared)
    )
    assert created.exit_code == 0, created.output
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {created.output.strip().splitlines()[-1]}"
    return session


def cli_env(shared):
    return {"DATABASE_URL": shared["DATABASE_URL"], "SECRET_KEY": shared["SECRET_KEY"]}


def csrf(page):
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)


def register(sim, start, finish):
    """Register `sim` as an admin would: the LMS opens `start`, the rest goes to `finish`.

    The registration URL and the terms page are answered by `start`; the terms are accepted and
    the registration completed through `finish`. Return the close page.
    """
    admin = Browser()
    opened = admin.get(sim.initiation_url(start.url + "/lti/register"), allow_redirects=False)
    assert opened.status_code == 303, opened.text
    resume = urlsplit(opened.headers["Location"]).path
    terms = admin.get(start.url + resume + "/terms", timeout=10)
    assert terms.status_code == 200 and "Be kind to the quizzes" in terms.text
    accepted = admin.post(
        finish.url + resume + "/terms",
        data={
            "csrf_token": csrf(terms),
            "accept": "y",
            "signer_name": "Ada Admin",
            "email": "ada@school.example",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert accepted.status_code == 302, accepted.text
    closed = admin.get(finish.url + resume, timeout=30)
    # The close page (it waits for the admin where the LMS still needs something, as Moodle's
    # Activate does for a new tool).
    assert closed.status_code == 200, closed.text
    assert re.search(r'data-lti-close="(auto|after-reading)"', closed.text), closed.text
    return closed


def platforms_seen(api, server):
    answer = api.get(server.url + "/api/platforms", timeout=10)
    assert answer.status_code == 200, answer.text
    return sorted((p["url"], p["clientId"], p["active"]) for p in answer.json()["platforms"])


def test_registrations_through_either_instance_are_seen_by_both(pair, simulator, api):
    first, second = pair
    canvas, moodle, blackboard = simulator("canvas"), simulator("moodle"), simulator("generic")
    register(canvas, first, first)
    register(moodle, second, second)
    # Started on A (the LMS's configuration URL and the terms page), finished through B.
    register(blackboard, first, second)

    expected = sorted(
        (sim.issuer, sim.registrations()[0].client_id, True) for sim in (canvas, moodle, blackboard)
    )
    assert [len(sim.registrations()) for sim in (canvas, moodle, blackboard)] == [1, 1, 1]
    assert platforms_seen(api, first) == platforms_seen(api, second) == expected


def test_a_launch_started_on_one_instance_finishes_on_the_other_once(pair, simulator):
    first, second = pair
    sim = simulator("canvas")
    register(sim, first, first)
    pending = sim.prepare_launch(sim.registrations()[0].client_id)
    assert pending.login_url.startswith(first.url + "/lti/login")

    browser = Browser()  # keeps the launch's binding cookie, as the person's browser does
    login = browser.get(pending.login_url, allow_redirects=False, timeout=10)  # on A
    destination = login_destination(login)
    assert destination, login.text
    authorized = browser.get(destination, timeout=10)
    action, fields = parse_form(authorized.text)
    assert action.startswith(first.url)
    # The LMS posts the id_token to B: the state and nonce A stored are in the database, and
    # the binding A set is a digest under the SECRET_KEY both share.
    launched = browser.post(second.url + urlsplit(action).path, data=fields, timeout=10)
    assert launched.status_code == 200, launched.text
    assert 'data-lti-launch="verified"' in launched.text

    # The state is single-use on both instances.
    for server in (second, first):
        replay = browser.post(server.url + urlsplit(action).path, data=fields, timeout=10)
        assert replay.status_code == 401, replay.text
        assert 'data-lti-launch="verified"' not in replay.text
        assert "Rule: <code>state-replayed</code>" in replay.text


def signing_kid(api, server, platform_id):
    """Return the kid of the key `server` signs with (the API's publicKey is that key)."""
    answer = api.get(f"{server.url}/api/platforms/{platform_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return RSAKey.import_key(answer.json()["publicKey"]).thumbprint()


def published(server):
    answer = requests.get(server.url + "/lti/keys", timeout=10)
    assert answer.status_code == 200
    return {key["kid"] for key in answer.json()["keys"]}


def test_a_rotated_key_is_published_by_both_before_either_signs_with_it(
    shared, pair, simulator, api, runner
):
    sim = simulator("generic")
    register(sim, *pair)
    (platform,) = [
        p
        for p in api.get(pair[0].url + "/api/platforms").json()["platforms"]
        if p["url"] == sim.issuer
    ]
    # A fresh pair: neither has read the keys yet, so each reads them when first asked.
    first, second = start_pair(shared)
    try:
        (old,) = published(second)  # B caches the key set now, before the rotation
        rotated = runner.invoke(main, ["keys", "rotate"], env=cli_env(shared))
        assert rotated.exit_code == 0, rotated.output
        rotated_at = time.monotonic()
        new = re.search(r"New current key: (\S+)", rotated.output).group(1)

        # A reads the keys after the rotation; whatever it signs with, B must publish, or an
        # LMS that fetches /lti/keys through B cannot check what A signed.
        seen = {}
        switch = JWKS_CACHE_SECONDS + CREATED_AT_MARGIN  # A read the key first: from its creation
        while time.monotonic() < rotated_at + switch + 5:
            signing = {
                server.label: signing_kid(api, server, platform["id"]) for server in (first, second)
            }
            keys = {server.label: published(server) for server in (first, second)}
            for label, kid in signing.items():
                assert all(kid in keys[other] for other in keys), (label, kid, keys)
            assert all(old in kids for kids in keys.values())  # its grace period
            for label, kids in keys.items():
                if new in kids:
                    seen.setdefault(f"{label} publishes", time.monotonic() - rotated_at)
            for label, kid in signing.items():
                if kid == new:
                    seen.setdefault(f"{label} signs", time.monotonic() - rotated_at)
            if {"A publishes", "B publishes", "A signs"} <= seen.keys():
                break
            time.sleep(0.5)
        # Both publish the new key within the cache period; A signs with it once every copy of
        # the key set can be trusted to publish it (B stays on the old one a cache period more).
        assert seen.get("A publishes", 99) <= 1, seen
        assert seen.get("B publishes", 99) <= JWKS_CACHE_SECONDS + 1, seen
        assert JWKS_CACHE_SECONDS <= seen.get("A signs", 0) <= switch + 2, seen
    finally:
        first.stop()
        second.stop()


def test_a_limit_is_counted_across_both_instances(pair):
    first, second = pair
    statuses = [
        requests.get(server.url + "/lti/register", timeout=10).status_code
        for server in (first, second, first, second, first, second, first)
    ]
    # register = 5/minute: five requests spread over A and B use it up, on both.
    assert statuses == [200, 200, 200, 200, 200, 429, 429]


def sign_in(session, server, password):
    page = session.get(server.url + "/console/login", timeout=10)
    return session.post(
        server.url + "/console/login",
        data={"email": OWNER, "password": password, "csrf_token": csrf(page)},
        allow_redirects=False,
        timeout=10,
    )


def test_failed_sign_ins_on_both_instances_lock_the_account_on_both(shared, pair, runner):
    first, second = pair
    created = runner.invoke(
        main,
        ["user", "create", "--email", OWNER, "--password", PASSWORD, "--owner"],
        env=cli_env(shared),
    )
    assert created.exit_code == 0, created.output
    # Signed in on A, the owner's session holds on B.
    owner = Browser()
    assert sign_in(owner, first, PASSWORD).status_code == 302
    console = owner.get(second.url + "/console/registrations", allow_redirects=False)
    assert console.status_code == 200 and OWNER in console.text

    attacker = Browser()
    refusals = [sign_in(attacker, server, "a wrong guess") for server in (first, second) * 2]
    assert [r.status_code for r in refusals] == [200] * 4  # four failures lock nothing yet
    assert "Too many failed sign-ins" not in refusals[-1].text
    assert sign_in(attacker, first, "a wrong guess").status_code == 200  # the fifth locks
    for server in (first, second):
        locked = sign_in(Browser(), server, PASSWORD)
        assert locked.status_code == 429, locked.text
        assert "Too many failed sign-ins" in locked.text
