"""Test rigs for Gatehouse's gates: fake Stripe, a real OpenID Provider, a browser, a fake LMS.

Tests import them as `support.<module>` (pytest puts tests/ on sys.path because tests/ has no
`__init__.py`); the modules import each other relatively, so `tests.support.<module>` works too
under `python -m pytest`.
"""


def required(reason: str | None) -> str | None:
    """Return a skip reason, or fail loudly when GATEHOUSE_REQUIRE_BROWSER says CI needs it."""
    import os

    if reason and os.environ.get("GATEHOUSE_REQUIRE_BROWSER"):
        raise RuntimeError(f"GATEHOUSE_REQUIRE_BROWSER is set but {reason}")
    return reason


def wait_out_key_cache(app) -> None:
    """Do to the app's key-set cache what half a minute of a running worker does: it reads the
    keys now, then its clock moves past the time after which every worker publishes them, so the
    current key signs (app/domain/keys.py)."""
    from app.domain.keys import CREATED_AT_MARGIN, JWKS_CACHE_SECONDS

    cache = app.extensions["gatehouse.jwks"]
    cache.invalidate()
    cache.body()
    before = cache.clock
    cache.clock = lambda: before() + JWKS_CACHE_SECONDS + CREATED_AT_MARGIN
