"""Rate limits (flask-limiter): the registration URL, launches, sign-in forms and the API.

Limits are per client address: `request.remote_addr`, which is the connecting address unless
`trusted_proxies` says how many proxies' `X-Forwarded-For` entries to believe (app.web.proxies).
Failed sign-ins are also limited per account (the normalised e-mail) and globally, so rotating
addresses does not help; the database lockouts of app.domain.accounts come on top.

Counters live in `limits.storage_uri` (Redis, shared by every worker and instance) or, by
default, in each worker's memory: with N workers an address may then get up to N times a limit.
When the shared storage fails, the limits fail open (`swallow_errors`): each request is served
unlimited and the error is logged, rather than every request failing.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
import time

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from werkzeug.exceptions import TooManyRequests

# swallow_errors rather than in_memory_fallback: flask-limiter's fallback replaces every
# route's limits with one flat list of limits for all routes (so launches would get the
# sign-in rate, or sign-ins the launch rate), and it is per worker anyway. Failing open keeps
# registrations and launches working while the storage is down; the database lockouts still
# guard sign-in, and each failure is logged.
limiter = Limiter(key_func=get_remote_address, headers_enabled=True, swallow_errors=True)


class ThrottledErrors(logging.Filter):
    """Pass the first error, then at most one a minute, saying how many were left out.

    With the storage down every request fails the same way: one traceback per request would
    bury everything else in the log.
    """

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._last = None
            self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last < self.interval:
                self._left_out += 1
                return False
            self._last, left_out, self._left_out = now, self._left_out, 0
        if left_out:
            record.msg = f"{record.msg} ({left_out} more like it since the last one logged)"
        return True


# Its errors ("Failed to rate limit. Swallowing error") reach Gatehouse's log handler.
limiter.logger = logging.getLogger(__name__)
storage_errors = ThrottledErrors()
limiter.logger.addFilter(storage_errors)


class SweptMemoryStorage(MemoryStorage):
    """limits' per-worker memory storage, minus a new thread for nearly every request.

    The library's storage starts a `threading.Timer` to drop expired counters whenever a counter
    changes and the previous timer has ended, so at launch rates nearly every request started
    (and ended) a thread: a sizeable part of a launch's CPU (bench/, `make bench`). Expired
    counters are already ignored when read; here they are dropped at most once a second, by the
    request that comes along, so memory stays bounded without the threads.
    """

    STORAGE_SCHEME = ["gatehouse-memory"]
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, **options) -> None:
        super().__init__(uri, **options)
        self._swept = time.monotonic()
        self._sweeping = threading.Lock()

    # The hook MemoryStorage calls on every change (its name-mangled private method): sweep
    # inline instead of scheduling a timer thread. tests/test_limits.py holds that it is called.
    def _MemoryStorage__schedule_expiry(self) -> None:
        if time.monotonic() - self._swept < self.SWEEP_SECONDS:
            return
        if not self._sweeping.acquire(blocking=False):
            return  # another request is sweeping
        try:
            self._swept = time.monotonic()
            self._MemoryStorage__expire_events()
        finally:
            self._sweeping.release()


# A request waits at most this long for a storage that does not answer.
STORAGE_TIMEOUT_SECONDS = 0.5
SHARED_SCHEMES = ("redis", "rediss", "valkey", "valkeys")


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


# Endpoints no flask-limiter limit applies to that are hot enough for its per-request hooks to
# show: every LMS fetches the key set to check the tool's signatures; launches count their own
# limit. Its hooks do not run on them at all (_skip_hooks_where_unlimited).
UNLIMITED_ENDPOINTS = frozenset({"lms.jwks", "launch.login", "launch.launch", "launch.verify"})
LAUNCH_SCOPE = "gatehouse-launch"


@limiter.request_filter
def _skip_limiter() -> bool:
    """Skip flask-limiter's bookkeeping while limits are off."""
    return _not_enabled()


register_limit = limiter.limit(_limit("register"), exempt_when=_not_enabled)
api_limit = limiter.limit(_limit("api"), exempt_when=_not_enabled)


@functools.cache
def _rates(text: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(text))


