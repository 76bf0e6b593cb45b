"""Pages rendered once per language and filled in per request (app/web/skeletons.py) are the
pages `render_template` renders, whatever the values hold; a template that does more with a
value than escape it is rendered in full."""

import logging

import pytest
from flask import render_template
from jinja2 import ChoiceLoader, DictLoader

from app.web import footer
from app.web.skeletons import render_skeleton

LOGIN = "launch/login.html"
HOSTILE = "\"'><script>alert(1)</script>&amp;%41:/?#"


def login_values(n: int, storage_target: str | None) -> dict:
    return {
        "auth_url": f"https://lms.example/auth?state={n}&nonce={HOSTILE}",
        "login_check": f"gatehouse_login_{n:016x}",
        "storage_target": storage_target,
        "platform_origin": "https://lms.example",
        "storage_key": f"gatehouse-launch-{n:016x}",
        "storage_value": f"value{n}{HOSTILE}",
        "window_url": f"https://tool.example/lti/login?iss=x&n={n}&hint={HOSTILE}",
    }


@pytest.fixture
def fixed_footer(monkeypatch):
    """A footer that does not move between the two renders being compared (its time would)."""
    values = {}

    def page_footer():
        return dict(values) or None

    monkeypatch.setattr(footer, "page_footer", page_footer)
    return values


@pytest.mark.parametrize("language", ["en", "es", "de"])
@pytest.mark.parametrize("storage_target", [None, "post_message_forwarding", HOSTILE])
def test_the_login_page_is_the_page_jinja_renders(make_app, fixed_footer, language, storage_target):
    app = make_app(
        {"tool": {"contacts": ["help@quiz.example"], "logo_uri": "https://cdn.example/l.png"}}
    )
    for n in range(3):
        fixed_footer.update(
            reference=f"ref{n}:{HOSTILE}",
            reference_kind="request",
            time=f"2026-12-05 10:0{n}:00 UTC",
            mail_subject=f"Question%20{n}",
        )
        values = login_values(n, storage_target)
        headers = {"Accept-Language": language}
        with app.test_request_context("/lti/login", headers=headers):
            filled = render_skeleton(LOGIN, values)
        with app.test_request_context("/lti/login", headers=headers):
            assert filled == render_template(LOGIN, **values)
        assert f'data-login-check="gatehouse_login_{n:016x}"' in filled
        assert "<script>alert(1)</script>" not in filled
    skeleton = app.extensions["gatehouse.skeletons"][LOGIN]
    assert all(parts is not None for parts in skeleton._pages.values())  # none fell back


def test_a_page_without_a_footer_is_filled_in_too(make_app):
    app = make_app()
    values = login_values(7, None)
    with app.test_request_context("/elsewhere"):  # not under /lti/: no footer
        assert render_skeleton(LOGIN, values) == render_template(LOGIN, **values)


def test_a_template_that_transforms_a_value_is_rendered_in_full(make_app, caplog):
    app = make_app()
    app.jinja_env.loader = ChoiceLoader(
        [DictLoader({"probe.html": "<a href='/x?q={{ q | urlencode }}'>{{ q | upper }}</a>"}),
         app.jinja_env.loader]
    )  # fmt: skip
    with app.test_request_context("/elsewhere"), caplog.at_level(logging.WARNING):
        first = render_skeleton("probe.html", {"q": "a b&c"})
        second = render_skeleton("probe.html", {"q": "d/e"})
    assert first == "<a href='/x?q=a%20b%26c'>A B&amp;C</a>"
    assert second == "<a href='/x?q=d/e'>D/E</a>"
    assert "probe.html does more with a per-request value than escape it" in caplog.text
