"""Rate limits (flask-limiter): the registration URL, launches, sign-in forms and the API.

Counters live in each worker's memory: with N workers an address may get up to N times a
limit. Sign-in lockouts, which matter more, are kept in the database (app.domain.accounts).
"""

from __future__ import annotations

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


# Endpoints no limit applies to that are hot enough for the limiter's own bookkeeping to show:
# every LMS fetches the key set to check the tool's signatures.
UNLIMITED_ENDPOINTS = frozenset({"lms.jwks"})


@limiter.request_filter
def _skip_limiter() -> bool:
    """Skip the limiter's bookkeeping where no limit can apply: limits off, or such an endpoint."""
    return _not_enabled() or request.endpoint in UNLIMITED_ENDPOINTS


register_limit = limiter.limit(_limit("register"), exempt_when=_not_enabled)
signin_limit = limiter.limit(_limit("signin"), exempt_when=_not_a_post)
api_limit = limiter.limit(_limit("api"), exempt_when=_not_enabled)
# Shared by /lti/login and /lti/launch: one launch is one request to each.
launch_limit = limiter.shared_limit(_limit("launch"), scope="launch", exempt_when=_not_enabled)


def init_app(app: Flask) -> None:
    """Attach the limiter; views and blueprints carry their own limits."""
    limiter.init_app(app)
    limiter.reset()
