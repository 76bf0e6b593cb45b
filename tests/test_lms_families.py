"""LMS knowledge lives in one module per family (app/lti/lms), and every page reads it there."""

import ast
import pathlib

import pytest

from app.lti import lms
from app.lti.lms import FAMILIES, GENERIC, family_name, for_family

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_table() -> str:
    """Return the README's LMS table as the family modules say it."""
    rows = ["| LMS | Where to paste the URL | Afterwards |", "|---|---|---|"]
    for family in FAMILIES:
        rows.append(f"| {family.name} | {family.where_to_paste} | {' '.join(family.steps())} |")
    return "\n".join(rows)


def test_the_readme_lms_table_is_what_the_family_modules_say():
    assert readme_table() in (ROOT / "README.md").read_text(), (
        "README's LMS table differs from app/lti/lms; paste this:\n" + readme_table()
    )


def test_every_family_names_where_its_rules_come_from():
    for family in (*FAMILIES, GENERIC):
        module = __import__(type(family).__module__, fromlist=["_"])
        doc = module.__doc__ or ""
        assert "Source" in doc or family is GENERIC, type(family).__module__
    for name in ("canvas", "moodle", "sakai"):
        doc = __import__(f"app.lti.lms.{name}", fromlist=["_"]).__doc__
        assert {
            "canvas": "instructure/canvas-lms",
            "moodle": "moodle/moodle",
            "sakai": "sakaiproject/sakai",
        }[name] in doc


def test_codes_map_to_one_family_each_and_unknown_codes_are_generic():
    codes = [code for family in FAMILIES for code in family.codes]
    assert len(codes) == len(set(codes))
    assert for_family("canvas").name == "Canvas"
    assert for_family("desire2learn").name == "Brightspace"
    assert for_family("someotherlms") is GENERIC and for_family(None) is GENERIC
    assert family_name("someotherlms") == "someotherlms"
    assert family_name(None) == "your LMS"


def test_generic_code_never_tests_a_family_code():
    # "Where is the Canvas quirk handled?" has a one-file answer: app/lti/lms/canvas.py.
    codes = {code for family in FAMILIES for code in family.codes}
    offenders = []
    for path in (ROOT / "app").rglob("*.py"):
        if "simulator" in path.parts or path.parent == ROOT / "app" / "lti" / "lms":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            # Comparisons only: "canvas" is also the name of a settings table ([tool.canvas]).
            compared = node.comparators + [node.left] if isinstance(node, ast.Compare) else []
            for value in compared:
                if isinstance(value, ast.Constant) and value.value in codes:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {value.value!r}")
    assert offenders == []


def test_client_id_appears_in_the_steps_only_when_known():
    assert any("`10000000000001`" in s for s in for_family("canvas").steps("10000000000001"))
    assert not any("Client ID `" in s for s in for_family("canvas").steps())


def test_moodle_after_an_update_does_not_ask_to_activate_again():
    moodle = for_family("moodle")
    assert any("Activate" in s for s in moodle.steps())
    updated = moodle.steps(updated=True)
    assert not any("Activate" in s for s in updated)
    assert any("kept it as it was" in s for s in updated)
    # Families without their own update steps repeat the usual ones.
    assert for_family("canvas").steps(updated=True) == for_family("canvas").steps()


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.code)
def test_home_page_lists_where_each_lms_takes_the_url(app, family):
    page = app.test_client().get("/").get_data(as_text=True)
    assert f"<dt>{family.name}</dt>" in page
    first_bold = family.where_to_paste.split("**")[1] if "**" in family.where_to_paste else ""
    if first_bold:
        assert f"<strong>{first_bold.replace('&', '&amp;')}</strong>" in page


def test_marked_text_escapes_html_before_marking(app):
    from app.web.templating import marked

    assert str(marked("**Bold** <script>`id<1>`")) == (
        "<strong>Bold</strong> &lt;script&gt;<code>id&lt;1&gt;</code>"
    )


def test_package_exports():
    assert set(lms.__all__) >= {"FAMILIES", "for_family", "family_name"}


def test_canvas_moodle_and_sakai_say_how_far_their_answer_scopes_are_claims():
    for code, source in (
        ("canvas", "client_credentials.rb"),
        ("moodle", "token.php"),
        ("sakailms.org", "LTI13Servlet"),
    ):
        assert source in for_family(code).how_services_are_granted
    assert GENERIC.how_services_are_granted is None


def test_the_console_platform_page_says_how_its_lms_grants_services(app, live, simulator, store):
    from tests.test_console import HASH, Browser, add_platform

    sim = simulator("sakai")
    report = sim.register(live.register_url)
    assert report.ok, report.render()
    sakai = store.find_platform(sim.issuer, report.client_id)
    other = add_platform(store, 2, product_family_code="someotherlms")
    account = store.create_account("owner@tool.example", "Olive Owner", HASH)
    store.set_owner(account.id, True)
    browser = Browser(app)
    assert browser.sign_in().status_code == 302
    page = browser.get(f"/console/platforms/{sakai.id}").get_data(as_text=True)
    assert 'id="how-granted"' in page
    assert "what the admin ticks in <strong>External Tools</strong>" in page
    page = browser.get(f"/console/platforms/{other.id}").get_data(as_text=True)
    assert 'id="how-granted"' not in page
