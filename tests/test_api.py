"""The bearer-key API: keys, external pre-approval, platforms, deployments, invitations,
issuer lists and signed notifications, against real simulated LMSes."""

import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from support.postgres import dump, rows_of, run_sql
from werkzeug.wrappers import Request, Response

from app.cli import main
from app.domain import apikeys
from app.testing import LoopbackServer

BASE = "https://localhost"


@pytest.fixture
def api(app):
    """A test client that sends a freshly created bearer key."""
    store = app.extensions["gatehouse.store"]
    _record, key = apikeys.create(store, "tests")

    class Client:
        def __init__(self):
            self.client = app.test_client()
            self.headers = {"Authorization": f"Bearer {key}"}
            self.key = key

        def __getattr__(self, method):
            def call(path, **kwargs):
                headers = {**self.headers, **kwargs.pop("headers", {})}
                return getattr(self.client, method)(path, base_url=BASE, headers=headers, **kwargs)

            return call

    return Client()


MANUAL = {
    "url": "https://lms.example.edu",
    "clientId": "client-1",
    "name": "Example LMS",
    "authenticationEndpoint": "https://lms.example.edu/auth",
    "accesstokenEndpoint": "https://lms.example.edu/token",
    "authConfig": {"method": "JWK_SET", "key": "https://lms.example.edu/jwks"},
}


def assert_envelope(response, status, message):
    assert response.status_code == status
    body = response.get_json()
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert body["details"]["message"] == message
    assert isinstance(body["details"]["description"], str)
    return body


# Keys


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer nope", "Basic abc", "Bearer gh_0000_secret", "bearer x"]
)
def test_missing_or_wrong_key_is_401_with_the_envelope(client, header):
    headers = {"Authorization": header} if header else {}
    for path in ("/admin/platforms", "/api/platforms", "/api/registrations/x"):
        response = client.get(path, headers=headers)
        body = assert_envelope(response, 401, "INVALID_LTIK_AUTH_AUTHORIZATION_HEADER")
        assert body == {
            "status": 401,
            "error": "Unauthorized",
            "details": {
                "message": "INVALID_LTIK_AUTH_AUTHORIZATION_HEADER",
                "description": "Invalid API key",
            },
        }


def test_environment_key_is_accepted(make_app, monkeypatch):
    monkeypatch.setenv("GATEHOUSE_API_KEY", "bootstrap-key-123")
    client = make_app().test_client()
    ok = client.get("/admin/platforms", headers={"Authorization": "Bearer bootstrap-key-123"})
    assert ok.status_code == 200 and ok.get_json() == {"platforms": []}
    wrong = client.get("/admin/platforms", headers={"Authorization": "Bearer bootstrap-key-12"})
    assert wrong.status_code == 401


def test_keys_are_stored_only_as_hashes_and_can_be_revoked(api, store):
    assert api.get("/admin/platforms").status_code == 200
    stored = dump(store)
    secret = api.key.split("_", 2)[2]
    assert api.key not in stored and secret not in stored
    (key,) = store.list_api_keys()[0]
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert key.last_used_at is not None
    assert api.key.startswith("gh_")
    store.revoke_api_key(key.id)
    assert api.get("/admin/platforms").status_code == 401


def test_api_key_commands(database_url, monkeypatch, runner):
    monkeypatch.setenv("DATABASE_URL", database_url)
    created = runner.invoke(main, ["api-key", "create", "--name", "billing back end"])
    assert created.exit_code == 0, created.output
    full = created.output.strip().splitlines()[-1]
    assert full.startswith("gh_")
    key_id = full.split("_")[1]
    listing = runner.invoke(main, ["api-key", "list"]).output
    assert key_id in listing and "billing back end" in listing and full not in listing
    assert runner.invoke(main, ["api-key", "revoke", key_id]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["api-key", "list"]).output
    again = runner.invoke(main, ["api-key", "revoke", key_id])
    assert again.exit_code == 1


def test_unknown_api_paths_answer_the_envelope(api):
    assert_envelope(api.get("/api/nowhere"), 404, "NOT_FOUND")
    assert_envelope(api.delete("/admin/settings"), 405, "METHOD_NOT_ALLOWED")


