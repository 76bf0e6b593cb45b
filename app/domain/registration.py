"""The registration flow as named steps over the store: start, discover, register, complete.

The steps take the store and the outbound client as parameters; `complete`, `fail` and
`resolve` take the request's `Services` (app/domain/services.py) and record the events the
tool's owner is notified of.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from secrets import token_urlsafe
from urllib.parse import parse_qs, quote, quote_plus, unquote, unquote_plus, urlsplit

from ..lti.discovery import (
    PlatformConfig,
    SupportedMessage,
    get_openid_config,
    validate_openid_config,
)
from ..lti.errors import (
    InvalidRegistrationResponse,
    MissingParameter,
    OutcomeUnknown,
    PlatformRefused,
    PlatformUnreachable,
    RegistrationError,
    UnsafeURL,
)
from ..lti.http import SafeClient, shown_url
from ..lti.lms import family_name, for_family
from ..lti.registration import (
    RegistrationResult,
    ToolProfile,
    build_registration_request,
    parse_registration_response,
    register_tool_in_platform,
    resolve_tool,
)
from ..lti.text import N_
from ..settings import Settings
from ..storage import Platform, Registration, RegistrationState, TransitionRefused, now_iso
from ..testing import crashpoints
from .events import Events
from .platforms import tell_owner_awaiting
from .policy import RegistrationRefused
from .sealing import Sealer
from .services import Services

log = logging.getLogger(__name__)

# Path segments this long are opaque tokens (Brightspace puts its one-time token in the path),
# percent-escaped or not.
TOKEN_SEGMENT = re.compile(r"^[A-Za-z0-9._~+=%-]{32,}$")
# Query values this long are taken for tokens too (an LMS may put its token in the URL).
TOKEN_QUERY_VALUE = 16
PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")
# URL-unreserved characters (RFC 3986 §2.3): neither percent-escaping, form-escaping nor a JSON
# string changes them.
UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")
# The tool's profile per settings object and base URL, worked out once: `[tool]` as dicts,
# resolved, twice per registration otherwise. Few are kept: without a configured base_url the
# request's host picks it, and anyone can send any host.
_PROFILES: dict[tuple[int, str], tuple[Settings, ToolProfile]] = {}
PROFILES_KEPT = 16


class AlreadyHandled(RegistrationError):
    """This attempt is already registering or finished; nothing is sent to the LMS again."""

    status = 409
    title = N_("This registration is already being handled")


class TokenSpent(RegistrationError):
    """Another attempt already sent a registration with this LMS token."""

    status = 409
    title = N_("This registration was already sent to your LMS")


class RegistrationGone(RegistrationError):
    """The attempt expired or already ended; the admin starts again from the LMS."""

    status = 410
    title = N_("This registration has ended")


class RegistrationExpired(RegistrationGone):
    """The attempt ran out of time before it was sent; it ends expired, never failed."""

    state = RegistrationState.EXPIRED


@dataclass(frozen=True)
class Outcome:
    """A finished registration: the stored platform, whether it is new, and its LMS."""

    platform: Platform
    created: bool
    family_code: str


def redact_config_url(url: str) -> str:
    """Return the configuration URL without its query and without token-like path segments."""
    parts = urlsplit(url)
    segments = ["…" if TOKEN_SEGMENT.match(s) else s for s in parts.path.split("/")]
    return f"{parts.scheme}://{parts.netloc}{'/'.join(segments)}"


def secrets_of(url: str, registration_token: str | None) -> tuple[str, ...]:
    """Return the values that must never be stored: the token, wherever the LMS put it.

    Each in every spelling it may come back in: as sent, percent-escaped (upper or lower case
    hex, `/` escaped or not), plus-escaped as in a form, escaped twice, unescaped, and as a JSON
    string: an LMS that echoes the token in an error or a URL must not get it past `redact`.
    """
    spellings = {
        spelling
        for secret in _secrets_as_sent(url, registration_token)
        for spelling in _spellings(secret)
    }
    return tuple(sorted((s for s in spellings if s), key=len, reverse=True))


def _secrets_as_sent(url: str, registration_token: str | None) -> set[str]:
    """Return the token and the URL's token-like path segments and query values, as written."""
    parts = urlsplit(url)
    found = {s for s in parts.path.split("/") if TOKEN_SEGMENT.match(s)}
    found.update(
        v
        for values in parse_qs(parts.query).values()
        for v in values
        if len(v) >= TOKEN_QUERY_VALUE
    )
    # The query's values as written, still escaped.
    found.update(
        v
        for pair in parts.query.split("&")
        for v in pair.split("=", 1)[1:]
        if len(v) >= TOKEN_QUERY_VALUE
    )
    if registration_token:
        found.add(registration_token)
    return found


