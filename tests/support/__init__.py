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