# Platforms and deployments


def test_manual_platform_lifecycle(api, store):
    created = api.post("/admin/platforms", json=MANUAL)
    assert created.status_code == 200
    platform = created.get_json()
    assert platform["url"] == MANUAL["url"] and platform["clientId"] == "client-1"
    assert platform["authConfig"] == MANUAL["authConfig"]
    assert platform["authorizationServer"] == MANUAL["accesstokenEndpoint"]
    assert platform["active"] is False
    assert platform["publicKey"].startswith("-----BEGIN PUBLIC KEY-----")
    assert {"familyCode", "version", "scopes", "deployments", "createdAt"} <= set(platform)
    assert platform["invitationId"] is None  # registered by hand, not through a link
    pid = platform["id"]

    assert_envelope(
        api.post("/admin/platforms", json=MANUAL), 409, "URL_CLIENT_ID_COMBINATION_ALREADY_EXISTS"
    )
    assert api.get(f"/api/platforms/{pid}").get_json()["id"] == pid
    listed = api.get(
        "/admin/platforms", query_string={"url": MANUAL["url"], "clientId": "client-1"}
    )
    assert [p["id"] for p in listed.get_json()["platforms"]] == [pid]
    assert api.get("/admin/platforms", query_string={"clientId": "x"}).get_json() == {
        "platforms": []
    }
    assert [
        p["id"]
        for p in api.get("/admin/platforms", query_string={"id": pid}).get_json()["platforms"]
    ] == [pid]

    pem = "-----BEGIN PUBLIC KEY-----"
    updated = api.put(
        f"/admin/platforms/{pid}",
        json={"name": "Renamed", "authConfig": {"method": "RSA_KEY", "key": pem}},
    )
    assert updated.get_json()["name"] == "Renamed"
    assert updated.get_json()["authConfig"]["method"] == "RSA_KEY"
    assert updated.get_json()["url"] == MANUAL["url"]

    assert api.post(f"/admin/platforms/{pid}/activate").get_json()["active"] is True
    assert store.get_platform(pid).active is True
    assert api.post(f"/api/platforms/{pid}/deactivate").get_json()["active"] is False

    assert api.delete(f"/admin/platforms/{pid}").status_code == 204
    assert_envelope(api.get(f"/admin/platforms/{pid}"), 404, "PLATFORM_NOT_FOUND")
    assert_envelope(api.delete(f"/admin/platforms/{pid}"), 404, "PLATFORM_NOT_FOUND")
    actions = [entry.action for entry in store.list_audit()[0]]
    for action in (
        "platform.created",
        "platform.updated",
        "platform.activated",
        "platform.deactivated",
        "platform.deleted",
    ):
        assert action in actions


