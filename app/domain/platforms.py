"""Platforms: what changes when an owner activates one or takes it out of service."""

from __future__ import annotations

from ..storage import Platform
from .events import Events


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
