"""Sign-in and terms gates through Flask's test client, with a real simulated LMS."""

import logging
import re

import pytest
from support.postgres import dump, run_sql

from app.cli import main
from app.domain.gates import approval_of
from app.web.login import hash_password

BASE = "https://localhost"
TERMS_V1 = "# Terms\n\nBe **nice**.\n\n<script>alert(1)</script>\n"


@pytest.fixture
def terms_file(tmp_path):
    path = tmp_path / "terms.md"
    path.write_text(TERMS_V1)
    return path


@pytest.fixture
def gated(make_app, terms_file):
    def factory(gates=("signin", "terms"), version="1", **signin):
        return make_app(
            {
                "registration": {"gates": list(gates)},
                "gates": {
                    "terms": {"version": version, "path": str(terms_file), "title": "Our terms"},
                    "signin": signin,
                },
            }
        )

    return factory


def csrf(page, prefix=""):
    name = f"{prefix}csrf_token"
    match = re.search(rf'name="{name}" type="hidden" value="([^"]+)"', page.get_data(as_text=True))
    assert match, "no CSRF token in the page"
    return {name: match.group(1)}


class Admin:
    """An LMS admin's browser inside the frame: Flask's test client over https."""

    def __init__(self, app, sim):
        self.app = app
        self.sim = sim
        self.client = app.test_client()
        self.store = app.extensions["gatehouse.store"]
        self.pages = []

    def get(self, url, **kwargs):
        response = self.client.get(url, base_url=BASE, **kwargs)
        self.pages.append(response.get_data(as_text=True))
        return response

    def post(self, url, data, **kwargs):
        response = self.client.post(url, data=data, base_url=BASE, **kwargs)
        self.pages.append(response.get_data(as_text=True))
        return response

    def start(self):
        self.url, self.grant = self.sim.initiate(BASE + "/lti/register")
        response = self.get(self.url.replace(BASE, ""))
        assert response.status_code == 303
        self.resume_path = response.headers["Location"]
        self.rid = self.resume_path.rsplit("/", 1)[-1]
        return self.get(self.resume_path, follow_redirects=True)

    def sign_in(self, email="admin@school.example", password="correct horse battery"):
        page = self.get(f"/lti/register/{self.rid}/signin")
        return self.post(
            f"/lti/register/{self.rid}/signin",
            {"email": email, "password": password, **csrf(page)},
            follow_redirects=True,
        )

    def accept_terms(self, name="Ada Admin", accept="y", email="ada@school.example"):
        page = self.get(f"/lti/register/{self.rid}/terms")
        data = {"signer_name": name, "email": email, **csrf(page)}
        if accept:
            data["accept"] = accept
        return self.post(f"/lti/register/{self.rid}/terms", data, follow_redirects=True)

    @property
    def registration(self):
        return self.store.get_registration(self.rid)


@pytest.fixture
def admin_of(simulator):
    def factory(app, profile="moodle"):
        store = app.extensions["gatehouse.store"]
        if store.find_account_by_email("admin@school.example") is None:
            store.create_account(
                "admin@school.example", "Ada Admin", hash_password("correct horse battery")
            )
        return Admin(app, simulator(profile))

    return factory


def step_indicator(page):
    """Return the step indicator's entries as (label, class, aria-current) and its heading."""
    markup = page.get_data(as_text=True)
    nav = re.search(r'<nav class="steps".*?</nav>', markup, re.S).group(0)
    entries = [
        (re.sub(r"<[^>]+>", "", body).replace("✓ ", "").strip(), cls, current)
        for cls, current, body in re.findall(
            r'<li(?: class="([^"]*)")?(?: aria-current="(step)")?>(.*?)</li>', nav, re.S
        )
    ]
    return re.search(r'<p class="step-current">(.*?)</p>', nav).group(1), entries