@pytest.mark.parametrize(
    ("change", "message", "parameter"),
    [
        ({"url": None}, "MISSING_PARAMETER", "url"),
        ({"clientId": ""}, "MISSING_PARAMETER", "clientId"),
        ({"url": "not a url"}, "INVALID_PARAMETER", "url"),
        ({"name": 5}, "INVALID_PARAMETER", "name"),
        (
            {"authConfig": {"method": "PASSWORD", "key": "x"}},
            "INVALID_PARAMETER",
            "authConfig.method",
        ),
        ({"authConfig": {"method": "JWK_SET"}}, "MISSING_PARAMETER", "authConfig.key"),
        ({"active": "yes"}, "INVALID_PARAMETER", "active"),
    ],
)
def test_platform_validation_names_the_field(api, change, message, parameter):
    body = {**MANUAL, **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = assert_envelope(api.post("/admin/platforms", json=body), 400, message)
    assert response["details"]["parameter"] == parameter


def test_body_must_be_a_json_object(api):
    assert_envelope(
        api.post("/admin/platforms", data="[1]", headers={"Content-Type": "application/json"}),
        400,
        "INVALID_BODY",
    )


@pytest.mark.parametrize(
    "path",
    ["/admin/platforms", "/api/registrations/nope/complete"],
)
def test_deeply_nested_json_is_refused_with_invalid_body_not_a_crash(api, path):
    deep = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = api.post(path, data=deep, headers={"Content-Type": "application/json"})
    body = assert_envelope(response, 400, "INVALID_BODY")
    assert "nests objects and arrays more than 32 levels deep" in body["details"]["description"]
    # 32 levels are still an ordinary body, refused (or not) for what it says.
    shallow = '{"name": ' + "[" * 31 + "]" * 31 + "}"
    again = api.post(path, data=shallow, headers={"Content-Type": "application/json"})
    assert again.get_json()["details"]["message"] != "INVALID_BODY"


def test_a_jwk_nested_too_deep_is_a_named_400(api):
    key = '{"kty": ' + "[" * 100_000 + "]" * 100_000 + "}"
    body = {**MANUAL, "authConfig": {"method": "JWK_KEY", "key": key}}
    body.pop("jwksUri", None)
    response = api.post("/admin/platforms", json=body)
    assert_envelope(response, 400, "INVALID_PARAMETER")


def test_deployments(api, store):
    pid = api.post("/admin/platforms", json=MANUAL).get_json()["id"]
    added = api.post(f"/admin/platforms/{pid}/deployments", json={"deploymentId": "d-1"})
    assert added.status_code == 201
    assert added.get_json()["id"] == "d-1" and added.get_json()["active"] is True
    again = api.post(
        f"/admin/platforms/{pid}/deployments", json={"deploymentId": "d-1", "active": False}
    )
    assert again.status_code == 200 and again.get_json()["active"] is False
    api.post(f"/api/platforms/{pid}/deployments", json={"deploymentId": "17:abc/def"})
    listed = api.get(f"/admin/platforms/{pid}/deployments").get_json()["deployments"]
    assert [(d["id"], d["active"]) for d in listed] == [("d-1", False), ("17:abc/def", True)]
    assert api.get(f"/admin/platforms/{pid}").get_json()["deployments"] == listed
    assert api.delete(f"/admin/platforms/{pid}/deployments/17:abc/def").status_code == 204
    assert_envelope(
        api.delete(f"/admin/platforms/{pid}/deployments/nope"), 404, "DEPLOYMENT_NOT_FOUND"
    )
    assert_envelope(
        api.post(f"/admin/platforms/{pid}/deployments", json={}), 400, "MISSING_PARAMETER"
    )


def test_settings_expose_the_deployment_policy(make_app):
    app = make_app({"registration": {"unknown_deployments": "reject"}})
    _record, key = apikeys.create(app.extensions["gatehouse.store"], "t")
    body = (
        app.test_client()
        .get("/admin/settings", base_url=BASE, headers={"Authorization": f"Bearer {key}"})
        .get_json()
    )
    assert body["unknownDeployments"] == "reject"
    assert body["registrationUrl"] == f"{BASE}/lti/register"


def test_registered_platforms_show_in_the_api(live, simulator, api):
    sim = simulator("canvas")
    report = sim.register(live.register_url)
    (platform,) = api.get("/admin/platforms").get_json()["platforms"]
    assert platform["url"] == sim.issuer and platform["clientId"] == report.client_id
    assert platform["familyCode"] == "canvas"
    assert platform["authConfig"]["method"] == "JWK_SET"
    assert [d["id"] for d in platform["deployments"]] == [report.deployment_id]
    assert platform["registrationId"]


# External pre-approval


class Owner:
    """The tool owner's own page and back end, calling Gatehouse's API over real HTTP."""

    def __init__(self, app, simulator, profile="moodle", gates=()):
        self.app = app
        self.store = app.extensions["gatehouse.store"]
        _record, self.key = apikeys.create(self.store, "owner back end")
        self.server = LoopbackServer(app, "localhost")
        self.sim = simulator(profile)

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)

    def start(self):
        """The LMS opens Gatehouse; Gatehouse sends the frame to the owner's page."""
        url, self.grant = self.sim.initiate(self.server.url + "/lti/register")
        response = requests.get(url, timeout=30, allow_redirects=False)
        assert response.status_code == 303
        resume = requests.get(
            self.server.url + response.headers["Location"], timeout=30, allow_redirects=False
        )
        return resume

    def call(self, method, path, **kwargs):
        return requests.request(
            method,
            self.server.url + path,
            timeout=30,
            headers={"Authorization": f"Bearer {self.key}"},
            **kwargs,
        )


