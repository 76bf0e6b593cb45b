"""Any LMS Gatehouse has no specific knowledge of: the specification's behaviour, as in base.py."""

from __future__ import annotations

from ..text import N_
from .base import LMS, Step


class Generic(LMS):
    """An LMS without a family module (an unknown `product_family_code`, or none)."""

    # A "may": nothing Gatehouse knows the admin must do, so it does not hold the dialog open.
    next_steps = (
        Step(
            N_(
                "Your LMS may keep the tool disabled until an administrator enables or "
                "activates it in its list of external tools."
            ),
            action=False,
        ),
    )