@pytest.mark.parametrize(
    ("gates", "passed", "shown"),
    [
        (("signin", "terms"), 0, "Step 1 of 2: Sign in"),
        (("signin", "terms"), 1, "Step 2 of 2: Terms"),
        (("terms",), 0, "Step 1 of 1: Terms"),
        (("signin",), 0, "Step 1 of 1: Sign in"),
    ],
)
def test_the_step_indicator_lists_exactly_the_configured_gates(
    gated, admin_of, gates, passed, shown
):
    admin = admin_of(gated(gates=gates))
    page = admin.start() if not passed else (admin.start(), admin.sign_in())[1]
    heading, entries = step_indicator(page)
    expected = []
    for n, name in enumerate(gates):
        label = {"signin": "Sign in", "terms": "Terms"}[name]
        if n < passed:  # passed: marked done, in words for screen readers too
            expected.append((label + " (done)", "done", ""))
        elif n == passed:
            expected.append((label, "current", "step"))
        else:
            expected.append((label, "next", ""))
    assert heading == shown
    assert entries == expected
    assert len(entries) == int(shown.split(" of ")[1].split(":")[0])  # "of N" counts the list


def test_sign_in_then_terms_then_the_lms_dialog_closes(gated, admin_of):
    admin = admin_of(gated())
    first = admin.start()
    text = first.get_data(as_text=True)
    assert "Step 1 of 2: Sign in" in text
    assert admin.sim.records == []  # nothing is sent to the LMS before the gates
    terms = admin.sign_in()
    assert "Step 2 of 2: Terms" in terms.get_data(as_text=True)
    assert "<strong>nice</strong>" in terms.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in terms.get_data(as_text=True)
    assert 'value="Ada Admin"' in terms.get_data(as_text=True)
    assert 'name="email"' not in terms.get_data(as_text=True)  # the account says who
    done = admin.accept_terms(email="someone-else@example.org")
    page = done.get_data(as_text=True)
    assert done.status_code == 200
    assert 'data-lti-close="after-reading"' in page
    assert "Approved by" in page and "admin@school.example" in page
    assert "version 1, signed by Ada Admin" in page

    registration = admin.registration
    assert registration.state == "completed"
    account = admin.store.find_account_by_email("admin@school.example")
    assert registration.account_id == account.id
    platform = admin.store.get_platform(registration.platform_id)
    assert platform.registration_id == registration.id
    approval = approval_of(admin.store, platform.registration_id)
    assert approval["account"].email == "admin@school.example"
    assert approval["terms"].version == "1"
    assert approval["terms"].signer_name == "Ada Admin"
    assert approval["terms"].account_id == account.id
    assert approval["terms"].email == "admin@school.example"
    assert approval["terms"].ip == "127.0.0.1"
    assert approval["terms"].user_agent.startswith("Werkzeug")
    assert admin.sim.posts_for(admin.grant.token) == 1


def test_the_registration_token_never_reaches_a_page_url_or_log(gated, admin_of, caplog):
    caplog.set_level(logging.DEBUG)
    admin = admin_of(gated())
    admin.start()
    admin.sign_in()
    admin.accept_terms()
    assert admin.registration.state == "completed"
    token = admin.grant.token
    assert all(token not in page for page in admin.pages)
    assert token not in admin.resume_path
    assert all(token not in record.getMessage() for record in caplog.records)
    assert token not in dump(admin.store)  # held only while the gates were open


def test_refresh_back_and_double_submit_never_register_twice(gated, admin_of):
    admin = admin_of(gated())
    admin.start()
    admin.sign_in()
    page = admin.get(f"/lti/register/{admin.rid}/terms")
    data = {"signer_name": "Ada", "accept": "y", **csrf(page)}
    first = admin.post(f"/lti/register/{admin.rid}/terms", data, follow_redirects=True)
    second = admin.post(f"/lti/register/{admin.rid}/terms", data, follow_redirects=True)
    assert 'data-lti-close="after-reading"' in first.get_data(as_text=True)
    assert 'data-lti-close="after-reading"' in second.get_data(as_text=True)
    for _ in range(2):
        assert 'data-lti-close="after-reading"' in admin.get(admin.resume_path).get_data(
            as_text=True
        )
    assert admin.get(f"/lti/register/{admin.rid}/signin", follow_redirects=True).status_code == 200
    assert admin.sim.posts_for(admin.grant.token) == 1
    assert len(admin.store.list_platforms()[0]) == 1