def test_pre_approval_end_to_end(make_app, simulator):
    app = make_app({"registration": {"pre_approval_url": "https://owner.example/approve?x=1"}})
    with Owner(app, simulator) as owner:
        frame = owner.start()
        assert frame.status_code == 302
        location = urlsplit(frame.headers["Location"])
        assert location.netloc == "owner.example" and location.path == "/approve"
        query = parse_qs(location.query)
        assert query["x"] == ["1"]
        (rid,) = query["registrationId"]
        assert owner.sim.records == []  # nothing sent to the LMS yet

        info = owner.call("GET", f"/api/registrations/{rid}").json()
        assert info["url"] == owner.sim.issuer
        assert info["familyCode"] == "moodle"
        assert info["version"].startswith("4.5")
        assert "openid" in info["supportedScopes"]
        assert {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]} in info[
            "supportedMessages"
        ]
        raw = owner.call("GET", f"/api/registrations/{rid}", params={"raw": "true"}).json()
        assert raw["registrationToken"] == owner.grant.token
        assert raw["openIdConfiguration"]["issuer"] == owner.sim.issuer

        done = owner.call(
            "POST",
            f"/api/registrations/{rid}/complete",
            json={
                "platformName": "Springfield Moodle",
                "autoActivate": True,
                "messages": [
                    {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea", "NotThere"]}
                ],
            },
        )
        assert done.status_code == 200, done.text
        body = done.json()
        assert "org.imsglobal.lti.close" in body["html"]
        platform = owner.store.get_platform(body["platformId"])
        assert platform.name == "Springfield Moodle" and platform.active is True
        sent = owner.sim.records[0].body["https://purl.imsglobal.org/spec/lti-tool-configuration"]
        assert sent["messages"] == [
            {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]}
        ]

        # The owner's page sends the browser back to Gatehouse's origin to close the dialog.
        redirect_url = body["redirectUrl"]
        assert redirect_url.startswith(owner.server.url + f"/lti/register/{rid}/done?token=")
        close = requests.get(redirect_url, timeout=30)
        # A new Moodle tool waits for Activate in Moodle: the page holds the dialog until Done.
        assert close.status_code == 200 and 'data-lti-close="after-reading"' in close.text
        assert requests.get(redirect_url, timeout=30).status_code == 410

        attempt = owner.call("GET", f"/admin/registrations/{rid}").json()
        assert attempt["state"] == "completed"
        assert attempt["approvedByApiKey"] == "owner back end"  # the key that completed it
        assert attempt["approvedBy"] is None  # no account passed a gate

        gone = owner.call("POST", f"/api/registrations/{rid}/complete", json={})
        assert gone.status_code == 410 and gone.json()["details"]["message"] == "REGISTRATION_GONE"
        assert owner.call("GET", f"/api/registrations/{rid}").status_code == 410
        assert owner.sim.posts_for(owner.grant.token) == 1


def test_pre_approval_unknown_expired_and_refused(make_app, simulator):
    app = make_app({"registration": {"pre_approval_url": "https://owner.example/approve"}})
    with Owner(app, simulator, profile="canvas") as owner:
        assert owner.call("GET", "/api/registrations/nope").status_code == 404
        rid = parse_qs(urlsplit(owner.start().headers["Location"]).query)["registrationId"][0]
        owner.sim.faults = frozenset({"refuse_registration"})
        refused = owner.call("POST", f"/api/registrations/{rid}/complete")
        assert refused.status_code == 502
        details = refused.json()["details"]
        assert details["message"] == "PLATFORM_REGISTRATION_FAILED"
        assert details["lmsStatus"] == 422 and "developer key policy" in details["lmsBody"]
        assert details["externalError"] is True
        assert owner.store.get_registration(rid).state == "failed"

        rid = parse_qs(urlsplit(owner.start().headers["Location"]).query)["registrationId"][0]
        run_sql(
            owner.store,
            "UPDATE registrations SET expires_at = '2000-01-01T00:00:00Z' WHERE id = ?",
            [rid],
        )
        expired = owner.call("GET", f"/api/registrations/{rid}")
        assert expired.status_code == 410
        assert expired.json()["details"]["state"] == "expired"


