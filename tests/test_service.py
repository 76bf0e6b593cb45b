"""The service around the flow: key set, rotation, health, headers, pages."""

import dataclasses
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from support import wait_out_key_cache

from app.cli import main
from app.domain import keys
from app.web.security import allow_framing


def test_jwks_serves_one_rs256_signing_key(client):
    response = client.get("/lti/keys")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    (key,) = response.json["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] and key["n"] and key["e"]
    assert "d" not in key and "p" not in key


def test_the_published_key_verifies_what_the_stored_key_signs(client, store):
    (stored,) = store.list_tool_keys()
    token = jwt.encode(
        {"alg": "RS256", "kid": stored.kid},
        {"iss": "gatehouse"},
        RSAKey.import_key(stored.private_pem),
    )
    published = KeySet.import_key_set(client.get("/lti/keys").json)
    assert jwt.decode(token, published, algorithms=["RS256"]).claims == {"iss": "gatehouse"}


def test_keys_survive_a_restart(make_app):
    first = make_app().test_client().get("/lti/keys").json
    second = make_app().test_client().get("/lti/keys").json
    assert first == second


def test_rotation_publishes_old_and_new_then_retires_the_old(app, store):
    (old,) = store.list_tool_keys()
    cache = app.extensions["gatehouse.jwks"]
    new_kid, retired = keys.rotate(store, timedelta(hours=1))
    assert retired == [old.kid]
    cache.invalidate()
    assert {k["kid"] for k in cache.published()} == {old.kid, new_kid}
    assert store.list_tool_keys()[0].kid == new_kid
    newest, _ = keys.rotate(store, timedelta(0))
    cache.invalidate()
    # With no grace the key just replaced is gone; the first keeps its own hour.
    assert {k["kid"] for k in cache.published()} == {old.kid, newest}


def test_nothing_is_signed_with_a_key_the_cached_key_set_does_not_publish(app, store):
    cache = app.extensions["gatehouse.jwks"]
    published = {k["kid"] for k in json.loads(cache.body())["keys"]}
    new_kid, _ = keys.rotate(store, timedelta(hours=1))  # in the database, not yet in the cache
    kid, _key = cache.signing_key()
    assert kid in published and kid != new_kid
    cache.invalidate()  # what JWKS_CACHE_SECONDS does in time
    # Published now, but other workers may not publish it yet: the old key goes on signing.
    assert new_kid in {k["kid"] for k in json.loads(cache.body())["keys"]}
    assert cache.signing_key()[0] == kid
    wait_out_key_cache(app)  # by then every worker publishes it
    assert cache.signing_key()[0] == new_kid


def test_a_stored_key_is_read_once_however_often_the_key_set_is_refreshed(app):
    cache = app.extensions["gatehouse.jwks"]
    kid, first = cache.signing_key()
    cache.invalidate()  # what JWKS_CACHE_SECONDS does in time: the keys are read again
    assert cache.signing_key() == (kid, first)  # the very same key object, not read again
    assert keys.imported.cache_info().hits > 0


def test_keys_rotate_command(database_url, monkeypatch, runner):
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(main, ["keys", "rotate", "--grace-hours", "24"])
    assert result.exit_code == 0, result.output
    assert "New current key:" in result.output
    assert "Still published for 24 h" in result.output
    listing = runner.invoke(main, ["keys", "list"]).output.splitlines()
    assert len(listing) == 2
    assert listing[0].endswith("current") and "retires" in listing[1]


def test_migrate_command_is_idempotent(database_url, monkeypatch, runner):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert runner.invoke(main, ["migrate"]).exit_code == 0
    result = runner.invoke(main, ["migrate"])
    assert result.exit_code == 0 and "up to date" in result.output


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


@pytest.mark.sqlite_only("points the SQLite store at a missing file; test_storage has PostgreSQL's")
def test_healthz_reports_a_broken_database(app, client, store, tmp_path):
    store.close()
    store.dialect.path = str(tmp_path / "missing-dir" / "db.sqlite")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "error"


@pytest.mark.sqlite_only("WAL is SQLite's journal mode")
def test_database_is_in_wal_mode(store):
    assert store.dialect.db.journal_mode == "wal"


def test_flow_pages_are_frameable_and_others_are_not(client):
    flow = client.get("/lti/register")
    assert "frame-ancestors https: http:" in flow.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in flow.headers
    assert flow.headers["Cache-Control"] == "no-store"
    home = client.get("/")
    assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
    assert home.headers["X-Frame-Options"] == "DENY"
    for response in (flow, home):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_a_views_own_security_header_wins_and_new_settings_apply_at_once(app, client):
    @app.get("/lti/test-own-headers")
    def own_headers():
        allow_framing()
        return "ok", {"Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff"}

    response = client.get("/lti/test-own-headers")
    assert response.headers.getlist("Referrer-Policy") == ["same-origin"]
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert "frame-ancestors https: http:" in response.headers["Content-Security-Policy"]
    # Settings replaced while serving (a new object): the next response follows them.
    config = app.config["GATEHOUSE"]
    app.config["GATEHOUSE"] = dataclasses.replace(
        config,
        security=dataclasses.replace(config.security, frame_ancestors=("https://lms.example",)),
    )
    policy = client.get("/lti/test-own-headers").headers["Content-Security-Policy"]
    assert policy.endswith("frame-ancestors https://lms.example")


def csp_directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    parts = (p.strip() for p in policy.split(";"))
    return dict((part.split(" ", 1) + [""])[:2] for part in parts if part)


@pytest.mark.parametrize("path", ["/", "/lti/register", "/console/login"])
def test_the_logo_shows_in_the_header_and_only_its_origin_may_serve_images(make_app, path):
    logo = "https://cdn.quiz.example/brand/logo.png"
    response = make_app({"tool": {"logo_uri": logo}}).test_client().get(path)
    page = response.get_data(as_text=True)
    header = re.search(r'<header class="brand">.*?</header>', page, re.S).group(0)
    # Beside the name, which says it: alt="" (decorative); width and height keep the header still.
    assert f'<img class="brand-logo" src="{logo}" alt="" width="32" height="32">' in header
    assert "Quiz Tool" in header
    assert csp_directives(response)["img-src"] == "'self' https://cdn.quiz.example"


def test_without_a_logo_no_image_and_images_from_gatehouse_only(client):
    response = client.get("/")
    assert "<img" not in response.get_data(as_text=True)
    assert csp_directives(response)["img-src"] == "'self'"


def test_pages_declare_both_colour_schemes(client):
    page = client.get("/lti/register").get_data(as_text=True)
    assert '<meta name="color-scheme" content="light dark">' in page
    with client.get("/static/style.css") as response:
        css = response.get_data(as_text=True)
    assert "@media (prefers-color-scheme: dark)" in css


def test_production_mode_frames_only_under_https(make_app):
    client = make_app({"security": {"allow_insecure_platforms": False}}).test_client()
    policy = client.get("/lti/register").headers["Content-Security-Policy"]
    assert policy.endswith("frame-ancestors https:")


def test_landing_page_shows_the_registration_url(client):
    page = client.get("/", base_url="https://reg.example.com").get_data(as_text=True)
    assert "https://reg.example.com/lti/register" in page
    assert "Quiz Tool" in page


def test_base_url_honours_forwarded_headers_from_a_trusted_proxy(make_app):
    client = make_app({"trusted_proxies": 1}).test_client()
    page = client.get(
        "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tool.example.org"}
    ).get_data(as_text=True)
    assert "https://tool.example.org/lti/register" in page


