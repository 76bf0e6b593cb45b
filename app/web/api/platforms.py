"""Platforms, their deployments, invitations and settings (served under /admin and /api)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import current_app, jsonify, request

from ...domain.platforms import set_active
from ...storage import Conflict, Platform, storable
from ..api_json import MAX_USES, ApiError, field, invitation_json, json_body, platform_values
from ..context import base_url, events, get_store, settings
from .blueprint import bp

PREFIXES = ("/admin", "/api")


def routes(rule: str, **options):
    """Register a view under both /admin and /api (the SDK uses the latter)."""

    def decorator(view):
        for prefix in PREFIXES:
            endpoint = f"{prefix.strip('/')}_{view.__name__}"
            bp.add_url_rule(prefix + rule, endpoint, view, **options)
        return view

    return decorator


def tool_public_key() -> str:
    """Return the PEM of the tool's current public key (what platforms verify us with)."""
    _kid, key = current_app.extensions["gatehouse.jwks"].signing_key()
    return key.as_pem(private=False).decode()


def platform_json(platform: Platform, public_key: str | None = None) -> dict[str, Any]:
    """Return the hosted service's platform object plus Gatehouse's extensions."""
    deployments = get_store().list_deployments(platform.id)
    key = platform.jwks_uri if platform.auth_method == "JWK_SET" else platform.auth_key
    if platform.auth_method == "JWK_KEY" and key:
        key = json.loads(key)
    return {
        "id": platform.id,
        "url": platform.issuer,
        "clientId": platform.client_id,
        "name": platform.name,
        "authenticationEndpoint": platform.authorization_endpoint,
        "accesstokenEndpoint": platform.token_endpoint,
        "authorizationServer": platform.authorization_server or platform.token_endpoint,
        "authConfig": {"method": platform.auth_method, "key": key},
        "publicKey": public_key or tool_public_key(),
        "active": platform.active,
        "familyCode": platform.product_family_code or None,
        "version": platform.version or None,
        "scopes": list(platform.service_scopes),
        "usableScopes": _listed(platform.usable_scopes),
        "refusedScopes": _listed(platform.refused_scopes),
        "deployments": [deployment_json(d) for d in deployments],
        "registrationId": platform.registration_id,
        "invitationId": platform.invitation_id,
        "lastLaunchAt": platform.last_launch_at,
        "createdAt": platform.created_at,
        "updatedAt": platform.updated_at,
    }


def _listed(scopes: tuple[str, ...] | None) -> list[str] | None:
    return None if scopes is None else list(scopes)


def deployment_json(deployment) -> dict[str, Any]:
    """Return one deployment as JSON."""
    return {
        "id": deployment.deployment_id,
        "active": deployment.active,
        "source": deployment.source,
        "createdAt": deployment.created_at,
    }


def found(platform_id: str) -> Platform:
    """Return the platform or raise a 404 envelope."""
    platform = get_store().get_platform(platform_id)
    if platform is None:
        raise ApiError(404, "PLATFORM_NOT_FOUND", "No platform has this id.")
    return platform


@routes("/platforms", methods=["GET"])
def list_platforms():
    """List platforms, filtered by id, url (issuer) and clientId."""
    wanted = {name: request.args.get(name) or None for name in ("id", "url", "clientId")}
    if not all(storable(value) for value in wanted.values() if value is not None):
        return jsonify(platforms=[])  # no stored platform has a NUL in it
    platforms, _total = get_store().list_platforms(
        platform_id=wanted["id"], issuer=wanted["url"], client_id=wanted["clientId"]
    )
    key = tool_public_key()
    return jsonify(platforms=[platform_json(p, key) for p in platforms])


def taken(values: dict) -> ApiError:
    """Return the 409 of a platform whose url and clientId another platform has."""
    return ApiError(
        409,
        "URL_CLIENT_ID_COMBINATION_ALREADY_EXISTS",
        f"a platform with url {values.get('issuer')!r} and clientId "
        f"{values.get('client_id')!r} already exists",
    )


@routes("/platforms", methods=["POST"])
def create_platform():
    """Register a platform by hand (an LMS without Dynamic Registration)."""
    values = platform_values(json_body(), required=True)
    active = values.pop("active", False)
    try:
        platform = get_store().create_platform(values, active=active)
    except Conflict:
        raise taken(values) from None
    events().record(
        "platform.created",
        "platform",
        platform.id,
        {"url": platform.issuer, "clientId": platform.client_id},
    )
    return jsonify(platform_json(platform))


@routes("/platforms/<platform_id>", methods=["GET"])
def get_platform(platform_id: str):
    """Return one platform."""
    return jsonify(platform_json(found(platform_id)))


@routes("/platforms/<platform_id>", methods=["PUT"])
def update_platform(platform_id: str):
    """Change a platform's fields (only those given)."""
    found(platform_id)
    values = platform_values(json_body(), required=False)
    try:
        platform = get_store().update_platform(platform_id, values)
    except Conflict:
        raise taken(values) from None
    events().record("platform.updated", "platform", platform_id, {"fields": sorted(values)})
    return jsonify(platform_json(platform))


