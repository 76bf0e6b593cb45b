"""Housekeeping in every worker: expire and purge abandoned attempts, recover crashed ones."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from ..settings import Settings
from ..storage import now_iso
from . import registration as flow
from .events import Events

log = logging.getLogger(__name__)


def sweep(store, settings: Settings, events: Events) -> list[tuple[str, str]]:
    """Run one pass: expire, purge, and recover attempts whose worker died mid-registration.

    `events` records what recovery did, under the actor "recovery".
    """
    config = settings.registration
    store.expire_registrations()
    store.purge_expired()
    store.purge_launch_states(now_iso())
    cutoff = now_iso(datetime.now(UTC) - timedelta(seconds=config.recovery_after))
    outcomes = flow.recover(store, cutoff, auto_activate=config.auto_activate)
    for registration_id, what in outcomes:
        log.warning("recovered registration %s: %s", registration_id, what)
        registration = store.get_registration(registration_id)
        action = (
            "registration.completed" if registration.state == "completed" else "registration.failed"
        )
        events.record(action, "registration", registration_id, {"recovered": what})
    return outcomes
