"""Launches: find and check the registration, use the login's state once, hand off to the tool.

`/lti/login` (app/web/launch.py) remembers a single-use state and nonce here, in the database.
The state is also bound to the browser that started the login, so a state and id_token
captured by someone else and submitted into another browser prove nothing (login CSRF): the
launch must show a digest of its state, either from a short-lived cookie or, where the browser
refuses cookies in the LMS's frame, from the LMS's client-side platform storage (see
`LoginBinding`). The launch verifies the platform's id_token against the stored registration,
applies the deployment policy, and either hands a Gatehouse-signed token to `[launch] tool_url`
or shows what it verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

from ..lti.errors import (
    DeploymentNotApproved,
    DeploymentRefused,
    InactivePlatform,
    InvalidLaunch,
    LaunchError,
    UnknownPlatform,
)
from ..lti.http import SafeClient
from ..lti.launch import (
    CLAIM_CONTEXT,
    CLAIM_DEPLOYMENT_ID,
    CLAIM_MESSAGE_TYPE,
    CLAIM_RESOURCE_LINK,
    CLAIM_ROLES,
    CLAIM_TARGET_LINK_URI,
    CLAIM_TOOL_PLATFORM,
    DL_SETTINGS,
    handoff_claims,
    sign,
    with_query,
)
from ..lti.lms import family_name, for_family
from ..lti.roles import display_names, is_staff, parse_roles
from ..lti.text import N_
from ..storage import LaunchStateStatus, now_iso
from .events import Events
from .services import Services

STATE_LIFETIME = timedelta(minutes=10)  # from the login redirect to the launch POST
HANDOFF_PARAM = "lti_token"


BINDING_RULE = "launch-not-bound"
COOKIE_PREFIX = "gatehouse_launch_"  # + the state's binding key; path /lti/launch
LOGIN_CHECK_PREFIX = "gatehouse_login_"  # + the key; path /lti/login, readable by the login page
STORAGE_KEY_PREFIX = "gatehouse-launch-"  # + the key: the platform storage key
STORAGE_ERRORS = {
    "no-lms-window": "this page has no LMS window around it to ask",
    "unsupported": "the LMS did not answer that it supports platform storage",
    "timeout": "the LMS did not answer in time",
    "no-value": "the LMS holds no value for this launch",
    "refused": "the LMS refused to give the value",
}


@dataclass(frozen=True)
class LoginBinding:
    """What a login's state says about itself: its registration and its platform storage frame.

    The state Gatehouse sends is `<random>.<platform id>` plus `.<frame>` (base64url) when the
    login carried `lti_storage_target`. The database keeps only its hash, so a changed state is
    an unknown one; reading these parts before the state is used tells the launch page which
    LMS frame to ask, and at which origin, when the binding cookie did not come back.
    """

    platform_id: str
    storage_target: str | None

    @classmethod
    def parse(cls, state: str) -> LoginBinding | None:
        """Return the binding a state describes, or None for a state Gatehouse did not shape."""
        parts = state.split(".")
        if len(parts) not in (2, 3) or not parts[1]:
            return None
        target = None
        if len(parts) == 3:
            try:
                padded = parts[2] + "=" * (-len(parts[2]) % 4)
                target = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
        return cls(parts[1], target or None)


def new_state(platform_id: str, storage_target: str | None) -> str:
    """Return a new random state naming its registration and, if any, its storage frame."""
    state = f"{secrets.token_urlsafe(32)}.{platform_id}"
    if storage_target:
        encoded = base64.urlsafe_b64encode(storage_target.encode()).decode().rstrip("=")
        state += f".{encoded}"
    return state


def binding_key(state: str) -> str:
    """Return the short public name of a state's binding: cookie name and storage key suffix."""
    return hashlib.sha256(b"gatehouse launch key\0" + state.encode()).hexdigest()[:16]


def cookie_digest(secret: str | bytes, state: str) -> str:
    """Return the digest of a state that the binding cookie carries (HMAC-SHA256, keyed)."""
    return _digest(secret, b"cookie", state)


def storage_digest(secret: str | bytes, state: str) -> str:
    """Return the value the login puts in the LMS's platform storage for a state."""
    return _digest(secret, b"platform-storage", state)


def _digest(secret: str | bytes, purpose: bytes, state: str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, b"gatehouse launch binding\0" + purpose + b"\0" + state.encode(), "sha256")
    # 128 bits: platform storage is small (Canvas allows 4096 characters per tool).
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def check_cookie(secret: str | bytes, state: str, cookie: str | None) -> None:
    """Refuse a launch whose browser does not hold the login's binding cookie for this state."""
    if cookie is None:
        raise _not_bound(
            "This browser did not start this launch: it holds no Gatehouse cookie for it, and "
            "the LMS offered no other way to prove it."
        )
    if not hmac.compare_digest(cookie.encode(), cookie_digest(secret, state).encode()):
        raise _not_bound("This browser's Gatehouse cookie belongs to another launch.")


