"""One POST per LMS registration token, and honest outcomes when the LMS's answer is lost.

The reference's checklist (§8 items 28–30): refuse to POST twice with the same token; offer a
retry only while nothing reached the LMS; a registration whose answer never came back is not
"nothing registered" but "outcome unknown", kept for the owner to finish.
"""

import html
import json
import logging
import re
import time
from urllib.parse import urlsplit

import pytest
import requests
from support.postgres import dump

from app.lti.errors import PlatformUnreachable
from app.lti.http import SafeClient
from app.testing import LoopbackServer, free_port


def page_text(response):
    """Return the page's words, without the footer's time (two requests may straddle a second)."""
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())
    return re.sub(r"Time: \S+ \S+ UTC", "Time: -", text)


def test_an_answer_cut_off_by_the_deadline_is_an_unknown_outcome_never_retried(make_app, simulator):
    app = make_app({"outbound": {"deadline": 1}})
    store = app.extensions["gatehouse.store"]
    sim = simulator("canvas", faults={"slow_post"}, delay=2)
    with LoopbackServer(app, "localhost") as live:
        url, grant = sim.initiate(live.url + "/lti/register")
        first = requests.get(url, timeout=30)
        again = requests.get(url, timeout=30)
    assert first.status_code == 502
    text = page_text(first)
    assert "Outcome unknown: check your LMS" in text
    assert "may have registered the tool" in text
    assert "Client ID" in text and "Nothing was registered" not in text
    assert "data-retry" not in first.text and 'data-lti-close="auto"' not in first.text
    # The LMS did grant a client_id after Gatehouse gave up: the attempt says so, not "failed".
    deadline = time.monotonic() + 5
    while not sim.records and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.records and sim.records[0].status in (200, 201) and sim.issued_client_ids
    (attempt,) = store.list_registrations()[0]
    assert attempt.state == "unknown" and attempt.error["rule"] == "deadline"
    assert store.list_platforms()[0] == []
    # A refresh shows the same outcome from the attempt's own address; no second POST.
    assert again.status_code == 409 and "Outcome unknown" in page_text(again)
    assert urlsplit(again.url).path == f"/lti/register/{attempt.id}"
    assert sim.posts_for(grant.token) == 1


def test_a_registration_endpoint_never_reached_leaves_the_token_for_a_retry(
    make_app, simulator, unused_port
):
    app = make_app()
    store = app.extensions["gatehouse.store"]
    sim = simulator(
        "moodle", config_overrides={"registration_endpoint": f"http://127.0.0.1:{unused_port}/r"}
    )
    with LoopbackServer(app, "localhost") as live:
        url, grant = sim.initiate(live.url + "/lti/register")
        first = requests.get(url, timeout=30)
        assert first.status_code == 502 and "data-retry" in first.text
        assert "Nothing was registered" in page_text(first)
        sim.config_overrides = {}  # the LMS's endpoint is back
        retried = requests.get(url, timeout=30)
    assert retried.status_code == 200 and 'data-lti-close="after-reading"' in retried.text
    assert [r.state for r in store.list_registrations()[0]] == ["completed", "failed"]
    assert sim.posts_for(grant.token) == 1


def test_a_refused_registration_spends_the_token(live, simulator, store):
    sim = simulator("moodle", faults={"refuse_registration"})
    url, grant = sim.initiate(live.register_url)
    first = requests.get(url, timeout=30)
    again = requests.get(url, timeout=30)
    assert first.status_code == 502 and "data-retry" not in first.text
    assert "start a new registration from your LMS" in page_text(first)
    assert again.status_code == 409 and page_text(again) == page_text(first)
    assert len(store.list_registrations()[0]) == 1
    assert sim.posts_for(grant.token) == 1


def test_two_attempts_with_one_token_post_once(store):
    """The database, not the request handler, makes the token single-use (races included)."""
    first = store.create_registration("https://lms.example/config", "2999-01-01T00:00:00Z", "d1")
    second = store.create_registration("https://lms.example/config", "2999-01-01T00:00:00Z", "d1")
    assert store.claim_for_registering(first.id, {"client_name": "x"}, [])
    assert not store.claim_for_registering(second.id, {"client_name": "x"}, [])
    assert store.latest_for_token("d1").id in (first.id, second.id)
    # A try that never reached the LMS frees the token for the next one.
    store.fail_registration(first.id, {"detail": "down"}, release_token=True)
    assert store.claim_for_registering(second.id, {"client_name": "x"}, [])
    assert store.latest_for_token("d1").id == second.id


