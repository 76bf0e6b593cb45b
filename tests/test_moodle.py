"""Gatehouse against a real Moodle 4.5.6 in real Chromium: the LMS's behaviour is the judge.

One Moodle for the whole session (tests/support/moodle.py: `../shared/lms/moodle/start.sh`,
cached in `/var/cache/gatehouse/moodle` on port 28080), Moodle's own pages driven in Debian's
Chromium, Gatehouse served for real on http://localhost:<port> (cross-site to Moodle on
127.0.0.1), and a small tool on loopback that verifies Gatehouse's hand-off tokens the way the
README tells tool authors to.
"""

import html
import json
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import expect
from support import browser as browser_rig
from support import moodle as moodle_rig
from support import wait_out_key_cache
from support.moodle import ADMIN, STUDENT, session_cookie
from werkzeug.wrappers import Request, Response

from app.domain import apikeys, keys
from app.domain.gates import approval_of
from app.testing import LoopbackServer, free_port
from app.web.login import hash_password

MISSING = moodle_rig.unavailable_reason()
if MISSING and not moodle_rig.REQUIRED:
    pytest.skip(MISSING, allow_module_level=True)

pytestmark = [
    pytest.mark.skipif(
        browser_rig.unavailable_reason() is not None,
        reason=str(browser_rig.unavailable_reason()),
    ),
    pytest.mark.sqlite_only(
        "one backend is enough against a real Moodle: what is tested here is Gatehouse's "
        "conversation with Moodle, and every storage call it makes runs on both backends "
        "elsewhere in the suite"
    ),
]

TIMEOUT = 30_000  # ms; Moodle's PHP server answers its first pages slowly
TOOL_STATE_CONFIGURED, TOOL_STATE_PENDING = 1, 2  # mdl_lti_types.state
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
ROLES = "https://purl.imsglobal.org/spec/lti/claim/roles"
CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
DIALOG = "#external-registration-template-container iframe"
# What Moodle 4.5 offers (its messages_supported): with these Gatehouse leaves nothing out, so the
# close page holds Moodle's dialog only for what the admin must do in Moodle (Activate a new tool).
MOODLE_MESSAGES = [
    {"type": "LtiResourceLinkRequest", "label": "Quizzes"},
    {"type": "LtiDeepLinkingRequest", "label": "Add a quiz", "placements": ["ContentArea"]},
]


# --- the session's Moodle and browser --------------------------------------------------------


@pytest.fixture(scope="session")
def moodle():
    """Start the real Moodle once per session (installed once, cached); stop it at the end."""
    if MISSING:  # only when GATEHOUSE_REQUIRE_MOODLE is set
        pytest.fail(f"GATEHOUSE_REQUIRE_MOODLE is set but {MISSING}", pytrace=False)
    lms = moodle_rig.Moodle(moodle_rig.cache_dir())
    try:
        lms.start()
    except moodle_rig.Unavailable as exc:
        reason, *output = exc.args
        if moodle_rig.REQUIRED:
            pytest.fail(
                f"GATEHOUSE_REQUIRE_MOODLE is set but {reason}\n{''.join(output)}", pytrace=False
            )
        pytest.skip(f"real Moodle unavailable: {reason}")
    # Earlier runs' tools would make Moodle ask "update or new?" for a reused port.
    lms.reset()
    yield lms
    lms.stop()


@pytest.fixture(scope="session")
def cookies(moodle):
    """Moodle session cookies of the admin and the student, logged in once per session."""
    found = {}

    def cookie_of(user):
        if user.username not in found:
            found[user.username] = session_cookie(moodle, user)
        return found[user.username]

    return cookie_of


@pytest.fixture
def browse(chromium, cookies):
    """Open a page in a fresh browser profile logged in to Moodle as `user`."""
    contexts = []

    def open_page(user=ADMIN):
        context = chromium.new_context()
        context.set_default_timeout(TIMEOUT)
        context.add_cookies([cookies(user)])
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


# --- Gatehouse and the tool behind it -------------------------------------------------------


