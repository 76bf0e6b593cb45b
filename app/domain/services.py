"""What a use case needs from outside: one frozen bundle, built per request by the web layer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..lti.http import SafeClient
from ..settings import Settings
from ..storage import SqlStore
from .events import Events
from .keys import KeySetCache


def outbound_client(config: Settings) -> SafeClient:
    """Return the outbound client configured from `[security]` and `[outbound]`."""
    outbound = config.outbound
    return SafeClient(
        allow_insecure=config.security.allow_insecure_platforms,
        connect_timeout=outbound.connect_timeout,
        deadline=outbound.deadline,
        max_bytes=outbound.max_response_bytes,
    )


@dataclass(frozen=True)
class Services:
    """The store, the settings and the rest a use case takes instead of reaching for the app.

    `app.web.context.services()` builds it for the request; a CLI command or a test builds
    its own. `outbound` makes a fresh client for each outbound request (clients are cheap,
    and one per call keeps their deadlines apart).
    """

    store: SqlStore
    settings: Settings
    base_url: str
    events: Events
    keys: KeySetCache
    log: logging.Logger
    outbound: Callable[[], SafeClient]
