"""The launch binding's checks, without HTTP: the digests, constant-time compares and the state."""

import pytest

from app.domain import launch as launches
from app.lti.errors import InvalidLaunch

SECRET = "test-secret"


def refused(check, *args):
    with pytest.raises(InvalidLaunch) as info:
        check(*args)
    assert info.value.rule == "launch-not-bound"
    return info.value.detail


def test_the_cookie_of_the_same_state_is_accepted():
    state = launches.new_state("platform-1", None)
    launches.check_cookie(SECRET, state, launches.cookie_digest(SECRET, state))


@pytest.mark.parametrize(
    "cookie",
    [
        None,
        "",
        "not-a-digest",
        launches.cookie_digest(SECRET, "another-state"),
        launches.cookie_digest("another-secret", "the-state"),
        launches.storage_digest(SECRET, "the-state"),  # the storage value is not the cookie
    ],
    ids=["missing", "empty", "garbage", "other-state", "other-key", "storage-value"],
)
def test_any_other_cookie_is_refused(cookie):
    detail = refused(launches.check_cookie, SECRET, "the-state", cookie)
    assert "browser" in detail


def test_the_storage_value_of_the_same_state_is_accepted():
    state = launches.new_state("platform-1", "_parent")
    launches.check_storage_value(SECRET, state, launches.storage_digest(SECRET, state), "")


@pytest.mark.parametrize(
    ("value", "error", "says"),
    [
        ("", "timeout", "did not answer in time"),
        (None, "no-lms-window", "no LMS window"),
        ("", "made-up", "sent no value"),
        (launches.storage_digest(SECRET, "another-state"), "", "another launch"),
        (launches.cookie_digest(SECRET, "the-state"), "", "another launch"),
    ],
)
def test_a_missing_or_foreign_storage_value_is_refused(value, error, says):
    assert says in refused(launches.check_storage_value, SECRET, "the-state", value, error)


def test_the_compares_take_constant_time(monkeypatch):
    compared = []
    real = launches.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(launches.hmac, "compare_digest", spy)
    launches.check_cookie(SECRET, "s", launches.cookie_digest(SECRET, "s"))
    launches.check_storage_value(SECRET, "s", launches.storage_digest(SECRET, "s"), "")
    assert len(compared) == 2


@pytest.mark.parametrize(
    ("fetch_site", "origin", "accepted"),
    [
        ("same-origin", "null", True),
        (None, "https://gh.example", True),
        ("cross-site", "https://gh.example", False),
        ("same-site", "https://gh.example", False),
        ("none", None, False),
        (None, "null", False),
        (None, None, False),
        (None, "https://evil.example", False),
    ],
)
def test_the_storage_proof_must_come_from_gatehouses_own_page(fetch_site, origin, accepted):
    if accepted:
        launches.check_same_origin(fetch_site, origin, "https://gh.example")
    else:
        refused(launches.check_same_origin, fetch_site, origin, "https://gh.example")


@pytest.mark.parametrize("target", [None, "_parent", "post_message_forwarding", "a.b/ü"])
def test_the_state_carries_its_registration_and_storage_frame(target):
    state = launches.new_state("Ab-_9", target)
    binding = launches.LoginBinding.parse(state)
    assert binding == launches.LoginBinding("Ab-_9", target)
    assert launches.binding_key(state) != launches.binding_key(launches.new_state("Ab-_9", target))


@pytest.mark.parametrize("state", ["made-up", "a.", "a.b.!!!", "a.b.c.d", ""])
def test_a_state_gatehouse_did_not_shape_describes_no_binding(state):
    assert launches.LoginBinding.parse(state) is None
