"""Sakai (LTI13Servlet): an incomplete scope list, and grants decided by the admin's checkboxes.

Sources, in sakaiproject/sakai:
- `basiclti/basiclti-blis/src/java/org/sakaiproject/lti13/LTI13Servlet.java` (later
  `lti/lti-blis/...`): its OpenID configuration lists
  fewer scopes than it grants, its registration answer echoes the requested `scope`, and its
  token endpoint grants what the admin ticked for the tool, all or nothing.
- `lti/docs/`: where the admin pastes the URL (LTI Advantage Auto Provision).
"""

from __future__ import annotations

from ..text import N_
from .base import LMS, Step


class Sakai(LMS):
    """Sakai's External Tools."""

    codes = ("sakailms.org",)
    name = "Sakai"
    where_to_paste = N_(
        "**Administration Workspace → External Tools → LTI Advantage Auto Provision**, then "
        "paste the URL."
    )
    next_steps = (
        Step(
            N_(
                "In **Administration Workspace → External Tools**, open the tool and tick what "
                "it may receive (name, e-mail, services, placements)."
            )
        ),
        Step(N_("Save; the tool is then available to sites.")),
    )
    how_services_are_granted = (
        "Sakai's answer repeats the scopes asked for; what the tool may use is what the admin "
        "ticks in **External Tools**, and its token endpoint refuses a whole request naming a "
        "scope left unticked (LTI13Servlet.handleTokenPost)."
    )
    # The same checkboxes LTI13Servlet.handleTokenPost reads (module docstring's source).
    where_to_grant_services = N_(
        "In **Administration Workspace → External Tools**, open the tool and tick the services "
        "it may use"
    )
    # `scopes_supported` omits services Sakai grants, so Gatehouse asks for its scopes anyway.
    scopes_supported_is_complete = False
