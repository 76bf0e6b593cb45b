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


_DR = "https://www.imsglobal.org/spec/lti-dr/v1p0"
# The specification section a rule comes from, for the "Technical details" of an error page.
# Dynamic Registration anchors and section numbers as implementations cite them (listed in
# ../shared/reference/dynamic-registration.md, header); where a section number was not
# confirmed, only the section's name is given. Launch rules link the specification itself.
_DR_CONFIG = (
    "LTI Dynamic Registration, Platform OpenID configuration",
    f"{_DR}#openid-configuration",
)
_DR_ISSUER = (
    "LTI Dynamic Registration §3.5.1, Issuer and OpenID configuration URL match",
    f"{_DR}#issuer-and-openid-configuration-url-match",
)
_DR_RESPONSE = (
    "LTI Dynamic Registration §3.6, Client registration response",
    f"{_DR}#client-registration-response",
)
_SECURITY = (
    "1EdTech Security Framework 1.0, OpenID Connect launch flow",
    "https://www.imsglobal.org/spec/security/v1p0/",
)
_CORE = ("LTI 1.3 Core, message claims", "https://www.imsglobal.org/spec/lti/v1p3/")
SPEC_SECTIONS: dict[str, tuple[str, str]] = {
    "openid-configuration-required": (
        "LTI Dynamic Registration, Step 3: client registration",
        f"{_DR}#step-3-client-registration",
    ),
    "config-json": _DR_CONFIG,
    "required-field": _DR_CONFIG,
    "endpoint-url": _DR_CONFIG,
    "rs256": _DR_CONFIG,
    "private-key-jwt": _DR_CONFIG,
    "issuer-url": _DR_ISSUER,
    "issuer-https": _DR_ISSUER,
    "issuer-no-query": _DR_ISSUER,
    "issuer-host-match": _DR_ISSUER,
    "issuer-prefix": _DR_ISSUER,
    "platform-response": _DR_RESPONSE,
    "response-json": _DR_RESPONSE,
    "response-client-id": (
        "LTI Dynamic Registration §3.6.1, Successful registration",
        f"{_DR}#successful-registration",
    ),
    "tool-https": (
        "LTI Dynamic Registration §3.5.2, Client registration request",
        f"{_DR}#client-registration-request",
    ),
    "platform-jwks": _SECURITY,
    "unknown-kid": _SECURITY,
    "id-token-format": _SECURITY,
    "id-token-alg": _SECURITY,
    "id-token-signature": _SECURITY,
    "id-token-iss": _SECURITY,
    "id-token-aud": _SECURITY,
    "id-token-azp": _SECURITY,
    "id-token-times": _SECURITY,
    "id-token-expired": _SECURITY,
    "id-token-iat": _SECURITY,
    "id-token-nbf": _SECURITY,
    "id-token-nonce": _SECURITY,
    "state-unknown": _SECURITY,
    "state-replayed": _SECURITY,
    "lti-version": _CORE,
    "lti-message-type": _CORE,
    "lti-deployment-id": _CORE,
    "lti-roles": _CORE,
    "lti-resource-link": _CORE,
    "lti-target-link-uri": _CORE,
    "lti-deep-linking-settings": (
        "LTI Deep Linking 2.0, deep linking settings",
        "https://www.imsglobal.org/spec/lti-dl/v2p0",
    ),
}


def spec_reference(rule: str | None) -> tuple[str, str] | None:
    """Return (section name, link) of the specification rule an error breaks, if one applies."""
    return SPEC_SECTIONS.get(rule or "")
