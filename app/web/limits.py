"""Rate limits (flask-limiter): the registration URL, launches, sign-in forms and the API.

Limits are per client address: `request.remote_addr`, which is the connecting address unless
`trusted_proxies` says how many proxies' `X-Forwarded-For` entries to believe (app.web.proxies).
Failed sign-ins are also limited per account (the normalised e-mail) and globally, so rotating
addresses does not help; the database lockouts of app.domain.accounts come on top.

Counters live in each worker's memory: with N workers an address may get up to N times a limit.
"""

from __future__ import annotations

import hashlib

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, headers_enabled=True, storage_uri="memory://")


def _limit(name: str):
    return lambda: getattr(current_app.config["GATEHOUSE"].limits, name)


def _not_enabled() -> bool:
    return not current_app.config["GATEHOUSE"].limits.enabled


def _not_a_post() -> bool:
    return _not_enabled() or request.method != "POST"


def _email() -> str:
    return (request.form.get("email") or "").strip().lower()


def _no_account() -> bool:
    return _not_a_post() or not _email()


def account_key() -> str:
    """Key a sign-in by its normalised e-mail, hashed: no address reaches the storage or log."""
    return "account:" + hashlib.sha256(_email().encode()).hexdigest()[:32]


def _everyone() -> str:
    return "all"


def _not_signed_in(response) -> bool:
    """Count a sign-in (or sign-up) form submission that did not end in a redirect onward."""
    return not 300 <= response.status_code < 400


# Endpoints no limit applies to that are hot enough for the limiter's own bookkeeping to show:
# every LMS fetches the key set to check the tool's signatures.
UNLIMITED_ENDPOINTS = frozenset({"lms.jwks"})


@limiter.request_filter
def _skip_limiter() -> bool:
    """Skip the limiter's bookkeeping where no limit can apply: limits off, or such an endpoint."""
    return _not_enabled() or request.endpoint in UNLIMITED_ENDPOINTS


register_limit = limiter.limit(_limit("register"), exempt_when=_not_enabled)
api_limit = limiter.limit(_limit("api"), exempt_when=_not_enabled)
# Shared by /lti/login and /lti/launch: one launch is one request to each.
launch_limit = limiter.shared_limit(_limit("launch"), scope="launch", exempt_when=_not_enabled)

_signin_per_address = limiter.limit(_limit("signin"), exempt_when=_not_a_post)
# Shared by every sign-in form (console and gate), counting only the submissions that failed.
_signin_per_account = limiter.shared_limit(
    _limit("signin_account"),
    scope="signin-account",
    key_func=account_key,
    exempt_when=_no_account,
    deduct_when=_not_signed_in,
)
_signin_global = limiter.shared_limit(
    _limit("signin_global"),
    scope="signin-global",
    key_func=_everyone,
    exempt_when=_not_a_post,
    deduct_when=_not_signed_in,
)


def signin_limit(view):
    """Limit a sign-in form's submissions per address, and its failures per account and overall."""
    return _signin_per_address(_signin_per_account(_signin_global(view)))


def init_app(app: Flask) -> None:
    """Attach the limiter; views and blueprints carry their own limits."""
    limiter.init_app(app)
    limiter.reset()