@routes("/platforms/<platform_id>", methods=["DELETE"])
def delete_platform(platform_id: str):
    """Delete a platform and its deployments."""
    platform = found(platform_id)
    get_store().delete_platform(platform_id)
    events().record(
        "platform.deleted",
        "platform",
        platform_id,
        {"url": platform.issuer, "clientId": platform.client_id},
    )
    return "", 204


@routes("/platforms/<platform_id>/activate", methods=["POST"])
def activate_platform(platform_id: str):
    """Allow launches from a platform."""
    return jsonify(platform_json(set_active(get_store(), events(), found(platform_id), True)))


@routes("/platforms/<platform_id>/deactivate", methods=["POST"])
def deactivate_platform(platform_id: str):
    """Refuse launches from a platform."""
    return jsonify(platform_json(set_active(get_store(), events(), found(platform_id), False)))


@routes("/platforms/<platform_id>/deployments", methods=["GET"])
def list_deployments(platform_id: str):
    """List a platform's deployments."""
    found(platform_id)
    return jsonify(
        deployments=[deployment_json(d) for d in get_store().list_deployments(platform_id)]
    )


@routes("/platforms/<platform_id>/deployments", methods=["POST"])
def add_deployment(platform_id: str):
    """Add a deployment id, or change the active flag of an existing one."""
    found(platform_id)
    data = json_body()
    deployment_id = field(data, "deploymentId", str, required=True).strip()
    active = field(data, "active", bool)
    store = get_store()
    deployment, created = store.add_deployment(
        platform_id, deployment_id, True if active is None else active
    )
    if not created and active is not None and deployment.active != active:
        deployment = store.set_deployment_active(platform_id, deployment_id, active)
    events().record(
        "deployment.added" if created else "deployment.updated",
        "platform",
        platform_id,
        {"deploymentId": deployment_id, "active": deployment.active},
    )
    return jsonify(deployment_json(deployment)), 201 if created else 200


@routes("/platforms/<platform_id>/deployments/<path:deployment_id>", methods=["DELETE"])
def delete_deployment(platform_id: str, deployment_id: str):
    """Remove a deployment id."""
    found(platform_id)
    if not get_store().delete_deployment(platform_id, deployment_id):
        raise ApiError(404, "DEPLOYMENT_NOT_FOUND", "The platform has no such deployment.")
    events().record("deployment.deleted", "platform", platform_id, {"deploymentId": deployment_id})
    return "", 204


def parse_when(value: str, name: str) -> str:
    """Parse an ISO 8601 time into Gatehouse's UTC timestamp format."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "INVALID_PARAMETER", f"{name!r} must be an ISO 8601 time.", parameter=name
        ) from None
    if moment.tzinfo is None:
        raise ApiError(
            400, "INVALID_PARAMETER", f"{name!r} needs a time zone (e.g. Z).", parameter=name
        )
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            400, "INVALID_PARAMETER", f"{name!r} is out of range.", parameter=name
        ) from None
    # isoformat, not now_iso's strftime: it pads years before 1000 to four digits.
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@routes("/invitations", methods=["GET"])
def list_invitations():
    """List invitation links."""
    invitations, _total = get_store().list_invitations()
    return jsonify(invitations=[invitation_json(i) for i in invitations])


@routes("/invitations", methods=["POST"])
def create_invitation():
    """Create a per-customer registration link: {name, uses?, expiresAt?}."""
    data = json_body()
    name = field(data, "name", str, required=True).strip()
    uses = field(data, "uses", int)
    if uses is not None and not 1 <= uses <= MAX_USES:
        raise ApiError(
            400, "INVALID_PARAMETER", f"'uses' must be from 1 to {MAX_USES}.", parameter="uses"
        )
    expires = field(data, "expiresAt", str)
    invitation = get_store().create_invitation(
        name, uses, parse_when(expires, "expiresAt") if expires else None
    )
    events().record("invitation.created", "invitation", invitation.id, {"name": name})
    return jsonify(invitation_json(invitation)), 201


@routes("/invitations/<invitation_id>", methods=["DELETE"])
def revoke_invitation(invitation_id: str):
    """Revoke an invitation link."""
    if not get_store().revoke_invitation(invitation_id):
        raise ApiError(404, "INVITATION_NOT_FOUND", "No usable invitation has this id.")
    events().record("invitation.revoked", "invitation", invitation_id)
    return "", 204


@routes("/settings", methods=["GET"])
def get_settings():
    """Expose the registration policies a tool's launch code needs to know."""
    config = settings().registration
    return jsonify(
        unknownDeployments=config.unknown_deployments,
        autoActivate=config.auto_activate,
        gates=config.gates,
        preApproval=bool(config.pre_approval_url),
        requireInvitation=config.require_invitation,
        registrationUrl=base_url() + "/lti/register",
        jwksUrl=base_url() + "/lti/keys",
    )
