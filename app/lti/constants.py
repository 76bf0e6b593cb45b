"""Strings from the LTI 1.3 and LTI Dynamic Registration specifications."""

from enum import StrEnum

from .text import N_

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
CLOSE_SUBJECT = "org.imsglobal.lti.close"

CANVAS_PREFIX = "https://canvas.instructure.com/lti/"
CANVAS_PRIVACY_LEVEL = CANVAS_PREFIX + "privacy_level"


class MessageType(StrEnum):
    """LTI message types a tool may list in its registration."""

    RESOURCE_LINK = "LtiResourceLinkRequest"
    DEEP_LINKING = "LtiDeepLinkingRequest"
    SUBMISSION_REVIEW = "LtiSubmissionReviewRequest"
    EULA = "LtiEulaRequest"


# Spellings seen in the wild that mean a known message type (old Moodle).
MESSAGE_TYPE_ALIASES = {"LtiResourceLink": MessageType.RESOURCE_LINK.value}


class Scope(StrEnum):
    """LTI Advantage service scopes."""

    AGS_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
    AGS_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
    AGS_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
    AGS_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
    NRPS_MEMBERSHIP = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
    TOOL_SETTINGS = "https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting"
    BASIC_OUTCOME = "https://purl.imsglobal.org/spec/lti-bo/scope/basicoutcome"


# What each service scope lets the tool do, in the words an owner reads in the console.
# Marked for the catalogues: the close page shows them in the LMS admin's language.
SCOPE_NAMES = {
    Scope.AGS_LINEITEM: N_("Grades: line items"),
    Scope.AGS_LINEITEM_READONLY: N_("Grades: line items (read only)"),
    Scope.AGS_RESULT_READONLY: N_("Grades: results (read only)"),
    Scope.AGS_SCORE: N_("Grades: post scores"),
    Scope.NRPS_MEMBERSHIP: N_("Course members (names and roles)"),
    Scope.TOOL_SETTINGS: N_("Tool settings"),
    Scope.BASIC_OUTCOME: N_("Grades: basic outcomes (LTI 1.1)"),
    "openid": N_("OpenID sign-in"),
}


def scope_name(scope: str) -> str:
    """Return a scope's friendly name, or the scope itself when it has none."""
    return SCOPE_NAMES.get(scope, scope)


class ProductFamily(StrEnum):
    """`product_family_code` values of the LMSes Gatehouse adapts to."""

    CANVAS = "canvas"
    MOODLE = "moodle"
    BRIGHTSPACE = "desire2learn"
    SAKAI = "sakailms.org"
    BLACKBOARD = "BlackboardLearn"


def is_service_scope(scope: str) -> bool:
    """Tell whether a scope names an LTI service (an absolute URI), not an OpenID scope.

    Canvas answers a registration with `openid` among its scopes but refuses it at its token
    endpoint (instructure/canvas-lms, app/controllers/lti/ims/dynamic_registration_controller.rb
    adds it to the answer; the developer key's scopes leave it out), and one Canvas release
    refused a registration that asked for it (canvas-lms issue 2398). `openid`, `profile` and
    the other OpenID Connect scopes are words; every LTI service scope is a URI.
    """
    return "://" in scope


GRANT_TYPES = ("implicit", "client_credentials")
RESPONSE_TYPES = ("id_token",)
TOKEN_ENDPOINT_AUTH_METHOD = "private_key_jwt"  # noqa: S105 - a method name, not a secret
SIGNING_ALG = "RS256"
