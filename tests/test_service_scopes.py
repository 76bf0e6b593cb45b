"""Service scopes as LMSes really grant them: openid is never one, a registration answer's
`scope` is a claim, and the token endpoint's answers teach Gatehouse which scopes are usable."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.postgres import run_sql

from app.domain.portability import export_data, import_data
from app.domain.service_tokens import learn_scopes
from app.lti.service_tokens import (
    AccessToken,
    ScopeRefused,
    TokenRefused,
    narrow,
    read_token_response,
)
from app.storage import open_store
from tests.test_launch import Gatehouse as LaunchGatehouse
from tests.test_launch import live_gatehouses

SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
RESULT = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOOL_SCOPES = [SCORE, LINEITEM, NRPS]  # tests/conftest.py TOOL_SETTINGS


class Gatehouse(LaunchGatehouse):
    """One live Gatehouse worker with an API key; several may share the test's database."""

    def register(self, sim):
        report = sim.register(self.url + "/lti/register")
        assert report.ok, report.render()
        return self.store.find_platform(sim.issuer, report.client_id)

    def token(self, platform, scopes=None):
        body = {} if scopes is None else {"scopes": scopes}
        return self.api("POST", f"/api/platforms/{platform.id}/token", json=body)

    def platform_json(self, platform):
        return self.api("GET", f"/api/platforms/{platform.id}").json()


@pytest.fixture
def gatehouse(make_app):
    """Start Gatehouse workers (auto-activating) on the test's one database."""
    yield from live_gatehouses(make_app, Gatehouse)


def asked(sim):
    """Return the scopes of each token request the LMS received, as sets."""
    return [set(r["scope"].split()) for r in sim.launches.token_requests]


# --- openid is never a service scope ------------------------------------------------------------


