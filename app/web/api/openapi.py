"""The OpenAPI 3.1 description of the bearer-key API, served at /api/openapi.json.

The document is plain data built once at import. tests/test_openapi.py keeps it true: every
/api and /admin route is in it and nothing else is, and schemathesis checks the live app's
answers against it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import jsonify

from ...settings import GATE_NAMES, MESSAGE_TYPES
from ..api_json import AUTH_METHODS, MAX_USES
from .blueprint import bp
from .platforms import PREFIXES

UNKNOWN_DEPLOYMENTS = ("accept", "pending", "reject")
ATTEMPT_STATES = ("pending", "registering", "completed", "failed", "expired", "unknown")
# Flask's default converter stops at "/", so only a <path:...> parameter may contain one.
SEGMENT = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
# What a <path:...> converter matches (werkzeug merges a leading // away with a redirect).
DEPLOYMENT_ID = {"type": "string", "minLength": 1, "pattern": "^[^/\\n][^\\n]*$"}
TIMESTAMP = {
    "type": "string",
    "format": "date-time",
    "description": "UTC, e.g. 2026-11-26T17:38:22.000000Z.",
}
HTTP_URL = {
    "type": "string",
    "format": "uri",
    "pattern": "^https?://",
    "description": "An absolute http(s) URL.",
}
NOT_BLANK = {"type": "string", "pattern": "\\S", "description": "Surrounding spaces are removed."}


def ref(name: str) -> dict[str, str]:
    """Return a reference to a schema in components/schemas."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """Return `schema` with null allowed too (JSON Schema 2020-12 type lists)."""
    return {**schema, "type": [schema["type"], "null"]}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a `content` map with one application/json schema."""
    return {"application/json": {"schema": schema}}


