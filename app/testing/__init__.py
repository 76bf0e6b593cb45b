"""Serving helpers shared by the LMS simulator, the test suite and the benchmark.

ONE threaded loopback WSGI server (`LoopbackServer`), ONE free-port helper (`free_port`) and ONE
server-process launcher (`ServerProcess`, with `Gunicorn` for Gatehouse as it is deployed).

Nothing here imports from `app`: the modules use the standard library and werkzeug only. That is
what lets the simulator use them and still keep its rule, "it imports nothing from app but
app.lti": the rule keeps the simulator out of the product (store, settings, views), and this
package is not the product but a leaf of plumbing beside it, which the product never imports.
tests/test_simulator_apart.py holds both rules (this package imports nothing from app; the
simulator imports only app.lti, app.simulator and app.testing).
"""

from app.testing.process import Gunicorn, ServerFailed, ServerProcess, base_environment
from app.testing.serving import LoopbackServer, QuietHandler, free_port, is_loopback_host

__all__ = [
    "Gunicorn",
    "LoopbackServer",
    "QuietHandler",
    "ServerFailed",
    "ServerProcess",
    "base_environment",
    "free_port",
    "is_loopback_host",
]
