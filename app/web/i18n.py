"""The pages' language: Flask-Babel, and which locale each request is shown in.

The choice, first that applies:
1. a launch page: the launch's `locale` (the `launch_presentation` claim, set by app/web/launch.py
   with `use_launch_locale`);
2. the owner's console: English (it is not translated; its pages must not mix languages);
3. a registration's gate pages: the locale the flow's first gate page was shown in, kept in the
   session with the registration's id, so every page of one registration speaks one language
   (and the next registration in the same browser chooses again);
4. the browser's `Accept-Language`;
5. `ui.default_locale`.
Tags are matched loosely (`es-ES`, `fr_CA` and `de-DE` find es, fr and de); an unknown one
falls through to the next rule.

Words marked with `N_` below the web layer arrive here as English; `translate` finds their
msgid (and the values filled into it) and returns them in the page's language.

Templates translate through `page_gettext` and `page_ngettext` (Jinja's "newstyle" gettext,
as Flask-Babel installs it), which take the page's translations from the template context,
where they are put once per render: Flask-Babel's own callables look them up again on every
word, through four context lookups each, about a third of rendering the close page (bench/).
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import Babel, get_locale, get_translations, gettext, refresh
from jinja2 import pass_context
from jinja2.runtime import Context, missing
from markupsafe import Markup
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from ..settings import TRANSLATIONS, available_locales

SESSION_KEY = "locale"
# The template variable holding the page's translations (a context processor sets it).
PAGE_TRANSLATIONS = "page_translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Where request_translations() keeps the request's translations.
TRANSLATIONS_KEY = "gatehouse.translations"
# The longest Accept-Language header browser_locale() keeps the answer for (browsers send a few
# tags: Chrome's longest defaults are under 100 characters).
CACHED_HEADER_LENGTH = 256


def match_locale(tag: str | None) -> str | None:
    """Return the available locale a language tag asks for (es-ES → es), or None."""
    if not tag or not isinstance(tag, str):
        return None
    parts = tag.strip().replace("_", "-").lower().split("-")
    available = available_locales()
    return parts[0] if parts[0] in available else None


def select_locale() -> str:
    """Return the locale of the current request (the module docstring's rules)."""
    if g.get("launch_locale"):
        return g.launch_locale
    if request.blueprint == "console" or request.path.startswith(("/console", "/api/", "/admin/")):
        return "en"
    kept = _kept_locale()
    if kept:
        return kept
    browser = browser_locale(request.headers.get("Accept-Language", ""))
    return browser or current_app.config["GATEHOUSE"].ui.default_locale


def browser_locale(accept_language: str) -> str | None:
    """Return the available locale an `Accept-Language` header prefers, or None.

    A class's browsers send a handful of distinct headers: each is parsed once, not on every
    page (parsing and matching it cost more than the rest of choosing the locale). A header
    longer than any browser sends is parsed each time, so it cannot fill the cache.
    """
    if not accept_language:
        return None
    if len(accept_language) > CACHED_HEADER_LENGTH:
        return _best_locale.__wrapped__(accept_language)
    return _best_locale(accept_language)


@lru_cache(maxsize=256)
def _best_locale(accept_language: str) -> str | None:
    return parse_accept_header(accept_language, LanguageAccept).best_match(available_locales())


def _kept_locale() -> str | None:
    """Return the locale kept for this registration's pages, if this page is one of them."""
    if not request.path.startswith("/lti/register/"):
        return None
    rid = (request.view_args or {}).get("rid")
    kept = session.get(SESSION_KEY) if rid else None
    if not isinstance(kept, dict) or kept.get("rid") != rid:
        return None
    return match_locale(kept.get("locale"))


def use_launch_locale(tag: str | None) -> None:
    """Show this request's pages in the launch's `locale`, when it names an available one."""
    chosen = match_locale(tag)
    if chosen:
        g.launch_locale = chosen
        refresh()
        request.environ.pop(TRANSLATIONS_KEY, None)


def page_locale() -> str:
    """Return the locale the current page is shown in (`<html lang>`)."""
    return str(get_locale() or "en")


def keep_flow_locale(rid: str) -> None:
    """Keep the current locale for the rest of registration `rid`'s pages (in the session)."""
    kept = session.get(SESSION_KEY)
    if not isinstance(kept, dict) or kept.get("rid") != rid:
        session[SESSION_KEY] = {"rid": rid, "locale": page_locale()}


@cache
def _pattern(msgid: str) -> re.Pattern | None:
    """Return a regex that reads the values back out of the English with `msgid`'s shape."""
    if "%(" not in msgid:
        return None
    seen: set[str] = set()
    out, last = [], 0
    for match in PLACEHOLDER.finditer(msgid):
        out.append(re.escape(msgid[last : match.start()]).replace("%%", "%"))
        name = match.group(1)
        out.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        last = match.end()
    out.append(re.escape(msgid[last:]))
    return re.compile("".join(out), re.S)


def request_translations():
    """Return Flask-Babel's translations for this request, looked up once per locale.

    A page asks for them at every word it translates, and Flask-Babel's get_locale() finds its
    context each time: they are kept with the request (its environ, which no other request
    shares, unlike `g` under an app context pushed by hand) until use_launch_locale() changes
    its locale.
    """
    if not has_request_context():
        return get_translations()
    environ = request.environ
    kept = environ.get(TRANSLATIONS_KEY)
    if kept is None:
        kept = environ[TRANSLATIONS_KEY] = get_translations()
    return kept


def _patterns() -> list[tuple[str, re.Pattern]]:
    catalogue = getattr(request_translations(), "_catalog", {})
    found = []
    for msgid in catalogue:
        if isinstance(msgid, str) and msgid:
            pattern = _pattern(msgid)
            if pattern is not None:
                found.append((msgid, pattern))
    return found


def translate(text: str | None) -> str | None:
    """Return English marked with `N_` in the page's language (unknown text as it is)."""
    if not text:
        return text
    text = str(text)
    translations = request_translations()
    catalogue = getattr(translations, "_catalog", None)
    if not catalogue:
        return text
    if text in catalogue:
        return translations.ugettext(text)
    for msgid, pattern in _patterns():
        match = pattern.fullmatch(text)
        if match:
            values = {k: translate(v) for k, v in match.groupdict().items()}
            return gettext(msgid, **values)
    return text


def _page_translations(context: Context):
    """Return the translations of the page being rendered (looked up once per render)."""
    found = context.resolve_or_missing(PAGE_TRANSLATIONS)
    # A macro imported without context sees only the globals: the request's, then.
    return request_translations() if found is missing else found


@pass_context
def page_gettext(context: Context, string: str, **variables) -> str:
    """Translate `string` and fill in `variables`, as Jinja's newstyle `gettext` does."""
    text = _page_translations(context).ugettext(string)
    if context.eval_ctx.autoescape:
        text = Markup(text)  # noqa: S704 - the catalogue's words, as Jinja's own gettext
    return text % variables


@pass_context
def page_ngettext(context: Context, singular: str, plural: str, num: int, **variables) -> str:
    """Translate the form for `num` and fill in `variables`, as Jinja's newstyle `ngettext`."""
    variables.setdefault("num", num)
    text = _page_translations(context).ungettext(singular, plural, num)
    if context.eval_ctx.autoescape:
        text = Markup(text)  # noqa: S704 - the catalogue's words, as Jinja's own gettext
    return text % variables


def init_app(app: Flask) -> None:
    """Set up Flask-Babel on app/translations, and `translate` as a template filter."""
    Babel(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(TRANSLATIONS),
    )
    # Over Flask-Babel's callables (same words, same newstyle behaviour), for `_()`,
    # `gettext()`, `ngettext()` and `{% trans %}` blocks.
    app.jinja_env.globals.update(_=page_gettext, gettext=page_gettext, ngettext=page_ngettext)
    app.context_processor(lambda: {PAGE_TRANSLATIONS: request_translations()})
    app.add_template_filter(translate, "tr")
    app.add_template_global(translate)
    # A {% trans %} block's line breaks and indentation are not part of its words (babel.cfg).
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    # base.html's <html lang>: the locale the page is shown in.
    app.add_template_global(page_locale)
