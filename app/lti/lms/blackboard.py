"""Blackboard Learn (Anthology): registered centrally, not from Learn; documentation only.

Source: Anthology's developer documentation ("LTI 1.3 tools in Learn", Developer Portal). Learn
has no Dynamic Registration page of its own: tools register in the Anthology Developer Portal,
and each Learn administrator then adds the tool by its Client ID.
"""

from __future__ import annotations

from ..text import N_
from .base import LMS, Step


class Blackboard(LMS):
    """Blackboard Learn."""

    codes = ("BlackboardLearn",)
    name = "Blackboard"
    where_to_paste = N_(
        "nowhere in Learn itself: Blackboard registers tools centrally through the Anthology "
        "Developer Portal, and the Learn administrator then adds the tool by its Client ID."
    )
    next_steps = (
        Step(
            N_(
                "In Blackboard Learn, go to **System Admin → LTI Tool Providers → Register LTI "
                "1.3/Advantage Tool**."
            ),
            with_client_id=N_("Enter the Client ID `%(client_id)s`."),
        ),
        Step(N_("Approve the tool and choose where it appears.")),
    )
