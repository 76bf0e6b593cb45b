"""The owner console through Flask's test client over https, with real simulated LMSes."""

import html
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from support.postgres import dump
from werkzeug.security import generate_password_hash

from app.domain import apikeys
from app.lti.errors import PlatformRefused
from app.storage.states import TRANSITIONS
from app.testing import LoopbackServer
from app.web.sentences import audit_sentence

BASE = "https://localhost"
OWNER = "owner@tool.example"
PASSWORD = "correct horse battery"
# A cheap hash keeps the suite fast; the console checks passwords with accounts.authenticate,
# which verifies any werkzeug hash (the scrypt default is pinned by the gate tests).
HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
PAGES = [
    "/console/registrations",
    "/console/platforms",
    "/console/audit",
    "/console/api-keys",
    "/console/invitations",
    "/console/how-to-register",
]


SIGNIN_REFUSED_TEXT = (
    "The e-mail address or password is not right, or this account may not use the console."
)


def csrf(page):
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match, "no CSRF token in the page"
    return {"csrf_token": match.group(1)}


def plain(markup):
    """Return the visible text of some HTML, tags removed and entities decoded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def text(response):
    return plain(response.get_data(as_text=True))


class Browser:
    """A browser on the console: Flask's test client over https (the cookie is Secure)."""

    def __init__(self, app):
        self.client = app.test_client()
        self.store = app.extensions["gatehouse.store"]

    def get(self, url, **kwargs):
        return self.client.get(url, base_url=BASE, **kwargs)

    def post(self, url, data=None, **kwargs):
        return self.client.post(url, data=data or {}, base_url=BASE, **kwargs)

    def submit(self, page_url, action=None, data=None, **kwargs):
        """Open a page and post a form from it, with the page's CSRF token."""
        page = self.get(page_url)
        return self.post(action or page_url, {**(data or {}), **csrf(page)}, **kwargs)

    def sign_in(self, email=OWNER, password=PASSWORD, next_url=None):
        url = "/console/login" + (f"?next={next_url}" if next_url else "")
        return self.submit(url, data={"email": email, "password": password})


@pytest.fixture
def make_owner():
    def factory(store, email=OWNER, owner=True):
        account = store.create_account(email, "Olive Owner", HASH)
        store.set_owner(account.id, owner)
        return account

    return factory


@pytest.fixture
def console(app, store, make_owner):
    """A browser signed in as an owner."""
    make_owner(store)
    browser = Browser(app)
    assert browser.sign_in().status_code == 302
    return browser


def add_platform(store, n=1, **values):
    return store.create_platform(
        {
            "issuer": f"https://lms{n}.school.example",
            "client_id": f"client-{n}",
            "name": f"School {n}",
            "authorization_endpoint": f"https://lms{n}.school.example/auth",
            "token_endpoint": f"https://lms{n}.school.example/token",
            "jwks_uri": f"https://lms{n}.school.example/jwks",
            **values,
        },
        active=False,
    )


def failed_attempt(store, lms_body):
    """Record a failed attempt as the flow does, with what the LMS answered."""
    attempt = store.create_registration("https://lms.school.example/config", "2999-01-01")
    error = PlatformRefused(
        "The LMS refused the registration.",
        lms_status=422,
        lms_body=lms_body,
        hint="Ask the LMS administrator to allow <dynamic> registrations.",
    )
    store.record_platform_response(attempt.id, 422, lms_body)
    store.fail_registration(attempt.id, error.as_dict())
    return attempt


def audit_lines(store):
    return [(e.actor, e.action, e.subject_id, e.detail) for e in store.list_audit(limit=100)[0]]


# Who may come in


