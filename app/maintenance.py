"""Housekeeping in every worker: expire and purge abandoned attempts, recover crashed ones."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from flask import Flask, g

from . import events, flow
from .storage import now_iso

log = logging.getLogger(__name__)


def sweep(app: Flask) -> list[tuple[str, str]]:
    """Run one pass: expire, purge, and recover attempts whose worker died mid-registration."""
    store = app.extensions["gatehouse.store"]
    config = app.config["GATEHOUSE"].registration
    store.expire_registrations()
    store.purge_expired()
    store.purge_launch_states(now_iso())
    cutoff = now_iso(datetime.now(UTC) - timedelta(seconds=config.recovery_after))
    outcomes = flow.recover(store, cutoff, auto_activate=config.auto_activate)
    with app.app_context():
        g.actor = "recovery"
        for registration_id, what in outcomes:
            log.warning("recovered registration %s: %s", registration_id, what)
            registration = store.get_registration(registration_id)
            action = (
                "registration.completed"
                if registration.state == "completed"
                else "registration.failed"
            )
            events.record(action, "registration", registration_id, {"recovered": what})
    return outcomes


def init_app(app: Flask) -> None:
    """Start the sweeper thread of this worker (daemon: it dies with the process)."""
    interval = min(30.0, app.config["GATEHOUSE"].registration.recovery_after / 2)
    stop = threading.Event()

    def run() -> None:
        while True:
            try:
                sweep(app)
            except Exception:  # a locked or lost database must not end the sweeper
                log.exception("maintenance sweep failed")
            if stop.wait(interval):
                return

    thread = threading.Thread(target=run, name="gatehouse-maintenance", daemon=True)
    app.extensions["gatehouse.maintenance"] = stop
    if not app.config.get("TESTING"):
        thread.start()
