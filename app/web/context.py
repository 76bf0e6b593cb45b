"""What a request works with: the settings, the store, the base URL, the use cases' `Services`.

The one place the web layer turns Flask's `current_app`, `g` and `request` into the plain
values app/domain takes (app/domain/services.py).
"""

from __future__ import annotations

from functools import lru_cache, partial

from flask import Flask, current_app, g, request
from werkzeug.sansio.utils import get_current_url

from ..domain.events import Events
from ..domain.sealing import Sealer
from ..domain.services import Services, outbound_client
from ..lti.http import SafeClient
from ..settings import Settings
from ..storage import SqlStore, open_store


def settings() -> Settings:
    """Return the validated Gatehouse settings of the current app."""
    return current_app.config["GATEHOUSE"]


def base_url() -> str:
    """Return the public base URL: the configured one, else the request's (behind ProxyFix)."""
    configured = settings().base_url
    if configured:
        return configured
    # request.url_root, worked out once per scheme, host and root path rather than on every read
    # (werkzeug quotes and decodes it each time, and a launch reads it several times).
    return _root_url(request.scheme, request.host, request.root_path)


@lru_cache(maxsize=64)  # the Host header is the client's: a few real ones, the rest evicted
def _root_url(scheme: str, host: str, root_path: str) -> str:
    return get_current_url(scheme, host, root_path).rstrip("/")


def safe_client() -> SafeClient:
    """Return the outbound client configured from `[security]` and `[outbound]`."""
    return outbound_client(settings())


def events() -> Events:
    """Return the event log as the current actor writes to it.

    Who acts is the API key, the console user, or else the LMS admin's flow (`g.actor`).
    """
    return Events(
        get_store(),
        current_app.extensions.get("gatehouse.notifier"),
        g.get("actor") or "registration flow",
    )


def services() -> Services:
    """Return what the use cases need for this request."""
    config = settings()
    return Services(
        store=get_store(),
        settings=config,
        base_url=base_url(),
        events=events(),
        keys=current_app.extensions["gatehouse.jwks"],
        log=current_app.logger,
        outbound=partial(outbound_client, config),
    )


def sealer() -> Sealer:
    """Return what seals and opens stored secrets (GATEHOUSE_ENCRYPTION_KEY's keys)."""
    return current_app.extensions["gatehouse.sealer"]


def init_store(app: Flask) -> None:
    """Open the store, apply migrations, and attach it to the app."""
    store = open_store(app.config.get("DATABASE_URL"), app.instance_path)
    store.migrate()
    app.extensions["gatehouse.store"] = store


def get_store() -> SqlStore:
    """Return the current app's store."""
    return current_app.extensions["gatehouse.store"]
