"""Marks the English words people read, so the web layer can show them in their language.

The protocol core and the use cases import no Flask, so they cannot translate: they mark each
sentence with `N_` (found by `pybabel extract`, babel.cfg), which returns it as English, its
`%(name)s` values filled in. The web layer (app/web/i18n.py) looks the English up in the
reader's catalogue when it renders a page, values and all, so even words stored in the database
(an error, an adjustment) are translated when they are shown again.
"""

from __future__ import annotations


def N_(msgid: str, **values: object) -> str:  # noqa: N802 - gettext's name for a marker
    """Return `msgid` in English with its named values; mark it for the catalogues."""
    return msgid % values if values else msgid