def test_a_gated_start_loaded_again_continues_the_same_attempt(make_app, simulator, tmp_path):
    terms = tmp_path / "terms.md"
    terms.write_text("# Terms\n\nBe nice.")
    app = make_app(
        {
            "registration": {"gates": ["terms"]},
            "gates": {"terms": {"version": "1", "path": str(terms)}},
        }
    )
    store = app.extensions["gatehouse.store"]
    sim = simulator("moodle")
    with LoopbackServer(app, "localhost") as live:
        url, _grant = sim.initiate(live.url + "/lti/register")
        first = requests.get(url, timeout=30)
        again = requests.get(url, timeout=30)
    assert first.status_code == 200 and again.status_code == 200
    assert urlsplit(first.url).path == urlsplit(again.url).path
    assert len(store.list_registrations()[0]) == 1


def test_the_token_in_a_brightspace_path_never_reaches_a_failure_page_or_record(
    live, simulator, store, caplog
):
    sim = simulator("brightspace", faults={"issuer_mismatch"})
    url, _grant = sim.initiate(live.register_url)
    token = _grant.token
    assert len(token) >= 32 and token in requests.utils.unquote(url)
    with caplog.at_level(logging.INFO):
        response = requests.get(url, timeout=30)
    assert response.status_code == 502 and "issuer-host-match" in response.text
    assert token not in response.text
    assert token not in dump(store)
    assert all(
        token not in record.getMessage()
        for record in caplog.records
        if record.name.startswith("app")
    )


def test_the_client_knows_whether_a_request_could_have_been_sent(unused_port):
    client = SafeClient(allow_insecure=True, connect_timeout=1, deadline=2)
    with pytest.raises(PlatformUnreachable) as refused:
        client.post_json(f"http://127.0.0.1:{unused_port}/r", {}, headers={}, what="endpoint")
    assert refused.value.sent is False


@pytest.fixture
def unused_port():
    return free_port()


LONG = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7"  # 34 characters: a token-like path segment


@pytest.mark.parametrize(
    ("url", "token", "one_time"),
    [
        ("https://lms.example/.well-known/openid-configuration", None, False),
        ("https://lms.example/.well-known/openid-configuration", "t0k3n", True),
        (f"https://lms.example/dynamic/{LONG}/openid-configuration", None, True),
        ("https://lms.example/config?token=0123456789abcdef", None, True),
        ("https://lms.example/config?token=0123456789abcde", None, False),  # 15: not a token
        ("https://lms.example/config?reg=a%2Fb%2Fc%2Fd%2Fe%2Ff", None, True),  # escaped, 16+
    ],
)
def test_only_a_start_with_something_one_time_is_named_by_a_token_digest(url, token, one_time):
    """A digest names a start exactly when it holds a secret that is never stored."""
    from app.domain.registration import secrets_of, token_digest

    digest = token_digest(url, token)
    assert (digest is not None) is one_time
    assert bool(secrets_of(url, token)) is one_time
    assert digest == token_digest(url, token)  # the same start, the same name
    if one_time:
        assert digest != token_digest(url, (token or "") + "x")


@pytest.mark.parametrize(
    "secret",
    [
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZWcifQ.c2lnbmF0dXJl-_x",  # a JWT: one spelling
        "abc~DEF.123_-",
        'a b+c/d%2Fe=f&g"h\\i',  # spaces, escapes, quotes: many
        "caf\u00e9-t\u00f6ken-" + "x" * 20,
    ],
)
def test_every_spelling_of_a_token_is_redacted(secret):
    """Whatever the token holds, each way a URL, a form or JSON writes it is taken out."""
    from urllib.parse import quote, quote_plus, unquote_plus

    from app.domain.registration import redact, secrets_of

    secrets = secrets_of("https://lms.example/config", secret)
    written = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote(quote(secret, safe=""), safe=""),
        re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(secret, safe="")),
        json.dumps(secret)[1:-1],
        unquote_plus(secret),
    }
    for spelling in written:
        assert redact(f"<{spelling}>", secrets) == "<…>", spelling