def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Return a JSON success response."""
    return {"description": description, "content": json_body(schema)}


def error(status: int, description: str, *messages: str) -> dict[str, Any]:
    """Return an error-envelope response whose details.message is one of `messages`."""
    return {
        "description": description,
        "content": json_body(
            {
                "allOf": [ref("Error")],
                "properties": {
                    "status": {"const": status},
                    "error": {"const": HTTPStatus(status).phrase},
                    "details": {"properties": {"message": {"enum": list(messages)}}},
                },
            }
        ),
    }


def shared(name: str) -> dict[str, str]:
    """Return a reference to a response in components/responses."""
    return {"$ref": f"#/components/responses/{name}"}


def path_parameter(name: str, description: str, schema: dict[str, Any] = SEGMENT):
    """Return a required path parameter."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def query_parameter(name: str, description: str) -> dict[str, Any]:
    """Return an optional string query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def request_body(schema_name: str, required: bool = True) -> dict[str, Any]:
    """Return a JSON request body."""
    return {"required": required, "content": json_body(ref(schema_name))}


def operation(
    operation_id: str, summary: str, tag: str, responses: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """Return an operation; every one may also answer 401, 429 and, on a bug, 500."""
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        **extra,
        "responses": {
            **responses,
            "401": shared("Unauthorized"),
            "429": shared("TooManyRequests"),
            "500": shared("InternalError"),
        },
    }


SUPPORTED_MESSAGE = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "examples": list(MESSAGE_TYPES)},
        "placements": {"type": "array", "items": {"type": "string"}},
    },
}

PLATFORM_FIELDS = {
    "url": {**HTTP_URL, "description": "The platform's issuer."},
    "clientId": {"type": "string", "description": "The client_id the platform gave the tool."},
    "name": {"type": "string", "description": "A name for people."},
    "authenticationEndpoint": {**HTTP_URL, "description": "OIDC authorization endpoint."},
    "accesstokenEndpoint": {**HTTP_URL, "description": "OAuth 2 token endpoint."},
    "authorizationServer": {
        "type": "string",
        "description": "OAuth 2 audience; defaults to the token endpoint.",
    },
    "active": {"type": "boolean", "description": "Launches are accepted from an active platform."},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "The error envelope of every failure.",
        "required": ["status", "error", "details"],
        "additionalProperties": False,
        "properties": {
            "status": {"type": "integer", "description": "The HTTP status."},
            "error": {"type": "string", "description": "The HTTP status phrase."},
            "details": {
                "type": "object",
                "required": ["message", "description"],
                "properties": {
                    "message": {"type": "string", "description": "A stable code."},
                    "description": {"type": "string", "description": "For people."},
                    "parameter": {"type": "string", "description": "The offending field."},
                    "state": {"type": "string", "description": "A registration's state."},
                    "gate": {
                        "type": "string",
                        "enum": list(GATE_NAMES),
                        "description": "The first gate not passed yet.",
                    },
                    "code": {
                        "type": ["string", "null"],
                        "description": "The rule the registration broke.",
                    },
                    "externalError": {
                        "type": "boolean",
                        "description": "True when the LMS answered.",
                    },
                    "outcomeUnknown": {
                        "type": "boolean",
                        "description": "True when the registration reached the LMS without a "
                        "usable answer: the LMS may hold a registration; check it.",
                    },
                    "lmsStatus": {"type": "integer", "description": "The LMS's HTTP status."},
                    "lmsBody": {"type": "string", "description": "The LMS's answer."},
                    "externalUrl": {
                        "type": "string",
                        "description": "The LMS's registration endpoint.",
                    },
                },
            },
        },
    },
    "AuthConfig": {
        "type": "object",
        "description": "How the platform signs: a JWKS URL, a single JWK, or a PEM key.",
        "required": ["method", "key"],
        "properties": {"method": {"type": "string", "enum": list(AUTH_METHODS)}},
        "oneOf": [
            {"properties": {"method": {"const": "JWK_SET"}, "key": HTTP_URL}},
            {
                "properties": {
                    "method": {"const": "JWK_KEY"},
                    "key": {
                        "type": "object",
                        "required": ["kty"],
                        "properties": {"kty": {"type": "string"}},
                        "description": (
                            "A JSON Web Key (its JSON text in a string is accepted too)."
                        ),
                    },
                }
            },
            {
                "properties": {
                    "method": {"const": "RSA_KEY"},
                    "key": {
                        "type": "string",
                        "pattern": "PUBLIC KEY",
                        "description": "A PEM public key.",
                    },
                }
            },
        ],
    },
    "Deployment": {
        "type": "object",
        "required": ["id", "active", "source", "createdAt"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "description": "The deployment_id."},
            "active": {"type": "boolean"},
            "source": {
                "type": "string",
                "description": "Where it came from: registration, api, console...",
            },
            "createdAt": TIMESTAMP,
        },
    },
    "Platform": {
        "type": "object",
        "description": "A registered LMS (the hosted service's object plus Gatehouse's fields).",
        "required": [
            "id",
            *PLATFORM_FIELDS,
            "authConfig",
            "publicKey",
            "familyCode",
            "version",
            "scopes",
            "usableScopes",
            "refusedScopes",
            "deployments",
            "registrationId",
            "invitationId",
            "lastLaunchAt",
            "createdAt",
            "updatedAt",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            # The request's fields, typed as stored (Dynamic Registration skips the URL check).
            **{
                name: {"type": field["type"], "description": field["description"]}
                for name, field in PLATFORM_FIELDS.items()
            },
            "authConfig": {
                "type": "object",
                "required": ["method", "key"],
                "additionalProperties": False,
                "properties": {
                    "method": {"type": "string", "enum": list(AUTH_METHODS)},
                    "key": {"type": ["string", "object", "null"]},
                },
            },
            "publicKey": {"type": "string", "description": "PEM of the tool's public key."},
            "familyCode": {
                "type": ["string", "null"],
                "description": "The LMS's product_family_code.",
            },
            "version": {"type": ["string", "null"]},
            "scopes": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The service scopes the LMS's registration answer "
                "claims to grant (never openid or other non-service scopes).",
            },
            "usableScopes": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "Of those, the ones the LMS's token endpoint "
                "granted; null until Gatehouse has asked it for a token.",
            },
            "refusedScopes": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "Claimed scopes the token endpoint refused; a "
                "token request without scopes leaves them out. Null until "
                "learned; a new registration forgets both lists.",
            },
            "deployments": {"type": "array", "items": ref("Deployment")},
            "registrationId": {
                "type": ["string", "null"],
                "description": "The registration that created it.",
            },
            "invitationId": {
                "type": ["string", "null"],
                "description": "The invitation link it was registered through "
                "(see /admin/invitations), or null.",
            },
            "lastLaunchAt": {
                **nullable(TIMESTAMP),
                "description": "When Gatehouse last verified a launch from it.",
            },
            "createdAt": TIMESTAMP,
            "updatedAt": TIMESTAMP,
        },
    },
    "PlatformCreate": {
        "type": "object",
        "required": [
            "url",
            "clientId",
            "name",
            "authenticationEndpoint",
            "accesstokenEndpoint",
            "authConfig",
        ],
        "properties": {
            **PLATFORM_FIELDS,
            "clientId": {**NOT_BLANK, **PLATFORM_FIELDS["clientId"]},
            "name": NOT_BLANK,
            "authConfig": ref("AuthConfig"),
        },
    },
    "PlatformUpdate": {
        "type": "object",
        "description": "Only the fields given change.",
        "properties": {
            **PLATFORM_FIELDS,
            "authConfig": ref("AuthConfig"),
            **{
                name: {
                    "type": "null",
                    "description": "null forgets what the LMS's token "
                    "endpoint taught (usableScopes and refusedScopes both); the next token "
                    "request asks for every claimed scope again.",
                }
                for name in ("usableScopes", "refusedScopes")
            },
        },
    },
    "PlatformList": {
        "type": "object",
        "required": ["platforms"],
        "additionalProperties": False,
        "properties": {"platforms": {"type": "array", "items": ref("Platform")}},
    },
    "DeploymentRequest": {
        "type": "object",
        "required": ["deploymentId"],
        "properties": {
            "deploymentId": NOT_BLANK,
            "active": {"type": "boolean", "description": "Defaults to true for a new one."},
        },
    },
    "DeploymentList": {
        "type": "object",
        "required": ["deployments"],
        "additionalProperties": False,
        "properties": {"deployments": {"type": "array", "items": ref("Deployment")}},
    },
    "Invitation": {
        "type": "object",
        "required": [
            "id",
            "name",
            "code",
            "url",
            "uses",
            "used",
            "expiresAt",
            "revoked",
            "usable",
            "createdAt",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "code": {"type": "string"},
            "url": {
                "type": "string",
                "format": "uri",
                "description": "The registration URL to give the customer's LMS admin.",
            },
            "uses": {"type": ["integer", "null"], "description": "Uses allowed; null: any."},
            "used": {"type": "integer"},
            "expiresAt": nullable(TIMESTAMP),
            "revoked": {"type": "boolean"},
            "usable": {"type": "boolean"},
            "createdAt": TIMESTAMP,
        },
    },
    "InvitationRequest": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": NOT_BLANK,
            "uses": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_USES,
                "description": "Default: unlimited.",
            },
            "expiresAt": {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601 with a time zone. Default: never.",
            },
        },
    },
    "InvitationList": {
        "type": "object",
        "required": ["invitations"],
        "additionalProperties": False,
        "properties": {"invitations": {"type": "array", "items": ref("Invitation")}},
    },
    "SupportedMessage": SUPPORTED_MESSAGE,
    "Registration": {
        "type": "object",
        "description": "What the LMS of a pending registration offers.",
        "required": ["url", "familyCode", "version", "supportedScopes", "supportedMessages"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "description": "The LMS's issuer."},
            "familyCode": {"type": "string", "description": "product_family_code."},
            "version": {"type": "string"},
            "supportedScopes": {"type": "array", "items": {"type": "string"}},
            "supportedMessages": {"type": "array", "items": ref("SupportedMessage")},
        },
    },
    "RawRegistration": {
        "type": "object",
        "description": "The LMS's documents, unfiltered (with ?raw=true).",
        "required": ["openIdConfiguration", "registrationToken"],
        "additionalProperties": False,
        "properties": {
            "openIdConfiguration": {
                "type": "object",
                "description": "The LMS's OpenID configuration, as it sent it.",
                "required": [
                    "issuer",
                    "authorization_endpoint",
                    "token_endpoint",
                    "jwks_uri",
                    "registration_endpoint",
                ],
            },
            "registrationToken": {
                "type": ["string", "null"],
                "description": "The LMS's registration token, if it sent one.",
            },
        },
    },
    "CompleteRequest": {
        "type": "object",
        "description": "Every field is optional; the configured values are the defaults.",
        "properties": {
            "platformName": {"type": "string"},
            "autoActivate": {"type": "boolean"},
            "messages": {
                "type": "array",
                "description": "Message types to request; placements the LMS does not offer "
                "are left out.",
                "items": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"type": "string", "enum": list(MESSAGE_TYPES)},
                        "placements": {"type": ["array", "null"], "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "CompleteResponse": {
        "type": "object",
        "required": ["html", "platformId", "redirectUrl"],
        "additionalProperties": False,
        "properties": {
            "html": {"type": "string", "description": "Append to the page to close the dialog."},
            "platformId": {"type": "string"},
            "redirectUrl": {
                "type": "string",
                "format": "uri",
                "description": "Or send the browser here (single use).",
            },
        },
    },
    "Attempt": {
        "type": "object",
        "description": "One registration attempt and its true state. `unknown` means the "
        "worker stopped while the LMS was answering: check the LMS.",
        "required": ["id", "state", "createdAt", "updatedAt", "expiresAt"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": list(ATTEMPT_STATES)},
            "url": nullable({"type": "string"}),
            "familyCode": nullable({"type": "string"}),
            "version": nullable({"type": "string"}),
            "clientId": nullable({"type": "string"}),
            "deploymentId": nullable({"type": "string"}),
            "platformId": nullable({"type": "string"}),
            "approvedBy": nullable(
                {
                    "type": "string",
                    "description": "The e-mail of the account that approved it at the gates.",
                }
            ),
            "approvedByApiKey": nullable(
                {
                    "type": "string",
                    "description": "The name of the "
                    "API key that completed it (POST /api/registrations/"
                    "{id}/complete).",
                }
            ),
            "invitationId": nullable({"type": "string"}),
            "responseStatus": nullable({"type": "integer"}),
            "error": nullable(
                {
                    "type": "object",
                    "description": "What the admin was shown: "
                    "title, detail, rule, hint, and the LMS's lms_status and "
                    "lms_body when it answered.",
                }
            ),
            "createdAt": TIMESTAMP,
            "updatedAt": TIMESTAMP,
            "expiresAt": TIMESTAMP,
        },
    },
    "AttemptList": {
        "type": "object",
        "required": ["registrations", "total"],
        "properties": {
            "registrations": {"type": "array", "items": ref("Attempt")},
            "total": {"type": "integer", "minimum": 0},
        },
    },
    "DeepLinkingRequest": {
        "type": "object",
        "required": ["platformId", "deploymentId", "deepLinkingSettings"],
        "properties": {
            "platformId": {"type": "string", "description": "From the hand-off token."},
            "deploymentId": {"type": "string", "description": "From the hand-off token."},
            "deepLinkingSettings": {
                "type": "object",
                "required": ["deep_link_return_url"],
                "description": "The launch's deep_linking_settings claim, as the hand-off "
                "token carried it.",
                "properties": {"deep_link_return_url": HTTP_URL},
            },
            "contentItems": {
                "type": "array",
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"type": "string"}},
                },
                "description": "LTI Deep Linking content items.",
            },
            "message": {"type": "string"},
            "log": {"type": "string"},
            "errorMessage": {"type": "string"},
            "errorLog": {"type": "string"},
        },
    },
    "DeepLinkingResponse": {
        "type": "object",
        "required": ["jwt", "returnUrl", "form"],
        "additionalProperties": False,
        "properties": {
            "jwt": {"type": "string", "description": "The signed LtiDeepLinkingResponse."},
            "returnUrl": {"type": "string", "format": "uri"},
            "form": {
                "type": "string",
                "description": "HTML: a form that POSTs the JWT to the "
                "LMS and submits itself; put it in the page inside the LMS frame.",
            },
        },
    },
    "TokenRequest": {
        "type": "object",
        "properties": {
            "scopes": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "LTI service scopes (URIs) to request, all or nothing; "
                "left out: every claimed scope the token endpoint has not refused, "
                "narrowed to those it grants.",
            },
        },
    },
    "TokenResponse": {
        "type": "object",
        "required": ["accessToken", "tokenType", "scope", "expiresIn"],
        "additionalProperties": False,
        "properties": {
            "accessToken": {"type": "string"},
            "tokenType": {"type": "string"},
            "scope": {"type": "string", "description": "Space-separated, as the LMS granted."},
            "expiresIn": {
                "type": "integer",
                "minimum": 0,
                "description": "Seconds the token stays valid.",
            },
        },
    },
    "Settings": {
        "type": "object",
        "required": [
            "unknownDeployments",
            "autoActivate",
            "gates",
            "preApproval",
            "requireInvitation",
            "registrationUrl",
            "jwksUrl",
        ],
        "additionalProperties": False,
        "properties": {
            "unknownDeployments": {"type": "string", "enum": list(UNKNOWN_DEPLOYMENTS)},
            "autoActivate": {"type": "boolean"},
            "gates": {"type": "array", "items": {"type": "string", "enum": list(GATE_NAMES)}},
            "preApproval": {"type": "boolean"},
            "requireInvitation": {"type": "boolean"},
            "registrationUrl": {"type": "string", "format": "uri"},
            "jwksUrl": {"type": "string", "format": "uri"},
        },
    },
}

RESPONSES = {
    "Unauthorized": error(
        401,
        "No valid `Authorization: Bearer <key>` header.",
        "INVALID_LTIK_AUTH_AUTHORIZATION_HEADER",
    ),
    "TooManyRequests": error(
        429, "Too many requests from this address (limits.api).", "TOO_MANY_REQUESTS"
    ),
    "InternalError": error(500, "An unexpected error (a bug; it is logged).", "INTERNAL_ERROR"),
    "BadBody": error(
        400,
        "The body is not a JSON object (or nests more than 32 levels deep), or a field is "
        "missing or wrong (details.parameter names it).",
        "INVALID_BODY",
        "MISSING_PARAMETER",
        "INVALID_PARAMETER",
    ),
    "PlatformNotFound": error(404, "No platform has this id.", "PLATFORM_NOT_FOUND"),
    "PlatformConflict": error(
        409,
        "Another platform has this url and clientId.",
        "URL_CLIENT_ID_COMBINATION_ALREADY_EXISTS",
    ),
    "RegistrationNotFound": error(404, "No registration has this id.", "REGISTRATION_NOT_FOUND"),
    "RegistrationGone": error(
        410,
        "The registration is completed, failed or expired "
        "(details.state), or its details are gone.",
        "REGISTRATION_GONE",
    ),
    "GatesNotPassed": error(
        409, "The LMS admin has not passed a gate yet (details.gate).", "GATES_NOT_PASSED"
    ),
    "PlatformNotActive": error(403, "The platform is not active.", "PLATFORM_NOT_ACTIVATED"),
}

PLATFORM_ID = path_parameter("platform_id", "The platform's id.")


def platform_paths(prefix: str) -> dict[str, Any]:
    """Return the platform, deployment, invitation and settings paths under one prefix."""
    name = prefix.strip("/")
    platform = ok("The platform.", ref("Platform"))
    return {
        f"{prefix}/platforms": {
            "get": operation(
                f"{name}_list_platforms",
                "List platforms",
                "Platforms",
                {"200": ok("The platforms, newest first.", ref("PlatformList"))},
                parameters=[
                    query_parameter("id", "Only the platform with this id."),
                    query_parameter("url", "Only platforms with this issuer."),
                    query_parameter("clientId", "Only platforms with this client_id."),
                ],
            ),
            "post": operation(
                f"{name}_create_platform",
                "Register a platform by hand",
                "Platforms",
                {
                    "200": ok("The new platform.", ref("Platform")),
                    "400": shared("BadBody"),
                    "409": shared("PlatformConflict"),
                },
                requestBody=request_body("PlatformCreate"),
            ),
        },
        f"{prefix}/platforms/{{platform_id}}": {
            "parameters": [PLATFORM_ID],
            "get": operation(
                f"{name}_get_platform",
                "Get a platform",
                "Platforms",
                {"200": platform, "404": shared("PlatformNotFound")},
            ),
            "put": operation(
                f"{name}_update_platform",
                "Change a platform's fields",
                "Platforms",
                {
                    "200": platform,
                    "400": shared("BadBody"),
                    "404": shared("PlatformNotFound"),
                    "409": shared("PlatformConflict"),
                },
                requestBody=request_body("PlatformUpdate", required=False),
            ),
            "delete": operation(
                f"{name}_delete_platform",
                "Delete a platform and its deployments",
                "Platforms",
                {"204": {"description": "Deleted."}, "404": shared("PlatformNotFound")},
            ),
        },
        f"{prefix}/platforms/{{platform_id}}/activate": {
            "parameters": [PLATFORM_ID],
            "post": operation(
                f"{name}_activate_platform",
                "Accept launches",
                "Platforms",
                {"200": platform, "404": shared("PlatformNotFound")},
            ),
        },
        f"{prefix}/platforms/{{platform_id}}/deactivate": {
            "parameters": [PLATFORM_ID],
            "post": operation(
                f"{name}_deactivate_platform",
                "Refuse launches",
                "Platforms",
                {"200": platform, "404": shared("PlatformNotFound")},
            ),
        },
        f"{prefix}/platforms/{{platform_id}}/deployments": {
            "parameters": [PLATFORM_ID],
            "get": operation(
                f"{name}_list_deployments",
                "List a platform's deployments",
                "Deployments",
                {
                    "200": ok("The deployments, oldest first.", ref("DeploymentList")),
                    "404": shared("PlatformNotFound"),
                },
            ),
            "post": operation(
                f"{name}_add_deployment",
                "Add a deployment, or set its active flag",
                "Deployments",
                {
                    "200": ok("It existed (its active flag set if given).", ref("Deployment")),
                    "201": ok("Added.", ref("Deployment")),
                    "400": shared("BadBody"),
                    "404": shared("PlatformNotFound"),
                },
                requestBody=request_body("DeploymentRequest"),
            ),
        },
        f"{prefix}/platforms/{{platform_id}}/deployments/{{deployment_id}}": {
            "parameters": [
                PLATFORM_ID,
                path_parameter(
                    "deployment_id",
                    "The deployment_id: it may contain / but not "
                    "start with one, nor contain a line break.",
                    DEPLOYMENT_ID,
                ),
            ],
            "delete": operation(
                f"{name}_delete_deployment",
                "Remove a deployment",
                "Deployments",
                {
                    "204": {"description": "Removed."},
                    "404": error(
                        404,
                        "No such platform, or it has no such deployment.",
                        "PLATFORM_NOT_FOUND",
                        "DEPLOYMENT_NOT_FOUND",
                    ),
                },
            ),
        },
        f"{prefix}/invitations": {
            "get": operation(
                f"{name}_list_invitations",
                "List invitation links",
                "Invitations",
                {"200": ok("The invitations, newest first.", ref("InvitationList"))},
            ),
            "post": operation(
                f"{name}_create_invitation",
                "Create a per-customer registration link",
                "Invitations",
                {"201": ok("The invitation.", ref("Invitation")), "400": shared("BadBody")},
                requestBody=request_body("InvitationRequest"),
            ),
        },
        f"{prefix}/invitations/{{invitation_id}}": {
            "parameters": [path_parameter("invitation_id", "The invitation's id.")],
            "delete": operation(
                f"{name}_revoke_invitation",
                "Revoke an invitation link",
                "Invitations",
                {
                    "204": {"description": "Revoked."},
                    "404": error(
                        404,
                        "No usable invitation has this id (or it is revoked).",
                        "INVITATION_NOT_FOUND",
                    ),
                },
            ),
        },
        f"{prefix}/settings": {
            "get": operation(
                f"{name}_get_settings",
                "The registration policies launch code needs",
                "Settings",
                {"200": ok("The settings.", ref("Settings"))},
            ),
        },
    }


REGISTRATION_ID = path_parameter(
    "rid", "The registration id (the registrationId the owner's pre-approval page received)."
)

PATHS: dict[str, Any] = {
    "/api/registrations/{rid}": {
        "parameters": [REGISTRATION_ID],
        "get": operation(
            "get_registration",
            "Get a pending registration",
            "Dynamic Registration",
            {
                "200": ok(
                    "What the LMS offers, or with raw=true its documents.",
                    {"oneOf": [ref("Registration"), ref("RawRegistration")]},
                ),
                "404": shared("RegistrationNotFound"),
                "409": shared("GatesNotPassed"),
                "410": shared("RegistrationGone"),
            },
            parameters=[
                query_parameter(
                    "raw",
                    "true, 1 or yes (any case): answer the LMS's "
                    "OpenID configuration and registration token.",
                )
            ],
        ),
    },
    "/api/registrations/{rid}/complete": {
        "parameters": [REGISTRATION_ID],
        "post": operation(
            "complete_registration",
            "Register with the LMS now",
            "Dynamic Registration",
            {
                "200": ok("Registered: close the LMS dialog.", ref("CompleteResponse")),
                "400": shared("BadBody"),
                "404": shared("RegistrationNotFound"),
                "409": shared("GatesNotPassed"),
                "410": shared("RegistrationGone"),
                "502": error(
                    502,
                    "The LMS refused or its answer was unusable (details.code; "
                    "lmsStatus, lmsBody and externalUrl when the LMS answered).",
                    "PLATFORM_REGISTRATION_FAILED",
                ),
            },
            requestBody=request_body("CompleteRequest", required=False),
        ),
    },
    "/api/deep-linking/response": {
        "post": operation(
            "deep_linking",
            "Sign a deep linking response for the LMS",
            "Launch services",
            {
                "200": ok(
                    "The signed response and the form that returns it.", ref("DeepLinkingResponse")
                ),
                "400": shared("BadBody"),
                "403": error(
                    403,
                    "The platform is not active, or the deployment is unknown or not approved.",
                    "PLATFORM_NOT_ACTIVATED",
                    "DEPLOYMENT_NOT_ACTIVE",
                ),
                "404": shared("PlatformNotFound"),
            },
            requestBody=request_body("DeepLinkingRequest"),
        ),
    },
    "/api/platforms/{platform_id}/token": {
        "parameters": [PLATFORM_ID],
        "post": operation(
            "service_token",
            "Get an access token for the LMS's services",
            "Launch services",
            {
                "200": ok(
                    "A token, fresh or cached until shortly before it expires.",
                    ref("TokenResponse"),
                ),
                "400": error(
                    400,
                    "The body is wrong, or a scope is not usable (details.refused; "
                    "details.refusedByLms: claimed by the registration answer but "
                    "refused by the token endpoint; details.granted).",
                    "INVALID_BODY",
                    "INVALID_PARAMETER",
                    "SCOPE_NOT_GRANTED",
                    "NO_SCOPES_GRANTED",
                ),
                "403": shared("PlatformNotActive"),
                "404": shared("PlatformNotFound"),
                "502": error(
                    502,
                    "The LMS's token endpoint failed or refused (lmsStatus, lmsBody).",
                    "PLATFORM_UNREACHABLE",
                    "PLATFORM_TOKEN_REFUSED",
                ),
            },
            requestBody=request_body("TokenRequest", required=False),
        ),
    },
    **{path: item for prefix in PREFIXES for path, item in platform_paths(prefix).items()},
    "/admin/registrations": {
        "get": operation(
            "list_attempts",
            "List registration attempts, newest first",
            "Registrations",
            {
                "200": ok("The attempts and how many match.", ref("AttemptList")),
                "400": error(
                    400, "A filter is not valid (details.parameter).", "INVALID_PARAMETER"
                ),
            },
            parameters=[
                {
                    "name": "state",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": list(ATTEMPT_STATES)},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                },
                {
                    "name": "offset",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0, "maximum": 10_000_000},
                },
            ],
        ),
    },
    "/admin/registrations/{rid}": {
        "parameters": [path_parameter("rid", "The registration id.")],
        "get": operation(
            "get_attempt",
            "Get a registration attempt in any state",
            "Registrations",
            {"200": ok("The attempt.", ref("Attempt")), "404": shared("RegistrationNotFound")},
        ),
    },
    "/api/openapi.json": {
        "get": operation(
            "get_openapi",
            "This document",
            "Document",
            {
                "200": ok(
                    "The OpenAPI 3.1 document.",
                    {"type": "object", "required": ["openapi", "info", "paths"]},
                )
            },
        ),
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Gatehouse API",
        "version": "0.1.0",
        "description": "LTI Dynamic Registration pre-approval and platform management, with "
        "the hosted LTIAAS service's paths and JSON shapes. The platform, deployment, "
        "invitation and settings endpoints are served under both /admin and /api.",
    },
    "security": [{"bearerKey": []}],
    "tags": [
        {"name": name}
        for name in (
            "Dynamic Registration",
            "Platforms",
            "Deployments",
            "Invitations",
            "Settings",
            "Registrations",
            "Launch services",
            "Document",
        )
    ],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "bearerKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key from `gatehouse api-key create` "
                "(gh_<id>_<secret>) or GATEHOUSE_API_KEY.",
            },
        },
        "schemas": SCHEMAS,
        "responses": RESPONSES,
    },
}


@bp.get("/api/openapi.json")
def get_openapi():
    """Serve the OpenAPI 3.1 document of this API."""
    return jsonify(DOCUMENT)