class Tool:
    """A small tool on loopback that receives Gatehouse's hand-offs and verifies them as the
    README shows (joserfc, /lti/keys, iss, aud, exp, jti); deep-linking launches are answered
    through Gatehouse's POST /api/deep-linking/response.

    It is on 127.0.0.1, Moodle's site: over plain http Moodle's session cookie is SameSite=Lax
    (it sets None only over https), so a deep-linking answer posted to Moodle from another site
    would arrive without the admin's session, which a real https Moodle does not do.
    """

    def __init__(self):
        self.server = LoopbackServer(self.wsgi, host="127.0.0.1", name="moodle-test-tool")
        self.gatehouse = None  # set once Gatehouse is up (its URL is the tokens' issuer)
        self.api_key = None
        self.launches: list[dict] = []
        self.refused: list[str] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc_info):
        self.server.stop()

    @property
    def launch_url(self) -> str:
        return self.server.url + "/launch"

    def verify(self, token: str) -> dict:
        keys = KeySet.import_key_set(requests.get(f"{self.gatehouse}/lti/keys", timeout=5).json())
        claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.gatehouse},
            aud={"essential": True, "value": self.launch_url},
            leeway=30,
        )
        registry.validate(claims)
        with self._lock:
            if claims["jti"] in self._seen:
                raise ValueError("lti_token replayed")
            self._seen.add(claims["jti"])
        return claims

    def wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path == "/approve":
            return self.approve(request)(environ, start_response)
        try:
            claims = self.verify(request.args.get("lti_token", ""))
        except Exception as exc:  # noqa: BLE001 - the page says why, the test reads it
            self.refused.append(repr(exc))
            response = Response(
                f"<h1>Refused</h1><p>{html.escape(repr(exc))}</p>", status=400, mimetype="text/html"
            )
            return response(environ, start_response)
        claims["_query"] = {k: v for k, v in request.args.items() if k != "lti_token"}
        self.launches.append(claims)
        if claims["messageType"] == "LtiDeepLinkingRequest":
            page = self.pick_content(claims)
        else:
            page = (
                f'<h1 id="hello" data-sub="{html.escape(claims["sub"])}">Hello '
                f"{html.escape(claims.get('name', ''))}</h1>"
            )
        return Response(page, mimetype="text/html")(environ, start_response)

    approval = "redirect"  # how /approve hands back: "redirect" to redirectUrl, or "snippet"

    def approve(self, request) -> Response:
        """The owner's pre-approval page: check the registration, complete it, hand back."""
        rid = request.args["registrationId"]
        headers = {"Authorization": f"Bearer {self.api_key}"}
        pending = requests.get(
            f"{self.gatehouse}/api/registrations/{rid}", headers=headers, timeout=10
        )
        pending.raise_for_status()
        done = requests.post(
            f"{self.gatehouse}/api/registrations/{rid}/complete",
            headers=headers,
            json={},
            timeout=20,
        )
        done.raise_for_status()
        if self.approval == "redirect":
            return Response(status=303, headers={"Location": done.json()["redirectUrl"]})
        return Response(
            "<h1>Approved by the owner</h1>" + done.json()["html"], mimetype="text/html"
        )

    def pick_content(self, claims: dict) -> str:
        """Answer a deep-linking launch at once with one quiz, through Gatehouse's API."""
        item = {
            "type": "ltiResourceLink",
            "title": "Quiz 7",
            "url": f"{self.gatehouse}/lti/launch?quiz=7",
        }
        answer = requests.post(
            f"{self.gatehouse}/api/deep-linking/response",
            headers={"Authorization": f"Bearer {self.api_key}"},
            json={
                "platformId": claims["platformId"],
                "deploymentId": claims["deploymentId"],
                "deepLinkingSettings": claims[DL_SETTINGS],
                "contentItems": [item],
                "message": "Quiz 7 added",
            },
            timeout=10,
        )
        answer.raise_for_status()
        return "<h1>Adding Quiz 7</h1>" + answer.json()["form"]