def test_anonymous_visitors_are_sent_to_sign_in_and_come_back(app, store, make_owner):
    make_owner(store)
    browser = Browser(app)
    for path in [*PAGES, "/console/", "/console/platforms?q=school&page=2"]:
        response = browser.get(path)
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert location.path == "/console/login"
        assert parse_qs(location.query)["next"] == [path]
        assert response.headers["Cache-Control"] == "no-store"
    signed_in = browser.sign_in(next_url="/console/platforms%3Fq%3Dschool%26page%3D2")
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == "/console/platforms?q=school&page=2"
    assert browser.get("/console/platforms?q=school&page=2").status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_sign_in_never_redirects_off_site(app, store, make_owner, target):
    make_owner(store)
    response = Browser(app).sign_in(next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/"


def test_wrong_password_and_non_owner_accounts_get_the_same_generic_error(app, store, make_owner):
    make_owner(store)
    make_owner(store, "admin@school.example", owner=False)
    browser = Browser(app)
    answers = [
        browser.sign_in(password="wrong password"),
        browser.sign_in(email="nobody@school.example"),
        browser.sign_in(email="admin@school.example"),  # right password, not an owner
    ]
    for response in answers:
        assert response.status_code == 200
        assert (
            "The e-mail address or password is not right, or this account may not use the "
            "console." in text(response)
        )
    assert browser.get("/console/registrations").status_code == 302
    assert not any(a for _actor, a, *_ in audit_lines(store) if a == "console.signed_in")


def test_user_create_owner_makes_a_console_account_and_plain_accounts_stay_out(
    make_app, database_url, monkeypatch, runner
):

    from app.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    for email, flags, says in (
        (OWNER, ["--owner"], f"Created owner account {OWNER}"),
        ("admin@school.example", [], "Created account admin@"),
    ):
        made = runner.invoke(
            main,
            [
                "user",
                "create",
                "--email",
                email,
                "--password",
                PASSWORD,
                "--name",
                "Someone",
                *flags,
            ],
        )
        assert made.exit_code == 0, made.output
        assert says in made.output
    app = make_app()
    store = app.extensions["gatehouse.store"]
    owner = Browser(app)
    signed_in = owner.sign_in()
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == "/console/"
    assert f"Signed in as {OWNER}" in text(owner.get("/console/registrations"))
    plain_account = Browser(app)
    refused = plain_account.sign_in(email="admin@school.example")
    assert refused.status_code == 200
    assert SIGNIN_REFUSED_TEXT in text(refused)
    assert plain_account.get("/console/registrations").status_code == 302
    created = {
        e.detail["email"]: e.detail["owner"]
        for e in store.list_audit(limit=10)[0]
        if e.action == "account.created"
    }
    assert created == {OWNER: True, "admin@school.example": False}


def test_a_signed_in_gate_account_gets_403(app, store, make_owner):
    admin = make_owner(store, "admin@school.example", owner=False)
    browser = Browser(app)
    # Signed in the way the sign-in gate does it, inside an LMS dialog.
    with browser.client.session_transaction(base_url=BASE) as session:
        session["_user_id"] = f"{admin.id}:{admin.session_version}"
        session["_fresh"] = True
    for path in PAGES:
        response = browser.get(path)
        assert response.status_code == 403
        assert "Only the tool's owners may use the console" in text(response)
        assert "admin@school.example" in text(response)
    login = browser.get("/console/login")
    assert login.status_code == 200
    assert "which is not an owner account" in text(login)


def test_an_owner_who_loses_the_flag_is_shut_out_at_once(console, store):
    assert console.get("/console/platforms").status_code == 200
    store.set_owner(store.find_account_by_email(OWNER).id, False)
    assert console.get("/console/platforms").status_code == 403


def test_sign_out_is_a_post_with_csrf(console, store):
    page = console.get("/console/registrations")
    assert "Signed in as owner@tool.example" in text(page)
    assert console.get("/console/logout").status_code == 405
    assert console.post("/console/logout").status_code == 400  # no CSRF token
    out = console.post("/console/logout", csrf(page))
    assert out.status_code == 302 and out.headers["Location"] == "/console/login"
    assert "You are signed out." in text(console.get("/console/login"))
    assert console.get("/console/registrations").status_code == 302
    (signin,) = [line for line in audit_lines(store) if line[1] == "console.signed_in"]
    assert signin[0] == f"console {OWNER}"


def copied(app, browser):
    """Return another browser holding a copy of `browser`'s session cookie."""
    cookie = browser.client.get_cookie("gatehouse_session", domain="localhost")
    assert cookie is not None
    thief = Browser(app)
    thief.client.set_cookie("gatehouse_session", cookie.value, domain="localhost")
    return thief


def test_a_copied_session_cookie_stops_working_after_sign_out(app, console, store):
    thief = copied(app, console)
    assert thief.get("/console/platforms").status_code == 200
    page = console.get("/console/registrations")
    assert console.post("/console/logout", csrf(page)).status_code == 302
    refused = thief.get("/console/platforms")
    assert refused.status_code == 302
    assert refused.headers["Location"].startswith("/console/login")
    # Signing in again gives a new session; the copy stays dead.
    assert console.sign_in().status_code == 302
    assert console.get("/console/platforms").status_code == 200
    assert thief.get("/console/platforms").status_code == 302


def test_a_password_change_ends_every_session_of_the_account(
    app, console, store, database_url, monkeypatch, runner
):
    from app.cli import main

    thief = copied(app, console)
    assert thief.get("/console/platforms").status_code == 200
    monkeypatch.setenv("DATABASE_URL", database_url)
    changed = runner.invoke(
        main, ["user", "set-password", "--email", OWNER, "--password", "a new long password"]
    )
    assert changed.exit_code == 0, changed.output
    assert "its sessions have ended" in changed.output
    for browser in (console, thief):
        assert browser.get("/console/platforms").status_code == 302
    assert SIGNIN_REFUSED_TEXT in text(console.sign_in())  # the old password is gone
    assert console.sign_in(password="a new long password").status_code == 302
    assert console.get("/console/platforms").status_code == 200
    assert ("command line", "account.password_changed") in [line[:2] for line in audit_lines(store)]


def test_set_password_refuses_unknown_accounts_and_short_passwords(
    app, store, make_owner, database_url, monkeypatch, runner
):
    from app.cli import main

    make_owner(store)
    monkeypatch.setenv("DATABASE_URL", database_url)
    unknown = runner.invoke(
        main, ["user", "set-password", "--email", "x@y.example", "--password", "long enough pw"]
    )
    assert unknown.exit_code != 0 and "no account with the e-mail" in unknown.output
    short = runner.invoke(main, ["user", "set-password", "--email", OWNER, "--password", "x"])
    assert short.exit_code != 0 and "use at least" in short.output


def test_console_pages_are_never_cached_or_framed(app, console):
    anonymous = Browser(app)  # owners who are signed in skip the sign-in page
    for browser, path in [(anonymous, "/console/login"), *((console, p) for p in PAGES)]:
        response = browser.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        # No script but the copy buttons' (hidden without it): the console works without one.
        scripts = set(re.findall(r"<script[^>]*>", response.get_data(as_text=True)))
        assert scripts <= {'<script src="/static/copy.js" defer>'}


def test_forms_without_a_csrf_token_are_refused(console, store):
    platform = add_platform(store)
    response = console.post(f"/console/platforms/{platform.id}/activate")
    assert response.status_code == 400
    assert store.get_platform(platform.id).active is False
    assert console.post("/console/api-keys", {"name": "x"}).status_code == 400
    assert store.list_api_keys()[0] == []
    login = Browser(console.client.application).post(
        "/console/login", {"email": OWNER, "password": PASSWORD}
    )
    assert login.status_code == 400


def unknown_attempt(store):
    """Record an attempt whose outcome is unknown, as the flow does: configuration read,
    registration sent, no usable answer."""
    attempt = store.create_registration("https://lms.school.example/config", "2999-01-01")
    store.record_platform_config(
        attempt.id,
        {
            "openid_configuration_url": "https://lms.school.example/config",
            "issuer": "https://lms.school.example",
            "authorization_endpoint": "https://lms.school.example/auth",
            "token_endpoint": "https://lms.school.example/token",
            "jwks_uri": "https://lms.school.example/jwks",
            "registration_endpoint": "https://lms.school.example/register",
            "authorization_server": None,
            "product_family_code": "moodle",
            "version": "4.5.1",
            "scopes_supported": ["openid"],
            "claims_supported": ["sub"],
            "messages_supported": [{"type": "LtiResourceLinkRequest", "placements": None}],
            "document": {"issuer": "https://lms.school.example"},
            "warnings": [],
        },
    )
    assert store.claim_for_registering(
        attempt.id,
        {
            "client_name": "Quiz Tool",
            "scope": "https://purl.imsglobal.org/spec/lti-ags/scope/score "
            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
        },
        [],
    )
    store.fail_registration(
        attempt.id,
        {
            "kind": "OutcomeUnknown",
            "title": "Outcome unknown: check the LMS",
            "detail": "Gatehouse stopped while waiting for the LMS's answer.",
            "rule": "worker-stopped",
            "hint": None,
        },
        state="unknown",
    )
    return store.get_registration(attempt.id)


def test_every_console_form_is_refused_without_its_csrf_token(console, store, app):
    platform = add_platform(store)
    store.add_deployment(platform.id, "dep-1")
    key, _full = apikeys.create(store, "ci")
    invitation = store.create_invitation("Springfield", None, None)
    attempt = unknown_attempt(store)
    ids = {
        "platform_id": platform.id,
        "key_id": key.id,
        "invitation_id": invitation.id,
        "rid": attempt.id,
    }
    # What each form sends, all valid: only the token is missing.
    fields = {
        "console.login": {"email": OWNER, "password": PASSWORD},
        "console.edit_platform": {
            "name": "Renamed",
            "authorization_endpoint": "https://x.example/a",
            "token_endpoint": "https://x.example/t",
            "auth_method": "JWK_SET",
            "auth_key": "https://x.example/jwks",
        },
        "console.add_deployment": {"deployment_id": "dep-2"},
        "console.change_deployment": {"deployment_id": "dep-1"},
        "console.api_keys": {"name": "another"},
        "console.invitations": {"name": "Shelbyville"},
        "console.resolve_unknown": {"client_id": "granted-1", "deployment_id": "d-1"},
    }
    posts = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.") and "POST" in rule.methods
    ]
    assert len(posts) >= 12
    anonymous = Browser(app)
    before = dump(store)
    tried = set()
    for rule in posts:
        values = (
            [{**ids, "action": action} for action in ("activate", "deactivate", "remove")]
            if "action" in rule.arguments
            else [ids]
        )
        for args in values:
            url = rule.build({k: v for k, v in args.items() if k in rule.arguments})[1]
            browser = anonymous if rule.endpoint == "console.login" else console
            response = browser.post(url, fields.get(rule.endpoint, {}))
            assert response.status_code == 400, url
            assert dump(store) == before, f"{url} changed something without a CSRF token"
            tried.add(rule.endpoint)
    assert tried == {rule.endpoint for rule in posts}
    # Still signed in (sign-out was refused too), and the other browser still is not.
    assert console.get("/console/registrations").status_code == 200
    assert anonymous.get("/console/registrations").status_code == 302


