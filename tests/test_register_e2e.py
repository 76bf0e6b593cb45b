"""Dynamic Registration end to end: real simulated LMSes on 127.0.0.1, Gatehouse on localhost."""

import html
import json
import logging
import re
import time
from urllib.parse import parse_qs, quote, quote_plus, urlencode, urlsplit

import pytest
import requests
from support.postgres import dump

from app.simulator import PROFILES
from app.testing import LoopbackServer

SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
RESULT = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"

NEXT_STEPS = {
    "generic": "may keep the tool disabled",
    "canvas": "Enable &amp; Close",
    "moodle": "Activate",
    "moodle-legacy": "Activate",
    "brightspace": "disabled",
    "sakai": "Administration Workspace",
}
# Whether the close page posts the close message at once: only when the admin has nothing to
# act on in the LMS (a generic LMS: nothing known) or the LMS shows its own review next (Canvas).
CLOSES_AT_ONCE = {
    "generic": True,
    "canvas": True,
    "moodle": False,
    "moodle-legacy": False,
    "brightspace": False,
    "sakai": False,
}


def page_text(response):
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def registrations(store):
    return store.list_registrations()[0]


def test_canvas_openid_in_the_answer_is_not_stored_as_a_granted_service(live, simulator, store):
    sim = simulator("canvas")
    report = sim.register(live.register_url)
    assert report.ok, report.render()
    assert "openid" in report.granted_scopes  # Canvas's answer claims it
    platform = store.find_platform(sim.issuer, report.client_id)
    assert "openid" not in platform.scopes
    assert platform.scopes  # the service scopes it did grant are kept


@pytest.mark.parametrize("profile", PROFILES)
def test_every_lms_registers_first_try(live, simulator, store, profile):
    sim = simulator(profile)
    report = sim.register(live.register_url)
    assert report.ok, report.render()

    platform = store.find_platform(sim.issuer, report.client_id)
    assert platform is not None
    assert platform.issuer == sim.issuer
    assert platform.active is False
    # What the LMS's answer claims, less `openid` (no service: Canvas adds it, then refuses it).
    assert sorted(platform.scopes) == sorted(s for s in report.granted_scopes if s != "openid")
    deployments = [d.deployment_id for d in store.list_deployments(platform.id)]
    assert deployments == [report.deployment_id]
    (attempt,) = registrations(store)
    assert attempt.state == "completed"
    assert attempt.platform_id == platform.id and attempt.client_id == report.client_id
    assert attempt.response_status in (200, 201)
    assert [r.accepted for r in sim.records] == [True]


@pytest.mark.parametrize("profile", PROFILES)
def test_close_page_posts_the_close_message_and_says_what_the_lms_needs(live, simulator, profile):
    sim = simulator(profile)
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert response.status_code == 200
    mode = "auto" if CLOSES_AT_ONCE[profile] else "after-reading"
    assert f'data-lti-close="{mode}"' in response.text
    assert "/static/close.js" in response.text
    assert NEXT_STEPS[profile] in response.text
    script = requests.get(live.url + "/static/close.js", timeout=5).text
    assert "org.imsglobal.lti.close" in script
    assert "window.opener || window.parent" in script


