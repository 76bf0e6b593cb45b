"""Hot pages rendered once per language, with only their per-request values filled in each time.

The launch's login page (app/web/launch.py) is answered for every launch: the same page for every
student of a class but for a few values (the LMS URL to go on to, the binding's keys, the
footer's reference and time). Rendering it through Jinja for each launch took a fifth of a
launch's CPU (bench/, `make bench`), most of it looking up translations. A `Skeleton` renders the
template once per language (and per which values are present), with a marker where each value
goes, and fills the markers in with the values, HTML-escaped, as Jinja would have.

That is exact only where the template does nothing to a value but escape it. So the first render
of each skeleton also renders the page normally with probe values full of characters that any
other filter or conditional would change (`<&"' :/?#%`), and compares: a template that transforms
a value is rendered normally from then on, and the mismatch is logged once.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Mapping

from flask import current_app, render_template
from markupsafe import escape

from . import footer
from .i18n import page_locale

log = logging.getLogger(__name__)

# Values of the footer (templates/_footer.html) that change with each request.
FOOTER_SLOTS = ("reference", "time", "mail_subject")
PROBE = "<&\"' :/?#%"


def render_skeleton(template: str, slots: Mapping[str, str | None], **fixed) -> str:
    """Render `template` as `render_template` would, through this app's skeleton of it."""
    skeletons = current_app.extensions.setdefault("gatehouse.skeletons", {})
    skeleton = skeletons.get(template) or skeletons.setdefault(template, Skeleton(template))
    return skeleton.render(slots, **fixed)


class Skeleton:
    """One template's skeletons: `render` returns what `render_template` would, more cheaply."""

    def __init__(self, template: str):
        self.template = template
        self._marker = f"gatehouse-slot-{secrets.token_hex(6)}-"
        self._split = re.compile(re.escape(self._marker) + r"(\d+)-")
        # key -> the skeleton's parts (literal text and slot names alternating), or None when
        # the template transforms a value and is rendered in full.
        self._pages: dict[tuple, list[str] | None] = {}
        self._lock = threading.Lock()

    def render(self, slots: Mapping[str, str | None], **fixed) -> str:
        """Render the template with per-request `slots` (strings or None) and `fixed` context.

        `fixed` values are the same for many requests (they are part of the cache key: keep
        them few and hashable); `slots` differ with every request.
        """
        page_footer = footer.page_footer()
        values = dict(slots)
        if page_footer is not None:
            values.update({f"footer.{name}": page_footer[name] for name in FOOTER_SLOTS})
        key = (
            page_locale(),
            page_footer["reference_kind"] if page_footer else None,
            tuple(sorted(fixed.items())),
            # Which values are present, and the absent ones themselves: templates test them.
            tuple(sorted((name, True if value else value) for name, value in values.items())),
        )
        try:
            parts = self._pages[key]
        except KeyError:
            parts = self._build(key, values, page_footer, fixed)
        if parts is None:
            return self._full(values, page_footer, fixed)
        return "".join(
            part if index % 2 == 0 else str(escape(values[part]))
            for index, part in enumerate(parts)
        )

    def _build(self, key: tuple, values: dict, page_footer: dict | None, fixed: dict):
        names = sorted(name for name, value in values.items() if value)
        markers = {name: f"{self._marker}{i}-" for i, name in enumerate(names)}
        page = self._full({**values, **markers}, page_footer, fixed)
        pieces = self._split.split(page)
        parts = [piece if i % 2 == 0 else names[int(piece)] for i, piece in enumerate(pieces)]
        probes = {name: f"{PROBE}{name}" for name in names}
        expected = self._full({**values, **probes}, page_footer, fixed)
        filled = "".join(
            part if i % 2 == 0 else str(escape(probes[part])) for i, part in enumerate(parts)
        )
        if filled != expected or self._marker in "".join(parts[::2]):
            log.warning(
                "%s does more with a per-request value than escape it: rendered in full",
                self.template,
            )
            parts = None
        with self._lock:
            self._pages[key] = parts
        return parts

    def _full(self, values: dict, page_footer: dict | None, fixed: dict) -> str:
        context = {name: value for name, value in values.items() if "." not in name}
        if page_footer is not None:
            page_footer = {
                **page_footer,
                **{name: values[f"footer.{name}"] for name in FOOTER_SLOTS},
            }
        return render_template(self.template, page_footer=page_footer, **context, **fixed)