def _spellings(secret: str) -> set[str]:
    """Return `secret` and the ways URLs, forms and JSON may write it."""
    if UNRESERVED.fullmatch(secret):
        # Nothing in it to escape or unescape (a JWT, most tokens): every spelling below is
        # the secret itself, and working them out is most of a registration's redaction cost.
        return {secret}
    plain = {secret, unquote(secret), unquote_plus(secret)}
    escaped = set()
    for value in plain:
        for encode in (quote, quote_plus):
            for safe in ("", "/"):
                once = encode(value, safe=safe)
                escaped |= {once, encode(once, safe=safe)}
    lower = {PERCENT_ESCAPE.sub(lambda m: m.group().lower(), e) for e in escaped}
    as_json = {json.dumps(v)[1:-1] for v in plain}
    return plain | escaped | lower | as_json


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every secret in `text` with an ellipsis."""
    for secret in secrets:
        text = text.replace(secret, "…")
    return text


@contextlib.contextmanager
def scrubbed(secrets: tuple[str, ...]) -> Iterator[None]:
    """Take the LMS's token out of any error raised inside, before anyone stores or shows it."""
    try:
        yield
    except RegistrationError as error:
        for name in ("detail", "hint", "lms_body"):
            value = getattr(error, name, None)
            if isinstance(value, str):
                setattr(error, name, redact(value, secrets))
        error.args = (error.detail,)
        raise


def tool_profile(settings: Settings, base_url: str) -> ToolProfile:
    """Return the `[tool]` settings resolved against the public base URL (worked out once)."""
    key = (id(settings), base_url)
    kept = _PROFILES.get(key)
    if kept is not None and kept[0] is settings:  # the same object: its id is not reused
        return kept[1]
    profile = resolve_tool(settings.tool.as_dict(), base_url)
    if len(_PROFILES) >= PROFILES_KEPT:
        _PROFILES.clear()
    _PROFILES[key] = (settings, profile)
    return profile


def check_initiation(openid_configuration: str | None) -> str:
    """Return the openid_configuration URL or raise MissingParameter / UnsafeURL."""
    if not openid_configuration:
        raise MissingParameter(
            "The request has no openid_configuration parameter. Gatehouse's registration URL "
            "is meant to be pasted into your LMS, which adds that parameter when it opens it.",
            rule="openid-configuration-required",
            hint=N_(
                "In your LMS, choose to add an LTI 1.3 tool by dynamic registration and paste "
                "this page's address there."
            ),
        )
    parts = urlsplit(openid_configuration)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        # Never the query (where a token may be), and no token-like segment either.
        shown = redact(shown_url(openid_configuration), secrets_of(openid_configuration, None))
        raise UnsafeURL(
            f"The openid_configuration parameter {shown!r} is not an absolute http(s) URL.",
            rule="url-absolute",
        )
    return openid_configuration


def token_digest(url: str, registration_token: str | None) -> str | None:
    """Name one registration the LMS started: a hash of its configuration URL and token.

    None when the LMS sent nothing one-time (no token, none in the URL): such starts cannot
    be told apart from a new registration of the same LMS.
    """
    # Whether there is one is enough: not the dozens of spellings secrets_of() works out.
    if not _secrets_as_sent(url, registration_token):
        return None
    return hashlib.sha256(f"{url}\n{registration_token or ''}".encode()).hexdigest()


def earlier_attempt(store, url: str, registration_token: str | None) -> Registration | None:
    """Return the attempt a repeated start (refresh, back button) must show instead of a new one.

    That is the attempt that already sent this token to the LMS, whatever came of it, or one
    still waiting at the gates. Attempts that failed before anything reached the LMS, or
    expired, are not returned: the admin may try again with the same token.
    """
    digest = token_digest(url, registration_token)
    attempt = store.latest_for_token(digest) if digest else None
    if attempt is None:
        return None
    if attempt.request is not None and attempt.state != RegistrationState.PENDING:
        return attempt
    if attempt.state == RegistrationState.PENDING and not attempt.expired:
        return attempt if store.get_pending_secret(attempt.id) else None
    return None


