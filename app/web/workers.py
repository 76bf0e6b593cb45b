"""The background work of each worker: webhook deliveries and the housekeeping sweep."""

from __future__ import annotations

import logging
import threading

from flask import Flask

from ..domain import maintenance
from ..domain.events import Events, notifier_for

log = logging.getLogger(__name__)


def init_notifications(app: Flask, store) -> None:
    """Start delivering to the configured webhook, if any."""
    notifier = notifier_for(store, app.config["GATEHOUSE"])
    if notifier is None:
        return
    app.extensions["gatehouse.notifier"] = notifier
    notifier.start()


def sweep(app: Flask) -> list[tuple[str, str]]:
    """Run one housekeeping pass for `app` (app.domain.maintenance), as the actor "recovery"."""
    store = app.extensions["gatehouse.store"]
    events = Events(store, app.extensions.get("gatehouse.notifier"), "recovery")
    return maintenance.sweep(store, app.config["GATEHOUSE"], events)


def init_maintenance(app: Flask) -> None:
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
