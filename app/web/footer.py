"""The footer of the LMS-facing pages: who to ask, a reference the owner can look up, the time.

Registration, gate and launch pages (everything under /lti/) end with templates/_footer.html.
Its reference is the registration attempt's, once the page belongs to one (`g.registration_id`,
set where the attempt is loaded), else the request id the logs carry on every line
(app/web/logs.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from flask import Flask, current_app, g, request

# The first characters of a registration id (secrets.token_urlsafe(24), app/storage/sql.py):
# enough to tell attempts apart in the console, too few to open the attempt's gate pages, whose
# URLs hold the whole id.
REFERENCE_LENGTH = 8
FLOW_PREFIX = "/lti/"


def reference_of(registration_id: str) -> str:
    """Return the short reference shown for a registration attempt."""
    return registration_id[:REFERENCE_LENGTH]


def for_registration(registration_id: str | None) -> None:
    """Make this page's footer refer to the registration attempt `registration_id`."""
    if registration_id:
        g.registration_id = registration_id


def page_footer() -> dict | None:
    """Return the footer's reference, time and e-mail subject, or None on pages without it."""
    if not request.path.startswith(FLOW_PREFIX):
        return None
    registration_id = g.get("registration_id")
    if registration_id:
        reference, kind = reference_of(registration_id), "registration"
    else:
        reference, kind = g.get("request_id", "-"), "request"
    # The e-mail's subject is read by the tool's provider, who reads the console's English.
    subject = f"Question about {current_app.config['GATEHOUSE'].tool.name} (reference {reference})"
    return {
        "reference": reference,
        "reference_kind": kind,
        "time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "mail_subject": quote(subject, safe=""),
    }


def init_app(app: Flask) -> None:
    """Give every template `page_footer`, computed when the page is rendered."""
    app.context_processor(lambda: {"page_footer": page_footer()})