def test_gates_cannot_be_skipped_by_editing_urls(gated, admin_of):
    admin = admin_of(gated())
    admin.start()
    skip = admin.get(f"/lti/register/{admin.rid}/terms")
    assert skip.status_code == 302
    assert skip.headers["Location"].endswith(f"/lti/register/{admin.rid}")
    assert admin.get(skip.headers["Location"]).headers["Location"].endswith("/signin")
    # A forged acceptance is not recorded either.
    page = admin.get(f"/lti/register/{admin.rid}/signin")
    forged = admin.post(
        f"/lti/register/{admin.rid}/terms", {"signer_name": "X", "accept": "y", **csrf(page)}
    )
    assert forged.status_code == 302
    assert admin.store.terms_for(admin.rid) == []
    # An unconfigured gate does not exist.
    assert admin.get(f"/lti/register/{admin.rid}/payment").status_code == 404
    assert admin.registration.state == "pending"
    assert admin.sim.records == []


def test_wrong_password_is_refused_next_to_the_form(gated, admin_of):
    admin = admin_of(gated())
    admin.start()
    response = admin.sign_in(password="wrong password")
    text = response.get_data(as_text=True)
    assert "The e-mail address or password is not right." in text
    assert admin.registration.account_id is None
    missing = admin.sign_in(email="not-an-email", password="")
    assert "Invalid email address." in missing.get_data(as_text=True)
    assert "This field is required." in missing.get_data(as_text=True)


def test_terms_need_the_box_ticked_and_a_name(gated, admin_of):
    admin = admin_of(gated())
    admin.start()
    admin.sign_in()
    response = admin.accept_terms(name="", accept=None)
    text = response.get_data(as_text=True)
    assert "Tick the box to accept the terms." in text
    assert "Type your name to sign." in text
    assert admin.store.terms_for(admin.rid) == []


def test_terms_alone_record_the_signers_email(gated, admin_of):
    admin = admin_of(gated(gates=("terms",)))
    first = admin.start().get_data(as_text=True)
    assert "Step 1 of 1: Terms" in first
    assert 'id="email"' in first and 'name="email"' in first
    missing = admin.accept_terms(email="").get_data(as_text=True)
    assert '<p class="field-error" id="email-error" role="alert">Type your e-mail address.' in (
        missing
    )
    assert 'aria-describedby="email-error"' in missing
    invalid = admin.accept_terms(email="not an address").get_data(as_text=True)
    assert "Type a valid e-mail address" in invalid
    assert 'value="not an address"' in invalid  # what was typed stays, next to its error
    assert admin.store.terms_for(admin.rid) == []
    assert admin.sim.records == []

    done = admin.accept_terms(email=" Ada@School.example ")
    assert 'data-lti-close="after-reading"' in done.get_data(as_text=True)
    assert "signed by Ada Admin (ada@school.example)" in done.get_data(as_text=True)
    acceptance = approval_of(admin.store, admin.rid)["terms"]
    assert (acceptance.email, acceptance.account_id) == ("ada@school.example", None)
    assert (acceptance.signer_name, acceptance.version) == ("Ada Admin", "1")
    assert admin.registration.state == "completed"
    assert admin.registration.account_id is None
    assert admin.sim.posts_for(admin.grant.token) == 1


def test_terms_before_sign_in_ask_for_the_email_and_keep_it(gated, admin_of):
    admin = admin_of(gated(gates=("terms", "signin")))
    admin.start()
    admin.accept_terms(email="signer@school.example")
    done = admin.sign_in()
    assert 'data-lti-close="after-reading"' in done.get_data(as_text=True)
    approval = approval_of(admin.store, admin.rid)
    assert approval["terms"].email == "signer@school.example"
    assert approval["terms"].account_id is None
    assert approval["account"].email == "admin@school.example"


