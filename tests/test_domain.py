"""The use cases run without Flask: no app context, no request, a `Services` built by hand."""

import logging
from functools import partial
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import has_app_context

from app.domain import registration as flow
from app.domain.events import Events
from app.domain.keys import KeySetCache
from app.domain.services import Services, outbound_client
from app.lti.errors import RegistrationError
from app.lti.registration import resolve_tool
from app.settings import load_settings

TOOL = "https://tool.example"


def services_for(app) -> Services:
    """Build what the use cases take from the app's store and settings, as a CLI command would."""
    store = app.extensions["gatehouse.store"]
    settings = app.config["GATEHOUSE"]
    return Services(
        store=store,
        settings=settings,
        base_url=TOOL,
        events=Events(store, None, "a test"),
        keys=KeySetCache(store),
        log=logging.getLogger("tests.domain"),
        outbound=partial(outbound_client, settings),
    )


def start(services, sim):
    """Start and discover a registration the simulated LMS initiates, as /lti/register does."""
    initiation = dict(parse_qsl(urlsplit(sim.initiation_url(TOOL + "/lti/register")).query))
    url = flow.check_initiation(initiation["openid_configuration"])
    token = initiation.get("registration_token")
    attempt = flow.start(services.store, url, token, 600)
    platform = flow.discover(
        services.store, services.outbound(), attempt, url, token, issuer_check="strict"
    )
    return attempt, platform, token


def test_a_registration_completes_through_the_use_cases_alone(make_app, simulator):
    services = services_for(make_app())
    sim = simulator("moodle")
    # Outside any app context: a use case reaching for current_app or g would raise here.
    assert not has_app_context()
    attempt, platform, token = start(services, sim)
    outcome = flow.complete(services, attempt, platform, token)
    store = services.store
    assert store.get_registration(attempt.id).state == "completed"
    assert sim.registration_by_client_id(outcome.platform.client_id) is not None
    (entry,) = store.list_audit(subject_id=attempt.id)[0]
    assert (entry.actor, entry.action) == ("a test", "registration.completed")


def test_a_refused_registration_fails_and_is_recorded_without_flask(make_app, simulator):
    services = services_for(make_app())
    sim = simulator("moodle", faults=["refuse_registration"])
    attempt, platform, token = start(services, sim)
    with pytest.raises(RegistrationError) as refused:
        flow.complete(services, attempt, platform, token)
    flow.fail(services, attempt, refused.value)
    assert services.store.get_registration(attempt.id).state == "failed"
    (entry,) = services.store.list_audit(subject_id=attempt.id)[0]
    assert entry.action == "registration.failed"


def test_the_tool_profile_is_the_settings_resolved_at_each_base_url():
    quiz = load_settings({}, {"tool": {"name": "Quiz Tool"}})
    essay = load_settings({}, {"tool": {"name": "Essay Tool"}})
    here = flow.tool_profile(quiz, "https://tool.example.com")
    assert here == resolve_tool(quiz.tool.as_dict(), "https://tool.example.com")
    assert flow.tool_profile(quiz, "https://tool.example.com") is here  # worked out once
    there = flow.tool_profile(quiz, "https://other.example.com")
    assert there.jwks_uri == "https://other.example.com/lti/keys"
    assert here.jwks_uri == "https://tool.example.com/lti/keys"
    # Other settings (another app in the same process) get their own profile.
    assert flow.tool_profile(essay, "https://tool.example.com").name == "Essay Tool"
    # Hosts sent by anyone cannot make the process keep more than a few.
    for n in range(3 * flow.PROFILES_KEPT):
        flow.tool_profile(quiz, f"https://host{n}.example.com")
    assert len(flow._PROFILES) <= flow.PROFILES_KEPT
    assert flow.tool_profile(quiz, "https://tool.example.com") == here
