"""Who may register: issuer allow and block lists, and per-customer invitation links."""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from ..lti.errors import RegistrationError
from ..lti.text import N_


class RegistrationRefused(RegistrationError):
    """The tool owner does not accept registrations from this LMS or without an invitation."""

    status = 403
    title = N_("This tool does not accept this registration")


def issuer_matches(issuer: str, pattern: str) -> bool:
    """Match an issuer against an issuer URL or a host pattern like *.instructure.com.

    Both forms may use shell wildcards (`*`), e.g. `https://*.brightspace.com`.
    """
    if "://" in pattern:
        return fnmatchcase(issuer.rstrip("/"), pattern.rstrip("/"))
    parts = urlsplit(issuer)
    host = (parts.hostname or "").lower()
    netloc = parts.netloc.lower()
    pattern = pattern.lower()
    return fnmatchcase(netloc if ":" in pattern else host, pattern)


def check_issuer(issuer: str, allowed: tuple[str, ...], blocked: tuple[str, ...]) -> None:
    """Raise RegistrationRefused when the issuer is blocked or not allowed."""
    if any(issuer_matches(issuer, p) for p in blocked):
        raise RegistrationRefused(
            f"Registrations from {issuer} are not accepted by this tool's owner.",
            rule="blocked-issuer",
            hint=N_("Contact the tool's owner if you think this is a mistake."),
        )
    if allowed and not any(issuer_matches(issuer, p) for p in allowed):
        raise RegistrationRefused(
            f"This tool accepts registrations only from approved LMSes, and {issuer} is not "
            "one of them.",
            rule="issuer-not-allowed",
            hint=N_("Contact the tool's owner to have your LMS approved."),
        )


def check_invitation(store, code: str | None, required: bool):
    """Return the usable invitation for `code`, None when none is needed, or raise."""
    if not code:
        if required:
            raise RegistrationRefused(
                "This tool is registered with a personal invitation link, and this request "
                "came without one.",
                rule="invitation-required",
                hint=N_(
                    "Ask the tool's owner for your invitation link and paste that into your "
                    "LMS instead."
                ),
            )
        return None
    invitation = store.get_invitation(code=code)
    if invitation is None or not invitation.usable:
        raise RegistrationRefused(
            "This invitation link is not valid any more (unknown, expired, revoked or used up).",
            rule="invitation-invalid",
            hint=N_("Ask the tool's owner for a new invitation link."),
        )
    return invitation
