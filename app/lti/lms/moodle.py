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
- `version.php`: `$version` is the build number, `YYYYMMDDRR.XX` (the branch's branching date,
  the release increment, incremental changes), and `$release` the release ("4.5.6 (Build:
  20250811)"). The OpenID configuration sends `$CFG->release` as its `version`
  (`mod/lti/openid-configuration.php`), the launch's `tool_platform` claim `$CFG->version`
  (`mod/lti/locallib.php`, `tool_consumer_info_version`), so a launch says 2024100706 where the
  registration said 4.5.6.
"""

from __future__ import annotations

import re
from typing import Any

from ..text import N_
from .base import LMS, Step

AUTHORIZATION_PATH = "/mod/lti/auth.php"

# Each stable branch's branching date (the first eight digits of every `$version` on it) and its
# release, transcribed from moodle/moodle `version.php` as each MOODLE_xx_STABLE branch starts
# (LTI 1.3 arrived in 3.7). Checked against a 4.5.6 tree (`$version = 2024100706.00`, "20241007
# = branching date"); for 4.1 to 4.5, `lib/db/upgrade.php` agrees: each "Automatically generated
# Moodle v4.x.0 release upgrade line" sits between the savepoints just before and after the
# date. A build whose date is not a branching date (a development build) is shown as it is.
RELEASES_BY_BRANCH_DATE = {
    "20190520": "3.7",
    "20191118": "3.8",
    "20200615": "3.9",
    "20201109": "3.10",
    "20210517": "3.11",
    "20220419": "4.0",
    "20221128": "4.1",
    "20230424": "4.2",
    "20231009": "4.3",
    "20240422": "4.4",
    "20241007": "4.5",
    "20250414": "5.0",
    "20251006": "5.1",
}
BUILD_NUMBER = re.compile(r"(\d{8})\d{2}(?:\.\d+)?")  # 2024100706 or 2024100706.00
RELEASE_WITH_BUILD = re.compile(r"(\S+) \(Build: \d+\)")  # 4.5.6 (Build: 20250811)


def release_for_build(version: str) -> str | None:
    """Return the release of a Moodle build number (2024100706 → 4.5), or None if unknown."""
    match = BUILD_NUMBER.fullmatch(version.strip())
    return RELEASES_BY_BRANCH_DATE.get(match.group(1)) if match else None


class Moodle(LMS):
    """Moodle's External tool module."""

    codes = ("moodle",)
    name = "Moodle"
    where_to_paste = N_(
        "**Site administration → Plugins → Activity modules → External tool → Manage tools**: "
        "paste the URL in **Tool URL** and click **Add LTI Advantage**."
    )
    next_steps = (
        Step(
            N_(
                "Moodle lists the tool as **Pending** under **Site administration → Plugins → "
                "Activity modules → External tool → Manage tools**."
            )
        ),
        Step(N_("Click **Activate** on its card; teachers can then add it to courses.")),
    )
    next_steps_after_update = (
        Step(
            N_(
                "Moodle updated the tool in place and kept it as it was (active or pending) "
                "under **Site administration → Plugins → Activity modules → External tool → "
                "Manage tools**; nothing else is needed."
            ),
            action=False,
        ),
    )
    where_to_grant_services = N_(
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

    def release(self, version: str) -> str:
        """Return Moodle's release for its `$release` (4.5.6 (Build: …)) or build number."""
        version = version.strip()
        with_build = RELEASE_WITH_BUILD.fullmatch(version)
        if with_build:
            return with_build.group(1)
        return release_for_build(version) or version

    def fill_configuration(self, document: dict[str, Any], filled_in: list[str]) -> dict[str, Any]:
        """Give Moodle 3.10's configuration the authorization endpoint it leaves out."""
        if document.get("authorization_endpoint"):
            return document
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or not issuer.strip():
            return document
        endpoint = issuer.rstrip("/") + AUTHORIZATION_PATH
        filled_in.append(
            N_(
                "Used Moodle's login endpoint %(endpoint)s: your Moodle's configuration does not "
                "name one (Moodle 3.10 leaves it out).",
                endpoint=endpoint,
            )
        )
        return {**document, "authorization_endpoint": endpoint}
