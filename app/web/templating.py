"""What every template may use: filters for money and LMS step text, the LMS families."""

from __future__ import annotations

import re

from flask import Flask
from flask_babel import get_locale, gettext
from markupsafe import Markup, escape

from ..domain.payments import format_amount
from ..lti import lms as lms_families
from ..lti.constants import scope_name
from ..lti.text import N_
from .error_words import words_for


def money(amount: int | None, currency: str | None) -> str:
    """Format a Stripe amount in minor units as the payment page does: 1500 usd -> $15.00,
    1500 jpy -> ¥1,500 (each currency's own number of decimals), in the page's language."""
    if amount is None or not currency:
        return gettext("amount pending")
    return format_amount(amount, currency, str(get_locale() or "en"))


# A payment's status (app/storage/states.py PaymentStatus) as the close page names it: the
# template looks each up with `tr`.
PAYMENT_STATUSES = (
    N_("open"),
    N_("cancelled"),
    N_("unavailable"),
    N_("expired"),
    N_("failed"),
    N_("paid"),
    N_("mismatch"),
)


MARKS = re.compile(r"\*\*(.+?)\*\*|`(.+?)`")


def marked(text: str) -> Markup:
    """Return LMS step text as HTML: **words on screen** in bold, `ids` as code, all escaped."""

    def tag(match: re.Match) -> str:
        bold, code = match.groups()
        return f"<strong>{bold}</strong>" if bold is not None else f"<code>{code}</code>"

    return Markup(MARKS.sub(tag, str(escape(text))))  # noqa: S704 - escaped before marking


def init_app(app: Flask) -> None:
    """Register the template filters and globals."""
    app.add_template_filter(money)
    app.add_template_filter(marked)
    app.add_template_global(lms_families.for_family, "lms_family")
    app.add_template_global(lms_families.FAMILIES, "lms_families")
    app.add_template_global(scope_name)
    app.add_template_global(words_for, "plain_error")