def start(
    store, openid_configuration_url: str, registration_token: str | None, expires_in: int
) -> Registration:
    """Record a new attempt before anything is fetched."""
    expires_at = now_iso(datetime.now(UTC) + timedelta(seconds=expires_in))
    return store.create_registration(
        redact_config_url(openid_configuration_url),
        expires_at,
        token_digest(openid_configuration_url, registration_token),
    )


def discover(
    store,
    client: SafeClient,
    registration: Registration,
    openid_configuration_url: str,
    registration_token: str | None,
    *,
    issuer_check: str,
) -> PlatformConfig:
    """Fetch and validate the platform's configuration and record it on the attempt."""
    secrets = secrets_of(openid_configuration_url, registration_token)
    with scrubbed(secrets):
        document = get_openid_config(client, openid_configuration_url, registration_token)
        platform = validate_openid_config(
            document,
            openid_configuration_url,
            issuer_check=issuer_check,
            allow_insecure=client.allow_insecure,
        )
        # Platform endpoints come from a document the browser pointed us at: check them too.
        client.check_url(platform.registration_endpoint, "registration endpoint")
    store.record_platform_config(registration.id, _config_record(platform, secrets))
    for warning in platform.warnings:
        log.warning("registration %s: %s", registration.id, warning)
    return platform


def register(
    store,
    client: SafeClient,
    registration: Registration,
    platform: PlatformConfig,
    tool: ToolProfile,
    registration_token: str | None,
    *,
    auto_activate: bool,
    messages: list[dict] | None = None,
    name: str | None = None,
) -> Outcome:
    """POST the registration once, record the answer, then store the platform.

    `messages` and `name` override the configured messages and the platform's name (the
    pre-approval API's `messages` and `platformName`).
    """
    secrets = secrets_of(platform.openid_configuration_url, registration_token)
    with scrubbed(secrets):
        request = build_registration_request(tool, platform, messages=messages)
        claimed = store.claim_for_registering(
            registration.id,
            request.body,
            [
                {"text": a, "notable": True} if a in request.notable else a
                for a in request.adjustments
            ],
        )
        if not claimed:
            raise _not_claimed(store, registration.id)
        if registration.invitation_id and not store.use_invitation(registration.invitation_id):
            raise RegistrationRefused(
                "The invitation link this registration started from was used up, revoked or "
                "expired in the meantime.",
                rule="invitation-invalid",
                hint=N_("Ask the tool's owner for a new invitation link."),
            )
        crashpoints.reach("before_post")
        try:
            status, body = register_tool_in_platform(client, platform, request, registration_token)
        except PlatformUnreachable as error:
            if error.sent:
                # The LMS may have registered the tool: never as if nothing happened.
                raise _outcome_unknown(error, platform) from None
            if registration.invitation_id:
                store.release_invitation(registration.invitation_id)
            raise
        except RegistrationError:
            if registration.invitation_id:
                store.release_invitation(registration.invitation_id)
            raise
        shown = redact(body, secrets)
        # Written before anything else happens: a client_id the LMS granted is never lost.
        store.record_platform_response(registration.id, status, shown)
        crashpoints.reach("after_response")
        try:
            # A refusal is read redacted: its summary, cut at 300 characters, would otherwise
            # keep most of a token no longer whole enough to match. (A success is read as sent:
            # an LMS may use a long value of the configuration URL as the client_id.)
            result = parse_registration_response(
                status, body if 200 <= status < 300 else shown, request.scopes
            )
        except InvalidRegistrationResponse as error:
            # The LMS said yes: it may hold a registration whose client_id Gatehouse cannot read.
            raise _outcome_unknown(error, platform) from None
        except PlatformRefused as error:
            error.token_spent = True  # the LMS answered: this token is not sent again
            raise
        return _store_platform(
            store, registration, platform, result, auto_activate=auto_activate, name=name
        )