class Gatehouse:
    """Gatehouse served on http://localhost:<port>, its store and an API key."""

    def __init__(self, app, server, name):
        self.app = app
        self.name = name  # the tool's name, on its card in Moodle
        self.server = server
        self.url = server.url
        self.register_url = self.url + "/lti/register"
        self.domain = urlsplit(self.url).netloc
        self.store = app.extensions["gatehouse.store"]
        _record, self.api_key = apikeys.create(self.store, "moodle tests")

    def api(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return requests.request(method, self.url + path, headers=headers, timeout=20, **kwargs)

    def platforms(self) -> list:
        return self.store.list_platforms()[0]


@pytest.fixture
def tool():
    with Tool() as rig:
        yield rig


@pytest.fixture
def gatehouse(make_app):
    """Start Gatehouse on a fresh port with settings merged onto the suite's TOOL_SETTINGS."""
    servers = []

    def start(settings=None, tool=None, port=None, **config):
        port = port or free_port()
        settings = dict(settings or {})
        # One name per Gatehouse, so its card is easy to tell apart on Moodle's tools page.
        settings["tool"] = {"messages": MOODLE_MESSAGES, **settings.get("tool", {})}
        settings["tool"]["name"] = f"Gatehouse test tool {port}"
        if tool is not None:
            settings["launch"] = {"tool_url": tool.launch_url}
        app = make_app(settings, **config)
        server = LoopbackServer(app, "localhost", port).__enter__()
        servers.append(server)
        deployment = Gatehouse(app, server, settings["tool"]["name"])
        if tool is not None:
            tool.gatehouse, tool.api_key = deployment.url, deployment.api_key
        return deployment

    yield start
    for server in servers:
        server.__exit__(None, None, None)


# --- what an admin and a student do in Moodle -----------------------------------------------


# Moodle's own Behat check that a page's JavaScript has finished (behat_session_interface.php):
# clicking Add LTI Advantage before its module is initialised does nothing.
PAGE_READY_JS = (
    "document.readyState === 'complete' && (typeof M !== 'object' || typeof M.util !== 'object'"
    " || typeof M.util.pending_js === 'undefined' || M.util.pending_js.length === 0)"
)


def visit(page, url):
    """Open a Moodle page and wait until its JavaScript is ready, as Moodle's Behat does."""
    page.goto(url)
    page.wait_for_function(PAGE_READY_JS)


def tool_card(page, deployment):
    """Return the card of Gatehouse's tool on Moodle's Manage tools page."""
    return page.locator(".tool-card", has=page.locator("h4.name", has_text=deployment.name))


def start_registration(page, moodle, deployment, url=None):
    """On Manage tools, paste the registration URL and click Add LTI Advantage."""
    visit(page, moodle.url + "/mod/lti/toolconfigure.php")
    page.locator("#tool-url").fill(url or deployment.register_url)
    page.locator("#tool-create-button").click()
    page.locator(DIALOG).wait_for(state="attached")
    return page.frame_locator(DIALOG)


def wait_until_dialog_closes(page):
    """Wait until Moodle removed the registration iframe (it got org.imsglobal.lti.close)."""
    page.locator(DIALOG).wait_for(state="detached")


def done_in_dialog(page, where=None):
    """Read the close page (it holds Moodle's dialog) and click Done; wait until Moodle closed it.

    `where` is the page or window showing Gatehouse's close page: Moodle's frame by default.
    """
    frame = where or page.frame_locator(DIALOG)
    frame.locator('body[data-lti-close="after-reading"]').wait_for()
    assert page.locator(DIALOG).count() == 1, "Moodle's dialog closed before it could be read"
    frame.get_by_role("button", name="Done, back to Moodle").click()
    wait_until_dialog_closes(page)


def choose(page, button):
    """On Moodle's "existing tools" page in the dialog, click a button once its script is bound."""
    frame = page.frame_locator(DIALOG)
    frame.get_by_text("There are existing tools attached").wait_for()
    page.locator(DIALOG).element_handle().content_frame().wait_for_function(PAGE_READY_JS)
    frame.get_by_role("button", name=button).first.click()


def register(page, moodle, deployment):
    """Register Gatehouse through Manage tools; return Moodle's tool row once the dialog closed."""
    start_registration(page, moodle, deployment)
    done_in_dialog(page)
    (row,) = moodle.tool_types(deployment.domain)
    return row


def activate_in_moodle(page, moodle, deployment):
    """Click Activate on the tool's card, as the admin does after registering."""
    visit(page, moodle.url + "/mod/lti/toolconfigure.php")
    card = tool_card(page, deployment)
    card.locator("a.activate").click()
    card.locator(".badge", has_text="Active").wait_for()


def launch(page, moodle, cmid):
    """Open the activity; return the frame Moodle embeds the tool in."""
    page.goto(f"{moodle.url}/mod/lti/view.php?id={cmid}")
    return page.frame_locator("#contentframe")


def registered_and_active(browse, moodle, deployment, activity):
    """Register through Moodle's page, activate in Moodle, and add a course activity."""
    page = browse(ADMIN)
    row = register(page, moodle, deployment)
    activate_in_moodle(page, moodle, deployment)
    # The tool id in the name: course.php reuses an activity of the same name (earlier runs').
    return page, row, moodle.make_course(row["id"], f"{activity} {row['id']}")


# --- the scenarios --------------------------------------------------------------------------


def test_registering_from_moodles_manage_tools_page_closes_its_dialog_and_stores_moodle(
    browse, moodle, gatehouse
):
    deployment = gatehouse()
    page = browse(ADMIN)
    frame = start_registration(page, moodle, deployment)
    # A new Moodle tool waits for Activate: the summary stays until the admin has read it.
    frame.get_by_text("What Moodle still needs").wait_for()
    page.wait_for_timeout(1_500)  # the page must not close Moodle's dialog by itself meanwhile
    summary = frame.locator("main").inner_text()
    assert "Click Activate on its card" in summary
    assert "The tool's owner still has to approve this registration" in summary
    done_in_dialog(page)

    card = tool_card(page, deployment)
    assert card.locator(".badge").inner_text().strip() == "Pending"
    (row,) = moodle.tool_types(deployment.domain)
    assert row["state"] == TOOL_STATE_PENDING
    assert card.get_attribute("data-clientid") == row["clientid"]
    assert card.get_attribute("data-deploymentid") == str(row["id"])

    (platform,) = deployment.platforms()
    assert platform.issuer == moodle.url == card.get_attribute("data-platformid")
    assert platform.client_id == row["clientid"]
    assert [d.deployment_id for d in deployment.store.list_deployments(platform.id)] == [
        str(row["id"])
    ]
    assert platform.product_family_code == "moodle"
    assert platform.active is False  # registration.auto_activate is off by default
    listed = deployment.api("GET", "/api/platforms").json()["platforms"]
    assert [(p["url"], p["clientId"], [d["id"] for d in p["deployments"]]) for p in listed] == [
        (moodle.url, row["clientid"], [str(row["id"])])
    ]
    # What Moodle stored is what Gatehouse registered.
    assert row["baseurl"] == deployment.url + "/lti/launch"
    assert row["tooldomain"] == deployment.domain


@pytest.fixture
def terms(tmp_path):
    path = tmp_path / "terms.md"
    path.write_text("# Terms of use\n\nUse the tool **fairly**.\n")
    return {"version": "2026-12", "path": str(path)}


def gated(gatehouse, terms, **config):
    """Gatehouse with the sign-in and terms gates, and an account for Moodle's admin."""
    deployment = gatehouse(
        {"registration": {"gates": ["signin", "terms"]}, "gates": {"terms": terms}}, **config
    )
    deployment.store.create_account(
        "admin@school.example", "Ada Admin", hash_password("correct horse battery")
    )
    return deployment


def pass_the_gates(frame):
    frame.locator("#email").fill("admin@school.example")
    frame.locator("#password").fill("correct horse battery")
    frame.locator("#signin").click()
    frame.get_by_text("Step 2 of 2: Terms").wait_for()
    assert frame.locator(".terms strong").inner_text() == "fairly"
    frame.locator("#accept").check()
    frame.locator("#signer_name").fill("Ada Admin")
    frame.locator("#accept-terms").click()


def test_sign_in_and_terms_gates_inside_moodles_frame(browse, moodle, gatehouse, terms):
    deployment = gated(gatehouse, terms)
    page = browse(ADMIN)
    frame = start_registration(page, moodle, deployment)

    frame.get_by_text("Step 1 of 2: Sign in").wait_for()
    assert moodle.tool_types(deployment.domain) == []  # nothing reached Moodle yet
    pass_the_gates(frame)
    done_in_dialog(page)

    assert tool_card(page, deployment).locator(".badge").inner_text().strip() == "Pending"
    (row,) = moodle.tool_types(deployment.domain)
    (platform,) = deployment.platforms()
    assert (platform.issuer, platform.client_id) == (moodle.url, row["clientid"])
    approval = approval_of(deployment.store, platform.registration_id)
    assert approval["account"].email == "admin@school.example"
    assert approval["terms"].version == "2026-12"


def test_gates_in_a_new_window_when_moodles_frame_gets_no_cookies_still_close_its_dialog(
    browse, moodle, gatehouse, terms
):
    # A browser that blocks third-party cookies and has no partitioned ones (older Safari):
    # the gates continue in a window of their own, whose close message reaches Moodle, the parent
    # of Gatehouse's frame.
    deployment = gated(gatehouse, terms, SESSION_COOKIE_PARTITIONED=False)
    page = browse(ADMIN)
    frame = start_registration(page, moodle, deployment)
    frame.locator("#cookie-fallback").wait_for(state="visible")
    with page.context.expect_page() as opened:
        frame.locator("#continue-in-new-window").click()
    window = opened.value
    window.wait_for_load_state()
    window.get_by_text("Step 1 of 2: Sign in").wait_for()
    pass_the_gates(window)
    # The summary is read in that window; its Done tells Moodle directly.
    with window.expect_event("close", timeout=TIMEOUT):
        done_in_dialog(page, where=window)

    assert tool_card(page, deployment).locator(".badge").inner_text().strip() == "Pending"
    (row,) = moodle.tool_types(deployment.domain)
    (platform,) = deployment.platforms()
    assert platform.client_id == row["clientid"]


def test_launch_as_admin_and_student_after_activating_in_moodle_and_in_gatehouse(
    browse, moodle, gatehouse
):
    deployment = gatehouse()  # auto_activate off: the tool owner activates too
    page, row, course = registered_and_active(browse, moodle, deployment, "Verified launch")
    assert moodle.tool_types(deployment.domain)[0]["state"] == TOOL_STATE_CONFIGURED

    frame = launch(page, moodle, course["cmid"])
    frame.locator('body[data-lti-error="platform-inactive"]').wait_for()
    # The admin who activated the tool in Moodle cannot act on Gatehouse's side: a calm page.
    assert frame.locator("h1").inner_text().endswith("is being set up for your school")
    assert "activate" not in frame.locator("main").inner_text().lower()
    (platform,) = deployment.platforms()
    activated = deployment.api("POST", f"/api/platforms/{platform.id}/activate")
    assert activated.status_code == 200, activated.text

    frame = launch(page, moodle, course["cmid"])
    frame.locator('body[data-lti-launch="verified"]').wait_for()
    facts = frame.locator("dl.facts").inner_text()
    assert "Registration verified" in frame.locator("h1").inner_text()
    assert row["clientid"] in facts and moodle.url in facts
    assert "Moodle 4.5.6\n" in facts and "Admin User" in facts
    assert "Administrator, Instructor\n" in facts  # institution and system admin: shown once
    assert "LTI Lab Course" in facts
    # Its launch claim carries the build number, kept with the release under technical details.
    frame.locator("details summary").click()
    reported = frame.locator("details dl").inner_text()
    assert "4.5.6 (Build: 20250811)" in reported and "2024100706" in reported

    student = launch(browse(STUDENT), moodle, course["cmid"])
    student.locator('body[data-lti-launch="verified"][data-lti-audience="learner"]').wait_for()
    shown = student.locator("main").inner_text()
    assert "You're connected to" in student.locator("h1").inner_text()
    for private in ("Sam", "Student", "@", "sub", "tool_url", "Client ID", row["clientid"]):
        assert private not in shown
    assert deployment.store.get_platform(platform.id).last_launch_at is not None


def test_a_deployment_the_owner_removed_waits_for_approval_then_launches_again(
    browse, moodle, gatehouse
):
    # registration.unknown_deployments = "pending" (the default): Moodle's next launch brings
    # the deployment back, inactive, and its page says so until the owner approves it.
    deployment = gatehouse({"registration": {"auto_activate": True}})
    page, row, course = registered_and_active(browse, moodle, deployment, "Pending deployment")
    (platform,) = deployment.platforms()
    path = f"/api/platforms/{platform.id}/deployments"
    assert deployment.api("DELETE", f"{path}/{row['id']}").status_code == 204

    frame = launch(page, moodle, course["cmid"])
    frame.locator("body[data-lti-error]").wait_for()
    assert frame.locator("h1").inner_text().endswith("is being set up for your school")
    listed = deployment.api("GET", path).json()["deployments"]
    assert [(d["id"], d["active"]) for d in listed] == [(str(row["id"]), False)]

    approved = deployment.api("POST", path, json={"deploymentId": str(row["id"]), "active": True})
    assert approved.status_code == 200, approved.text
    launch(page, moodle, course["cmid"]).locator('body[data-lti-launch="verified"]').wait_for()


def test_hand_off_token_then_roster_and_grade_services(browse, moodle, gatehouse, tool):
    deployment = gatehouse(
        {
            "registration": {"auto_activate": True},
            "tool": {"custom_parameters": {"course": "$Context.id", "who": "$Person.name.full"}},
        },
        tool=tool,
    )
    _page, row, course = registered_and_active(browse, moodle, deployment, "Graded quiz")

    page = browse(STUDENT)
    launch(page, moodle, course["cmid"]).locator("#hello").wait_for()
    assert tool.refused == []
    (claims,) = tool.launches
    (platform,) = deployment.platforms()
    student_id = moodle.user_id(STUDENT.username)
    assert claims["sub"] == str(student_id)
    assert claims["name"] == "Sam Student"
    assert LEARNER in claims[ROLES]
    assert (claims["platformId"], claims["deploymentId"]) == (platform.id, str(row["id"]))
    assert claims["platform"]["issuer"] == moodle.url
    assert claims["platform"]["clientId"] == row["clientid"]
    # Registered custom parameters, with Moodle's substitution variables filled in.
    assert (claims[CUSTOM]["course"], claims[CUSTOM]["who"]) == (
        str(course["course"]),
        "Sam Student",
    )

    answer = deployment.api("POST", f"/api/platforms/{platform.id}/token", json={})
    assert answer.status_code == 200, answer.text
    bearer = {"Authorization": f"Bearer {answer.json()['accessToken']}"}

    roster = requests.get(
        claims[NRPS]["context_memberships_url"],
        timeout=20,
        headers={**bearer, "Accept": "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"},
    )
    assert roster.status_code == 200, roster.text
    members = {m["user_id"]: m for m in roster.json()["members"]}
    assert members[str(student_id)]["roles"] == ["Learner"]  # Moodle's NRPS uses short names

    lineitem = claims[AGS]["lineitem"]
    path, _, query = lineitem.partition("?")
    score = requests.post(
        f"{path}/scores" + (f"?{query}" if query else ""),
        timeout=20,
        headers={**bearer, "Content-Type": "application/vnd.ims.lis.v1.score+json"},
        data=json.dumps(
            {
                "userId": str(student_id),
                "scoreGiven": 7,
                "scoreMaximum": 10,
                "activityProgress": "Completed",
                "gradingProgress": "FullyGraded",
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        ),
    )
    assert score.status_code in (200, 204), score.text
    ((grade,),) = moodle.sql(
        "select g.finalgrade from mdl_grade_grades g join mdl_grade_items i on i.id = g.itemid "
        "join mdl_course_modules cm on cm.instance = i.iteminstance "
        "where i.itemmodule = 'lti' and cm.id = %s and g.userid = %s",
        (course["cmid"], student_id),
    )
    assert float(grade) == 70.0  # 7 of 10 on the activity's 100-point scale
    # What the student sees in their grades.
    visit(page, f"{moodle.url}/grade/report/user/index.php?id={course['course']}")
    row_of_quiz = page.locator("tr", has=page.get_by_role("link", name=f"Graded quiz {row['id']}"))
    assert "70.00" in row_of_quiz.inner_text()


def test_registering_again_updates_with_moodles_update_choice_and_adds_with_new(
    browse, moodle, gatehouse
):
    deployment = gatehouse()
    page, _row, course = registered_and_active(browse, moodle, deployment, "Updated tool")
    (platform,) = deployment.platforms()
    assert deployment.api("POST", f"/api/platforms/{platform.id}/activate").status_code == 200
    (first,) = moodle.tool_types(deployment.domain)

    start_registration(page, moodle, deployment)
    choose(page, "Update")
    # Nothing to act on after an update (Moodle keeps the tool active, the owner approved it):
    # the page closes Moodle's dialog at once, without Done.
    wait_until_dialog_closes(page)
    assert moodle.tool_types(deployment.domain) == [first]  # same client_id, still active
    (updated,) = deployment.platforms()
    assert (updated.id, updated.client_id, updated.active) == (platform.id, first["clientid"], True)
    assert [d.deployment_id for d in deployment.store.list_deployments(platform.id)] == [
        str(first["id"])
    ]
    assert len(deployment.store.list_registrations()[0]) == 2
    # The course's link still launches after the update.
    launch(page, moodle, course["cmid"]).locator('body[data-lti-launch="verified"]').wait_for()

    start_registration(page, moodle, deployment)
    choose(page, "Register as a new external tool")
    done_in_dialog(page)
    old, new = moodle.tool_types(deployment.domain)
    assert old == first and new["clientid"] != first["clientid"]
    assert new["state"] == TOOL_STATE_PENDING
    stored = {(p.issuer, p.client_id) for p in deployment.platforms()}
    assert stored == {(moodle.url, first["clientid"]), (moodle.url, new["clientid"])}


def test_deep_linking_through_the_activity_forms_select_content(browse, moodle, gatehouse, tool):
    deployment = gatehouse({"registration": {"auto_activate": True}}, tool=tool)
    page, row, course = registered_and_active(browse, moodle, deployment, "Placeholder")

    # Add an activity > External tool, with Gatehouse's tool preselected.
    visit(
        page,
        f"{moodle.url}/course/modedit.php?add=lti&course={course['course']}&section=0"
        f"&typeid={row['id']}",
    )
    page.locator("#id_selectcontent").click()
    expect(page.locator("#id_name")).to_have_value("Quiz 7", timeout=TIMEOUT)
    page.get_by_text("Content selected").wait_for()
    (picking,) = tool.launches
    assert picking["messageType"] == "LtiDeepLinkingRequest"
    assert picking[DL_SETTINGS]["deep_link_return_url"].startswith(
        moodle.url + "/mod/lti/contentitem_return.php"
    )
    assert tool.refused == []
    assert page.locator("#id_toolurl").input_value() == deployment.url + "/lti/launch?quiz=7"

    page.locator("#id_submitbutton").click()  # Save and display: Moodle launches the new link
    page.frame_locator("#contentframe").locator("#hello").wait_for()
    launched = tool.launches[-1]
    assert launched["messageType"] == "LtiResourceLinkRequest"
    assert launched["https://purl.imsglobal.org/spec/lti/claim/resource_link"]["title"] == "Quiz 7"
    assert launched["https://purl.imsglobal.org/spec/lti/claim/target_link_uri"] == (
        deployment.url + "/lti/launch?quiz=7"
    )
    assert launched["_query"] == {"quiz": "7"}  # the link's query travels to the tool


@pytest.mark.parametrize("approval", ["redirect", "snippet"])
def test_external_pre_approval_inside_moodles_frame_closes_its_dialog(
    browse, moodle, gatehouse, tool, approval
):
    # The README: send the frame to redirectUrl (what Canvas needs); appending the returned
    # html to the owner's own page is enough for Moodle, which does not check the origin.
    tool.approval = approval
    deployment = gatehouse(
        {"registration": {"pre_approval_url": tool.server.url + "/approve"}}, tool=tool
    )
    page = browse(ADMIN)
    start_registration(page, moodle, deployment)
    if approval == "redirect":  # Gatehouse's close page, which holds for Moodle's Activate
        done_in_dialog(page)
    else:  # the owner's own page posted the close message
        wait_until_dialog_closes(page)
    (row,) = moodle.tool_types(deployment.domain)
    (platform,) = deployment.platforms()
    assert (platform.issuer, platform.client_id) == (moodle.url, row["clientid"])
    assert tool_card(page, deployment).locator(".badge").inner_text().strip() == "Pending"


def test_moodles_refusal_is_shown_verbatim_inside_its_frame(browse, moodle, gatehouse):
    deployment = gatehouse()
    page = browse(ADMIN)
    first = register(page, moodle, deployment)

    # The admin chooses "Update", but meanwhile another admin deleted the tool in Moodle.
    frame = start_registration(page, moodle, deployment)
    frame.get_by_text("There are existing tools attached").wait_for()
    moodle.run_php(f"lti_delete_type({first['id']});")
    choose(page, "Update")

    frame.locator("body[data-lti-error]").wait_for()
    # Moodle's answer is folded under "Technical details", below the plain words.
    assert "Rule" not in frame.locator("main").inner_text()
    frame.locator("details[data-technical-details] summary").click()
    assert frame.locator("pre.verbatim").inner_text() == "Unknown client"
    assert "400" in frame.locator("#lms-answer + p").inner_text()
    (platform,) = deployment.platforms()
    assert platform.client_id == first["clientid"]  # the earlier registration is untouched
    states = sorted(r.state for r in deployment.store.list_registrations()[0])
    assert states == ["completed", "failed"]  # the attempt is recorded as failed
    frame.get_by_role("button", name="Close").click()  # the way out closes Moodle's dialog
    wait_until_dialog_closes(page)
    assert moodle.tool_types(deployment.domain) == []


@pytest.mark.parametrize(
    "spelled",
    [
        pytest.param(lambda port: {"base_url": f"http://Localhost:{port}"}, id="base_url"),
        pytest.param(
            lambda port: {
                "base_url": f"http://localhost:{port}",
                "tool": {"domain": f"LocalHost:{port}"},
            },
            id="tool.domain",
        ),
    ],
)
def test_a_tool_url_spelled_with_capitals_registers_because_moodle_compares_domains_exactly(
    browse, moodle, gatehouse, spelled
):
    # Moodle's registration_helper compares `domain` with target_link_uri's host as written
    # (`!==`): Gatehouse must send the two spelled the same, lower-case.
    port = free_port()
    deployment = gatehouse(spelled(port), port=port)
    page = browse(ADMIN)
    row = register(page, moodle, deployment)
    assert row["tooldomain"] == f"localhost:{port}"
    assert row["baseurl"] == f"http://localhost:{port}/lti/launch"
    (platform,) = deployment.platforms()
    assert platform.client_id == row["clientid"]


SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
MEMBERSHIPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def test_moodles_over_reported_lineitem_scope_is_learned_as_refused_at_its_token_endpoint(
    browse, moodle, gatehouse
):
    # Without `lineitem` in the request Moodle turns on grade synchronisation 1, yet its answer
    # claims `lineitem` (registration_helper::config_to_registration); token.php grants the
    # overlap only.
    deployment = gatehouse(
        {"registration": {"auto_activate": True}, "tool": {"scopes": [SCORE, MEMBERSHIPS]}}
    )
    page = browse(ADMIN)
    register(page, moodle, deployment)
    (platform,) = deployment.platforms()
    claimed = deployment.api("GET", f"/api/platforms/{platform.id}").json()
    assert LINEITEM in claimed["scopes"] and claimed["usableScopes"] is None

    token = deployment.api("POST", f"/api/platforms/{platform.id}/token", json={})
    assert token.status_code == 200, token.text
    assert LINEITEM not in token.json()["scope"].split()
    assert {SCORE, MEMBERSHIPS} <= set(token.json()["scope"].split())
    learned = deployment.api("GET", f"/api/platforms/{platform.id}").json()
    assert learned["refusedScopes"] == [LINEITEM]
    assert LINEITEM not in learned["usableScopes"] and SCORE in learned["usableScopes"]

    asked = deployment.api(
        "POST", f"/api/platforms/{platform.id}/token", json={"scopes": [LINEITEM]}
    )
    assert asked.status_code == 400
    assert asked.json()["details"]["refusedByLms"] == [LINEITEM]


def test_an_invitation_link_pasted_into_moodle_registers_and_the_bare_url_is_refused(
    browse, moodle, gatehouse
):
    deployment = gatehouse({"registration": {"require_invitation": True}})
    page = browse(ADMIN)
    frame = start_registration(page, moodle, deployment)
    frame.locator("body[data-lti-error]").wait_for()
    assert moodle.tool_types(deployment.domain) == []  # refused before anything reached Moodle

    made = deployment.api("POST", "/api/invitations", json={"name": "Moodle school", "uses": 1})
    assert made.status_code == 201, made.text
    invitation = made.json()
    # Moodle keeps the link's own query (?invite=...) when it adds its parameters.
    start_registration(page, moodle, deployment, url=invitation["url"])
    done_in_dialog(page)
    (row,) = moodle.tool_types(deployment.domain)
    (platform,) = deployment.platforms()
    assert (platform.client_id, platform.invitation_id) == (row["clientid"], invitation["id"])
    listed = deployment.api("GET", "/api/invitations").json()
    assert [(i["id"], i["used"]) for i in listed["invitations"]] == [(invitation["id"], 1)]


def test_after_a_key_rotation_moodle_still_grants_service_tokens(browse, moodle, gatehouse):
    # Moodle keeps the tool's key set in its cache (mod_lti/keyset): an assertion signed with a
    # key it has not seen must make it fetch /lti/keys again, not refuse.
    deployment = gatehouse({"registration": {"auto_activate": True}})
    page = browse(ADMIN)
    register(page, moodle, deployment)
    (platform,) = deployment.platforms()
    first = deployment.api("POST", f"/api/platforms/{platform.id}/token", json={})
    assert first.status_code == 200, first.text

    new_kid, _retired = keys.rotate(deployment.store)
    wait_out_key_cache(deployment.app)  # no 30 s wait for the cache
    deployment.app.extensions.pop("gatehouse.service_tokens", None)  # as a fresh worker
    assert deployment.app.extensions["gatehouse.jwks"].signing_key()[0] == new_kid
    second = deployment.api("POST", f"/api/platforms/{platform.id}/token", json={})
    assert second.status_code == 200, second.text
    assert second.json()["accessToken"] != first.json()["accessToken"]


def wait_for_platforms(deployment, count=1, timeout=20.0):
    """Wait until Gatehouse has stored `count` platforms (the registration went through)."""
    deadline = time.monotonic() + timeout
    while len(deployment.platforms()) < count:
        assert time.monotonic() < deadline, "the registration did not complete"
        time.sleep(0.1)


def test_when_the_close_page_says_what_moodle_will_not_do_its_dialog_waits_for_done(
    browse, moodle, gatehouse
):
    # Moodle 4.5 does not offer submission review: Gatehouse leaves that message out, which the
    # admin must read, so the page does not close Moodle's dialog (Moodle removes it the moment
    # it gets org.imsglobal.lti.close) until the admin clicks Done.
    review = {"type": "LtiSubmissionReviewRequest", "label": "Review a submission"}
    deployment = gatehouse({"tool": {"messages": [*MOODLE_MESSAGES, review]}})
    page = browse(ADMIN)
    frame = start_registration(page, moodle, deployment)
    wait_for_platforms(deployment)
    page.wait_for_timeout(1_500)  # time to read; the page must not close by itself meanwhile
    assert page.locator(DIALOG).count() == 1, "Moodle's dialog closed before it could be read"
    assert "LtiSubmissionReviewRequest" in frame.locator("main, body").first.inner_text()
    done_in_dialog(page)
    assert tool_card(page, deployment).locator(".badge").inner_text().strip() == "Pending"