def test_canvas_default_token_asks_no_openid_though_the_answer_claims_it(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("canvas")
    platform = gh.register(sim)
    response = gh.token(platform)
    assert response.status_code == 200, response.text
    assert set(response.json()["scope"].split()) == set(TOOL_SCOPES)
    assert asked(sim) == [set(TOOL_SCOPES)]  # one request, and no openid in it
    shown = gh.platform_json(platform)
    assert "openid" not in shown["scopes"] and shown["usableScopes"] == sorted(TOOL_SCOPES)
    assert shown["refusedScopes"] == []


def test_the_canvas_token_endpoint_refuses_openid_with_its_own_body(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("canvas")
    platform = gh.register(sim)
    # Asked the way Gatehouse did before: every "granted" scope, openid included.
    gh.store.update_platform(platform.id, {"scopes": json.dumps([*TOOL_SCOPES, "openid"])})
    response = gh.token(gh.store.get_platform(platform.id))
    assert response.status_code == 200, response.text
    assert all("openid" not in scopes for scopes in asked(sim))
    from app.simulator.launch import token_scopes

    refusal = token_scopes(sim.profile, (*TOOL_SCOPES, "openid"), [SCORE, "openid"])
    assert refusal.body == {
        "error": "invalid_scope",
        "error_description": "A requested scope is invalid, unknown, malformed, or exceeds the "
        "scope granted by the resource owner. The following scopes were requested, but not "
        "granted: openid",
    }


def test_an_explicit_openid_is_refused_as_not_a_service_scope(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("canvas")
    platform = gh.register(sim)
    response = gh.token(platform, [SCORE, "openid", "profile"])
    assert response.status_code == 400
    details = response.json()["details"]
    assert details["message"] == "INVALID_PARAMETER" and details["parameter"] == "scopes"
    assert details["description"].startswith("Not LTI service scopes: openid, profile.")
    assert sim.launches.token_requests == []


# --- Sakai: the answer echoes the request, the admin's checkboxes decide at the token endpoint ---


def test_sakai_narrows_learns_and_asks_once_next_time(gatehouse, simulator):
    worker = gatehouse()
    sim = simulator("sakai", refuse_at_token=[NRPS])
    platform = worker.register(sim)
    assert NRPS in platform.service_scopes  # Sakai's answer claims it

    response = worker.token(platform)
    assert response.status_code == 200, response.text
    assert set(response.json()["scope"].split()) == {SCORE, LINEITEM}
    # Everything, refused; then the granted set plus one scope, one request per scope.
    assert len(sim.launches.token_requests) == 1 + len(TOOL_SCOPES)
    shown = worker.platform_json(platform)
    assert shown["usableScopes"] == sorted([SCORE, LINEITEM])
    assert shown["refusedScopes"] == [NRPS]
    assert NRPS in shown["scopes"]  # still what the LMS claimed

    # Another worker (no cached token) asks for the learned set at once: one request.
    other = gatehouse()
    before = len(sim.launches.token_requests)
    again = other.token(platform)
    assert again.status_code == 200, again.text
    assert asked(sim)[before:] == [{SCORE, LINEITEM}]

    # The refused scope, asked for by name: refused without asking the LMS, and named.
    before = len(sim.launches.token_requests)
    refused = other.token(platform, [SCORE, NRPS])
    assert refused.status_code == 400
    details = refused.json()["details"]
    assert details["message"] == "SCOPE_NOT_GRANTED"
    assert details["refused"] == [NRPS] and details["refusedByLms"] == [NRPS]
    assert f"claimed {NRPS} but its token endpoint refuses it" in details["description"]
    assert len(sim.launches.token_requests) == before


def test_forgetting_what_was_learned_asks_the_lms_again(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("sakai", refuse_at_token=[NRPS])
    platform = gh.register(sim)
    assert gh.token(platform).status_code == 200
    path = f"/api/platforms/{platform.id}"
    wrong = gh.api("PUT", path, json={"usableScopes": [NRPS]})
    assert wrong.status_code == 400
    assert wrong.json()["details"]["description"] == (
        "'usableScopes' is learned from the LMS's token endpoint; it can only be set to null, "
        "which forgets what was learned."
    )
    # The Sakai admin ticks the roster checkbox; the owner tells Gatehouse to ask again.
    sim.registration_by_client_id(platform.client_id).scopes += (NRPS,)
    forgotten = gh.api("PUT", path, json={"usableScopes": None})
    assert forgotten.status_code == 200, forgotten.text
    assert forgotten.json()["usableScopes"] is None and forgotten.json()["refusedScopes"] is None
    assert gh.token(platform, [NRPS]).status_code == 200
    assert gh.platform_json(platform)["usableScopes"] == [NRPS]


def test_an_explicit_request_for_a_refused_scope_names_it_and_is_learned(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("sakai", refuse_at_token=[LINEITEM])
    platform = gh.register(sim)
    response = gh.token(platform, [LINEITEM])
    assert response.status_code == 400
    details = response.json()["details"]
    assert details["message"] == "SCOPE_NOT_GRANTED" and details["refusedByLms"] == [LINEITEM]
    assert details["granted"] == [s for s in platform.service_scopes if s != LINEITEM]
    assert len(sim.launches.token_requests) == 1
    assert gh.platform_json(platform)["refusedScopes"] == [LINEITEM]
    # The default request leaves it out from the start: no narrowing.
    assert gh.token(platform).status_code == 200
    assert asked(sim)[1:] == [{SCORE, NRPS}]


def test_narrowing_is_bounded_by_one_request_per_scope(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("sakai", refuse_at_token=[SCORE, NRPS])
    platform = gh.register(sim)
    response = gh.token(platform)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == LINEITEM
    assert len(sim.launches.token_requests) == 1 + len(TOOL_SCOPES)
    shown = gh.platform_json(platform)
    assert shown["usableScopes"] == [LINEITEM] and shown["refusedScopes"] == sorted([SCORE, NRPS])


def test_when_every_claimed_scope_is_refused_the_answer_names_them(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("sakai", refuse_at_token=TOOL_SCOPES)
    platform = gh.register(sim)
    response = gh.token(platform)
    assert response.status_code == 400
    details = response.json()["details"]
    assert details["message"] == "NO_SCOPES_GRANTED"
    assert details["refusedByLms"] == sorted(TOOL_SCOPES)
    assert len(sim.launches.token_requests) == 1 + len(TOOL_SCOPES)
    # Known now: nothing is sent again.
    assert gh.token(platform).status_code == 400
    assert len(sim.launches.token_requests) == 1 + len(TOOL_SCOPES)


# --- Moodle: the answer over-reports lineitem, the token endpoint grants the overlap ------------


def test_moodle_grants_the_overlap_and_the_partial_grant_is_recorded(gatehouse, simulator):
    # Asking for grades without lineitem is grade synchronisation 1, yet Moodle 4's answer
    # lists lineitem (registration_helper.php's `?? 0 == 2`); token.php grants the overlap.
    gh = gatehouse(tool={"scopes": [SCORE, NRPS]})
    sim = simulator("moodle")
    platform = gh.register(sim)
    assert LINEITEM in platform.service_scopes
    response = gh.token(platform)
    assert response.status_code == 200, response.text
    granted = set(response.json()["scope"].split())
    assert granted == set(platform.service_scopes) - {LINEITEM}
    assert len(sim.launches.token_requests) == 1  # an overlap needs no narrowing
    shown = gh.platform_json(platform)
    assert shown["refusedScopes"] == [LINEITEM]
    assert shown["usableScopes"] == sorted(granted)

    # The narrowed token is cached under the scopes it covers: asking for those is free.
    same = gh.token(platform, sorted(granted))
    assert same.json()["accessToken"] == response.json()["accessToken"]
    assert gh.token(platform).json()["accessToken"] == response.json()["accessToken"]
    assert len(sim.launches.token_requests) == 1
    refused = gh.token(platform, [LINEITEM])
    assert refused.json()["details"]["refusedByLms"] == [LINEITEM]
    assert len(sim.launches.token_requests) == 1


def test_registering_again_forgets_what_the_token_endpoint_taught(gatehouse, simulator):
    gh = gatehouse(tool={"scopes": [SCORE, NRPS]})
    sim = simulator("moodle")
    platform = gh.register(sim)
    assert gh.token(platform).status_code == 200
    assert gh.platform_json(platform)["refusedScopes"] == [LINEITEM]
    report = sim.register(gh.url + "/lti/register", update_client_id=platform.client_id)
    assert report.ok, report.render()
    shown = gh.platform_json(platform)  # the same platform, updated in place
    assert shown["usableScopes"] is None and shown["refusedScopes"] is None


def test_the_console_shows_what_the_lms_claimed_but_refused(gatehouse, simulator):
    gh = gatehouse()
    sim = simulator("sakai", refuse_at_token=[NRPS])
    platform = gh.register(sim)
    assert gh.token(platform).status_code == 200
    from tests.test_console import HASH, Browser, plain

    account = gh.store.create_account("owner@tool.example", "Olive Owner", HASH)
    gh.store.set_owner(account.id, True)
    browser = Browser(gh.app)
    assert browser.sign_in().status_code == 302
    page = browser.get(f"/console/platforms/{platform.id}").get_data(as_text=True)
    # Named for people, the scope itself in the title.
    assert f'<li data-scope="refused"><span title="{NRPS}">' in page
    assert f'<li data-scope="usable"><span title="{SCORE}">' in page
    assert "openid" not in page
    notice = re.search(r'<p class="notice" id="refused-services">(.*?)</p>', page, re.S)
    assert plain(notice.group(1)).startswith("The LMS claimed 1 service it does not grant: ")
    assert NRPS in notice.group(1) and "Service tokens leave it out" in notice.group(1)


# --- the simulated token endpoints answer as the LMSes' code does -------------------------------

TOOL_SETTING = "https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting"
CANVAS_REFUSAL = (
    "A requested scope is invalid, unknown, malformed, or exceeds the scope granted by the "
    "resource owner. The following scopes were requested, but not granted: "
)


@pytest.mark.parametrize(
    ("profile", "grants", "requested", "granted", "body", "headers"),
    [
        ("canvas", (SCORE, "openid"), [SCORE], [SCORE], None, {}),
        (
            "canvas",
            (SCORE, "openid"),
            [SCORE, "openid"],
            None,
            {"error": "invalid_scope", "error_description": CANVAS_REFUSAL + "openid"},
            {},
        ),
        (
            "canvas",
            (SCORE,),
            [SCORE, LINEITEM, NRPS],
            None,
            {
                "error": "invalid_scope",
                "error_description": CANVAS_REFUSAL + f"{LINEITEM} and {NRPS}",
            },
            {},
        ),
        (
            "canvas",
            (SCORE,),
            [],
            None,
            {"error": "invalid_scope", "error_description": CANVAS_REFUSAL},
            {},
        ),
        ("sakai", (SCORE, NRPS), [SCORE, NRPS, TOOL_SETTING], [SCORE, NRPS], None, {}),
        (
            "sakai",
            (SCORE,),
            [NRPS, SCORE, LINEITEM],
            None,
            {"error": "invalid_scope"},
            {"X-Tsugi-LTI13-Error-Detail": LINEITEM},
        ),
        ("moodle", (SCORE, NRPS), [SCORE, LINEITEM, NRPS], [SCORE, NRPS], None, {}),
        ("moodle", (SCORE,), [LINEITEM], None, {"error": "invalid_scope"}, {}),
        (
            "generic",
            (SCORE,),
            [SCORE, NRPS],
            None,
            {
                "error": "invalid_scope",
                "error_description": f"scopes not granted to this tool: {NRPS}",
            },
            {},
        ),
    ],
)
def test_simulated_token_endpoints_grant_as_each_lms_does(
    profile, grants, requested, granted, body, headers
):
    from app.simulator import Simulator
    from app.simulator.launch import ScopeRefusal, token_scopes

    outcome = token_scopes(Simulator(profile).profile, grants, requested)
    if granted is not None:
        assert outcome == granted
    else:
        assert isinstance(outcome, ScopeRefusal)
        assert (outcome.body, outcome.headers) == (body, headers)


def test_refuse_at_token_takes_scope_uris():
    from app.simulator import Simulator

    with pytest.raises(ValueError, match="refuse_at_token takes service scope URIs, not 'openid'"):
        Simulator("sakai", refuse_at_token=["openid"])


# --- the protocol: reading answers, narrowing ---------------------------------------------------


class Endpoint:
    """A token endpoint's scope rule as a plain function, counting the requests it answers."""

    def __init__(self, grants, overlap=False):
        self.grants, self.overlap, self.requests = set(grants), overlap, []

    def __call__(self, scopes):
        self.requests.append(scopes)
        granted = tuple(s for s in scopes if s in self.grants)
        if not granted or (not self.overlap and len(granted) < len(scopes)):
            raise ScopeRefused(scopes, 400, '{"error": "invalid_scope"}')
        return AccessToken(f"t{len(self.requests)}", "Bearer", granted, 3600)


@pytest.mark.parametrize(
    ("grants", "overlap", "usable", "requests"),
    [
        ({"a", "b", "c", "d"}, False, ("a", "b", "c", "d"), 1),
        ({"a", "b", "d"}, False, ("a", "b", "d"), 5),
        ({"b"}, False, ("b",), 5),
        (set(), False, (), 5),
        ({"a", "c"}, True, ("a", "c"), 1),
        (set(), True, (), 5),
    ],
)
def test_narrowing_finds_the_granted_scopes_in_at_most_one_request_per_scope(
    grants, overlap, usable, requests
):
    endpoint = Endpoint(grants, overlap)
    narrowed = narrow(("a", "b", "c", "d"), endpoint)
    assert narrowed.granted == usable
    assert narrowed.refused == tuple(s for s in "abcd" if s not in usable)
    assert narrowed.requests == len(endpoint.requests) == requests
    # The token kept is the one that covers every granted scope.
    assert (narrowed.token.scopes if narrowed.token else ()) == usable


@settings(max_examples=300, deadline=None)
@given(
    asked=st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8, unique=True),
    grants=st.sets(st.sampled_from("abcdefgh")),
    overlap=st.booleans(),
)
def test_narrowing_always_learns_exactly_the_grants_within_its_bound(asked, grants, overlap):
    endpoint = Endpoint(grants, overlap)
    narrowed = narrow(tuple(asked), endpoint)
    usable = tuple(s for s in asked if s in grants)
    assert narrowed.granted == usable
    assert set(narrowed.refused) == set(asked) - grants
    assert narrowed.requests == len(endpoint.requests) <= 1 + len(asked)
    assert (narrowed.token.scopes if narrowed.token else ()) == usable


@pytest.mark.parametrize(
    ("status", "body", "scopes"),
    [
        (200, {"access_token": "x", "scope": "a b"}, ("a", "b")),
        (200, {"access_token": "x", "scope": "b z"}, ("b",)),  # z was not asked: ignored
        (200, {"access_token": "x"}, ("a", "b")),  # no scope: what was asked
        (200, {"access_token": "x", "scope": ""}, ()),  # Sakai: none of the scopes it knows
    ],
)
def test_a_token_answer_covers_the_scopes_it_names(status, body, scopes):
    token = read_token_response(status, json.dumps(body), ("a", "b"))
    assert token.scopes == scopes and token.access_token == "x" and token.lifetime == 3600


@pytest.mark.parametrize(
    ("status", "text", "error"),
    [
        (400, '{"error": "invalid_scope"}', ScopeRefused),
        (400, '{"error": "invalid_client"}', TokenRefused),
        (401, '{"errorMessage": "unknown client"}', TokenRefused),
        (200, "<html>signed in</html>", TokenRefused),
        (200, '{"token_type": "Bearer"}', TokenRefused),
    ],
)
def test_refusals_are_told_apart(status, text, error):
    with pytest.raises(error):
        read_token_response(status, text, ("a",))


# --- storage: both backends ---------------------------------------------------------------------

PLATFORM = {
    "issuer": "https://lms.example",
    "client_id": "c1",
    "name": "LMS",
    "authorization_endpoint": "https://lms.example/auth",
    "token_endpoint": "https://lms.example/token",
    "jwks_uri": "https://lms.example/jwks",
    "authorization_server": None,
    "registration_client_uri": None,
    "product_family_code": "sakailms.org",
    "version": "23",
    "scopes": [SCORE, LINEITEM, NRPS],
}


def registered(store, scopes=None):
    reg = store.create_registration(
        "https://lms.example/.well-known/openid-configuration", "2999-01-01T00:00:00.000000Z"
    )
    values = {**PLATFORM, "scopes": scopes or PLATFORM["scopes"]}
    assert store.claim_for_registering(reg.id, {}, [])  # only a claimed attempt completes
    platform, _created = store.complete_registration(reg.id, values, "d1", activate=True)
    return platform


def test_two_workers_learning_at_once_keep_each_others_knowledge(store):
    from tests.test_storage import race

    platform = registered(store)
    facts = [((SCORE,), ()), ((), (NRPS,)), ((LINEITEM,), ())] * 2
    race(len(facts), lambda i: learn_scopes(store, platform, *facts[i]))
    learned = store.get_platform(platform.id)
    assert learned.usable_scopes == tuple(sorted([SCORE, LINEITEM]))
    assert learned.refused_scopes == (NRPS,)


def test_a_new_registration_forgets_what_was_learned_and_stale_learning_is_dropped(store):
    platform = registered(store)
    learn_scopes(store, platform, (SCORE,), (NRPS,))
    again = registered(store, [SCORE, NRPS])
    assert again.id == platform.id
    assert again.usable_scopes is None and again.refused_scopes is None
    # A worker still holding the old registration learns too late: nothing is written.
    assert learn_scopes(store, platform, (), (SCORE,)).refused_scopes is None
    assert learn_scopes(store, again, (NRPS,), ()).usable_scopes == (NRPS,)


def test_migration_0007_adds_the_learned_columns_and_drops_openid(blank_database_url, tmp_path):
    store = open_store(blank_database_url, str(tmp_path))
    try:
        store.migrate()
        sqlite = store.dialect.name == "sqlite"
        # Back to a database migrated up to 0006, holding a platform registered with Canvas.
        run_sql(store, "ALTER TABLE platforms DROP COLUMN usable_scopes")
        run_sql(store, "ALTER TABLE platforms DROP COLUMN refused_scopes")
        table = "_sqlite_migrations" if sqlite else "gatehouse_migrations"
        run_sql(store, f"DELETE FROM {table} WHERE name = ?", ["0007_learned_scopes"])  # noqa: S608
        run_sql(
            store,
            "INSERT INTO platforms (id, issuer, client_id, name, scopes, active, created_at, "
            "updated_at) VALUES ('p1', 'https://canvas.example', '10000000000001', 'Canvas', ?, "
            "1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
            [json.dumps([SCORE, "openid", NRPS])],
        )
        run_sql(
            store,
            "INSERT INTO platforms (id, issuer, client_id, name, scopes, active, created_at, "
            "updated_at) VALUES ('p2', 'https://lms.example', 'c2', 'By hand', '[]', 1, "
            "'2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
        )
        if sqlite:
            store.close()  # sqlite-utils caches the table's columns per connection
        assert store.migrate() == ["0007_learned_scopes"]
        canvas = store.get_platform("p1")
        assert canvas.scopes == (SCORE, NRPS)
        assert canvas.usable_scopes is None and canvas.refused_scopes is None
        assert store.get_platform("p2").scopes == ()
    finally:
        store.close()


def test_export_and_import_carry_what_was_learned(store, tmp_path):
    platform = registered(store)
    learn_scopes(store, platform, (SCORE, LINEITEM), (NRPS,))
    target = open_store(f"sqlite:///{tmp_path / 'target.sqlite3'}", str(tmp_path))
    try:
        target.migrate()
        import_data(target, json.loads(json.dumps(export_data(store))))
        moved = target.get_platform(platform.id)
        assert moved.usable_scopes == tuple(sorted([SCORE, LINEITEM]))
        assert moved.refused_scopes == (NRPS,)
    finally:
        target.close()
