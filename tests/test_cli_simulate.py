"""`gatehouse simulate` against a Gatehouse served for real, as an operator runs it."""

from urllib.parse import quote

import pytest

from app.cli import main
from app.simulator import PROFILES, Simulator
from app.testing import LoopbackServer


@pytest.fixture
def same_database(monkeypatch, database_url):
    """Point the command at the database the live app uses, on the test's backend."""
    monkeypatch.setenv("DATABASE_URL", database_url)


@pytest.fixture
def issued_tokens(monkeypatch):
    """Return the registration tokens the simulated LMS issues, as the command runs."""
    tokens = []
    initiate = Simulator.initiate

    def recording(self, *args, **kwargs):  # the real initiate: only its token is kept
        url, grant = initiate(self, *args, **kwargs)
        tokens.append(grant.token)
        return url, grant

    monkeypatch.setattr(Simulator, "initiate", recording)
    return tokens


def assert_no_token_in(output, tokens):
    """Fail when any part of a token (its random end, as written or percent-encoded) shows."""
    assert tokens
    for token in tokens:
        for spelling in (token, quote(token, safe=""), quote(quote(token, safe=""), safe="")):
            assert spelling[-12:] not in output, f"token {spelling[-12:]} in:\n{output}"
    assert "[token]" in output


@pytest.mark.parametrize("profile", PROFILES)
def test_simulate_succeeds_and_checks_the_stored_platform(
    live, same_database, profile, runner, issued_tokens
):
    result = runner.invoke(main, ["simulate", "--profile", profile, "--url", live.register_url])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert "Stored platform matches what the LMS granted." in result.output
    assert_no_token_in(result.output, issued_tokens)


def test_simulate_fails_when_the_platform_is_not_in_the_database(
    live, monkeypatch, tmp_path, runner
):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    result = runner.invoke(main, ["simulate", "--profile", "moodle", "--url", live.register_url])
    assert result.exit_code == 1
    assert "stored platform: no platform with issuer" in result.output
    skipped = runner.invoke(
        main, ["simulate", "--profile", "moodle", "--url", live.register_url, "--skip-store-check"]
    )
    assert skipped.exit_code == 0, skipped.output


def test_simulate_fails_when_gatehouse_refuses(make_app, same_database, runner):
    app = make_app({"registration": {"require_invitation": True}})
    with LoopbackServer(app, "localhost") as server:
        result = runner.invoke(
            main, ["simulate", "--profile", "moodle", "--url", server.url + "/lti/register"]
        )
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert "The tool's final page answered HTTP 403." in result.output
    assert "Rule: invitation-required" in result.output


def test_simulate_fails_when_nothing_listens(same_database, runner, issued_tokens):
    result = runner.invoke(
        main,
        [
            "simulate",
            "--profile",
            "generic",
            "--url",
            "http://127.0.0.1:9/lti/register",
            "--timeout",
            "5",
        ],
    )
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert_no_token_in(result.output, issued_tokens)  # nor in the connection error


def test_simulate_with_a_fault_shows_the_admins_error(live, same_database, runner, issued_tokens):
    result = runner.invoke(
        main,
        [
            "simulate",
            "--profile",
            "canvas",
            "--url",
            live.register_url,
            "--fault",
            "refuse_registration",
        ],
    )
    assert result.exit_code == 1
    assert "422" in result.output and "FAIL" in result.output
    assert_no_token_in(result.output, issued_tokens)


def test_simulate_then_launch(make_app, same_database, runner):
    for auto_activate, code, text in (
        (True, 0, "Gatehouse verified the launch"),
        (False, 1, "Quiz Tool is being set up for your school"),
    ):
        app = make_app({"registration": {"auto_activate": auto_activate}})
        with LoopbackServer(app, "localhost") as server:
            result = runner.invoke(
                main,
                [
                    "simulate",
                    "--profile",
                    "canvas",
                    "--url",
                    server.url + "/lti/register",
                    "--launch",
                ],
            )
        assert result.exit_code == code, result.output
        assert "Launch:" in result.output and text in result.output
        if not auto_activate:
            assert "rule platform-inactive" in result.output