def check_storage_value(
    secret: str | bytes, state: str, value: str | None, error: str | None
) -> None:
    """Refuse a launch whose page did not read the login's value back from the LMS's storage."""
    if not value:
        reason = STORAGE_ERRORS.get(error or "", "the page sent no value")
        raise _not_bound(
            "This browser did not prove that it started this launch: it holds no Gatehouse "
            f"cookie for it, and asking the LMS's platform storage failed ({reason})."
        )
    if not hmac.compare_digest(value.encode(), storage_digest(secret, state).encode()):
        raise _not_bound(
            "The value the LMS's platform storage gave back belongs to another launch."
        )


def check_same_origin(fetch_site: str | None, origin: str | None, own_origin: str) -> None:
    """Refuse a platform-storage proof that Gatehouse's own page did not send.

    The value read from platform storage is only worth something when Gatehouse's launch page
    read it from the LMS frame (checking the message's origin) and posted it: a form a foreign
    page submits carries `Sec-Fetch-Site: cross-site` and its own `Origin`.
    """
    if fetch_site is not None and fetch_site != "same-origin":
        raise _not_bound(f"The launch's proof was sent from another site ({fetch_site}).")
    if fetch_site is None and origin != own_origin:
        raise _not_bound(f"The launch's proof was sent from {origin or 'an unknown origin'}.")


def _not_bound(detail: str) -> InvalidLaunch:
    return InvalidLaunch(
        detail,
        rule=BINDING_RULE,
        hint=N_(
            "Launch the tool again from the LMS, in this browser. Gatehouse accepts a launch "
            "only in the browser that started it, so a launch link or form sent to you by someone "
            "else does not open the tool."
        ),
    )


def state_hash(state: str) -> str:
    """Return what the database keeps of a state: its SHA-256 (the state itself is a secret)."""
    return hashlib.sha256(state.encode()).hexdigest()


def fetch_key_set(client: SafeClient, url: str):
    """Fetch a platform's JWKS through the safe outbound client."""
    response = client.get(url, headers={"Accept": "application/json"}, what="LMS's key set")
    if response.status != 200:
        raise LaunchError(
            f"The LMS answered HTTP {response.status} when Gatehouse fetched its key set at {url}.",
            rule="platform-jwks",
        )
    return response.json()


def find_platform(store, issuer: str, client_id: str | None):
    """Return the registration for a login: by issuer and client_id, or by issuer alone."""
    if client_id:
        platform = store.find_platform(issuer, client_id)
        if platform is None:
            raise UnknownPlatform(
                f"No registration matches issuer {issuer!r} and client_id {client_id!r}.",
                rule="unknown-platform",
                hint=N_(
                    "An LMS administrator must register the tool first (Dynamic Registration "
                    "with this tool's registration URL), or correct the client ID in the LMS."
                ),
            )
        return platform
    candidates, _total = store.list_platforms(issuer=issuer, limit=2)
    if not candidates:
        raise UnknownPlatform(
            f"No registration matches issuer {issuer!r}.",
            rule="unknown-platform",
            hint=N_(
                "An LMS administrator must register the tool first (Dynamic Registration with "
                "this tool's registration URL)."
            ),
        )
    if len(candidates) > 1:
        raise UnknownPlatform(
            f"Several registrations share issuer {issuer!r} and the LMS did not say which one "
            "this launch is for (no client_id parameter).",
            rule="ambiguous-platform",
            hint=N_(
                "Configure the LMS to send client_id with the login request, or remove the "
                "registrations that are no longer used."
            ),
        )
    return candidates[0]


def check_active(platform) -> None:
    """Refuse launches of a registration an administrator has not activated."""
    if not platform.active:
        raise InactivePlatform(
            f"The registration of {platform.name or platform.issuer} (client_id "
            f"{platform.client_id}) exists but is not active.",
            rule="platform-inactive",
            hint=N_(
                "An administrator of the tool must activate this registration (in the "
                "Gatehouse console or with the API) before it can be launched."
            ),
        )


def check_deployment(store, events: Events, policy: str, platform, deployment_id: str) -> None:
    """Apply `registration.unknown_deployments` (`policy`) to the launch's deployment id."""
    deployment = store.get_deployment(platform.id, deployment_id)
    if deployment is None:
        if policy == "reject":
            raise DeploymentRefused(
                f"Deployment {deployment_id!r} of {platform.name or platform.issuer} is not "
                "registered with the tool, and the tool accepts only known deployments.",
                rule="deployment-unknown",
                hint=N_(
                    "An administrator of the tool must add this deployment id to the registration."
                ),
            )
        deployment, created = store.add_deployment(
            platform.id, deployment_id, active=policy == "accept", source="launch"
        )
        if created:
            events.record(
                "deployment.discovered",
                "platform",
                platform.id,
                {"deploymentId": deployment_id, "active": deployment.active, "policy": policy},
            )
    if not deployment.active:
        raise DeploymentNotApproved(
            f"Deployment {deployment_id!r} of {platform.name or platform.issuer} is known to "
            "the tool but has not been approved yet.",
            rule="deployment-pending",
            hint=N_(
                "An administrator of the tool must approve this deployment (in the Gatehouse "
                "console or with the API); then launch again."
            ),
        )


