"""Test rigs for Gatehouse's gates: fake Stripe, a real OpenID Provider, a browser, a fake LMS.

Tests import them as `support.<module>` (pytest puts tests/ on sys.path because tests/ has no
`__init__.py`); the modules import each other relatively, so `tests.support.<module>` works too
under `python -m pytest`.
"""

import os
import subprocess
import sys
from pathlib import Path


def required(reason: str | None) -> str | None:
    """Return a skip reason, or fail loudly when GATEHOUSE_REQUIRE_BROWSER says CI needs it."""
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


def run_served_script(script: str, database: Path) -> str:
    """Run `script` in a fresh interpreter that imports Gatehouse as gunicorn does (`wsgi`), with
    a SQLite database at path `database`; return its standard output, failing on an error."""
    env = {
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "test",
        "GATEHOUSE_TOOL__NAME": "Quiz Tool",
        "PATH": os.environ.get("PATH", ""),
    }
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
