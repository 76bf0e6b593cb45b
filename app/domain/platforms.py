"""Platforms: what changes when an owner activates one or takes it out of service, and telling
the owner when a platform or deployment waits for activation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..storage import Platform, now_iso
from .events import Events

# A refused launch tells the owner at most this often per platform, across every worker.
OWNER_ALERT_QUIET = timedelta(hours=1)


def set_active(store, events: Events, platform: Platform, active: bool) -> Platform:
    """Activate or deactivate a platform and record the event (the API's and the console's)."""
    platform_id = platform.id
    updated = store.update_platform(platform_id, {"active": active})
    if platform.active != active:
        events.record(
            "platform.activated" if active else "platform.deactivated",
            "platform",
            platform_id,
            {"url": platform.issuer, "clientId": platform.client_id},
        )
    return updated


def console_url(base_url: str, platform_id: str) -> str:
    """Return the owner console's page of a platform, where one click activates it."""
    return f"{base_url}/console/platforms/{platform_id}"


def tell_owner_awaiting(
    events: Events,
    platform: Platform,
    base_url: str,
    reason: str,
    deployment_id: str | None = None,
) -> None:
    """Record (and notify: webhook, e-mail) `platform.awaiting_activation`.

    `reason` is "registered" (a new registration is stored inactive) or "launch" (someone
    launched an inactive platform, or a deployment not approved yet: `deployment_id`).
    """
    detail = {
        "reason": reason,
        "name": platform.name,
        "url": platform.issuer,
        "clientId": platform.client_id,
        "familyCode": platform.product_family_code,
        "consoleUrl": console_url(base_url, platform.id),
    }
    if deployment_id is not None:
        detail["deploymentId"] = deployment_id
    events.record("platform.awaiting_activation", "platform", platform.id, detail)


def tell_owner_of_refused_launch(
    store, events: Events, platform: Platform, base_url: str, deployment_id: str | None = None
) -> bool:
    """Tell the owner someone is waiting, once per platform per OWNER_ALERT_QUIET; True if told.

    The database decides (store.claim_owner_alert), so workers refusing launches together
    send one notification.
    """
    now = datetime.now(UTC)
    if not store.claim_owner_alert(platform.id, now_iso(now), now_iso(now - OWNER_ALERT_QUIET)):
        return False
    tell_owner_awaiting(events, platform, base_url, "launch", deployment_id)
    return True