# Pages with data


def test_empty_pages_say_so(console):
    assert "No LMS has tried to register yet." in text(console.get("/console/registrations"))
    assert "No platform yet" in text(console.get("/console/platforms"))
    assert "No API keys yet." in text(console.get("/console/api-keys"))
    assert "No invitations yet." in text(console.get("/console/invitations"))
    assert "No registration is failed." in text(console.get("/console/registrations?state=failed"))


def test_real_registrations_are_listed_with_their_approval_and_shown_in_full(
    console, store, live, simulator
):
    canvas = simulator("canvas")
    assert canvas.register(live.register_url).ok
    broken = simulator("moodle", faults=["refuse_registration"])
    assert not broken.register(live.register_url).ok
    done, failed = (
        next(r for r in store.list_registrations()[0] if r.state == state)
        for state in ("completed", "failed")
    )
    approver = store.create_account("admin@school.example", "Ada", HASH)
    store.set_registration_account(done.id, approver.id)
    store.record_terms_acceptance(
        registration_id=done.id, version="2026-11", signer_name="Ada Admin", account_id=approver.id
    )
    store.record_checkout(session_id="cs_1", registration_id=done.id, status="open")
    store.update_payment("cs_1", "paid", amount=1500, currency="usd")

    page = console.get("/console/registrations")
    assert page.status_code == 200
    rows = re.findall(
        r"<tr data-registration=\"([^\"]+)\">(.*?)</tr>", page.get_data(as_text=True), re.S
    )
    assert [rid for rid, _ in rows] == [failed.id, done.id]  # newest first
    done_row = plain(rows[1][1])
    for expected in (
        "completed",
        "Canvas",
        done.issuer,
        done.client_id,
        "admin@school.example",
        "2026-11",
        "$15.00 (paid)",
    ):
        assert expected in done_row
    failed_row = plain(rows[0][1])
    assert "failed" in failed_row and "Moodle" in failed_row
    assert "Your LMS answered with an error" in failed_row

    detail = console.get(f"/console/registrations/{done.id}")
    body = text(detail)
    platform = store.get_platform(done.platform_id)
    assert f'href="/console/platforms/{platform.id}"' in detail.get_data(as_text=True)
    assert '"client_name": "Quiz Tool"' in body  # the request, pretty-printed
    assert '"issuer": "' + done.issuer in body  # the platform configuration
    assert f"HTTP status {done.response_status}" in body
    assert "version 2026-11, signed by Ada Admin" in body
    assert "Registration flow completed a registration from" in body  # its history

    failed_page = console.get(f"/console/registrations/{failed.id}")
    # What the LMS answered, verbatim (escaping is pinned by the test below).
    assert failed.error["lms_status"] == 403
    assert " ".join(failed.error["lms_body"].split()) in text(failed_page)
    assert failed.error["detail"] in text(failed_page)
    assert "Rule:" in text(failed_page)


def test_a_terms_signer_without_an_account_is_named_by_their_email(console, store, live, simulator):
    assert simulator("canvas").register(live.register_url).ok
    (done,) = store.list_registrations()[0]
    store.record_terms_acceptance(
        registration_id=done.id, version="3", signer_name="Bo Admin", email="bo@school.example"
    )
    row = plain(console.get("/console/registrations").get_data(as_text=True))
    assert "bo@school.example (terms signer)" in row
    detail = text(console.get(f"/console/registrations/{done.id}"))
    assert "version 3, signed by Bo Admin (bo@school.example)" in detail
    platform = text(console.get(f"/console/platforms/{done.platform_id}"))
    assert "signed by Bo Admin (bo@school.example)" in platform


