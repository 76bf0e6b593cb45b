"""The footer of the LMS-facing pages (who to ask, a reference, "Copy details") and the copy
buttons, through Flask's test client with real simulated LMSes; tests/test_footer_browser.py
clicks them in Chromium."""

import html
import re

import pytest

from app.web.footer import REFERENCE_LENGTH

BASE = "http://localhost"
CONTACTS = {"tool": {"contacts": ["help@quiz.example", "ops@quiz.example"]}}


def footer_of(response):
    match = re.search(r"<footer[^>]*data-page-footer.*?</footer>", response.text, re.S)
    return match.group(0) if match else None


def details_of(response):
    """Return the plain-text block "Copy details" copies."""
    block = re.search(r'<textarea[^>]*id="page-details"[^>]*>(.*?)</textarea>', response.text, re.S)
    return html.unescape(block.group(1)).strip()


def register(client, sim):
    """Open the registration URL as the simulated LMS's admin would; return the page."""
    return register_with_token(client, sim)[0]


def register_with_token(client, sim):
    url, grant = sim.initiate(BASE + "/lti/register")
    return client.get(url.replace(BASE, "")), grant.token


def test_the_close_page_names_the_contacts_and_the_registrations_reference(make_app, simulator):
    app = make_app(CONTACTS)
    sim = simulator("canvas")
    page, token = register_with_token(app.test_client(), sim)
    assert page.status_code == 200
    registration = app.extensions["gatehouse.store"].list_registrations()[0][0]
    footer = footer_of(page)
    assert "Questions? Contact Quiz Tool's provider:" in footer
    reference = registration.id[:REFERENCE_LENGTH]
    subject = f"Question%20about%20Quiz%20Tool%20%28reference%20{reference}%29"
    assert f'href="mailto:help@quiz.example?subject={subject}"' in footer
    assert ">ops@quiz.example</a>" in footer
    assert f"Reference <code>{reference}</code>" in footer
    details = details_of(page).splitlines()
    assert details[:3] == [
        "Tool: Quiz Tool",
        "Page: Registration complete",
        f"Reference: {reference}",
    ]
    assert re.fullmatch(r"Time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", details[3])
    assert "LMS: Canvas" in details
    assert f"Issuer: {registration.issuer}" in details
    # Never the whole registration id (its gate URLs' secret), never the LMS's token.
    assert registration.id not in page.text.replace(f'data-registration="{registration.id}"', "")
    assert token not in "\n".join(details)


def test_without_contacts_the_footer_sends_the_admin_to_whoever_added_the_tool(app, simulator):
    page = register(app.test_client(), simulator("moodle"))
    footer = footer_of(page)
    assert "mailto:" not in footer
    assert "Ask whoever added Quiz Tool to your LMS, and give them the reference below" in footer
    assert "Copy details" in footer


def test_a_refused_registration_says_its_rule_and_reference(app, simulator):
    page = register(app.test_client(), simulator("moodle", faults=["refuse_registration"]))
    assert page.status_code >= 400
    registration = app.extensions["gatehouse.store"].list_registrations()[0][0]
    details = details_of(page)
    assert f"Reference: {registration.id[:REFERENCE_LENGTH]}" in details
    assert f"Rule: {registration.error['rule']}" in details


def test_gate_pages_refer_to_their_registration(make_app, simulator, tmp_path):
    terms = tmp_path / "terms.md"
    terms.write_text("# Terms\n\nBe nice.\n")
    app = make_app(
        {
            "registration": {"gates": ["terms"]},
            "gates": {"terms": {"version": "1", "path": str(terms), "title": "Our terms"}},
        }
    )
    client = app.test_client()
    started = register(client, simulator("moodle"))
    assert started.status_code == 303
    rid = started.headers["Location"].rsplit("/", 1)[-1]
    gate = client.get(f"/lti/register/{rid}", follow_redirects=True)
    assert "Step 1 of 1" in gate.text
    assert f"Reference <code>{rid[:REFERENCE_LENGTH]}</code>" in footer_of(gate)
    assert "Page: Our terms" in details_of(gate)


def test_pages_outside_a_registration_refer_to_the_request_id_of_the_logs(app):
    client = app.test_client()
    about = client.get("/lti/register")
    request_id = about.headers["X-Request-ID"]
    assert f"Reference <code>{request_id}</code>" in footer_of(about)
    assert f"Reference: {request_id}" in details_of(about)
    launch = client.post("/lti/launch", data={"id_token": "not a token", "state": "x"})
    assert launch.headers["X-Request-ID"] in footer_of(launch)
    assert "Rule: " in details_of(launch)


@pytest.mark.parametrize("path", ["/", "/console/login", "/healthz"])
def test_the_home_page_and_the_console_have_no_footer(client, path):
    assert footer_of(client.get(path, base_url="https://localhost")) is None


def test_the_registration_url_has_a_copy_button_wherever_it_is_given(client):
    for path in ("/", "/lti/register"):
        page = client.get(path).text
        url = "http://localhost/lti/register"
        assert f'<code id="registration-url" tabindex="0">{url}</code>' in page
        assert 'data-copy="registration-url" aria-label="Copy the registration URL"' in page
        assert "/static/copy.js" in page
