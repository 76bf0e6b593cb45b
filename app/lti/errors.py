"""Named failures of a registration; each carries what the LMS administrator is shown."""

from __future__ import annotations

from .text import N_


class RegistrationError(Exception):
    """A registration cannot go on; the admin sees `title`, `detail` and `hint`."""

    status = 400
    title = N_("The registration could not be completed")
    # True once the LMS answered the registration request, or may have: its token is spent.
    token_spent = False

    def __init__(self, detail: str, *, rule: str | None = None, hint: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.rule = rule
        self.hint = hint

    def as_dict(self) -> dict:
        """Return the error as a plain record for storage and templates."""
        return {
            "kind": type(self).__name__,
            "title": self.title,
            "detail": self.detail,
            "rule": self.rule,
            "hint": self.hint,
            "token_spent": self.token_spent,
        }


class MissingParameter(RegistrationError):
    """The LMS opened the registration URL without the parameters the spec requires."""

    title = N_("This page must be opened by your LMS")


class UnsafeURL(RegistrationError):
    """A URL from the browser or the platform points somewhere Gatehouse refuses to go."""

    title = N_("Gatehouse refused to contact this address")


class PlatformUnreachable(RegistrationError):
    """The platform did not answer, answered too slowly, or answered too much.

    `sent` is True when the request may have reached the platform (its sending had begun),
    False when the failure came before: no connection, no TLS, a refused address.
    """

    status = 502
    title = N_("Gatehouse could not reach your LMS")
    sent = False


class PlatformConfigError(RegistrationError):
    """The platform's OpenID configuration breaks a rule of the specification."""

    status = 502
    title = N_("Your LMS's configuration is not usable")


class PlatformRefused(RegistrationError):
    """The LMS answered the registration request with an error."""

    status = 502
    title = N_("Your LMS answered with an error")

    def __init__(self, detail: str, *, lms_status: int, lms_body: str, hint: str | None = None):
        super().__init__(detail, rule="platform-response", hint=hint)
        self.lms_status = lms_status
        self.lms_body = lms_body

    def as_dict(self) -> dict:
        """Return the error with the LMS's status and body."""
        return super().as_dict() | {"lms_status": self.lms_status, "lms_body": self.lms_body}


class InvalidRegistrationResponse(RegistrationError):
    """The LMS said yes but its answer cannot be used (no client_id, not JSON)."""

    status = 502
    title = N_("Your LMS's answer could not be used")

    def __init__(self, detail: str, *, lms_status: int, lms_body: str, rule: str):
        super().__init__(detail, rule=rule)
        self.lms_status = lms_status
        self.lms_body = lms_body

    def as_dict(self) -> dict:
        """Return the error with the LMS's status and body."""
        return super().as_dict() | {"lms_status": self.lms_status, "lms_body": self.lms_body}


class OutcomeUnknown(RegistrationError):
    """The registration reached the LMS but no usable answer came back.

    The LMS may have registered the tool and granted a client_id Gatehouse never saw, so
    nothing is sent again with the same token: the admin checks the LMS instead.
    """

    status = 502
    title = N_("Outcome unknown: check your LMS")
    state = "unknown"
    token_spent = True

    def __init__(
        self,
        detail: str,
        *,
        rule: str | None,
        hint: str | None = None,
        lms_status: int | None = None,
        lms_body: str | None = None,
    ):
        super().__init__(detail, rule=rule, hint=hint)
        self.lms_status = lms_status
        self.lms_body = lms_body

    def as_dict(self) -> dict:
        """Return the error with the LMS's status and body when it answered."""
        return super().as_dict() | {"lms_status": self.lms_status, "lms_body": self.lms_body}


class LaunchError(RegistrationError):
    """A launch cannot go on; the person launching sees `title`, `detail` and `hint`."""

    title = N_("This launch could not be completed")


class UnknownPlatform(LaunchError):
    """No registration matches the issuer (and client_id) the LMS sent."""

    title = N_("This LMS is not registered with the tool")


class InactivePlatform(LaunchError):
    """The registration exists but an administrator has not activated it yet."""

    status = 401
    title = N_("This registration is not active yet")


class InvalidLaunch(LaunchError):
    """The LMS's id_token or the launch request breaks an LTI 1.3 security rule."""

    status = 401
    title = N_("This launch could not be verified")


class DeploymentNotApproved(LaunchError):
    """The deployment is known but waits for an administrator's approval."""

    status = 403
    title = N_("This deployment is waiting for approval")


class DeploymentRefused(LaunchError):
    """The deployment is unknown and the policy refuses unknown deployments."""

    status = 403
    title = N_("This deployment is not registered")