def _not_claimed(store, reg_id: str) -> RegistrationError:
    """Say why an attempt could not be claimed for registering: nothing is sent either way."""
    current = store.get_registration(reg_id)
    if current is not None and current.state == RegistrationState.PENDING and current.expired:
        return RegistrationExpired(
            "This registration was not finished in time, so it expired and nothing was sent "
            "to your LMS.",
            rule="registration-expired",
            hint=N_("Close this dialog and start the registration again from your LMS."),
        )
    if current is not None and current.state == RegistrationState.PENDING:
        return TokenSpent(
            "Gatehouse already sent a registration to your LMS with this registration token, "
            "from another window or an earlier try, and never sends one twice.",
            rule="token-once",
            hint=N_(
                "Close this dialog and look in your LMS for the tool. To register again, "
                "start a new registration from your LMS."
            ),
        )
    return AlreadyHandled(
        "Gatehouse already sent this registration to your LMS, so it will not send it again. "
        "Start a new registration from your LMS if you need to.",
        rule="single-post",
    )


def _outcome_unknown(
    error: PlatformUnreachable | InvalidRegistrationResponse, platform: PlatformConfig
) -> OutcomeUnknown:
    """Explain a registration that reached the LMS without a usable answer coming back."""
    lms = family_name(platform.product_family_code)
    happened = (
        error.detail
        if isinstance(error, InvalidRegistrationResponse)
        else f"Gatehouse sent the registration to {lms}, but no complete answer came back. "
        f"{error.detail}"
    )
    return OutcomeUnknown(
        f"{happened} {lms} may have registered the tool anyway, so Gatehouse will not send "
        "the same registration again.",
        rule=error.rule,
        hint=N_(
            "Look in %(lms)s's list of LTI tools for this tool. If it is there, give its "
            "Client ID to the tool's owner, who can finish the registration in the Gatehouse "
            "console. If it is not there, close this dialog and start a new registration from "
            "%(lms)s.",
            lms=lms,
        ),
        lms_status=getattr(error, "lms_status", None),
        lms_body=getattr(error, "lms_body", None),
    )


def _store_platform(
    store,
    registration: Registration,
    platform: PlatformConfig,
    result: RegistrationResult,
    *,
    auto_activate: bool,
    name: str | None,
) -> Outcome:
    record = {
        "issuer": platform.issuer,
        "client_id": result.client_id,
        "name": name or platform_name(platform),
        "authorization_endpoint": platform.authorization_endpoint,
        "token_endpoint": platform.token_endpoint,
        "jwks_uri": platform.jwks_uri,
        "authorization_server": platform.authorization_server or platform.token_endpoint,
        "registration_client_uri": result.registration_client_uri,
        "product_family_code": platform.product_family_code,
        "version": platform.version,
        "scopes": result.scopes,
    }
    try:
        stored, created = store.complete_registration(
            registration.id,
            record,
            result.deployment_id,
            auto_activate,
            invitation_id=registration.invitation_id,
            rename=name is not None,
        )
    except TransitionRefused:
        raise AlreadyHandled(
            "Another request finished this registration first; nothing was changed.",
            rule="single-post",
        ) from None
    log.info(
        "registration %s completed: %s platform %s (issuer %s, client_id %s)",
        registration.id,
        "created" if created else "updated",
        stored.id,
        stored.issuer,
        stored.client_id,
    )
    return Outcome(platform=stored, created=created, family_code=platform.product_family_code)


