"""LTI 1.3 roles: one readable name per role, and who is staff.

Source: 1EdTech "Learning Tools Interoperability Core Specification 1.3", appendix A.2
(imsglobal.org/spec/lti/v1p3/#role-vocabularies): system roles
(`http://purl.imsglobal.org/vocab/lis/v2/system/person#…`), institution roles
(`…/institution/person#…`), context roles (`…/membership#…`) and context sub-roles
(`…/membership/<Principal>#<Sub-role>`, such as `membership/Instructor#TeachingAssistant`). A
context role may also come as its bare name (`Instructor`), which §A.2.3 still accepts.

Platforms send one person's role in several vocabularies: Moodle gives a site administrator the
system and the institution Administrator role (moodle/moodle `mod/lti/locallib.php`:
`lti_get_ims_role` adds `urn:lti:sysrole:ims/lis/Administrator` and
`urn:lti:instrole:ims/lis/Administrator`, which `lti_sign_jwt` turns into `system/person#` and
`institution/person#` URIs), so each name is listed once.

"Staff" is whoever may see how the launch was verified (the registration's identifiers, the
user's identity as the LMS sent it): the roles that administer or teach. Everyone else, learners,
mentors, guests and roles Gatehouse does not know, sees a confirmation without those details.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .text import N_

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
SYSTEM = LIS + "system/person#"
INSTITUTION = LIS + "institution/person#"
CONTEXT = LIS + "membership#"
CONTEXT_SUB = LIS + "membership/"  # + <Principal>#<Sub-role>
VOCABULARIES = ((SYSTEM, "system"), (INSTITUTION, "institution"), (CONTEXT, "context"))

# Appendix A.2: the roles of each vocabulary that administer or teach.
STAFF_SYSTEM = frozenset({"Administrator", "SysAdmin", "SysSupport", "AccountAdmin"})
STAFF_INSTITUTION = frozenset({"Administrator", "Faculty", "Instructor"})
STAFF_CONTEXT = frozenset({"Administrator", "ContentDeveloper", "Instructor", "TeachingAssistant"})


# The display names of the LIS roles (LTI 1.3 appendix A.2), marked so that the launch page shows
# them in the reader's language; a role not listed here is shown as `display_name` makes it.
ROLE_NAMES = (
    N_("Administrator"),
    N_("Faculty"),
    N_("Instructor"),
    N_("Learner"),
    N_("Student"),
    N_("Mentor"),
    N_("Member"),
    N_("Manager"),
    N_("Staff"),
    N_("Content developer"),
    N_("Teaching assistant"),
    N_("Grader"),
    N_("Guest"),
    N_("Observer"),
    N_("Alumni"),
    N_("Other"),
    N_("Prospective student"),
    N_("Sys admin"),
    N_("Sys support"),
    N_("Creator"),
    N_("Account admin"),
    N_("User"),
    N_("Test user"),
)


@dataclass(frozen=True)
class Role:
    """One role URI, read: its vocabulary, its name and, for a sub-role, its principal role."""

    uri: str
    vocabulary: str  # "system", "institution", "context" or "unknown"
    name: str
    principal: str | None = None

    @property
    def display_name(self) -> str:
        """Return the name for people: TeachingAssistant → Teaching assistant."""
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", self.name).split(" ")
        return " ".join([words[0], *(w.lower() for w in words[1:])])

    @property
    def is_staff(self) -> bool:
        """Return True for a role that administers or teaches (appendix A.2)."""
        if self.vocabulary == "system":
            return self.name in STAFF_SYSTEM
        if self.vocabulary == "institution":
            return self.name in STAFF_INSTITUTION
        if self.vocabulary == "context":
            return self.name in STAFF_CONTEXT or self.principal in STAFF_CONTEXT
        return False


def parse_role(uri: str) -> Role:
    """Return what a role URI (or a bare context role name) says."""
    for prefix, vocabulary in VOCABULARIES:
        if uri.startswith(prefix) and uri[len(prefix) :]:
            return Role(uri, vocabulary, uri[len(prefix) :])
    if uri.startswith(CONTEXT_SUB):
        principal, _, sub = uri[len(CONTEXT_SUB) :].partition("#")
        if principal and sub:
            return Role(uri, "context", sub, principal)
    if re.fullmatch(r"[A-Za-z]+", uri):
        return Role(uri, "context", uri)
    return Role(uri, "unknown", uri)


def parse_roles(claim: object) -> list[Role]:
    """Return the roles of a launch's roles claim, skipping anything that is not a string."""
    if not isinstance(claim, list):
        return []
    return [parse_role(r) for r in claim if isinstance(r, str) and r]


def display_names(roles: Iterable[Role]) -> list[str]:
    """Return each role's display name once, in the order the platform sent them."""
    return list(dict.fromkeys(role.display_name for role in roles))


def is_staff(roles: Iterable[Role]) -> bool:
    """Return True when any of the roles administers or teaches; a learner is anyone else."""
    return any(role.is_staff for role in roles)
