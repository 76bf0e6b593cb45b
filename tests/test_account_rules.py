"""The rules that live above the store: how long a sign-in is locked, and whom an identity joins.

The store only counts, locks and links; these tests hold the policy in app/domain/accounts.py
to what an admin notices: the lock after too many failures, and no account taken over by a race.
"""

from datetime import UTC, datetime

import pytest

from app.domain.accounts import (
    FREE_FAILURES,
    OidcLinkRefused,
    SigninLocked,
    authenticate,
    oidc_account,
)
from app.web.login import PASSWORDS, hash_password

PASSWORD = "a long password"


def test_the_sign_in_after_too_many_failures_is_locked_for_the_policy_s_time(store):
    store.create_account("ada@school.example", "Ada", hash_password(PASSWORD))
    for _ in range(FREE_FAILURES - 1):
        assert authenticate(store, PASSWORDS, "ada@school.example", "wrong", "203.0.113.9") is None
    # Below the threshold nothing is locked.
    assert store.signin_locked_until(["email:ada@school.example", "ip:203.0.113.9"]) is None
    assert authenticate(store, PASSWORDS, "ADA@school.example ", "wrong", "203.0.113.9") is None

    with pytest.raises(SigninLocked) as locked:
        authenticate(store, PASSWORDS, "ada@school.example", PASSWORD, "203.0.113.9")
    assert 0 < locked.value.retry_after <= 31  # the fifth failure in a row: 30 seconds
    # The address is locked too, for every account tried from it.
    with pytest.raises(SigninLocked):
        authenticate(store, PASSWORDS, "someone@school.example", PASSWORD, "203.0.113.9")
    until = store.signin_locked_until(["ip:203.0.113.9"])
    assert datetime.fromisoformat(until.replace("Z", "+00:00")) > datetime.now(UTC)


def test_an_identity_linked_by_a_concurrent_sign_in_is_never_replaced(store):
    issuer = "https://idp.example"
    local = store.create_account("ada@school.example", "Ada", hash_password(PASSWORD))
    # Another sign-in links its identity between this one's check and its write.
    assert store.link_oidc(local.id, issuer, "ada-1").oidc_subject == "ada-1"
    assert store.link_oidc(local.id, issuer, "ada-2") is None

    with pytest.raises(OidcLinkRefused) as refused:
        oidc_account(store, issuer, "ada-3", "ada@school.example", None, True)
    assert refused.value.reason == "linked"
    assert store.get_account(local.id).oidc_subject == "ada-1"
    assert store.find_oidc_account(issuer, "ada-1").id == local.id