def remember_login(
    store, platform, target_link_uri: str, storage_target: str | None = None
) -> tuple[str, str]:
    """Return a new single-use (state, nonce) for a login, kept until the launch comes back."""
    state, nonce = new_state(platform.id, storage_target), secrets.token_urlsafe(32)
    expires_at = now_iso(datetime.now(UTC) + STATE_LIFETIME)
    store.create_launch_state(state_hash(state), nonce, platform.id, target_link_uri, expires_at)
    return state, nonce


def consume_state(store, state: str):
    """Use the login's state once; raise InvalidLaunch when it is unknown, used or expired."""
    launch_state, status = store.consume_launch_state(state_hash(state))
    if status == LaunchStateStatus.USED:
        raise InvalidLaunch(
            "This launch was already used once; a launch cannot be sent twice.",
            rule="state-replayed",
            hint=N_(
                "Launch the tool again from the LMS (reloading or going back to a launch page "
                "does not work)."
            ),
        )
    if status == LaunchStateStatus.EXPIRED:
        raise InvalidLaunch(
            "This launch took longer than ten minutes from login to launch.",
            rule="state-expired",
            hint=N_("Launch the tool again from the LMS."),
        )
    if status != LaunchStateStatus.OK:
        raise InvalidLaunch(
            "This launch's state was not issued by Gatehouse's login step.",
            rule="state-unknown",
            hint=N_(
                "Launch the tool from the LMS; the LMS must start at the tool's login URL "
                "(…/lti/login)."
            ),
        )
    return launch_state


def handoff_url(services: Services, tool_url: str, claims: dict, platform) -> str:
    """Return the tool's URL carrying a Gatehouse-signed token of the verified launch.

    Query parameters of the launch URL the LMS targeted (…/lti/launch?page=2) travel with it,
    as hosted LTI services forward them to the tool's launch URL.
    """
    kid, key = services.keys.signing_key()
    token = sign(
        handoff_claims(
            claims,
            platform,
            issuer=services.base_url,
            audience=tool_url,
            lifetime=services.settings.launch.token_lifetime,
        ),
        kid,
        key,
    )
    target = urlsplit(str(claims.get(CLAIM_TARGET_LINK_URI) or ""))
    ours = urlsplit(services.base_url + "/lti/launch")
    forwarded = {}
    if (target.netloc, target.path) == (ours.netloc, ours.path):
        forwarded = {k: v for k, v in parse_qsl(target.query) if k != HANDOFF_PARAM}
    return with_query(tool_url, {**forwarded, HANDOFF_PARAM: token})


def verified_page(claims: dict, platform) -> dict:
    """Return what the page after a verified launch shows, and to whom (`for_staff`).

    Staff (app/lti/roles.py) see how the launch was verified; anyone else only that they are
    connected: no identity, no identifiers, no setting names.
    """
    roles = parse_roles(claims.get(CLAIM_ROLES))
    tool_platform = _object(claims, CLAIM_TOOL_PLATFORM)
    code = tool_platform.get("product_family_code") or platform.product_family_code
    family = for_family(code)
    page: dict = {
        "for_staff": is_staff(roles),
        "family_name": family_name(code) if code else None,
    }
    if not page["for_staff"]:
        return page
    # The release the LMS advertised when registering first, else the launch claim's version
    # (Moodle's is its build number, 2024100706: its release comes from the build date).
    reported = [
        str(v).strip()
        for v in (platform.version, tool_platform.get("version"))
        if isinstance(v, str | int) and str(v).strip()
    ]
    context, link = _object(claims, CLAIM_CONTEXT), _object(claims, CLAIM_RESOURCE_LINK)
    return {
        **page,
        "platform": platform,
        "lms_release": family.release(reported[0]) if reported else None,
        "lms_versions_reported": list(dict.fromkeys(reported)),
        "deployment_id": claims[CLAIM_DEPLOYMENT_ID],
        "message_type": claims[CLAIM_MESSAGE_TYPE],
        "user_name": claims.get("name")
        or " ".join(str(claims[k]) for k in ("given_name", "family_name") if claims.get(k))
        or None,
        "user_email": claims.get("email"),
        "subject": claims.get("sub"),
        "roles": display_names(roles),
        "context": context,
        "resource_link": link,
        "deep_linking": claims.get(DL_SETTINGS),
    }


def _object(claims: dict, name: str) -> dict:
    """Return a claim that should be a JSON object, or {} when it is missing or is not one."""
    value = claims.get(name)
    return value if isinstance(value, dict) else {}