def test_an_attempt_that_expires_between_reading_and_completing_ends_expired(
    make_app, simulator, monkeypatch
):
    app = make_app({"registration": {"pre_approval_url": "https://owner.example/approve"}})
    with Owner(app, simulator) as owner:
        rid = parse_qs(urlsplit(owner.start().headers["Location"]).query)["registrationId"][0]
        assert owner.call("GET", f"/api/registrations/{rid}").status_code == 200
        claim = owner.store.claim_for_registering

        def claim_after_the_deadline(reg_id, *args, **kwargs):
            # The clock runs out after the API checked the attempt, before it is claimed.
            run_sql(
                owner.store,
                "UPDATE registrations SET expires_at = '2000-01-01T00:00:00Z' WHERE id = ?",
                [reg_id],
            )
            return claim(reg_id, *args, **kwargs)

        monkeypatch.setattr(owner.store, "claim_for_registering", claim_after_the_deadline)
        late = owner.call("POST", f"/api/registrations/{rid}/complete", json={})
        assert late.status_code == 410
        body = late.json()
        assert body["status"] == 410 and body["details"]["message"] == "REGISTRATION_GONE"
        assert body["details"]["state"] == "expired"
        assert "expired" in body["details"]["description"]
        assert owner.store.get_registration(rid).state == "expired"
        assert owner.sim.posts_for(owner.grant.token) == 0
        assert owner.call("GET", f"/admin/registrations/{rid}").json()["state"] == "expired"


def test_pre_approval_body_is_validated(make_app, simulator):
    app = make_app({"registration": {"pre_approval_url": "https://owner.example/approve"}})
    with Owner(app, simulator) as owner:
        rid = parse_qs(urlsplit(owner.start().headers["Location"]).query)["registrationId"][0]
        for body, parameter in (
            ({"autoActivate": "yes"}, "autoActivate"),
            ({"messages": [{"type": "Nope"}]}, "messages[0]"),
            ({"platformName": 3}, "platformName"),
        ):
            bad = owner.call("POST", f"/api/registrations/{rid}/complete", json=body)
            assert bad.status_code == 400
            assert bad.json()["details"]["parameter"] == parameter
        assert owner.sim.records == []


def test_gates_first_then_the_owners_page(make_app, simulator):
    from app.web.login import hash_password

    app = make_app(
        {"registration": {"gates": ["signin"], "pre_approval_url": "https://owner.example/approve"}}
    )
    store = app.extensions["gatehouse.store"]
    store.create_account("a@b.example", "A", hash_password("correct horse battery"))
    with Owner(app, simulator) as owner:
        frame = owner.start()
        assert frame.headers["Location"].endswith("/signin")
        rid = frame.headers["Location"].split("/")[-2]
        early = owner.call("GET", f"/api/registrations/{rid}")
        assert early.status_code == 409 and early.json()["details"]["gate"] == "signin"
        store.set_registration_account(rid, store.find_account_by_email("a@b.example").id)
        onward = requests.get(
            owner.server.url + f"/lti/register/{rid}", timeout=30, allow_redirects=False
        )
        assert onward.headers["Location"] == f"https://owner.example/approve?registrationId={rid}"
        assert owner.call("POST", f"/api/registrations/{rid}/complete").status_code == 200


# Who may register


@pytest.mark.parametrize(
    ("settings", "allowed"),
    [
        ({"allowed_issuers": ["http://127.0.0.1:*"]}, True),
        ({"allowed_issuers": ["*.instructure.com"]}, False),
        ({"blocked_issuers": ["127.0.0.1"]}, False),
        ({"blocked_issuers": ["*.example.com"]}, True),
    ],
)
def test_issuer_lists(make_app, simulator, settings, allowed):
    app = make_app({"registration": settings})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("generic")
        response = requests.get(sim.initiation_url(server.url + "/lti/register"), timeout=30)
    store = app.extensions["gatehouse.store"]
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert "does not accept this registration" in response.text
        assert sim.records == [] and store.list_platforms()[0] == []


