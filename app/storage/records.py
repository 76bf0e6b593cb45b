"""The records the store returns and takes: frozen dataclasses, the store's errors, timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..lti.constants import is_service_scope


class StorageError(Exception):
    """The database URL is not usable."""


class AccountExists(Exception):
    """An account with this e-mail address already exists."""


class Conflict(Exception):
    """A write would break a uniqueness rule (the same issuer and client_id, say)."""


@dataclass(frozen=True)
class Platform:
    """An LMS registration Gatehouse knows: issuer, client_id, endpoints and status."""

    id: str
    issuer: str
    client_id: str
    name: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    authorization_server: str | None
    registration_client_uri: str | None
    product_family_code: str
    version: str
    scopes: tuple[str, ...]
    active: bool
    created_at: str
    updated_at: str
    registration_id: str | None = None
    auth_method: str = "JWK_SET"
    auth_key: str | None = None
    invitation_id: str | None = None
    last_launch_at: str | None = None
    # What the token endpoint really did with `scopes` (the answer's claims): None until
    # Gatehouse has asked it for a token; a re-registration forgets both.
    usable_scopes: tuple[str, ...] | None = None
    refused_scopes: tuple[str, ...] | None = None

    @property
    def service_scopes(self) -> tuple[str, ...]:
        """Return the claimed scopes that name LTI services (never `openid` and its kind)."""
        return tuple(s for s in self.scopes if is_service_scope(s))

    @property
    def learned(self) -> bool:
        """Tell whether the token endpoint has granted or refused any scope yet."""
        return self.usable_scopes is not None or self.refused_scopes is not None


@dataclass(frozen=True)
class Deployment:
    """A deployment id of a platform, with its own active flag."""

    platform_id: str
    deployment_id: str
    active: bool
    source: str
    created_at: str


@dataclass(frozen=True)
class Registration:
    """One registration attempt, from the LMS's first request to its outcome."""

    id: str
    state: str
    openid_configuration_url: str
    issuer: str | None
    product_family_code: str | None
    platform_version: str | None
    platform_config: dict[str, Any] | None
    request: dict[str, Any] | None
    adjustments: tuple[str, ...]
    response_status: int | None
    response_body: str | None
    client_id: str | None
    deployment_id: str | None
    platform_id: str | None
    error: dict[str, Any] | None
    created_at: str
    updated_at: str
    expires_at: str
    account_id: str | None = None
    platform_created: bool | None = None
    invitation_id: str | None = None
    # The adjustments the LMS administrator must read (the dialog waits for "Done").
    notable_adjustments: tuple[str, ...] = ()

    @property
    def expired(self) -> bool:
        """Return True when the attempt outlived `registration.expires_in`."""
        return self.expires_at <= now_iso()


@dataclass(frozen=True)
class Account:
    """Someone who may approve registrations: local password or OpenID Connect identity."""

    id: str
    email: str
    name: str | None
    password_hash: str | None
    oidc_issuer: str | None
    oidc_subject: str | None
    created_at: str
    last_login_at: str | None
    is_owner: bool = False
    # Bumped by a sign-out and a password change: a session holding an older one has ended.
    session_version: int = 0


@dataclass(frozen=True)
class ApiKey:
    """A bearer key for the API; only its hash is stored."""

    id: str
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    secret_hash: str = ""


@dataclass(frozen=True)
class Invitation:
    """A per-customer registration link: /lti/register?invite=<code>."""

    id: str
    code: str
    name: str
    uses_allowed: int | None
    uses: int
    expires_at: str | None
    created_at: str
    revoked_at: str | None

    @property
    def usable(self) -> bool:
        """Return True when the link may still start a registration."""
        return (
            self.revoked_at is None
            and (self.expires_at is None or self.expires_at > now_iso())
            and (self.uses_allowed is None or self.uses < self.uses_allowed)
        )


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: who did what to which record."""

    id: int
    at: str
    actor: str
    action: str
    subject_type: str | None
    subject_id: str | None
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class Notification:
    """An event waiting for (or done with) delivery to the owner's webhook or by e-mail."""

    id: int
    event: str
    payload: str
    created_at: str
    attempts: int
    next_attempt_at: str | None
    delivered_at: str | None
    last_error: str | None
    channel: str = "webhook"


@dataclass(frozen=True)
class TermsAcceptance:
    """Who accepted which version of the terms for a registration, when and from where."""

    id: int
    registration_id: str
    version: str
    accepted_at: str
    account_id: str | None
    email: str | None
    signer_name: str
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Payment:
    """A Stripe Checkout Session opened for a registration, and its status."""

    session_id: str
    registration_id: str
    account_id: str | None
    mode: str | None
    amount: int | None
    currency: str | None
    status: str
    created_at: str
    updated_at: str
    # The price Gatehouse asked for, and why Stripe's session did not match what was asked.
    price_id: str | None = None
    mismatch: str | None = None


@dataclass(frozen=True)
class LaunchState:
    """The state and nonce of one OIDC login, kept until the launch comes back (single use)."""

    state_hash: str
    nonce: str
    platform_id: str
    target_link_uri: str | None
    created_at: str
    expires_at: str
    used_at: str | None = None


class LaunchStateStatus:
    """What consuming a launch state found."""

    OK = "ok"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ToolKey:
    """One of the tool's RSA signing keys: PEM, or sealed PEM (app/domain/sealing.py)."""

    kid: str
    private_pem: str
    created_at: str
    retire_at: str | None


def storable(text: str) -> bool:
    """Return True when a string can be stored: UTF-8 without NUL (PostgreSQL refuses both)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a \ud800-style JSON escape
        return False
    return True


def now_iso(moment: datetime | None = None) -> str:
    """Return a UTC timestamp string that sorts in time order."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