def recover(store, stale_before: str, *, auto_activate: bool) -> list[tuple[str, str]]:
    """Finish attempts a dead worker left in `registering`; return (id, what happened).

    With the LMS's answer on record, the platform is created from it (the client_id the LMS
    granted is never lost); without it, nobody knows whether the LMS registered the tool, and
    the attempt says so instead of guessing.
    """
    outcomes = []
    for registration in store.stale_registering(stale_before):
        if not store.claim_stale(registration.id, registration.updated_at):
            continue  # another worker is recovering it
        if registration.response_status is None:
            store.fail_registration(
                registration.id,
                {
                    "kind": "OutcomeUnknown",
                    "title": "Outcome unknown: check the LMS",
                    "detail": "Gatehouse stopped while waiting for the LMS's answer, so it does "
                    "not know whether the LMS registered the tool. Look in the LMS for a new "
                    "registration of this tool and delete it, or start again from the LMS.",
                    "rule": "worker-stopped",
                    "hint": None,
                },
                state="unknown",
            )
            outcomes.append((registration.id, "outcome unknown: check the LMS"))
            continue
        platform = _platform_from_record(registration.platform_config)
        try:
            result = parse_registration_response(
                registration.response_status,
                registration.response_body or "",
                tuple((registration.request or {}).get("scope", "").split()),
            )
            outcome = _store_platform(
                store, registration, platform, result, auto_activate=auto_activate, name=None
            )
        except InvalidRegistrationResponse as error:
            unknown = _outcome_unknown(error, platform)
            store.fail_registration(registration.id, unknown.as_dict(), state=unknown.state)
            outcomes.append((registration.id, f"outcome unknown: {error.detail}"))
            continue
        except RegistrationError as error:
            store.fail_registration(registration.id, error.as_dict())
            outcomes.append((registration.id, f"failed: {error.detail}"))
            continue
        store.audit(
            "recovery",
            "registration.recovered",
            "registration",
            registration.id,
            {"clientId": result.client_id, "platformId": outcome.platform.id},
        )
        outcomes.append(
            (
                registration.id,
                f"the LMS accepted client_id {result.client_id}; "
                "platform record created on restart",
            )
        )
    return outcomes


def resolve_unknown(
    store, registration: Registration, client_id: str, deployment_id: str | None, activate: bool
) -> Outcome:
    """Store the platform of an attempt of unknown outcome from the client ID the LMS shows.

    The platform comes from the LMS configuration the attempt validated; its services are those
    the request asked for (the LMS's answer, which may have granted fewer, never arrived).
    """
    result = RegistrationResult(
        client_id=client_id,
        deployment_id=deployment_id,
        scopes=tuple((registration.request or {}).get("scope", "").split()),
        registration_client_uri=None,
        document={},
    )
    return _store_platform(
        store,
        registration,
        _platform_from_record(registration.platform_config),
        result,
        auto_activate=activate,
        name=None,
    )


def _platform_from_record(data: dict) -> PlatformConfig:
    data = dict(data)
    data["messages_supported"] = tuple(
        SupportedMessage(m["type"], tuple(m["placements"]) if m["placements"] is not None else None)
        for m in data["messages_supported"]
    )
    for key in ("scopes_supported", "claims_supported", "warnings"):
        data[key] = tuple(data[key])
    data["filled_in"] = tuple(data.get("filled_in") or ())  # absent from older records
    return PlatformConfig(**data)


def end(store, registration: Registration | None, error: RegistrationError) -> bool:
    """End the attempt with the failure the admin is about to see; False when nothing changed.

    It ends `failed`, `unknown` or `expired` as the error says. When the registration never
    reached the LMS, its token is freed for another try; once it did (the LMS answered, or may
    have), the token stays spent. An attempt another request handles (`AlreadyHandled`) or
    that has ended already is left as it is: the transition table refuses the move.
    """
    if registration is None or isinstance(error, AlreadyHandled):
        return False
    state = getattr(error, "state", RegistrationState.FAILED)
    moved = store.fail_registration(
        registration.id, error.as_dict(), state=state, release_token=not error.token_spent
    )
    if not moved:
        log.info("registration %s was not ended %s: it had moved on", registration.id, state)
        return False
    log.warning(
        "registration %s %s: %s (%s)",
        registration.id,
        "failed" if state == RegistrationState.FAILED else f"ended as {state}",
        error.detail,
        error.rule or "-",
    )
    return True


def hold(
    store,
    registration: Registration,
    platform: PlatformConfig,
    registration_token: str | None,
    sealer: Sealer,
) -> None:
    """Keep what finishing needs server-side (sealed with a key) while the admin is at the gates."""
    secret = {"registration_token": registration_token, "platform": asdict(platform)}
    store.keep_pending_secret(registration.id, sealer.seal(json.dumps(secret)))


def resume(
    store, registration: Registration, sealer: Sealer
) -> tuple[PlatformConfig, str | None] | None:
    """Return the held platform configuration and token, or None when they are gone."""
    kept = store.get_pending_secret(registration.id)
    if not kept:
        return None
    secret = json.loads(sealer.open(kept))
    return _platform_from_record(secret["platform"]), secret["registration_token"]


