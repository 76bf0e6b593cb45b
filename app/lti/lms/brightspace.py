"""Brightspace (D2L): from D2L's documentation only; its code is not public.

Source: D2L's "LTI Advantage: Dynamic Registration" and "Manage Extensibility" documentation
(Brightspace Community). Brightspace opens the registration URL in a new tab, puts its
one-time token in the configuration URL's path, and keeps new registrations disabled.
"""

from __future__ import annotations

from ..text import N_
from .base import LMS, Step


class Brightspace(LMS):
    """D2L Brightspace."""

    codes = ("desire2learn",)
    name = "Brightspace"
    where_to_paste = N_(
        "**Admin Tools → Manage Extensibility → LTI Advantage → Register Tool → Dynamic**, then "
        "paste the URL (Brightspace opens it in a new tab)."
    )
    next_steps = (
        Step(
            N_(
                "Brightspace keeps new registrations **disabled**. Open **Admin Tools → Manage "
                "Extensibility → LTI Advantage** and enable it."
            )
        ),
        Step(
            N_(
                "Choose **View Deployments → New Deployment**, pick the org units and "
                "extensions, and create the links teachers will use."
            )
        ),
    )
