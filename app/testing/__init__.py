"""Serving helpers shared by the LMS simulator, the test suite and the benchmark; crash points.

ONE threaded loopback WSGI server (`LoopbackServer`), ONE free-port helper (`free_port`) and ONE
server-process launcher (`ServerProcess`, with `Gunicorn` for Gatehouse as it is deployed); and
`crashpoints`, the named points where the crash-safety tests kill a worker.

Nothing here imports from `app`: the modules use the standard library and werkzeug only. That is
what lets the simulator use them and still keep its rule, "it imports nothing from app but
app.lti": the rule keeps the simulator out of the product (store, settings, views), and this
package is not the product but a leaf of plumbing beside it. The product imports only
`app.testing.crashpoints` (standard library, and a no-op unless a test asks for a crash), which
is why the names below are loaded when first used rather than when the package is imported.
tests/test_simulator_apart.py holds both rules (this package imports nothing from app; the
simulator imports only app.lti, app.simulator and app.testing).
"""

import importlib
from typing import Any

# Name -> the module that defines it, loaded on first use (PEP 562).
EXPORTS = {
    "Gunicorn": "app.testing.process",
    "ServerFailed": "app.testing.process",
    "ServerProcess": "app.testing.process",
    "base_environment": "app.testing.process",
    "LoopbackServer": "app.testing.serving",
    "QuietHandler": "app.testing.serving",
    "free_port": "app.testing.serving",
    "is_loopback_host": "app.testing.serving",
}

__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)