def launch_limit(view):
    """Limit a launch route: login, launch and verify share `limits.launch` per address.

    Counted by the limiter's own strategy in its own storage (the `limits` library, as
    flask-limiter counts), so the limit holds across workers and instances on a shared storage
    and fails open the same way; without flask-limiter's per-request passes, which cost a tenth
    of a launch's CPU (bench/, `make bench`). A refused launch is a 429 with Retry-After.
    """

    @functools.wraps(view)
    def checked(*args, **kwargs):
        settings = current_app.config["GATEHOUSE"].limits
        if settings.enabled:
            _count_launch(settings.launch)
        return view(*args, **kwargs)

    return checked


def _count_launch(rates: str) -> None:
    address = get_remote_address()
    try:
        for rate in _rates(rates):
            if not limiter.limiter.hit(rate, LAUNCH_SCOPE, address):
                reset, _remaining = limiter.limiter.get_window_stats(rate, LAUNCH_SCOPE, address)
                raise TooManyRequests(retry_after=max(1, math.ceil(reset - time.time())))
    except TooManyRequests:
        raise
    except Exception:  # the shared storage is down: serve the launch, as the limiter does
        limiter.logger.exception("Failed to rate limit a launch; serving it unlimited")


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
    """Attach the limiter to the configured storage; views and blueprints carry their limits."""
    uri = app.config["GATEHOUSE"].limits.storage_uri or "memory://"
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower()
    # memory:// takes no options: the same storage, without a thread per request.
    memory = "gatehouse-memory://" if uri.lower() == "memory://" else uri
    app.config["RATELIMIT_STORAGE_URI"] = memory
    if scheme in SHARED_SCHEMES:
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {
            "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS,
            "socket_timeout": STORAGE_TIMEOUT_SECONDS,
        }
    # Each init_app makes a new storage: a memory one starts empty; shared counters are never
    # reset here, since other workers and instances are counting too.
    limiter.init_app(app)
    _skip_hooks_where_unlimited(app)
    storage_errors.reset()
    if scheme == "memory":
        return
    if app.config["GATEHOUSE"].limits.enabled and not _storage_answers():
        app.logger.error(
            "limits.storage_uri: the %s rate-limit storage does not answer; limits are not "
            "applied (requests are served) until it does",
            scheme,
        )


def _skip_hooks_where_unlimited(app: Flask) -> None:
    """Keep flask-limiter's per-request hooks off the routes in UNLIMITED_ENDPOINTS.

    No limit of flask-limiter's applies there, but its hooks would still work out the view's
    limits, the exemptions and the headers' context on every request: a launch's two requests
    (its login and its launch) spent more on that bookkeeping than on counting their own limit.
    The hooks are flask-limiter's as `Limiter.init_app` registers them (before, after,
    teardown); when a release registers them otherwise, Gatehouse refuses to start, naming the
    hook, and tests/test_limits.py checks that they stay off these routes.
    """
    mine = {
        "before": (app.before_request_funcs, lambda hook: hook == limiter._check_request_limit),
        "after": (
            app.after_request_funcs,
            lambda hook: isinstance(hook, functools.partial) and hook.args == (limiter,),
        ),
        "teardown": (
            app.teardown_request_funcs,
            lambda hook: (
                getattr(hook, "__self__", None) is limiter
                and hook.__name__.endswith("__release_context")
            ),
        ),
    }
    for when, (registry, is_limiters) in mine.items():
        hooks = registry.get(None, [])
        found = [i for i, hook in enumerate(hooks) if is_limiters(hook)]
        if len(found) != 1:
            raise RuntimeError(
                f"flask-limiter's {when}-request hook is not where Gatehouse expects it"
            )
        hooks[found[0]] = _unless_unlimited(hooks[found[0]], passes_response=when == "after")


def _unless_unlimited(hook, passes_response: bool):
    @functools.wraps(hook)
    def hooked(*args):
        if request.endpoint in UNLIMITED_ENDPOINTS:
            return args[0] if passes_response else None
        return hook(*args)

    return hooked


def _storage_answers() -> bool:
    try:
        return bool(limiter.storage.check())
    except Exception:  # any storage's client error means the same: not answering
        return False