def test_a_registration_completed_by_the_owners_back_end_names_its_api_key(
    make_app, make_owner, simulator
):
    import requests

    app = make_app({"registration": {"pre_approval_url": "https://owner.example/approve"}})
    store = app.extensions["gatehouse.store"]
    make_owner(store)
    _record, key = apikeys.create(store, "billing-backend")
    sim = simulator("moodle")
    with LoopbackServer(app, "localhost") as server:
        url, _grant = sim.initiate(server.url + "/lti/register")
        started = requests.get(url, timeout=30, allow_redirects=False)
        resume = requests.get(
            server.url + started.headers["Location"], timeout=30, allow_redirects=False
        )
        rid = parse_qs(urlsplit(resume.headers["Location"]).query)["registrationId"][0]
        done = requests.post(
            f"{server.url}/api/registrations/{rid}/complete",
            json={},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert done.status_code == 200, done.text
    platform_id = done.json()["platformId"]
    browser = Browser(app)
    browser.sign_in()
    shown = "Approved by API key ‘billing-backend’"
    assert shown in text(browser.get(f"/console/registrations/{rid}"))
    assert shown in text(browser.get(f"/console/platforms/{platform_id}"))
    row = re.search(
        rf'<tr data-registration="{rid}">(.*?)</tr>',
        browser.get("/console/registrations").get_data(as_text=True),
        re.S,
    )
    assert "API key ‘billing-backend’" in plain(row.group(1))


def test_the_error_of_a_failed_registration_is_shown_verbatim_and_escaped(console, store):
    body = '{"errors": [{"message": "<script>alert(1)</script> not allowed"}]}'
    attempt = failed_attempt(store, body)
    page = console.get(f"/console/registrations/{attempt.id}")
    raw = page.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in raw
    assert html.escape(body, quote=False) in raw.replace("&#34;", '"').replace("&#39;", "'")
    visible = text(page)
    assert "Your LMS answered with an error" in visible
    assert "The LMS refused the registration." in visible
    assert "Ask the LMS administrator to allow <dynamic> registrations." in visible
    assert "platform-response" in visible
    assert "HTTP status 422" in visible
    assert "<dynamic>" not in raw
    listing = text(console.get("/console/registrations?state=failed"))
    assert "Your LMS answered with an error" in listing


def test_registrations_filter_by_state_and_paginate(console, store):
    for _ in range(27):
        store.create_registration("https://lms.school.example/config", "2999-01-01")
    failed_attempt(store, "nope")
    first = console.get("/console/registrations")
    assert "Page 1 of 2 (28 in all)" in text(first)
    assert first.get_data(as_text=True).count("<tr data-registration=") == 25
    second = console.get("/console/registrations?page=2")
    assert "Page 2 of 2" in text(second)
    assert second.get_data(as_text=True).count("<tr data-registration=") == 3
    pending = console.get("/console/registrations?state=pending")
    assert "Page 1 of 2 (27 in all)" in text(pending)
    next_link = re.search(r'<a rel="next" href="([^"]+)"', pending.get_data(as_text=True))
    assert parse_qs(urlsplit(html.unescape(next_link.group(1))).query) == {
        "page": ["2"],
        "state": ["pending"],
    }
    failed = console.get("/console/registrations?state=failed")
    assert failed.get_data(as_text=True).count("<tr data-registration=") == 1
    assert "Page 1 of 1 (1 in all)" in text(failed)
    beyond = console.get("/console/registrations?page=99")
    assert "Page 2 of 2" in text(beyond)
    assert console.get("/console/registrations/nope").status_code == 404


def test_platforms_search_and_paginate(console, store):
    for n in range(1, 28):
        add_platform(store, n)
    first = console.get("/console/platforms")
    assert "Page 1 of 2 (27 in all)" in text(first)
    assert first.get_data(as_text=True).count("<tr data-platform=") == 25
    assert (
        console.get("/console/platforms?page=2").get_data(as_text=True).count("<tr data-platform=")
        == 2
    )
    found = console.get("/console/platforms?q=client-17")
    rows = re.findall(r"<tr data-platform=.*?</tr>", found.get_data(as_text=True), re.S)
    assert len(rows) == 1
    row = plain(rows[0])
    for expected in (
        "School 17",
        "added by hand",
        "https://lms17.school.example",
        "client-17",
        "inactive",
        "0",
    ):
        assert expected in row
    assert (
        len(
            re.findall(
                r"<tr data-platform=",
                console.get("/console/platforms?q=lms2").get_data(as_text=True),
            )
        )
        == 9
    )  # lms2, lms20…lms27
    assert "No platform matches “nothing”" in text(console.get("/console/platforms?q=nothing"))


def test_an_owner_finishes_an_attempt_of_unknown_outcome_with_the_client_id(console, store):
    attempt = unknown_attempt(store)
    url = f"/console/registrations/{attempt.id}"
    page = console.get(url)
    assert "Outcome unknown: finish this registration" in text(page)
    assert (
        "Moodle may have registered the tool and given it a client ID that Gatehouse does "
        "not know" in text(page)
    )
    assert "The LMS granted client ID" in text(page) and "Deployment ID (optional)" in text(page)
    empty = console.submit(url, url + "/resolve", {"client_id": "  "})
    assert empty.status_code == 400
    assert "Type the client ID the LMS shows" in text(empty)
    assert store.list_platforms()[0] == [] and store.get_registration(attempt.id).state == "unknown"

    done = console.submit(
        url,
        url + "/resolve",
        {"client_id": " granted-1 ", "deployment_id": "dep-9", "activate": "y"},
    )
    assert done.status_code == 302
    (platform,) = store.list_platforms()[0]
    assert done.headers["Location"] == f"/console/platforms/{platform.id}"
    assert (platform.issuer, platform.client_id) == ("https://lms.school.example", "granted-1")
    assert platform.authorization_endpoint == "https://lms.school.example/auth"
    assert platform.token_endpoint == "https://lms.school.example/token"
    assert platform.authorization_server == "https://lms.school.example/token"
    assert platform.jwks_uri == "https://lms.school.example/jwks"
    assert (platform.product_family_code, platform.version) == ("moodle", "4.5.1")
    assert platform.name == "Moodle at lms.school.example"
    assert platform.scopes == (
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    )
    assert platform.active is True and platform.registration_id == attempt.id
    assert [(d.deployment_id, d.active) for d in store.list_deployments(platform.id)] == [
        ("dep-9", True)
    ]
    finished = store.get_registration(attempt.id)
    assert (finished.state, finished.client_id, finished.deployment_id, finished.platform_id) == (
        "completed",
        "granted-1",
        "dep-9",
        platform.id,
    )
    (line,) = store.list_audit(action="registration.completed", subject_id=attempt.id)[0]
    assert line.actor == f"console {OWNER}"
    assert line.detail["resolvedFrom"] == "unknown" and line.detail["clientId"] == "granted-1"
    assert "is created and the registration is completed" in text(
        console.get(f"/console/platforms/{platform.id}")
    )
    after = text(console.get(url))
    assert f"Approved by {OWNER} in the console" in after
    assert "The LMS granted client ID" not in after

    again = console.submit(
        f"/console/platforms/{platform.id}",
        url + "/resolve",
        {"client_id": "granted-2"},
        follow_redirects=True,
    )
    assert "no longer unknown: nothing was changed" in text(again)
    assert len(store.list_platforms()[0]) == 1


def test_only_attempts_of_unknown_outcome_offer_the_client_id_form(console, store):
    failed = failed_attempt(store, "nope")
    page = console.get(f"/console/registrations/{failed.id}")
    assert "The LMS granted client ID" not in text(page)
    refused = console.submit(
        f"/console/registrations/{failed.id}",
        f"/console/registrations/{failed.id}/resolve",
        {"client_id": "granted-1"},
    )
    assert refused.status_code == 302
    assert store.list_platforms()[0] == [] and store.get_registration(failed.id).state == "failed"
    assert (
        console.submit(
            "/console/registrations", "/console/registrations/nope/resolve", {"client_id": "x"}
        ).status_code
        == 404
    )


# Changing platforms


def test_activate_and_deactivate_go_through_set_active_and_the_audit(console, store):
    platform = add_platform(store)
    url = f"/console/platforms/{platform.id}"
    page = console.get(url)
    assert "Launches from this LMS are refused" in text(page)
    assert "Last verified launch none yet" in text(page)
    store.record_launch(platform.id)
    assert "Last verified launch none yet" not in text(console.get(url))
    assert console.post(url + "/activate", csrf(page)).status_code == 302
    assert store.get_platform(platform.id).active is True
    assert "The platform is active" in text(console.get(url))
    assert console.submit(url, url + "/deactivate").status_code == 302
    assert store.get_platform(platform.id).active is False
    actions = [(a, s, actor) for actor, a, s, _ in audit_lines(store)][:2]
    assert actions == [
        ("platform.deactivated", platform.id, f"console {OWNER}"),
        ("platform.activated", platform.id, f"console {OWNER}"),
    ]
    assert console.submit(url, "/console/platforms/nope/activate").status_code == 404


def test_edit_a_platform_with_the_api_rules(console, store):
    platform = add_platform(store)
    url = f"/console/platforms/{platform.id}/edit"
    page = console.get(url)
    assert 'value="https://lms1.school.example/auth"' in page.get_data(as_text=True)
    good = {
        "name": "Springfield High",
        "authorization_endpoint": "https://lms.springfield.example/auth",
        "token_endpoint": "https://lms.springfield.example/token",
        "authorization_server": "",
        "auth_method": "JWK_SET",
        "auth_key": "https://lms.springfield.example/jwks",
    }
    bad = console.post(url, {**good, "token_endpoint": "not a url", **csrf(page)})
    assert bad.status_code == 200
    assert "Enter an absolute URL" in text(bad)
    assert 'aria-invalid="true"' in bad.get_data(as_text=True)
    bad_key = console.post(
        url, {**good, "auth_method": "JWK_KEY", "auth_key": "{oops", **csrf(page)}
    )
    assert "Paste the key as a JSON Web Key" in text(bad_key)
    assert store.get_platform(platform.id).name == "School 1"
    saved = console.post(url, {**good, **csrf(page)})
    assert saved.status_code == 302
    changed = store.get_platform(platform.id)
    assert changed.name == "Springfield High"
    assert changed.token_endpoint == "https://lms.springfield.example/token"
    assert changed.jwks_uri == "https://lms.springfield.example/jwks"
    assert changed.issuer == platform.issuer and changed.client_id == platform.client_id
    jwk = '{"kty": "RSA", "n": "abc", "e": "AQAB"}'
    console.post(url, {**good, "auth_method": "JWK_KEY", "auth_key": jwk, **csrf(page)})
    assert store.get_platform(platform.id).auth_method == "JWK_KEY"
    assert '"kty": "RSA"' in text(console.get(url))
    updates = [d for _actor, a, s, d in audit_lines(store) if a == "platform.updated"]
    assert len(updates) == 2 and "name" in updates[0]["fields"]


def test_delete_a_platform_after_confirming(console, store):
    platform = add_platform(store)
    store.add_deployment(platform.id, "dep-1")
    url = f"/console/platforms/{platform.id}/delete"
    confirm = console.get(url)
    assert "Delete School 1?" in text(confirm)
    assert "Its 1 deployment will be deleted too." in text(confirm)
    assert store.get_platform(platform.id) is not None  # asking deletes nothing
    done = console.post(url, csrf(confirm))
    assert done.status_code == 302 and done.headers["Location"] == "/console/platforms"
    assert store.get_platform(platform.id) is None
    assert store.list_deployments(platform.id) == []
    actor, action, subject, detail = audit_lines(store)[0]
    assert (actor, action, subject) == (f"console {OWNER}", "platform.deleted", platform.id)
    assert detail == {"url": platform.issuer, "clientId": "client-1"}
    assert console.get(f"/console/platforms/{platform.id}").status_code == 404


def test_add_toggle_and_remove_deployments(console, store):
    platform = add_platform(store)
    url = f"/console/platforms/{platform.id}"
    assert "No deployments yet." in text(console.get(url))
    empty = console.submit(url, url + "/deployments", {"deployment_id": "  "})
    assert empty.status_code == 400
    assert "Type the deployment id" in text(empty)
    assert (
        console.submit(url, url + "/deployments", {"deployment_id": "1:abc/def"}).status_code == 302
    )
    (deployment,) = store.list_deployments(platform.id)
    assert (deployment.deployment_id, deployment.active, deployment.source) == (
        "1:abc/def",
        True,
        "console",
    )
    again = console.submit(
        url, url + "/deployments", {"deployment_id": "1:abc/def"}, follow_redirects=True
    )
    assert "already has deployment 1:abc/def" in text(again)
    console.submit(url, url + "/deployments/deactivate", {"deployment_id": "1:abc/def"})
    assert store.get_deployment(platform.id, "1:abc/def").active is False
    console.submit(url, url + "/deployments/activate", {"deployment_id": "1:abc/def"})
    assert store.get_deployment(platform.id, "1:abc/def").active is True
    missing = console.submit(url, url + "/deployments/remove", {"deployment_id": "other"})
    assert missing.status_code == 404
    console.submit(url, url + "/deployments/remove", {"deployment_id": "1:abc/def"})
    assert store.list_deployments(platform.id) == []
    lines = [(a, d) for _actor, a, _s, d in audit_lines(store) if a.startswith("deployment.")]
    assert lines == [
        ("deployment.deleted", {"deploymentId": "1:abc/def"}),
        ("deployment.updated", {"deploymentId": "1:abc/def", "active": True}),
        ("deployment.updated", {"deploymentId": "1:abc/def", "active": False}),
        ("deployment.added", {"deploymentId": "1:abc/def", "active": True}),
    ]


def test_platform_page_shows_every_field_and_the_approval(console, store, live, simulator):
    sim = simulator("moodle")
    report = sim.register(live.register_url)
    assert report.ok
    platform = store.find_platform(sim.issuer, report.client_id)
    approver = store.create_account("admin@school.example", "Ada", HASH)
    store.set_registration_account(platform.registration_id, approver.id)
    page = console.get(f"/console/platforms/{platform.id}")
    body = text(page)
    for expected in (
        platform.name,
        "Moodle",
        platform.issuer,
        platform.client_id,
        platform.authorization_endpoint,
        platform.token_endpoint,
        platform.jwks_uri,
        "admin@school.example",
        report.deployment_id,
        "registration",
        "inactive",
    ):
        assert expected in body
    assert f'href="/console/registrations/{platform.registration_id}"' in page.get_data(
        as_text=True
    )
    listing = console.get("/console/platforms")
    assert re.search(
        r"Moodle.*?" + re.escape(platform.client_id) + r".*?inactive.*?>1<",
        listing.get_data(as_text=True),
        re.S,
    )


# Audit log


def test_audit_log_is_newest_first_paginated_and_links_its_subjects(console, store):
    platform = add_platform(store)
    attempt = failed_attempt(store, "no")
    store.audit("api key ci", "registration.failed", "registration", attempt.id, {"x": "<b>"})
    for n in range(30):
        store.audit("api key ci", "platform.updated", "platform", platform.id, {"n": n})
    page = console.get("/console/audit")
    raw = page.get_data(as_text=True)
    assert "Page 1 of 2" in text(page)
    assert raw.count("<tr data-audit=") == 25
    first = re.search(r"<tr data-audit=.*?</tr>", raw, re.S).group(0)
    assert '"n": 29' in html.unescape(first) and "api key ci" in first
    assert f'href="/console/platforms/{platform.id}"' in first
    older = console.get("/console/audit?page=2").get_data(as_text=True)
    assert f'href="/console/registrations/{attempt.id}"' in older
    assert "<b>" not in older and "&lt;b&gt;" in older
    assert "console.signed_in" in older and f"console {OWNER}" in older


def audit_rows(response):
    return re.findall(r'<tr data-audit="(\d+)">', response.get_data(as_text=True))


def test_audit_log_filters_by_action_actor_and_subject_and_keeps_paging(console, store):
    one, two = add_platform(store, 1), add_platform(store, 2)
    for n in range(30):
        store.audit("api key billing", "platform.updated", "platform", one.id, {"n": n})
    store.audit("api key billing", "platform.activated", "platform", two.id)
    store.audit("console someone@tool.example", "platform.activated", "platform", one.id)
    everything = console.get("/console/audit")
    assert "Page 1 of 2 (33 in all)" in text(everything)  # with the owner's sign-in
    menus = everything.get_data(as_text=True)
    for option in (
        "platform.updated",
        "platform.activated",
        "console.signed_in",
        "api key billing",
        f"console {OWNER}",
    ):
        assert f'<option value="{option}">' in menus

    by_action = console.get("/console/audit?action=platform.updated")
    assert "Page 1 of 2 (30 in all)" in text(by_action)
    assert len(audit_rows(by_action)) == 25
    assert '<option value="platform.updated" selected>' in by_action.get_data(as_text=True)
    next_link = re.search(r'<a rel="next" href="([^"]+)"', by_action.get_data(as_text=True))
    assert parse_qs(urlsplit(html.unescape(next_link.group(1))).query) == {
        "page": ["2"],
        "action": ["platform.updated"],
    }
    second = console.get(html.unescape(next_link.group(1)))
    assert "Page 2 of 2 (30 in all)" in text(second) and len(audit_rows(second)) == 5
    assert '"n": 0' in html.unescape(second.get_data(as_text=True))

    activated = console.get("/console/audit?action=platform.activated")
    assert len(audit_rows(activated)) == 2
    by_actor = console.get("/console/audit", query_string={"actor": "api key billing"})
    assert "(31 in all)" in text(by_actor)
    both = console.get(
        "/console/audit", query_string={"action": "platform.activated", "actor": "api key billing"}
    )
    rows = re.findall(r"<tr data-audit=.*?</tr>", both.get_data(as_text=True), re.S)
    assert len(rows) == 1 and f"platform {two.id}" in plain(rows[0])
    about = console.get("/console/audit", query_string={"subject": f" {two.id} "})
    assert len(audit_rows(about)) == 1 and f'value="{two.id}"' in about.get_data(as_text=True)
    assert "Clear filters" in text(about) and "Clear filters" not in text(everything)
    nothing = console.get("/console/audit?action=platform.deleted")
    assert "No audit line matches these filters." in text(nothing)
    assert '<option value="platform.deleted" selected>' in nothing.get_data(as_text=True)
    assert console.get("/console/audit?subject=a%00b").status_code == 400
    # The platform page links to the lines about it.
    link = f'href="/console/audit?subject={one.id}"'
    assert link in console.get(f"/console/platforms/{one.id}").get_data(as_text=True)


# API keys


def test_invitations_and_api_keys_are_paged(console, store):
    for n in range(27):
        store.create_invitation(f"School {n}", None, None)
        apikeys.create(store, f"back end {n}")
    for path, marker in (
        ("/console/invitations", '<tr id="inv-'),
        ("/console/api-keys", "<tr data-key="),
    ):
        first = console.get(path)
        assert "Page 1 of 2 (27 in all)" in text(first), path
        assert first.get_data(as_text=True).count(marker) == 25
        second = console.get(path + "?page=2")
        assert "Page 2 of 2 (27 in all)" in text(second)
        assert second.get_data(as_text=True).count(marker) == 2
    # Newest first: the last one made is at the top of the first page.
    assert "School 26" in text(console.get("/console/invitations"))
    assert "School 0" in text(console.get("/console/invitations?page=2"))
    assert "back end 0" in text(console.get("/console/api-keys?page=2"))


def test_an_api_key_is_shown_once_and_only_its_hash_is_kept(console, store, app):
    made = console.submit("/console/api-keys", data={"name": "LMS back end"})
    assert made.status_code == 200
    assert made.headers["Cache-Control"] == "no-store"
    shown_key = r'<code id="new-key" tabindex="0">([^<]+)</code>'
    full = re.search(shown_key, made.get_data(as_text=True)).group(1)
    assert "Copy this key now." in text(made)
    _prefix, key_id, secret = full.split("_", 2)
    record = store.get_api_key(key_id)
    assert record.name == "LMS back end"
    assert record.secret_hash == apikeys.digest(secret)
    assert secret not in dump(store)
    listing = console.get("/console/api-keys")
    assert secret not in listing.get_data(as_text=True)
    assert f"gh_{key_id}_…" in text(listing) and "never" in text(listing)
    # The key works until it is revoked.
    api = app.test_client()
    headers = {"Authorization": f"Bearer {full}"}
    assert api.get("/api/platforms", headers=headers, base_url=BASE).status_code == 200
    confirm = console.get(f"/console/api-keys/{key_id}/revoke")
    assert "Revoke the API key “LMS back end”?" in text(confirm)
    assert store.get_api_key(key_id).revoked_at is None
    assert console.post(f"/console/api-keys/{key_id}/revoke", csrf(confirm)).status_code == 302
    assert store.get_api_key(key_id).revoked_at is not None
    assert api.get("/api/platforms", headers=headers, base_url=BASE).status_code == 401
    assert "revoked" in text(console.get("/console/api-keys"))
    assert console.get(f"/console/api-keys/{key_id}/revoke").status_code == 404
    lines = [(actor, a, s) for actor, a, s, _ in audit_lines(store) if a.startswith("api_key")]
    assert lines == [
        (f"console {OWNER}", "api_key.revoked", key_id),
        (f"console {OWNER}", "api_key.created", key_id),
    ]


def test_an_api_key_needs_a_name(console, store):
    response = console.submit("/console/api-keys", data={"name": ""})
    assert response.status_code == 400
    assert "Name the key" in text(response)
    assert store.list_api_keys()[0] == []


# Invitations


def test_create_and_revoke_invitations(console, store):
    bad = console.submit("/console/invitations", data={"name": "Springfield", "uses": "0"})
    assert bad.status_code == 400
    assert "Allow from 1 to 1,000,000 registrations" in text(bad)
    past = console.submit(
        "/console/invitations", data={"name": "Springfield", "expires_at": "2001-01-01T00:00"}
    )
    assert "Choose a time in the future" in text(past)
    assert store.list_invitations()[0] == []
    made = console.submit(
        "/console/invitations",
        data={"name": "Springfield", "uses": "3", "expires_at": "2999-06-01T12:30"},
    )
    assert made.status_code == 302
    (invitation,) = store.list_invitations()[0]
    assert (invitation.name, invitation.uses_allowed) == ("Springfield", 3)
    assert invitation.expires_at.startswith("2999-06-01T12:30:00")
    assert made.headers["Location"] == f"/console/invitations#inv-{invitation.id}"
    page = text(console.get("/console/invitations"))
    assert f"https://localhost/lti/register?invite={invitation.code}" in page
    assert "0 of 3" in page and "2999-06-01 12:30 UTC" in page and "usable" in page
    console.submit("/console/invitations", data={"name": "Shelbyville"})
    assert "0 of unlimited" in text(console.get("/console/invitations"))
    confirm = console.get(f"/console/invitations/{invitation.id}/revoke")
    assert "Revoke the invitation for Springfield?" in text(confirm)
    console.post(f"/console/invitations/{invitation.id}/revoke", csrf(confirm))
    assert store.get_invitation(invitation.id).revoked_at is not None
    assert "revoked" in text(console.get("/console/invitations"))
    lines = [(a, d) for _actor, a, s, d in audit_lines(store) if a.startswith("invitation")]
    assert lines == [
        ("invitation.revoked", {"name": "Springfield"}),
        ("invitation.created", {"name": "Shelbyville"}),
        ("invitation.created", {"name": "Springfield"}),
    ]


def test_an_invitation_used_by_a_registration_shows_there(console, store, live, simulator):
    invitation = store.create_invitation("Springfield", 1, None)
    sim = simulator("canvas")
    assert sim.register(f"{live.register_url}?invite={invitation.code}").ok
    (attempt,) = store.list_registrations()[0]
    page = text(console.get(f"/console/registrations/{attempt.id}"))
    assert "Invitation Springfield" in page
    assert "1 of 1" in text(console.get("/console/invitations"))
    assert "used up" in text(console.get("/console/invitations"))


# How to register


def test_how_to_register_gives_the_url_and_each_lms_steps(console):
    page = text(console.get("/console/how-to-register"))
    assert "https://localhost/lti/register" in page
    for lms in ("Canvas", "Moodle", "Brightspace", "Sakai", "Blackboard"):
        assert lms in page
    assert "Enable & Close" in page  # the wording of the page closing the LMS dialog
    assert "Invitations are required" not in page
    assert "stored inactive" in page


def test_how_to_register_points_to_invitations_when_they_are_required(make_app, make_owner):
    app = make_app(
        {"registration": {"require_invitation": True}, "base_url": "https://reg.example.com"}
    )
    make_owner(app.extensions["gatehouse.store"])
    browser = Browser(app)
    browser.sign_in()
    page = text(browser.get("/console/how-to-register"))
    assert "Invitations are required" in page
    assert "https://reg.example.com/lti/register" in page
    assert "Invitations are required" in text(browser.get("/console/invitations"))


def test_the_registrations_page_shows_the_transition_table(console):
    page = console.get("/console/registrations").get_data(as_text=True)
    assert "How an attempt moves between states" in page
    for name, transition in TRANSITIONS.items():
        (row,) = re.findall(rf'<tr data-transition="{name}">(.*?)</tr>', page, re.S)
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        assert re.findall(r'class="badge state-(\w+)"', cells[1]) == list(transition.sources)
        assert f"state-{transition.target}" in cells[2]


def section(page, section_id):
    """Return the HTML of one <section id=…> of a page."""
    raw = page.get_data(as_text=True)
    match = re.search(rf'<section[^>]*id="{section_id}".*?</section>', raw, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


# The home page: what needs attention, counts, registrations by LMS and institution


def test_sign_in_lands_on_the_home_page_which_says_when_nothing_waits(console):
    page = console.get("/console/")
    assert page.status_code == 200
    assert "What needs your attention" in text(page)
    assert "Nothing is waiting for you" in text(page)
    assert 'href="/console/"' in page.get_data(as_text=True)  # in the nav, as "Home"


def test_home_lists_what_needs_attention_with_links_to_act_on_it(console, store):
    waiting = add_platform(store, 1, product_family_code="moodle")
    switched_off = add_platform(store, 2)
    store.update_platform(switched_off.id, {"active": True})
    page = console.get(f"/console/platforms/{switched_off.id}")
    console.post(f"/console/platforms/{switched_off.id}/deactivate", csrf(page))
    active = add_platform(store, 3)
    store.update_platform(active.id, {"active": True})
    store.add_deployment(active.id, "dep-from-launch", active=False, source="launch")
    store.add_deployment(active.id, "dep-approved", active=True, source="console")
    unknown = unknown_attempt(store)
    failed = failed_attempt(store, "no")

    home = console.get("/console/")
    assert "Nothing is waiting for you" not in text(home)
    awaiting = section(home, "awaiting")
    assert f'href="/console/platforms/{waiting.id}"' in awaiting
    assert "School 1" in awaiting and "Moodle" in awaiting
    # Deactivated by an owner is a choice, not something waiting.
    assert switched_off.id not in awaiting and active.id not in awaiting
    deployments = section(home, "pending-deployments")
    assert "dep-from-launch" in deployments and "dep-approved" not in deployments
    assert f'href="/console/platforms/{active.id}#deployments"' in deployments
    assert f'href="/console/registrations/{unknown.id}"' in section(home, "unknown")
    failures = section(home, "failures")
    assert f'href="/console/registrations/{failed.id}"' in failures
    assert "Your LMS answered with an error" in html.unescape(failures)
    assert 'href="/console/registrations?state=failed"' in failures


def test_home_counts_registrations_by_state_and_platforms(console, store):
    for _ in range(3):
        store.create_registration("https://lms.school.example/config", "2999-01-01")
    failed_attempt(store, "no")
    add_platform(store, 1)
    platform = add_platform(store, 2)
    store.update_platform(platform.id, {"active": True})
    raw = console.get("/console/").get_data(as_text=True)
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', raw))
    assert counts["pending"] == "3" and counts["failed"] == "1" and counts["completed"] == "0"
    assert 'href="/console/registrations?state=pending"' in raw
    assert "Platforms 2 (1 active)" in text(console.get("/console/"))


def test_home_lists_registrations_by_lms_and_institution(console, store, live, simulator):
    for profile in ("moodle", "canvas"):
        assert simulator(profile).register(live.register_url).ok
    failed_attempt(store, "no")  # never read a configuration: no LMS, no institution
    groups = store.registrations_by_institution()
    assert [(g["family"], int(g["attempts"]), int(g["completed"])) for g in groups] == [
        ("canvas", 1, 1),
        ("moodle", 1, 1),
    ]
    assert all(g["name"] and g["issuer"] and g["latest"] for g in groups)

    home = console.get("/console/")
    raw = home.get_data(as_text=True)
    by_lms = raw[raw.index('id="by-institution"') :]
    assert "<h3>Canvas</h3>" in by_lms and "<h3>Moodle</h3>" in by_lms
    for group in groups:
        assert f'data-institution="{group["issuer"]}"' in by_lms
        assert html.escape(group["name"]) in by_lms


# Audit sentences and scope names

SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


@pytest.mark.parametrize(
    ("actor", "action", "detail", "sentence"),
    [
        (
            "registration flow",
            "registration.completed",
            {"url": "https://lms.example", "clientId": "c-1", "familyCode": "moodle"},
            "Registration flow completed a registration from Moodle at https://lms.example: "
            "client ID c-1.",
        ),
        (
            f"console {OWNER}",
            "platform.activated",
            {"url": "https://lms.example", "clientId": "c-1"},
            f"{OWNER} activated the platform https://lms.example: its launches are accepted.",
        ),
        (
            "api key billing",
            "deployment.updated",
            {"deploymentId": "d-7", "active": False},
            "API key ‘billing’ deactivated deployment d-7.",
        ),
        (
            "api key billing",
            "platform.scopes_refused",
            {"refused": [NRPS], "usable": [SCORE]},
            "The LMS's token endpoint refused Course members (names and roles), which its "
            "registration had granted.",
        ),
        (
            "api key ci",
            "platform.updated",
            {"fields": ["name", "token_endpoint"]},
            "API key ‘ci’ changed the platform's name, token endpoint.",
        ),
        (
            "recovery",
            "registration.completed",
            {"recovered": "completed from the LMS's answer"},
            "Recovery finished a registration a stopped worker had left: completed from the "
            "LMS's answer.",
        ),
        ("someone", "something.new", None, "Someone: something.new."),
    ],
)
def test_each_audit_line_reads_as_one_sentence(actor, action, detail, sentence):
    class Entry:
        pass

    entry = Entry()
    entry.actor, entry.action, entry.detail = actor, action, detail
    assert audit_sentence(entry) == sentence


def test_the_audit_log_shows_sentences_with_the_json_behind_a_toggle(console, store):
    platform = add_platform(store)
    store.audit(
        "api key ci",
        "platform.deleted",
        "platform",
        platform.id,
        {"url": "<b>x</b>", "clientId": "c"},
    )
    raw = console.get("/console/audit").get_data(as_text=True)
    row = re.search(r"<tr data-audit=.*?</tr>", raw, re.S).group(0)
    assert "API key ‘ci’ deleted the platform &lt;b&gt;x&lt;/b&gt; (client ID c)." in row
    details = re.search(r"<details class=\"raw\">.*?</details>", row, re.S).group(0)
    assert "<code>platform.deleted</code>" in details
    assert "&#34;url&#34;: &#34;&lt;b&gt;x&lt;/b&gt;&#34;" in details  # the JSON, escaped
    assert "<b>" not in raw
    history = console.get(f"/console/platforms/{platform.id}")
    assert "API key ‘ci’ deleted the platform <b>x</b> (client ID c)." in text(history)


def test_scopes_have_friendly_names_on_the_platform_and_registration_pages(console, store):
    platform = add_platform(store)
    store.update_platform(platform.id, {"scopes": json.dumps([SCORE, LINEITEM, NRPS, "openid"])})
    store.learn_scopes(platform.id, lambda p: ([SCORE], [NRPS]))
    page = console.get(f"/console/platforms/{platform.id}")
    services = re.sub(r" ([,.:])", r"\1", text(page))
    assert "Grades: post scores · usable" in services
    assert "Grades: line items · claimed" in services
    assert "Course members (names and roles) · claimed but refused:" in services
    assert "claimed 1 service it does not grant: Course members (names and roles)" in services
    assert f'title="{SCORE}"' in page.get_data(as_text=True)
    attempt = unknown_attempt(store)
    # (text() puts a space where each tag was: before the commas here.)
    shown = re.sub(r" ([,.])", r"\1", text(console.get(f"/console/registrations/{attempt.id}")))
    assert "Services asked for: Grades: post scores, Course members (names and roles)." in shown


# Registrations and launches per day, by LMS family


def today():
    return datetime.now(UTC).date().isoformat()


def test_verified_launches_are_counted_per_day_and_platform(store):
    moodle = add_platform(store, 1, product_family_code="moodle")
    canvas = add_platform(store, 2, product_family_code="canvas")
    for _ in range(3):
        store.record_launch(moodle.id)
    store.record_launch(canvas.id)
    store.delete_platform(canvas.id)  # its launches still count for its family
    rows = [(r["day"], r["family"], int(r["n"])) for r in store.launches_per_day(today())]
    assert rows == [(today(), "canvas", 1), (today(), "moodle", 3)]
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    assert store.launches_per_day(tomorrow) == []
    assert store.get_platform(moodle.id).last_launch_at.startswith(today())


def test_completed_registrations_are_counted_per_day_by_lms_family(store, live, simulator):
    for profile in ("moodle", "canvas", "moodle"):
        assert simulator(profile).register(live.register_url).ok
    store.create_registration("https://lms.school.example/config", "2999-01-01")  # pending
    failed_attempt(store, "no")
    per_day = {(r["day"], r["family"], int(r["n"])) for r in store.registrations_per_day(today())}
    assert per_day == {(today(), "moodle", 2), (today(), "canvas", 1)}


def test_home_charts_are_svg_with_a_title_a_description_and_a_table(console, store):
    moodle = add_platform(store, 1, product_family_code="moodle")
    for _ in range(4):
        store.record_launch(moodle.id)
    home = console.get("/console/")
    raw = home.get_data(as_text=True)
    launches = re.search(r'<figure class="chart" id="chart-2">.*?</figure>', raw, re.S).group(0)
    assert '<svg viewBox="0 0 720 200" role="img"' in launches
    assert "<title" in launches and "Verified launches per day, last 30 days" in launches
    assert "4 in all: 4 from Moodle." in launches
    assert launches.count("<rect ") == 2  # one bar today, one legend swatch
    assert f'<time datetime="{today()}">{today()}</time></th><td class="num">4</td>' in launches
    assert "<script" not in raw
    ninety = console.get("/console/?days=90").get_data(as_text=True)
    assert "last 90 days" in ninety and 'href="/console/?days=30#over-time"' in ninety
    assert "last 30 days" in console.get("/console/?days=7").get_data(as_text=True)


def test_a_footer_reference_opens_its_registration(console, store, live, simulator):
    assert simulator("canvas").register(live.register_url).ok
    assert not simulator("moodle", faults=["refuse_registration"]).register(live.register_url).ok
    failed = next(r for r in store.list_registrations()[0] if r.state == "failed")
    found = console.get(f"/console/registrations?ref={failed.id[:8]}")
    assert found.status_code == 302
    assert found.headers["Location"] == f"/console/registrations/{failed.id}"
    missing = console.get("/console/registrations?ref=0123456789abcdef")
    assert missing.status_code == 404
    assert "No registration has the reference 0123456789abcdef" in text(missing)
    assert "find it in the logs" in text(missing)


def test_values_to_hand_on_have_copy_buttons(console, store):
    platform = add_platform(store)
    store.add_deployment(platform.id, "dep-1")
    shown = console.get(f"/console/platforms/{platform.id}").get_data(as_text=True)
    assert f'<code id="client-id" tabindex="0">{platform.client_id}</code>' in shown
    assert 'data-copy="client-id" aria-label="Copy the Client ID"' in shown
    assert 'data-copy="deployment-1" aria-label="Copy deployment dep-1"' in shown
    how = console.get("/console/how-to-register").get_data(as_text=True)
    assert 'data-copy="registration-url"' in how
    made = console.submit("/console/invitations", data={"name": "North School", "uses": "3"})
    listed = console.get(made.headers["Location"]).get_data(as_text=True)
    invitation = store.list_invitations()[0][0]
    copy_link = f'data-copy="inv-url-{invitation.id}" aria-label="Copy the link for North School"'
    assert copy_link in listed


def test_only_pages_that_show_the_signed_in_account_load_it(console, store, monkeypatch):
    """The session's account is read when a page shows it, not for every page rendered."""
    loads = []
    get_account = type(store).get_account
    monkeypatch.setattr(
        type(store), "get_account", lambda self, *a: loads.append(a) or get_account(self, *a)
    )
    about = console.get("/lti/register")  # the registration URL opened by hand
    assert about.status_code == 200 and "Signed in as" not in text(about)
    assert loads == []
    page = console.get("/console/registrations")
    assert f"Signed in as {OWNER}" in text(page)
    assert loads