def test_configured_base_url_wins(make_app):
    client = make_app({"base_url": "https://reg.example.net"}).test_client()
    assert "https://reg.example.net/lti/register" in client.get("/").get_data(as_text=True)


def test_unknown_page_is_a_readable_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "<h1>This page does not exist</h1>" in page
    assert "What to do:" in page and '<a class="button" href="/">Go to the home page</a>' in page
    assert '<link rel="stylesheet" href="/static/style.css">' in page  # the site's style
    assert "Traceback" not in page and "Not Found" not in page


def test_a_wrong_method_is_a_readable_405_that_names_the_allowed_ones(client):
    response = client.delete("/lti/keys")
    assert response.status_code == 405
    page = response.get_data(as_text=True)
    assert "<h1>This page cannot be opened this way</h1>" in page
    assert "What to do:" in page and 'href="/"' in page
    assert "GET" in response.headers["Allow"]
    assert "Method Not Allowed" not in page


def test_an_unexpected_error_is_a_readable_500(make_app):
    app = make_app({})

    @app.get("/explode")
    def explode():
        raise RuntimeError("boom")

    response = app.test_client().get("/explode")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "<h1>Something went wrong on our side</h1>" in page
    assert "What to do:" in page and 'href="/"' in page
    assert "boom" not in page and "Traceback" not in page


