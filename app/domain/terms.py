"""The terms of service shown by the terms gate: Markdown or HTML, sanitised once at start-up."""

from __future__ import annotations

import markdown
import nh3

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}


def render_terms(path: str) -> str:
    """Return the terms file as safe HTML (no scripts, styles, forms or event handlers)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if path.lower().endswith((".html", ".htm")):
        html = text
    else:
        html = markdown.markdown(text, extensions=["tables", "sane_lists"])
    return nh3.clean(html, tags=ALLOWED_TAGS, link_rel="noopener noreferrer nofollow")