def test_invitation_links(make_app, simulator):
    app = make_app({"registration": {"require_invitation": True}})
    store = app.extensions["gatehouse.store"]
    _record, key = apikeys.create(store, "t")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    created = client.post(
        "/admin/invitations",
        base_url=BASE,
        headers=headers,
        json={"name": "Springfield", "uses": 1, "expiresAt": "2099-01-01T00:00:00Z"},
    )
    assert created.status_code == 201
    invitation = created.get_json()
    assert invitation["url"] == f"{BASE}/lti/register?invite={invitation['code']}"
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("moodle")
        bare = requests.get(sim.initiation_url(server.url + "/lti/register"), timeout=30)
        assert bare.status_code == 403 and "invitation" in bare.text
        invited = f"{server.url}/lti/register?invite={invitation['code']}"
        report = sim.register(invited)
        assert report.ok, report.render()
        used_up = requests.get(sim.initiation_url(invited), timeout=30)
        assert used_up.status_code == 403 and "not valid any more" in used_up.text
    platform = store.find_platform(sim.issuer, report.client_id)
    assert platform.invitation_id == invitation["id"]
    for prefix in ("/admin", "/api"):
        (listed,) = client.get(f"{prefix}/platforms", base_url=BASE, headers=headers).get_json()[
            "platforms"
        ]
        assert listed["id"] == platform.id and listed["invitationId"] == invitation["id"]
        one = client.get(f"{prefix}/platforms/{platform.id}", base_url=BASE, headers=headers)
        assert one.get_json()["invitationId"] == invitation["id"]
    completed = [r for r in store.list_registrations()[0] if r.state == "completed"]
    assert completed[0].invitation_id == invitation["id"]
    listed = client.get("/api/invitations", base_url=BASE, headers=headers).get_json()
    assert listed["invitations"][0]["used"] == 1
    assert listed["invitations"][0]["usable"] is False
    assert (
        client.delete(
            f"/admin/invitations/{invitation['id']}", base_url=BASE, headers=headers
        ).status_code
        == 204
    )
    bad = client.post(
        "/admin/invitations",
        base_url=BASE,
        headers=headers,
        json={"name": "x", "expiresAt": "tomorrow"},
    )
    assert bad.status_code == 400


# Notifications