def test_every_response_carries_a_request_id_and_logs_name_it(make_app, caplog):
    client = make_app().test_client()
    first = client.get("/lti/register?openid_configuration=http://127.0.0.1:9/nothing")
    request_id = first.headers["X-Request-ID"]
    assert len(request_id) == 16
    assert any(getattr(r, "request_id", None) == request_id for r in caplog.records)
    given = client.get("/healthz", headers={"X-Request-ID": "proxy-id-1234"})
    assert given.headers["X-Request-ID"] == "proxy-id-1234"
    hostile = client.get("/healthz", headers={"X-Request-ID": "x forged log line"})
    assert hostile.headers["X-Request-ID"] != "x forged log line"


def test_json_logs(make_app, capsys):
    import json as jsonlib
    import logging

    app = make_app({"logging": {"format": "json"}})
    with app.test_request_context():
        from flask import g

        g.request_id = "req-12345678"
        logging.getLogger("app.test").warning("hello %s", "world")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = jsonlib.loads(line)
    assert entry["message"] == "hello world" and entry["level"] == "WARNING"
    assert entry["request_id"] == "req-12345678" and entry["logger"] == "app.test"


FORGED = "ok\n2026-12-05 03:00:00,000 INFO app.web.console [abcdef12] console.signed_in admin"


@pytest.mark.parametrize(
    "value", [FORGED, FORGED.replace("\n", "\r"), "a\x1b[2Kb\u2028c\x85d\x00e"]
)
def test_text_logs_keep_one_line_per_record_whatever_a_value_holds(make_app, capsys, value):
    import logging

    make_app()  # text is the default format
    logging.getLogger("app.test").warning("launch from %s", value)
    logging.getLogger("app.test").warning("next record")
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].endswith("WARNING app.test [-] next record")
    assert lines[-2].split(" WARNING app.test [-] ", 1)[1].startswith("launch from ")
    for char in "\n\r\x1b\u2028\x85\x00":
        assert char not in lines[-2]
    assert "console.signed_in admin" in lines[-2] or "\\x1b[2Kb\\u2028c\\x85d\\x00e" in lines[-2]


def test_text_logs_indent_tracebacks_so_only_records_start_a_line(make_app, capsys):
    import logging

    make_app()
    try:
        raise ValueError("bad\n2026-12-05 03:00:00,000 INFO app forged")
    except ValueError:
        logging.getLogger("app.test").exception("failed")
    lines = capsys.readouterr().err.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("[-] failed"))
    assert lines[start + 1 :] and all(line.startswith("    ") for line in lines[start + 1 :])


def test_json_logs_stay_valid_json_whatever_a_value_holds(make_app, capsys):
    import json as jsonlib
    import logging

    make_app({"logging": {"format": "json"}})
    logging.getLogger("app.test").warning("launch from %s", FORGED + "\u2028\x00")
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "launch from" in x]
    assert jsonlib.loads(line)["message"] == "launch from " + FORGED + "\u2028\x00"


def test_no_page_may_run_inline_script(client):
    """The policy allows scripts only from files, and no template relies on anything else."""
    policy = client.get("/lti/register").headers["Content-Security-Policy"]
    directives = dict(
        (part.split(" ", 1) + [""])[:2] for part in (p.strip() for p in policy.split(";")) if part
    )
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert directives["default-src"] == "'self'"
    templates = Path(__file__).resolve().parent.parent / "templates"
    for template in templates.rglob("*.html"):
        source = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source), template
        assert not re.search(r"\son[a-z]+\s*=", source), template  # onclick= and the like
        assert "javascript:" not in source, template


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("post", "/console/login", {"email": "a\x00@b.example", "password": "x"}),
        ("post", "/lti/launch", {"state": "s\x00", "id_token": "x"}),
        ("get", "/lti/login?iss=https://lms.example%00&login_hint=1", None),
        (
            "get",
            "/lti/register?openid_configuration=https://lms.example/c%00&registration_token=t",
            None,
        ),
    ],
)
def test_values_no_database_can_store_are_refused_at_the_door(client, store, method, path, data):
    """PostgreSQL refuses NUL in text: a form or query holding one gets a readable 400 page."""
    if data is not None and path.startswith("/console/"):
        page = client.get(path).get_data(as_text=True)
        data["csrf_token"] = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = getattr(client, method)(path, data=data)
    assert response.status_code == 400
    assert "cannot be stored" in response.get_data(as_text=True)
    assert store.list_registrations()[0] == []