def test_a_newer_terms_version_must_be_accepted_again(gated, admin_of, simulator):
    app_v1 = gated(gates=("terms", "signin"))
    admin = admin_of(app_v1)
    admin.start()
    admin.accept_terms()
    assert [t.version for t in admin.store.terms_for(admin.rid)] == ["1"]
    app_v2 = gated(gates=("terms", "signin"), version="2")
    admin.app, admin.client = app_v2, app_v2.test_client()
    admin.store = app_v2.extensions["gatehouse.store"]
    response = admin.get(admin.resume_path, follow_redirects=True)
    assert response.request.path.endswith("/terms")
    assert "Version 2" in response.get_data(as_text=True)
    assert admin.registration.state == "pending"
    admin.accept_terms()
    done = admin.sign_in()
    assert 'data-lti-close="after-reading"' in done.get_data(as_text=True)
    assert approval_of(admin.store, admin.rid)["terms"].version == "2"


def test_already_signed_in_admin_continues_in_one_click(gated, admin_of):
    app = gated(gates=("signin",))
    admin = admin_of(app)
    admin.start()
    admin.sign_in()
    assert admin.registration.state == "completed"
    # A second registration in the same browser session.
    admin.sim = admin.sim  # same LMS, new token
    admin.start()
    page = admin.get(f"/lti/register/{admin.rid}/signin")
    assert "Continue as admin@school.example" in page.get_data(as_text=True)
    done = admin.post(
        f"/lti/register/{admin.rid}/signin",
        {"action": "continue", **csrf(page, "continue-")},
        follow_redirects=True,
    )
    assert 'data-lti-close="after-reading"' in done.get_data(as_text=True)


def test_self_sign_up_when_allowed(gated, admin_of):
    admin = admin_of(gated(gates=("signin",), allow_signup=True))
    admin.start()
    page = admin.get(f"/lti/register/{admin.rid}/signup")
    assert page.status_code == 200
    short = admin.post(
        f"/lti/register/{admin.rid}/signup",
        {
            "name": "Bo",
            "email": "bo@school.example",
            "password": "short",
            "confirm": "short",
            **csrf(page),
        },
    )
    assert "Use at least 10 characters." in short.get_data(as_text=True)
    taken = admin.post(
        f"/lti/register/{admin.rid}/signup",
        {
            "name": "Bo",
            "email": "ADMIN@school.example",
            "password": "long enough pw",
            "confirm": "long enough pw",
            **csrf(page),
        },
    )
    assert "exists; sign in" in taken.get_data(as_text=True)
    done = admin.post(
        f"/lti/register/{admin.rid}/signup",
        {
            "name": "Bo",
            "email": "bo@school.example",
            "password": "long enough pw",
            "confirm": "long enough pw",
            **csrf(page),
        },
        follow_redirects=True,
    )
    assert 'data-lti-close="after-reading"' in done.get_data(as_text=True)
    bo = admin.store.find_account_by_email("bo@school.example")
    assert admin.registration.account_id == bo.id
    assert bo.password_hash.startswith("scrypt:")


def test_sign_up_is_off_by_default(gated, admin_of):
    admin = admin_of(gated(gates=("signin",)))
    admin.start()
    assert admin.get(f"/lti/register/{admin.rid}/signup").status_code == 404
    assert "Create one" not in admin.get(f"/lti/register/{admin.rid}/signin").get_data(as_text=True)


