"""Service tokens for the tool: ask the LMS's token endpoint, learn what it really grants.

The registration answer's `scope` is what the LMS claims to grant (`Platform.scopes`); the
token endpoint is where grants are enforced. Each token request teaches which claimed scopes
are usable and which are refused (app/lti/service_tokens.py has the rules, with their
sources); the platform keeps both, and a request without scopes asks for the claimed scopes
minus the refused ones from then on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..lti.errors import RegistrationError
from ..lti.launch import CLIENT_ASSERTION_TYPE, client_assertion, sign
from ..lti.service_tokens import (
    CLIENT_CREDENTIALS,
    AccessToken,
    TokenRefused,
    narrow,
    read_token_response,
)
from ..storage import Platform
from .services import Services

EARLY_REFRESH = 60  # seconds before expiry when a cached token is no longer handed out

CacheKey = tuple[str, tuple[str, ...]]


class ScopesNotGranted(Exception):  # noqa: N818 - an answer for the caller
    """Requested scopes the LMS did not claim, or claimed but its token endpoint refuses."""

    def __init__(
        self, platform: Platform, not_claimed: tuple[str, ...], refused_by_lms: tuple[str, ...]
    ):
        super().__init__(", ".join((*not_claimed, *refused_by_lms)))
        self.platform = platform
        self.not_claimed = not_claimed
        self.refused_by_lms = refused_by_lms


class NoUsableScopes(Exception):  # noqa: N818 - an answer for the caller
    """The LMS claimed no service scope, or its token endpoint refused every one it claimed."""

    def __init__(self, platform: Platform):
        super().__init__(platform.id)
        self.platform = platform


class TokenEndpointRefused(Exception):  # noqa: N818 - the LMS's answer
    """The token endpoint answered without a token, for another reason than the scopes."""

    def __init__(self, status: int, body: str, url: str):
        super().__init__(f"HTTP {status}")
        self.status, self.body, self.url = status, body, url


class TokenEndpointUnreachable(Exception):  # noqa: N818 - the LMS did not answer
    """The token endpoint could not be reached (refused address, timeout, too large)."""

    def __init__(self, error: RegistrationError):
        super().__init__(error.detail)
        self.detail, self.rule = error.detail, error.rule


@dataclass(frozen=True)
class Issued:
    """A token handed to the tool and when it expires (time.monotonic)."""

    expires_at: float
    token: dict[str, Any]


class TokenCache:
    """Access tokens per (platform, scopes), kept in this worker until shortly before expiry."""

    def __init__(self) -> None:
        self._tokens: dict[CacheKey, Issued] = {}
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> Issued | None:
        """Return the token while it has more than EARLY_REFRESH seconds left."""
        with self._lock:
            entry = self._tokens.get(key)
            if entry and entry.expires_at - EARLY_REFRESH > time.monotonic():
                return entry
            self._tokens.pop(key, None)
            return None

    def put(self, key: CacheKey, issued: Issued) -> None:
        """Keep a token until it is about to expire."""
        with self._lock:
            self._tokens[key] = issued


def cache_key(platform: Platform, scopes: tuple[str, ...]) -> CacheKey:
    """Return the key a token for exactly these scopes is cached under."""
    return platform.id, tuple(sorted(set(scopes)))


def default_scopes(platform: Platform) -> tuple[str, ...]:
    """Return what a request without scopes asks for: claimed service scopes not refused."""
    refused = set(platform.refused_scopes or ())
    return tuple(s for s in platform.service_scopes if s not in refused)


def checked_scopes(platform: Platform, requested: tuple[str, ...]) -> tuple[str, ...]:
    """Return the requested scopes once each; raise ScopesNotGranted for any not usable."""
    claimed = set(platform.service_scopes)
    refused = set(platform.refused_scopes or ())
    not_claimed = tuple(sorted({s for s in requested if s not in claimed}))
    refused_by_lms = tuple(sorted({s for s in requested if s in claimed and s in refused}))
    if not_claimed or refused_by_lms:
        raise ScopesNotGranted(platform, not_claimed, refused_by_lms)
    return tuple(dict.fromkeys(requested))


def service_token(
    services: Services, cache: TokenCache, platform: Platform, requested: tuple[str, ...] | None
) -> Issued:
    """Return a token for `requested` scopes, or for every usable scope when None.

    A request without scopes settles for the scopes the token endpoint grants (narrowing when
    it refuses); a request naming scopes gets all of them or ScopesNotGranted. Either way
    what the endpoint granted and refused is stored on the platform. `cache` is the worker's
    tokens.
    """
    asked = default_scopes(platform) if requested is None else checked_scopes(platform, requested)
    if not asked:
        raise NoUsableScopes(platform)
    cached = cache.get(cache_key(platform, asked))
    if cached is not None:
        return cached
    narrowed = narrow(asked, lambda scopes: _fetch(services, platform, scopes))
    learned = _learn(services, platform, narrowed.granted, narrowed.refused, narrowed.requests)
    issued = None
    if narrowed.token is not None and narrowed.token.scopes:
        issued = _issued(narrowed.token)
        # Under the scopes it really covers: the next request for those finds it.
        cache.put(cache_key(platform, narrowed.token.scopes), issued)
    if requested is not None and narrowed.refused:
        raise ScopesNotGranted(learned, (), tuple(sorted(narrowed.refused)))
    if issued is None:
        raise NoUsableScopes(learned)
    return issued


def _issued(token: AccessToken) -> Issued:
    return Issued(
        time.monotonic() + token.lifetime,
        {
            "accessToken": token.access_token,
            "tokenType": token.token_type,
            "scope": " ".join(token.scopes),
        },
    )


def _fetch(services: Services, platform: Platform, scopes: tuple[str, ...]) -> AccessToken:
    """Send one client-credentials request for `scopes` (a fresh assertion each time)."""
    kid, key = services.keys.signing_key()
    fields = {
        "grant_type": CLIENT_CREDENTIALS,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": sign(client_assertion(platform), kid, key),
        "scope": " ".join(scopes),
    }
    try:
        response = services.outbound().post_form(
            platform.token_endpoint,
            fields,
            headers={"Accept": "application/json"},
            what="LMS's token endpoint",
        )
    except RegistrationError as error:
        raise TokenEndpointUnreachable(error) from None
    try:
        return read_token_response(response.status, response.text, scopes)
    except TokenRefused as refused:
        raise TokenEndpointRefused(
            refused.status, refused.body[:2000], platform.token_endpoint
        ) from None


def learn_scopes(
    store, platform: Platform, granted: Iterable[str], refused: Iterable[str]
) -> Platform | None:
    """Record what the token endpoint granted and refused, merged with what is known.

    The merge reads the platform as stored now, under a row lock, so two workers learning at
    once keep each other's knowledge. When a re-registration changed its claims or registration
    since the request was made, what the old grants taught is stale: nothing is written.
    Otherwise the newest fact about a scope wins and every other scope keeps what it had.
    """
    granted, refused = set(granted), set(refused)

    def merge(current: Platform) -> tuple[set[str], set[str]] | None:
        if (current.registration_id, current.scopes) != (platform.registration_id, platform.scopes):
            return None
        usable = (set(current.usable_scopes or ()) - refused) | granted
        return usable, (set(current.refused_scopes or ()) - granted) | refused

    return store.learn_scopes(platform.id, merge)


def _learn(
    services: Services,
    platform: Platform,
    granted: tuple[str, ...],
    refused: tuple[str, ...],
    requests: int,
) -> Platform:
    """Store what the token endpoint taught, when it is news; audit new refusals.

    Return the platform as it is now.
    """
    known_usable = set(platform.usable_scopes or ())
    known_refused = set(platform.refused_scopes or ())
    if set(granted) <= known_usable and set(refused) <= known_refused and platform.learned:
        return platform
    current = learn_scopes(services.store, platform, granted, refused) or platform
    new_refusals = sorted(set(refused) - known_refused)
    if new_refusals:
        services.log.info(
            "platform %s: the token endpoint refused %s though the registration answer "
            "claimed them (%d token requests)",
            platform.id,
            " ".join(new_refusals),
            requests,
        )
        services.events.record(
            "platform.scopes_refused",
            "platform",
            platform.id,
            {"refused": new_refusals, "usable": sorted(granted), "tokenRequests": requests},
        )
    return current