class Receiver:
    """A webhook receiver on loopback that fails the first `failures` deliveries."""

    def __init__(self, failures=0):
        self.failures = failures
        self.received = []
        self.server = LoopbackServer(self.wsgi, name="webhook-receiver")

    @property
    def url(self):
        return self.server.url + "/hook"

    def wsgi(self, environ, start_response):
        request = Request(environ)
        self.received.append((dict(request.headers), request.get_data()))
        status = 500 if len(self.received) <= self.failures else 200
        return Response("ok", status)(environ, start_response)

    def wait(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received


@pytest.fixture
def receiver():
    """Start a webhook receiver on loopback; it is stopped after the test, pass or fail."""
    receiver = Receiver()
    with receiver.server:
        yield receiver


def test_signed_notifications_are_delivered_and_retried(make_app, simulator, receiver, monkeypatch):
    monkeypatch.setenv("GATEHOUSE_WEBHOOK_SECRET", "hook-secret")
    receiver.failures = 1
    # Active at once: registration.completed is then the only event.
    app = make_app(
        {"notifications": {"webhook_url": receiver.url}, "registration": {"auto_activate": True}}
    )
    store = app.extensions["gatehouse.store"]
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("generic")
        assert sim.register(server.url + "/lti/register").ok
        headers, body = receiver.wait(1)[0]
        # The first delivery failed (500): it is retried with back-off, not lost.
        run_sql(
            store,
            "UPDATE notifications SET next_attempt_at = '2000-01-01T00:00:00Z' "
            "WHERE delivered_at IS NULL",
        )
        app.extensions["gatehouse.notifier"].deliver_due()
        headers, body = receiver.wait(2)[1]
    event = json.loads(body)
    assert event["type"] == "registration.completed"
    assert event["data"]["clientId"] and event["data"]["platformId"]
    assert headers["X-Gatehouse-Event"] == "registration.completed"
    stamp, signature = (
        part.split("=", 1)[1] for part in headers["X-Gatehouse-Signature"].split(",")
    )
    expected = hmac.new(b"hook-secret", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    actions = [entry.action for entry in store.list_audit()[0]]
    assert "notification.retry" in actions and "notification.delivered" in actions
    ((delivered_at, attempts),) = rows_of(store, "SELECT delivered_at, attempts FROM notifications")
    assert delivered_at and attempts == 2


def verified_events(received, secret=b"hook-secret"):
    """Return {event type: body} of deliveries whose signature checks out (asserting it)."""
    events = {}
    for headers, body in received:
        stamp, signature = (
            part.split("=", 1)[1] for part in headers["X-Gatehouse-Signature"].split(",")
        )
        expected = hmac.new(secret, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, expected), body
        assert abs(int(stamp) - time.time()) < 60
        event = json.loads(body)
        assert headers["X-Gatehouse-Event"] == event["type"]
        assert event["id"] == f"evt_{headers['X-Gatehouse-Delivery']}"
        assert event["createdAt"].endswith("Z")
        events[event["type"]] = event
    return events


def test_every_notified_event_is_delivered_signed_with_its_payload(
    make_app, simulator, receiver, monkeypatch
):
    from app.domain.events import NOTIFIED

    monkeypatch.setenv("GATEHOUSE_WEBHOOK_SECRET", "hook-secret")
    app = make_app(
        {
            "notifications": {"webhook_url": receiver.url},
            "registration": {"auto_activate": True, "unknown_deployments": "pending"},
        }
    )
    store = app.extensions["gatehouse.store"]
    _record, key = apikeys.create(store, "billing")
    headers = {"Authorization": f"Bearer {key}"}
    with LoopbackServer(app, "localhost") as server:
        refusing = simulator("canvas", faults={"refuse_registration"})
        assert not refusing.register(server.url + "/lti/register").ok
        sim = simulator("generic")
        report = sim.register(server.url + "/lti/register")
        assert report.ok, report.render()
        platform = store.find_platform(sim.issuer, report.client_id)
        launch = sim.launch(report.client_id, deployment_id="course-42")
        assert launch.status == 403  # pending: the owner approves the new deployment first
        for action in ("deactivate", "activate"):
            answer = requests.post(
                f"{server.url}/admin/platforms/{platform.id}/{action}", headers=headers, timeout=30
            )
            assert answer.status_code == 200
        events = verified_events(receiver.wait(len(NOTIFIED)))
        base_url = server.url
    assert set(events) == set(NOTIFIED)  # a new notified event needs a case here
    failed = next(r for r in store.list_registrations()[0] if r.state == "failed")
    assert events["registration.failed"]["subject"] == {"type": "registration", "id": failed.id}
    data = events["registration.failed"]["data"]
    assert data["kind"] == "PlatformRefused" and data["lms_status"] == 422
    assert "developer key policy" in data["lms_body"] and data["detail"] == failed.error["detail"]
    completed = events["registration.completed"]
    assert completed["subject"] == {"type": "registration", "id": platform.registration_id}
    assert completed["data"] == {
        "platformId": platform.id,
        "url": sim.issuer,
        "clientId": report.client_id,
        "familyCode": platform.product_family_code,
        "created": True,
        "active": True,
    }
    for action in ("platform.deactivated", "platform.activated"):
        assert events[action]["subject"] == {"type": "platform", "id": platform.id}
        assert events[action]["data"] == {"url": sim.issuer, "clientId": report.client_id}
    # The pending deployment's launch told the owner someone waits, with the one-click page.
    waiting = events["platform.awaiting_activation"]
    assert waiting["subject"] == {"type": "platform", "id": platform.id}
    assert waiting["data"] == {
        "reason": "launch",
        "name": platform.name,
        "url": sim.issuer,
        "clientId": report.client_id,
        "familyCode": platform.product_family_code,
        "consoleUrl": f"{base_url}/console/platforms/{platform.id}",
        "deploymentId": "course-42",
    }
    discovered = events["deployment.discovered"]
    assert discovered["subject"] == {"type": "platform", "id": platform.id}
    assert discovered["data"] == {"deploymentId": "course-42", "active": False, "policy": "pending"}
    delivered = [
        e.detail["event"]
        for e in store.list_audit(limit=100)[0]
        if e.action == "notification.delivered"
    ]
    assert sorted(delivered) == sorted(NOTIFIED)


def test_webhook_needs_its_secret(make_app):
    from app.settings import ConfigError

    with pytest.raises(ConfigError, match="GATEHOUSE_WEBHOOK_SECRET"):
        make_app({"notifications": {"webhook_url": "https://hooks.example/x"}})


def test_attempts_show_their_true_state(live, simulator, api, store):
    ok = simulator("moodle")
    assert ok.register(live.register_url).ok
    broken = simulator("canvas", faults={"refuse_registration"})
    broken.register(live.register_url)
    listed = api.get("/admin/registrations").get_json()
    assert listed["total"] == 2
    failed, completed = listed["registrations"]
    assert completed["state"] == "completed" and completed["platformId"]
    assert completed["familyCode"] == "moodle" and completed["clientId"]
    assert completed["approvedByApiKey"] is None  # the LMS admin's own flow completed it
    assert failed["state"] == "failed"
    assert (
        failed["error"]["lms_status"] == 422
        and "developer key policy" in failed["error"]["lms_body"]
    )
    only = api.get("/admin/registrations", query_string={"state": "failed"}).get_json()
    assert [r["id"] for r in only["registrations"]] == [failed["id"]] and only["total"] == 1
    assert api.get(f"/admin/registrations/{failed['id']}").get_json()["state"] == "failed"
    assert_envelope(api.get("/admin/registrations/nope"), 404, "REGISTRATION_NOT_FOUND")
    assert_envelope(
        api.get("/admin/registrations", query_string={"state": "odd"}), 400, "INVALID_PARAMETER"
    )
    assert_envelope(
        api.get("/admin/registrations", query_string={"limit": "0"}), 400, "INVALID_PARAMETER"
    )
    page = api.get("/admin/registrations", query_string={"limit": 1, "offset": 1}).get_json()
    assert [r["id"] for r in page["registrations"]] == [completed["id"]]


@pytest.mark.parametrize("url", ["http://[::1", "https://lms.example.edu:99999", "//x"])
def test_malformed_urls_are_a_400_not_a_crash(api, url):
    response = api.post("/admin/platforms", json={**MANUAL, "url": url})
    assert_envelope(response, 400, "INVALID_PARAMETER")


def test_nul_characters_and_lone_surrogates_are_refused_not_a_crash(api, store):
    # PostgreSQL cannot store either; both backends answer the same.
    for name, value in (("name", r"School\u0000"), ("clientId", r"\ud800")):
        raw = json.dumps(MANUAL).replace(json.dumps(MANUAL[name]), f'"{value}"')
        response = api.post(
            "/admin/platforms", data=raw, headers={"Content-Type": "application/json"}
        )
        assert_envelope(response, 400, "INVALID_BODY")
    assert store.list_platforms()[0] == []
    pid = api.post("/admin/platforms", json=MANUAL).get_json()["id"]
    assert_envelope(api.get("/admin/platforms/a%00b"), 404, "PLATFORM_NOT_FOUND")
    assert_envelope(
        api.delete(f"/admin/platforms/{pid}/deployments/d%00"), 404, "DEPLOYMENT_NOT_FOUND"
    )
    assert_envelope(api.get("/admin/registrations/x%00"), 404, "REGISTRATION_NOT_FOUND")
    assert_envelope(api.delete("/admin/invitations/x%00"), 404, "INVITATION_NOT_FOUND")
    assert api.get("/admin/platforms", query_string={"clientId": "client-1\x00"}).get_json() == {
        "platforms": []
    }
    assert len(api.get("/admin/platforms").get_json()["platforms"]) == 1
