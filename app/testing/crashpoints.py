"""Named points where the crash-safety tests kill the process, as a real crash would.

Set GATEHOUSE_TEST_CRASH_AT=<point> in a test's environment: the worker that reaches that point
is killed with SIGKILL (no cleanup, no response), and the test checks what survives. Unset, as
in every real deploy, `reach` does nothing.
"""

from __future__ import annotations

import os
import signal

POINTS = ("before_post", "after_response", "before_close")


def reach(point: str) -> None:
    """Die here when the crash-safety tests ask for it."""
    if os.environ.get("GATEHOUSE_TEST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