def test_forms_without_a_csrf_token_are_refused_with_the_new_window_way_out(gated, admin_of):
    admin = admin_of(gated())
    admin.start()
    response = admin.post(
        f"/lti/register/{admin.rid}/signin",
        {"email": "admin@school.example", "password": "correct horse battery"},
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Your browser blocked this form" in text
    assert f'data-window-url="/lti/register/{admin.rid}"' in text
    assert admin.registration.account_id is None


def test_every_gate_form_refuses_a_post_without_its_csrf_token(gated, admin_of):
    app = gated(allow_signup=True)
    admin = admin_of(app)
    admin.start()
    admin.sign_in()
    at_terms = admin.rid  # waits at the terms gate
    admin.start()
    at_signin = admin.rid  # waits at sign-in, with the admin signed in from the first one
    signin_page = admin.get(f"/lti/register/{at_signin}/signin").get_data(as_text=True)
    assert "Continue as admin@school.example" in signin_page
    # Each POST is complete and valid but for the missing token, so only CSRF can refuse it.
    attempts = {
        "gates.signin": [
            (
                f"/lti/register/{at_signin}/signin",
                {"email": "admin@school.example", "password": "correct horse battery"},
            ),
            (f"/lti/register/{at_signin}/signin", {"action": "continue"}),  # "Continue as"
        ],
        "gates.signup": [
            (
                f"/lti/register/{at_signin}/signup",
                {
                    "name": "Eve",
                    "email": "eve@school.example",
                    "password": "long enough pw",
                    "confirm": "long enough pw",
                },
            ),
        ],
        "gates.terms": [
            (
                f"/lti/register/{at_terms}/terms",
                {"accept": "y", "signer_name": "Eve", "email": "eve@school.example"},
            ),
        ],
    }
    # Every form route of the gates is here: a new one must join this walk. The Stripe webhook
    # is exempt (no cookies; its signature is checked instead, see test_payments).
    form_routes = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("gates.") and "POST" in rule.methods
    }
    assert form_routes - {"gates.stripe_webhook"} == set(attempts)
    before = dump(admin.store)
    for endpoint, posts in attempts.items():
        for path, data in posts:
            response = admin.post(path, data)
            assert response.status_code == 400, (endpoint, data)
            assert "Your browser blocked this form" in response.get_data(as_text=True)
    assert dump(admin.store) == before
    assert admin.store.get_registration(at_signin).account_id is None
    assert admin.store.terms_for(at_terms) == []
    assert admin.store.find_account_by_email("eve@school.example") is None
    assert admin.sim.records == []


def test_a_broken_lms_fails_before_anyone_signs_in(gated, simulator):
    app = gated()
    sim = simulator("generic", faults={"no_rs256"})
    client = app.test_client()
    response = client.get(
        sim.initiation_url(BASE + "/lti/register").replace(BASE, ""), base_url=BASE
    )
    assert response.status_code == 502
    assert "RS256" in response.get_data(as_text=True)
    (attempt,) = app.extensions["gatehouse.store"].list_registrations()[0]
    assert attempt.state == "failed"


def test_an_lms_refusal_after_the_gates_is_shown_and_recorded(gated, admin_of, simulator):
    app = gated(gates=("signin",))
    admin = admin_of(app)
    admin.sim = simulator("canvas", faults={"refuse_registration"})
    admin.start()
    response = admin.sign_in()
    assert response.status_code == 502
    assert "developer key policy" in response.get_data(as_text=True)
    assert admin.registration.state == "failed"
    again = admin.get(admin.resume_path)
    assert again.status_code == 409
    assert "Your LMS answered with an error" in again.get_data(as_text=True)
    assert admin.store.list_platforms()[0] == []


def test_unknown_and_expired_ids_say_to_start_again(gated, admin_of):
    admin = admin_of(gated())
    unknown = admin.get("/lti/register/not-a-real-id")
    assert unknown.status_code == 404
    assert "Start the registration again from your LMS" in unknown.get_data(as_text=True)
    admin.start()
    run_sql(
        admin.store,
        "UPDATE registrations SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
        [admin.rid],
    )
    for path in (admin.resume_path, f"/lti/register/{admin.rid}/signin"):
        expired = admin.get(path)
        assert expired.status_code == 410
        assert "expired" in expired.get_data(as_text=True)
    assert admin.registration.state == "expired"
    assert admin.store.get_pending_secret(admin.rid) is None


def test_an_attempt_that_expires_while_the_last_gate_is_sent_ends_expired(
    gated, admin_of, monkeypatch
):
    app = gated(gates=("signin",))
    admin = admin_of(app)
    admin.start()
    claim = admin.store.claim_for_registering

    def claim_after_the_deadline(reg_id, *args, **kwargs):
        # The page was loaded in time; the clock runs out before the attempt is claimed.
        run_sql(
            admin.store,
            "UPDATE registrations SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
            [reg_id],
        )
        return claim(reg_id, *args, **kwargs)

    monkeypatch.setattr(admin.store, "claim_for_registering", claim_after_the_deadline)
    response = admin.sign_in()
    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
    assert admin.registration.state == "expired"
    assert admin.sim.records == []
    actions = [e.action for e in admin.store.list_audit(limit=50, subject_id=admin.rid)[0]]
    assert "registration.failed" not in actions, actions