def test_registration_body_reaches_the_lms_as_the_spec_says(live, simulator):
    sim = simulator("generic")
    assert sim.register(live.register_url).ok
    (record,) = sim.records
    body = record.body
    assert record.headers["Authorization"].startswith("Bearer ")
    assert body["grant_types"] == ["implicit", "client_credentials"]
    assert body["jwks_uri"] == live.url + "/lti/keys"
    assert body["initiate_login_uri"] == live.url + "/lti/login"
    config = body["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert config["domain"] == urlsplit(live.url).netloc
    assert config["target_link_uri"] == live.url + "/lti/launch"
    assert isinstance(body["scope"], str)


def test_canvas_deployment_comes_from_the_top_level(live, simulator, store):
    sim = simulator("canvas")
    report = sim.register(live.register_url)
    (record,) = sim.records
    assert "deployment_id" in record.response
    assert (
        "deployment_id"
        not in record.response["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    )
    platform = store.find_platform(sim.issuer, report.client_id)
    assert [d.deployment_id for d in store.list_deployments(platform.id)] == [
        record.response["deployment_id"]
    ]
    # Canvas's token endpoint lives on another host than its account domain.
    assert platform.name.startswith("Canvas at localhost:")


def test_canvas_without_a_deployment_stores_none_yet(live, simulator, store):
    sim = simulator("canvas", faults={"canvas_no_deployment"})
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert response.status_code == 200
    assert "none yet" in page_text(response)
    (platform,) = store.list_platforms()[0]
    assert store.list_deployments(platform.id) == []


def test_granted_scopes_come_from_the_response_not_the_request(live, simulator, store):
    sim = simulator("moodle")
    report = sim.register(live.register_url)
    platform = store.find_platform(sim.issuer, report.client_id)
    assert RESULT in platform.scopes  # Moodle adds it to what was asked
    assert RESULT not in sim.records[0].body["scope"]


@pytest.mark.parametrize("profile", ["canvas", "moodle"])
def test_re_registration_updates_the_platform_in_place(live, simulator, store, profile):
    sim = simulator(profile)
    first = sim.register(live.register_url)
    platform = store.find_platform(sim.issuer, first.client_id)
    again = sim.register(live.register_url, update_client_id=first.client_id)
    assert again.ok, again.render()
    assert again.client_id == first.client_id
    (updated,) = store.list_platforms()[0]
    assert updated.id == platform.id
    assert updated.updated_at > platform.updated_at
    assert len(store.list_deployments(updated.id)) == 1
    assert [r.state for r in registrations(store)] == ["completed", "completed"]
    page = requests.get(
        sim.initiation_url(live.register_url, update_client_id=first.client_id), timeout=30
    )
    assert "re-registered" in page.text


def test_a_new_client_id_from_the_same_issuer_is_a_new_platform(live, simulator, store):
    sim = simulator("generic")
    first = sim.register(live.register_url)
    second = sim.register(live.register_url)
    assert first.client_id != second.client_id
    assert {p.client_id for p in store.list_platforms()[0]} == {first.client_id, second.client_id}
    assert {p.issuer for p in store.list_platforms()[0]} == {sim.issuer}


def test_auto_activate_stores_active_platforms(make_app, simulator):
    app = make_app({"registration": {"auto_activate": True}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("moodle")
        report = sim.register(server.url + "/lti/register")
    platform = app.extensions["gatehouse.store"].find_platform(sim.issuer, report.client_id)
    assert platform.active is True


def test_the_registration_token_is_never_stored(live, simulator, store):
    sim = simulator("canvas")
    url, grant = sim.initiate(live.register_url)
    assert requests.get(url, timeout=30).status_code == 200
    dump_text = dump(store)
    assert grant.token not in dump_text
    (attempt,) = registrations(store)
    assert "registration_token" not in attempt.openid_configuration_url


def test_brightspace_token_in_the_path_is_masked(live, simulator, store):
    sim = simulator("brightspace")
    url, grant = sim.initiate(live.register_url)
    assert requests.get(url, timeout=30).status_code == 200
    assert grant.token not in dump(store)


# A token holding every character URLs escape: each spelling differs from the others.
ECHOED_TOKEN = "rt/2026+Qx=Zk&Lm?Np%7E:Rs#Tu-abcdefghij0123456789"


def token_spellings(token):
    """Return the token as sent and as URLs and forms escape it."""
    return {
        "raw": token,
        "percent": quote(token, safe=""),
        "percent-keep-slash": quote(token),
        "percent-lower": re.sub(
            r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(token, safe="")
        ),
        "plus": quote_plus(token, safe=""),
    }


def echoing_lms(environ, start_response):
    """An LMS that refuses the registration repeating its token in every spelling."""
    base = f"http://{environ['HTTP_HOST']}"
    if environ["PATH_INFO"] == "/config":
        config = {
            "issuer": base,
            "authorization_endpoint": base + "/auth",
            "token_endpoint": base + "/token",
            "jwks_uri": base + "/jwks",
            "registration_endpoint": base + "/register",
            "scopes_supported": ["openid"],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "echo-lms",
                "version": "1.0",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}],
            },
        }
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(config).encode()]
    sent = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ")
    spelled = ", ".join(f"{name} {value}" for name, value in token_spellings(sent).items())
    answer = {"error": "invalid_token", "error_description": f"unknown token: {spelled}"}
    start_response("401 Unauthorized", [("Content-Type", "application/json")])
    return [json.dumps(answer).encode()]


def test_a_token_echoed_in_any_spelling_is_redacted_everywhere(make_app, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    received = []

    def hook(environ, start_response):
        received.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start_response("204 No Content", [])
        return [b""]

    monkeypatch.setenv("GATEHOUSE_WEBHOOK_SECRET", "w" * 32)
    with LoopbackServer(echoing_lms) as lms, LoopbackServer(hook) as owner:
        app = make_app({"notifications": {"webhook_url": owner.url + "/hook"}})
        store = app.extensions["gatehouse.store"]
        with LoopbackServer(app, "localhost") as server:
            # The LMS also put the token in its configuration URL's query, escaped.
            config_url = f"{lms.url}/config?rt={quote(ECHOED_TOKEN, safe='')}"
            query = urlencode(
                {"openid_configuration": config_url, "registration_token": ECHOED_TOKEN}
            )
            response = requests.get(f"{server.url}/lti/register?{query}", timeout=30)
            assert response.status_code == 502
            assert "unknown token" in page_text(response)  # the LMS's words, redacted
            deadline = time.monotonic() + 10
            while not received and time.monotonic() < deadline:
                time.sleep(0.05)
        (attempt,) = registrations(store)
        assert attempt.state == "failed"
        seen = {
            "page": response.text,
            "database": dump(store),  # the attempt's error, the audit log, queued webhooks
            # Gatehouse's log (the test's own HTTP client logs the URL it requested).
            "log": "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("app")),
            "webhook": b"".join(received).decode(),
        }
        assert "registration.failed" in seen["webhook"]
        for name, spelling in token_spellings(ECHOED_TOKEN).items():
            for where, text in seen.items():
                # Not even most of it, as an error summary cut short would leave.
                assert spelling[:24] not in text, f"the {name} token reached the {where}"


def assert_failed_cleanly(store, response, status, *texts, state="failed"):
    assert response.status_code == status
    assert "data-lti-close-button" in response.text
    assert 'data-lti-close="auto"' not in response.text
    text = page_text(response)
    for expected in texts:
        assert expected in text, text
    assert "Traceback" not in response.text
    assert store.list_platforms()[0] == []
    (attempt,) = registrations(store)
    assert attempt.state == state
    assert attempt.error["detail"]


@pytest.mark.parametrize(
    ("fault", "status", "texts"),
    [
        ("issuer_mismatch", 502, ["not on the same host", "issuer-host-match"]),
        ("http_issuer_with_query", 502, ["query or fragment", "issuer-no-query"]),
        ("no_registration_endpoint", 502, ["no 'registration_endpoint'", "required-field"]),
        ("no_jwks_uri", 502, ["no 'jwks_uri'", "required-field"]),
        ("no_rs256", 502, ["does not include 'RS256'", "rs256"]),
        ("no_private_key_jwt", 502, ["does not include 'private_key_jwt'", "private-key-jwt"]),
        ("config_not_json", 502, ["is not JSON", "text/html", "config-json"]),
        ("config_status_500", 502, ["answered HTTP 500", "What your LMS answered"]),
        ("config_redirect_offsite", 502, ["could not be reached", "connection"]),
    ],
)
def test_broken_platform_configuration_is_refused_before_any_post(
    live, simulator, store, fault, status, texts
):
    sim = simulator("generic", faults={fault})
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert_failed_cleanly(store, response, status, *texts)
    assert sim.records == []


@pytest.mark.parametrize(
    ("fault", "state", "texts"),
    [
        (
            "post_status_500",
            "failed",
            ["HTTP 500", "Internal Server Error", "internal error", "nothing was registered"],
        ),
        # A success status with an unusable answer: the LMS may hold a registration.
        (
            "post_not_json",
            "unknown",
            ["Outcome unknown", "not JSON", "Welcome to the LMS", "response-json", "may have"],
        ),
        (
            "post_no_client_id",
            "unknown",
            ["Outcome unknown", "no client_id", "response-client-id", "Client ID"],
        ),
    ],
)
def test_unusable_registration_answers_are_shown(live, simulator, store, fault, state, texts):
    sim = simulator("generic", faults={fault})
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert_failed_cleanly(store, response, 502, *texts, state=state)
    assert "data-retry" not in response.text  # the token reached the LMS: never sent twice
    (attempt,) = registrations(store)
    assert attempt.response_status == sim.records[0].status


@pytest.mark.parametrize(
    ("profile", "texts"),
    [
        ("generic", ["HTTP 400", "invalid_client_metadata", "blocked by the platform"]),
        ("canvas", ["HTTP 422", "{&#34;errors&#34;", "developer key policy"]),
        ("moodle", ["HTTP 403", "Incorrect scope"]),
        ("brightspace", ["HTTP 400", "invalid_client_metadata"]),
        ("sakai", ["HTTP 400", "invalid_client_metadata"]),
    ],
)
def test_each_lms_error_format_is_shown_verbatim(live, simulator, store, profile, texts):
    sim = simulator(profile, faults={"refuse_registration"})
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert response.status_code == 502
    for expected in texts:
        assert expected in response.text
    assert_failed_cleanly(store, response, 502, "Your LMS answered with an error")


def test_moodle_plain_text_error_with_its_hint(live, simulator, store):
    # Gatehouse refuses at start-up a tool.domain Moodle would reject (tests/test_config.py);
    # here Moodle answers in plain text because its token never arrived (an Apache in front of
    # Moodle that drops the Authorization header looks the same).
    sim = simulator("moodle")
    url = sim.initiation_url(live.register_url)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if k != "registration_token"}
    response = requests.get(parts._replace(query=urlencode(query)).geturl(), timeout=30)
    assert_failed_cleanly(
        store, response, 502, "HTTP 401", "missing_registration_token", "CGIPassAuth"
    )


def test_loading_the_same_start_again_shows_the_first_outcome(live, simulator, store):
    """A refresh or the back button never sends the LMS's single-use token again."""
    sim = simulator("moodle")
    url, grant = sim.initiate(live.register_url)
    first = requests.get(url, timeout=30)
    assert first.status_code == 200 and 'data-lti-close="after-reading"' in first.text
    again = requests.get(url, timeout=30)
    assert again.status_code == 200 and 'data-lti-close="after-reading"' in again.text
    assert again.url != url  # moved to the attempt's own refresh-safe address
    assert sim.posts_for(grant.token) == 1
    assert len(store.list_platforms()[0]) == 1
    assert [r.state for r in registrations(store)] == ["completed"]


def test_canvas_json_error_for_a_bad_token(live, simulator, store):
    sim = simulator("canvas")
    url = sim.initiation_url(live.register_url)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["registration_token"] = "not-the-token"
    tampered = parts._replace(query=urlencode(query)).geturl()
    response = requests.get(tampered, timeout=30)
    # Canvas answers a bad token with {"errorMessage": ...} (canvas-lms
    # dynamic_registration_controller.rb, respond_with_error); the page shows its words.
    assert_failed_cleanly(
        store,
        response,
        502,
        "HTTP 401",
        "errorMessage",
        "JWT did not include expected contents",
        "expired",
    )


def test_slow_platform_ends_within_the_deadline(make_app, simulator):
    app = make_app({"outbound": {"deadline": 1}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("generic", faults={"slow_config"}, delay=3)
        response = requests.get(sim.initiation_url(server.url + "/lti/register"), timeout=30)
    assert_failed_cleanly(
        app.extensions["gatehouse.store"], response, 502, "did not answer within 1 seconds"
    )


def test_missing_platform_object_still_registers_with_defaults(live, simulator):
    sim = simulator("generic", faults={"no_platform_config"})
    assert sim.register(live.register_url).ok


@pytest.mark.parametrize(
    ("query", "texts"),
    [
        ("?registration_token=abc", ["must be opened by your LMS"]),
        ("?openid_configuration=not-a-url", ["not an absolute http(s) URL"]),
        ("?openid_configuration=file:///etc/passwd", ["not an absolute http(s) URL"]),
    ],
)
def test_bad_initiation_requests_get_a_readable_400(client, store, query, texts):
    response = client.get("/lti/register" + query)
    assert response.status_code == 400
    text = page_text(response)
    for expected in texts:
        assert expected in text
    assert store.list_platforms()[0] == []


@pytest.mark.parametrize(
    ("dest", "lead"),
    [
        ("document", "meant for your LMS, not to be opened in a browser"),
        ("iframe", "Your LMS opened this address without starting a dynamic registration"),
        (None, "meant for your LMS, not to be opened in a browser"),
    ],
)
def test_the_registration_url_opened_directly_explains_itself(client, store, dest, lead):
    headers = {"Sec-Fetch-Dest": dest} if dest else {}
    response = client.get("/lti/register", headers=headers)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    text = page_text(response)
    assert "LTI registration URL" in text and lead in text
    assert '<code id="registration-url" tabindex="0">http://localhost/lti/register</code>' in page
    assert "dynamic registration" in text and "Developer Keys" in text  # where to paste it
    assert 'class="bad"' not in page and "Close" not in text
    assert "Sec-Fetch-Dest" in response.headers["Vary"]
    assert store.list_registrations()[0] == []


def test_production_mode_refuses_loopback_platforms(make_app, simulator):
    client = make_app(
        {"security": {"allow_insecure_platforms": False}, "base_url": "https://reg.example.com"}
    ).test_client()
    sim = simulator("generic")
    response = client.get(
        "/lti/register?" + urlencode({"openid_configuration": sim.base_url + "/x"})
    )
    assert response.status_code == 400
    assert "https-only" in response.get_data(as_text=True)
    assert sim.config_fetches == []


def test_registration_works_by_post_too(live, simulator, store):
    sim = simulator("generic")
    url = sim.initiation_url(live.register_url)
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    response = requests.post(live.register_url, data=params, timeout=30)
    assert response.status_code == 200
    assert len(store.list_platforms()[0]) == 1


def test_a_failed_attempt_can_be_retried_while_the_token_is_valid(live, simulator, store):
    sim = simulator("moodle", faults={"config_status_500"})
    url, grant = sim.initiate(live.register_url)
    failed = requests.get(url, timeout=30)
    assert failed.status_code == 502 and "data-retry" in failed.text
    sim.faults = frozenset()  # the LMS is back
    retried = requests.get(url, timeout=30)
    assert retried.status_code == 200 and 'data-lti-close="after-reading"' in retried.text
    assert [r.state for r in store.list_registrations()[0]] == ["completed", "failed"]
    assert sim.posts_for(grant.token) == 1
    refused = simulator("moodle", faults={"refuse_registration"})
    page = requests.get(refused.initiation_url(live.register_url), timeout=30)
    assert "data-retry" not in page.text  # a refusal will not change by trying again


def test_plain_http_tool_urls_are_refused_before_anything_is_fetched(make_app):
    """In production, without base_url, a request that arrived over http would register http
    launch URLs: refused on the first page, before the LMS is contacted or a gate is shown."""
    client = make_app(
        {
            "security": {"allow_insecure_platforms": False},
            "registration": {"gates": ["terms"]},
            "gates": {"terms": {"version": "1", "path": __file__}},
        }
    ).test_client()
    response = client.get(
        "/lti/register?"
        + urlencode(
            {
                "openid_configuration": "https://lms.invalid/.well-known/openid-configuration",
                "registration_token": "t" * 40,
            }
        )
    )
    assert response.status_code == 500
    text = page_text(response)
    assert "tool-https" in text and "base_url" in text and "trusted_proxies" in text
    store = client.application.extensions["gatehouse.store"]
    (attempt,) = store.list_registrations()[0]
    assert attempt.state == "failed" and attempt.platform_config is None