def platform_name(platform: PlatformConfig) -> str:
    """Name a new platform after its LMS and the host the admin works on."""
    host = urlsplit(platform.registration_endpoint).netloc
    return for_family(platform.product_family_code).platform_name(platform.document, host)


def _config_record(platform: PlatformConfig, secrets: tuple[str, ...]) -> dict:
    # Field by field rather than asdict(), which deep-copies the whole configuration document
    # only for json.dumps to copy it again (a tenth of a registration's CPU, bench/); the nested
    # dataclasses (the supported messages) become dicts just as asdict() makes them.
    record = {f.name: getattr(platform, f.name) for f in fields(platform)}
    record["openid_configuration_url"] = redact_config_url(platform.openid_configuration_url)
    return json.loads(redact(json.dumps(record, default=asdict), secrets))


def complete(
    services: Services,
    registration: Registration,
    platform: PlatformConfig,
    token: str | None,
    *,
    auto_activate: bool | None = None,
    messages: list[dict] | None = None,
    name: str | None = None,
) -> Outcome:
    """Send the registration to the LMS once, store the platform, and record the event."""
    config = services.settings
    outcome = register(
        services.store,
        services.outbound(),
        registration,
        platform,
        tool_profile(config, services.base_url),
        token,
        auto_activate=config.registration.auto_activate if auto_activate is None else auto_activate,
        messages=messages,
        name=name,
    )
    record_completed(services.events, registration.id, outcome)
    if outcome.created and not outcome.platform.active:
        # The owner learns at once that a new registration waits for them.
        tell_owner_awaiting(services.events, outcome.platform, services.base_url, "registered")
    return outcome


def record_completed(events: Events, rid: str, outcome: Outcome, **extra) -> None:
    """Record (and notify) `registration.completed` for a stored outcome."""
    events.record(
        "registration.completed",
        "registration",
        rid,
        {
            "platformId": outcome.platform.id,
            "url": outcome.platform.issuer,
            "clientId": outcome.platform.client_id,
            "familyCode": outcome.family_code,
            "created": outcome.created,
            "active": outcome.platform.active,
            **extra,
        },
    )


def fail(services: Services, registration: Registration | None, error: RegistrationError) -> None:
    """Record a failed attempt and its event (none when it had moved on, or merely expired)."""
    ended = end(services.store, registration, error)
    if ended and not isinstance(error, RegistrationExpired):
        services.events.record(
            "registration.failed", "registration", registration.id, error.as_dict()
        )


def resolve(
    services: Services,
    attempt: Registration,
    client_id: str,
    deployment_id: str | None,
    activate: bool,
) -> Outcome | None:
    """Finish an attempt of unknown outcome from the client ID an owner read in the LMS.

    Return None when someone else finished it first: a compare-and-set claims it, so two owners
    sending the form at once create one platform, not two.
    """
    store = services.store
    if not store.claim_unknown(attempt.id):
        return None
    try:
        outcome = resolve_unknown(store, attempt, client_id, deployment_id, activate)
    except Exception:
        # Back to unknown with what it said before, so the owner can try again.
        store.fail_registration(attempt.id, attempt.error or {}, state=RegistrationState.UNKNOWN)
        raise
    # An owner typed the client ID in.
    record_completed(services.events, attempt.id, outcome, resolvedFrom=RegistrationState.UNKNOWN)
    return outcome


def current(store, rid: str) -> Registration | None:
    """Return the registration with this id (None when there is none), expired if overdue.

    Attempts past their time still read "pending" until something expires them.
    """
    registration = store.get_registration(rid)
    if (
        registration is not None
        and registration.state == RegistrationState.PENDING
        and registration.expired
    ):
        store.expire_registrations()
        registration = store.get_registration(rid)
    return registration


def hash_token(token: str) -> str:
    """Hash a single-use token for storage."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_done_token(store, rid: str) -> str:
    """Return a new single-use token for the close page of a registration the API completed."""
    token = token_urlsafe(24)
    store.set_done_token(rid, hash_token(token))
    return token


def use_done_token(store, rid: str, token: str) -> bool:
    """Spend a close page's single-use token; False when it was used already or is not valid."""
    return store.consume_done_token(rid, hash_token(token))
