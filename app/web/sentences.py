"""Each audit line as one sentence an owner reads at a glance; the JSON stays behind a toggle."""

from __future__ import annotations

import string

from ..lti.constants import scope_name
from ..lti.lms import family_name
from .api_json import api_key_name

# One template per action. Fields: {who} (who acted), {lms} (the LMS family's name) and the
# audit detail's own keys (url, clientId, deploymentId, name, email…). A line missing a field
# its template names reads as the fallback sentence rather than with a hole in it.
SENTENCES = {
    "registration.completed": "{who} completed a registration from {lms} at {url}: client ID "
    "{clientId}.",
    "registration.failed": "{who} recorded a failed registration: {title}",
    # What the recovery sweep records about attempts a stopped worker left half-done.
    "registration.completed (recovered)": "{who} finished a registration a stopped worker had "
    "left: {recovered}.",
    "registration.failed (recovered)": "{who} ended a registration a stopped worker had left: "
    "{recovered}.",
    "registration.recovered": "{who} recovered a registration the LMS had answered: client ID "
    "{clientId}.",
    "platform.created": "{who} added the platform {url} (client ID {clientId}).",
    "platform.updated": "{who} changed the platform's {fields}.",
    "platform.deleted": "{who} deleted the platform {url} (client ID {clientId}).",
    "platform.activated": "{who} activated the platform {url}: its launches are accepted.",
    "platform.deactivated": "{who} deactivated the platform {url}: its launches are refused.",
    "platform.awaiting_activation": "{name} ({lms}) is waiting for an owner to activate it.",
    "platform.scopes_refused": "The LMS's token endpoint refused {refused}, which its "
    "registration had granted.",
    "deployment.added": "{who} added deployment {deploymentId}.",
    "deployment.updated": "{who} {switched} deployment {deploymentId}.",
    "deployment.deleted": "{who} removed deployment {deploymentId}.",
    "deployment.discovered": "A launch brought a new deployment, {deploymentId}: {accepted}.",
    "api_key.created": "{who} created the API key ‘{name}’.",
    "api_key.revoked": "{who} revoked the API key ‘{name}’.",
    "invitation.created": "{who} created an invitation link for {name}.",
    "invitation.revoked": "{who} revoked the invitation link{for_name}.",
    "console.signed_in": "{email} signed in to the console.",
    "account.created": "{who} created the account {email}{as_owner}.",
    "account.password_changed": "{who} changed the password of {email}.",
}
FALLBACK = "{who}: {action}."


def who(actor: str | None) -> str:
    """Name who acted: an owner's e-mail address, an API key, or the part of Gatehouse."""
    if not actor:
        return "Gatehouse"
    if actor.startswith("console "):
        return actor.removeprefix("console ")
    key = api_key_name(actor)
    if key is not None:
        return f"API key ‘{key}’"
    return actor[:1].upper() + actor[1:]


def _fields(entry) -> dict[str, str]:
    """Return the values a sentence may name, from the entry and its detail."""
    detail = entry.detail if isinstance(entry.detail, dict) else {}
    values = {k: v for k, v in detail.items() if isinstance(v, str | int) and v != ""}
    values["who"] = who(entry.actor)
    values["action"] = entry.action
    if detail.get("familyCode"):
        values["lms"] = family_name(detail["familyCode"])
    else:
        values["lms"] = "an LMS"
    if isinstance(detail.get("fields"), list):
        values["fields"] = ", ".join(str(f).replace("_", " ") for f in detail["fields"])
    if isinstance(detail.get("refused"), list):
        values["refused"] = ", ".join(scope_name(str(s)) for s in detail["refused"])
    if isinstance(detail.get("active"), bool):
        values["switched"] = "activated" if detail["active"] else "deactivated"
        values["accepted"] = "accepted" if detail["active"] else "waiting for approval"
    values["for_name"] = f" for {detail['name']}" if detail.get("name") else ""
    values["as_owner"] = " as an owner" if detail.get("owner") else ""
    values.setdefault("name", "a platform")
    return values


def audit_sentence(entry) -> str:
    """Return an audit line as one sentence."""
    values = _fields(entry)
    variant = f"{entry.action} (recovered)" if "recovered" in values else entry.action
    template = SENTENCES.get(variant) or SENTENCES.get(entry.action, FALLBACK)
    wanted = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    if not wanted <= values.keys():
        template = FALLBACK
    return template.format_map(values)