def test_status_endpoint_reports_progress(gated, admin_of):
    admin = admin_of(gated())
    admin.start()
    status = admin.get(f"/lti/register/{admin.rid}/status").get_json()
    assert status == {
        "state": "pending",
        "next": "signin",
        "payment": None,
        "payment_session": None,
        "url": f"/lti/register/{admin.rid}",
    }
    admin.sign_in()
    assert admin.get(f"/lti/register/{admin.rid}/status").get_json()["next"] == "terms"
    assert admin.get("/lti/register/nope/status").status_code == 404


def test_session_cookie_is_made_for_a_cross_site_frame(gated, admin_of):
    admin = admin_of(gated())
    admin.start()
    response = admin.get(f"/lti/register/{admin.rid}/signin")
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie and "Partitioned" in cookie
    assert "HttpOnly" in cookie
    assert "frame-ancestors https: http:" in response.headers["Content-Security-Policy"]
    assert admin.get(f"/lti/register/{admin.rid}/cookies").get_json() == {"ok": True}


def test_a_response_without_a_session_sets_no_cookie_but_varies_on_it(gated, admin_of):
    client = gated().test_client()
    # No session: Flask-Login still looks into it, so a cache must tell browsers apart.
    response = client.get("/lti/keys")
    assert "Set-Cookie" not in response.headers
    assert "Cookie" in response.vary
    # A page that writes the session still sets its cookie, and varies on it too.
    admin = admin_of(gated())
    admin.start()
    page = admin.get(f"/lti/register/{admin.rid}/signin")
    assert "gatehouse_session=" in page.headers["Set-Cookie"]
    assert "Cookie" in page.vary


def test_plain_http_development_relaxes_secure(gated, admin_of):
    app = gated()
    response = app.test_client().get("/lti/register/x/cookies", base_url="http://tool.test")
    assert response.get_json() == {"ok": False}
    admin = admin_of(app)
    admin.start()
    page = app.test_client().get(f"/lti/register/{admin.rid}/signin", base_url="http://tool.test")
    cookie = page.headers["Set-Cookie"]
    assert "Secure" not in cookie and "SameSite=Lax" in cookie


