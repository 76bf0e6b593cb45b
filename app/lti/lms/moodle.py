"""Moodle (mod/lti): the configuration 3.10 sends, and what the admin does after registering.

Sources, in moodle/moodle:
- `mod/lti/openid-configuration.php`: 3.10's has no `authorization_endpoint`, a trailing space
  in the platform-configuration key, and `messages_supported` as strings (`LtiResourceLink`);
  4.x lists `<wwwroot>/mod/lti/auth.php` as its `authorization_endpoint`, the page that has
  answered LTI 1.3 logins since 3.7.
- `mod/lti/classes/local/ltiopenid/registration_helper.php`: the registration checks (`domain`
  equal to the host[:port] of `target_link_uri`, as written) and `config_to_registration`.
- `mod/lti/toolconfigure.php` and `mod/lti/startltiadvregistration.php`: where the admin pastes
  the URL; a new tool is Pending until activated, an updated one keeps its state.
- `mod/lti/service/gradebookservices/classes/local/service/gradebookservices.php`
  (`get_configuration_options`) and its siblings under `mod/lti/service/`: each service is a
  setting of the tool's own form (IMS LTI Assignment and Grade Services, Names and Role
  Provisioning, Tool Settings), which the admin can change after registering.
"""

from __future__ import annotations

from typing import Any

from .base import LMS, Step

AUTHORIZATION_PATH = "/mod/lti/auth.php"


class Moodle(LMS):
    """Moodle's External tool module."""

    codes = ("moodle",)
    name = "Moodle"
    where_to_paste = (
        "**Site administration → Plugins → Activity modules → External tool → Manage tools**: "
        "paste the URL in **Tool URL** and click **Add LTI Advantage**."
    )
    next_steps = (
        Step(
            "Moodle lists the tool as **Pending** under **Site administration → Plugins → "
            "Activity modules → External tool → Manage tools**."
        ),
        Step("Click **Activate** on its card; teachers can then add it to courses."),
    )
    next_steps_after_update = (
        Step(
            "Moodle updated the tool in place and kept it as it was (active or pending) under "
            "**Site administration → Plugins → Activity modules → External tool → Manage "
            "tools**; nothing else is needed.",
            action=False,
        ),
    )
    where_to_grant_services = (
        "In **Site administration → Plugins → Activity modules → External tool → Manage "
        "tools**, open the tool's settings (the cog on its card) and choose what it may use "
        "under **Services**"
    )

    how_services_are_granted = (
        "Moodle's answer can list `lineitem` when the tool may only read columns and send "
        "scores (an operator-precedence slip in registration_helper.php's "
        "config_to_registration); its token endpoint grants the overlap of what is asked and "
        "what the tool may use, and says so (mod/lti/token.php)."
    )

    def fill_configuration(self, document: dict[str, Any], filled_in: list[str]) -> dict[str, Any]:
        """Give Moodle 3.10's configuration the authorization endpoint it leaves out."""
        if document.get("authorization_endpoint"):
            return document
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or not issuer.strip():
            return document
        endpoint = issuer.rstrip("/") + AUTHORIZATION_PATH
        filled_in.append(
            f"Used Moodle's login endpoint {endpoint}: your Moodle's configuration does not "
            "name one (Moodle 3.10 leaves it out)."
        )
        return {**document, "authorization_endpoint": endpoint}