def test_plain_http_in_production_keeps_secure_and_says_why_once(
    gated, admin_of, make_app, terms_file, caplog
):
    # A registration started where the test LMS is allowed, then served by a production app
    # (allow_insecure_platforms off) that a TLS proxy reaches over plain http.
    admin = admin_of(gated())
    admin.start()
    production = make_app(
        {
            "security": {"allow_insecure_platforms": False},
            "registration": {"gates": ["signin", "terms"]},
            "gates": {"terms": {"version": "1", "path": str(terms_file)}},
            "trusted_proxies": 1,
        }
    )
    client = production.test_client()
    for _ in range(2):
        page = client.get(f"/lti/register/{admin.rid}/signin", base_url="http://tool.example")
        assert page.status_code == 200
        cookie = page.headers["Set-Cookie"]
        assert "; Secure" in cookie and "SameSite=None" in cookie and "Partitioned" in cookie
    warnings = [
        r.getMessage() for r in caplog.records if "arrived over plain http" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "tool.example" in warnings[0]
    assert "trusted_proxies" in warnings[0] and "base_url" in warnings[0]
    # Behind the trusted proxy, the forwarded scheme counts: no warning, same cookie.
    caplog.clear()
    forwarded = production.test_client().get(
        f"/lti/register/{admin.rid}/signin",
        base_url="http://tool.example",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
    )
    assert "; Secure" in forwarded.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in forwarded.headers
    assert not [r for r in caplog.records if "arrived over plain http" in r.getMessage()]


def test_configured_frame_ancestors(gated, make_app):
    app = make_app({"security": {"frame_ancestors": ["https://*.instructure.com"]}})
    policy = app.test_client().get("/lti/register").headers["Content-Security-Policy"]
    assert policy.endswith("frame-ancestors https://*.instructure.com")


def test_user_create_command(database_url, monkeypatch, runner):
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(
        main,
        [
            "user",
            "create",
            "--email",
            "Owner@Tool.example",
            "--password",
            "a long password",
            "--name",
            "Owner",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Created account owner@tool.example" in result.output
    # Asking on a terminal: tests/test_cli_user.py, under a real pseudo-terminal.
    piped = runner.invoke(
        main,
        ["user", "create", "--email", "second@tool.example", "--password-stdin"],
        input="another long one\n",
    )
    assert piped.exit_code == 0, piped.output
    assert "Created account second@tool.example" in piped.output
    again = runner.invoke(
        main, ["user", "create", "--email", "owner@tool.example", "--password", "a long password"]
    )
    assert again.exit_code == 1 and "already exists" in again.output
    short = runner.invoke(
        main, ["user", "create", "--email", "x@tool.example", "--password", "short"]
    )
    assert short.exit_code == 2 and "at least 10 characters" in short.output


def test_a_gated_registration_started_on_one_instance_completes_on_another(gated, admin_of):
    # Two app instances on one database, as two dynos behind a router: the admin's requests
    # land on either, so state, the held LMS token and the session must all be shared.
    first, second = gated(), gated()
    assert first.extensions["gatehouse.store"] is not second.extensions["gatehouse.store"]
    admin = admin_of(first)
    admin.start()
    assert "Step 2 of 2: Terms" in admin.sign_in().get_data(as_text=True)
    assert admin.sim.records == []
    cookie = admin.client.get_cookie("gatehouse_session")
    admin.client = second.test_client()
    admin.client.set_cookie("gatehouse_session", cookie.value)
    admin.store = second.extensions["gatehouse.store"]
    done = admin.accept_terms()
    assert 'data-lti-close="after-reading"' in done.get_data(as_text=True)
    assert admin.sim.posts_for(admin.grant.token) == 1
    for store in (first.extensions["gatehouse.store"], admin.store):
        registration = store.get_registration(admin.rid)
        assert registration.state == "completed"
        (terms,) = store.terms_for(admin.rid)
        assert (terms.version, terms.signer_name) == ("1", "Ada Admin")
        (platform,) = store.list_platforms()[0]
        assert platform.id == registration.platform_id


def test_an_openid_identity_joins_only_a_verified_non_owner_account(make_app):
    from app.domain.accounts import OidcLinkRefused, asserts_verified, oidc_account

    store = make_app().extensions["gatehouse.store"]
    issuer = "https://idp.example"
    local = store.create_account("ada@school.example", "Ada", hash_password("a long password"))
    owner = store.create_account("owner@tool.example", "Owner", hash_password("a long password"))
    store.set_owner(owner.id, True)

    for email, verified, reason in [
        ("ADA@school.example", False, "unverified"),
        ("owner@tool.example", True, "owner"),
    ]:
        with pytest.raises(OidcLinkRefused) as refused:
            oidc_account(store, issuer, "intruder", email, "Intruder", verified)
        assert refused.value.reason == reason
    assert store.find_oidc_account(issuer, "intruder") is None
    assert store.get_account(local.id).oidc_subject is None
    assert store.get_account(owner.id).oidc_subject is None

    joined = oidc_account(store, issuer, "ada-1", "ada@school.example", None, True)
    assert (joined.id, joined.oidc_issuer, joined.oidc_subject) == (local.id, issuer, "ada-1")
    assert oidc_account(store, issuer, "ada-1", "changed@school.example", None, False).id == (
        local.id
    )  # a known identity is who it was, whatever its e-mail says now
    with pytest.raises(OidcLinkRefused) as taken:
        oidc_account(store, issuer, "ada-2", "ada@school.example", None, True)
    assert taken.value.reason == "linked"

    new = oidc_account(store, issuer, "bo", "bo@school.example", "Bo", False)
    assert (new.email, new.oidc_subject, new.password_hash) == ("bo@school.example", "bo", None)
    assert [
        asserts_verified({"email_verified": v})
        for v in (True, "true", "True", False, "false", None, 1)
    ] == [True, True, True, False, False, False, False]
    assert asserts_verified({}) is False
