"""Languages: every page an LMS admin, teacher or student sees, in English, Spanish, French and
German (README, "Languages"); the language from the launch, the flow, the browser or the settings.

The catalogues are checked three ways: extraction from the sources finds nothing missing, empty
or fuzzy (and every placeholder survives); the templates hold no visible English outside a
translation call; and the pages, rendered in each language, keep none of the English words the
catalogues translate.
"""

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from jinja2 import Environment
from test_gates import Admin, csrf

from app.lti.launch import CLAIM_LAUNCH_PRESENTATION
from app.settings import ConfigError, load_settings
from app.simulator.launch import browser_session, run_launch
from app.testing import LoopbackServer
from app.web import i18n
from app.web.login import hash_password

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "app" / "translations"
LANGUAGES = ("es", "fr", "de")
# The templates of the pages LMS admins, teachers and students see (the console's stay English).
PAGE_TEMPLATES = sorted(
    [
        *(ROOT / "templates").glob("*.html"),
        *(ROOT / "templates" / "register").glob("*.html"),
        *(ROOT / "templates" / "gates").glob("*.html"),
        *(ROOT / "templates" / "launch").glob("*.html"),
    ]
)
TOOL = "Quiz Tool"


# --- the catalogues --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Extract the marked words from the sources as `make translations` does."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    makefile = (ROOT / "Makefile").read_text()
    keywords = re.findall(r"-k (\w+)", makefile)
    assert keywords, "the Makefile's translations target names its keywords"
    subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-c",
            "from babel.messages.frontend import main; main()",
            "extract",
            "-F",
            "babel.cfg",
            *[arg for k in keywords for arg in ("-k", k)],
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as f:
        return read_po(f)


BRACES = re.compile(r"\{(\w*)\}")


def catalogue(language):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def test_extraction_finds_the_pages_words(extracted):
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    # A few from each kind of source: a template, a form, a view, the protocol core's N_.
    for msgid in (
        "Registration complete",
        "Repeat the password",
        "The e-mail address or password is not right.",
        "Gatehouse could not reach your LMS",
        "Click **Activate** on its card; teachers can then add it to courses.",
    ):
        assert msgid in ids
    assert len(ids) > 250


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated(extracted, language):
    translated = catalogue(language)
    problems = []
    for message in extracted:
        if not message.id:
            continue
        ours = translated.get(message.id)
        name = message.id if isinstance(message.id, str) else message.id[0]
        if ours is None:
            problems.append(f"missing: {name!r}")
        elif ours.fuzzy:
            problems.append(f"fuzzy: {name!r}")
        elif not ours.string or (
            not isinstance(ours.string, str) and not all(form for form in ours.string)
        ):
            problems.append(f"empty: {name!r}")
    for message, errors in translated.check():
        problems.extend(f"{message.id!r}: {error}" for error in errors)
    # Babel checks %(name)s; the error words' {lms} (str.format, app/web/error_words.py) too.
    for message in translated:
        if message.id and isinstance(message.id, str) and message.string:
            # {lms_dat}: the same name after a preposition (app/web/error_words.py).
            fields = {"lms" if f == "lms_dat" else f for f in BRACES.findall(message.string)}
            if set(BRACES.findall(message.id)) != fields:
                problems.append(f"{message.id!r}: its {{placeholders}} differ in {language}")
    assert not problems, f"{language}: run `make translations` and translate:\n" + "\n".join(
        problems
    )


def plain(value):
    """Return a message id or string as a hashable value (plurals are lists in a .mo)."""
    return tuple(value) if isinstance(value, list | tuple) else value


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_matches_its_po_file(language):
    folder = TRANSLATIONS / language / "LC_MESSAGES"
    with (folder / "messages.mo").open("rb") as f:
        compiled = {plain(m.id): plain(m.string) for m in read_mo(f) if m.id}
    written = {plain(m.id): plain(m.string) for m in catalogue(language) if m.id and not m.fuzzy}
    assert compiled == written, f"{language}: the .mo is stale; run `make translations`"


# --- the templates ---------------------------------------------------------------------------

# Attributes a reader sees or hears.
SHOWN_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "data-retry-label"}
# Words that are names, not language: the product's, and LTI claim names beside their values.
NOT_LANGUAGE = {"Gatehouse", "sub", "id"}
# Blocks that base.html puts inside a tag: attributes, not text.
ATTRIBUTE_BLOCKS = re.compile(r"{%-?\s*block (body_attrs|referrer)\s*-?%}.*?{%-?\s*endblock", re.S)


class VisibleText(HTMLParser):
    """Collect the text and the shown attributes of HTML, leaving out scripts and styles, and
    whatever an element declares English on purpose (`lang="en"`: what is sent to the tool's
    provider, an LMS's own words)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}
    LEFT_OUT = {"script", "style"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts = []
        self.stack = []  # one "left out?" per open element

    def handle_starttag(self, tag, attrs):
        left_out = tag in self.LEFT_OUT or (tag != "html" and dict(attrs).get("lang") == "en")
        if not any(self.stack) and not left_out:
            self.texts.extend(v for k, v in attrs if k in SHOWN_ATTRIBUTES and v)
        if tag not in self.VOID:
            self.stack.append(left_out)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not any(self.stack):
            self.texts.append(data)


def literal_html(source):
    """Return a template's own HTML: Jinja constructs, comments and {% trans %} blocks blanked."""
    out, depth = [], 0
    source = ATTRIBUTE_BLOCKS.sub("{% endblock", source)
    for _line, kind, value in Environment(autoescape=True, extensions=["jinja2.ext.i18n"]).lex(
        source
    ):
        if kind == "name" and value in ("trans", "pluralize"):
            depth += value == "trans"
        elif kind == "name" and value == "endtrans":
            depth -= 1
        if kind == "data" and depth == 0:
            out.append(value)
        elif kind in ("block_begin", "variable_begin"):
            out.append("\x00")  # a construct stands where it was: a tag it splits stays a tag
    return "".join(out).replace("\x00", " ")


@pytest.mark.parametrize("template", PAGE_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_visible_words_outside_a_translation_call(template):
    parser = VisibleText()
    parser.feed(literal_html(template.read_text()))
    words = [
        word
        for text in parser.texts
        for word in re.findall(r"[^\W\d_]{2,}", text)
        if word not in NOT_LANGUAGE
    ]
    assert not words, f"{template.name}: wrap these in _() or {{% trans %}}: {words}"


def test_the_scan_finds_english_left_out_of_a_translation_call():
    parser = VisibleText()
    parser.feed(
        literal_html(
            '<p>{{ _("Fine") }} Not fine</p><button aria-label="Close it">x</button><br>'
            "{% trans %}Fine too{% endtrans %}<script>var ok = 1;</script>"
            '<textarea lang="en">Tool: {{ name }}</textarea><p>Left</p>'
        )
    )
    found = [w for t in parser.texts for w in re.findall(r"[^\W\d_]{2,}", t)]
    assert found == ["Not", "fine", "Close", "it", "Left"]


# --- the pages in each language ----------------------------------------------------------------


def catalogue_phrases():
    """Return the English phrases of the catalogue: each msgid's words between its values."""
    phrases = set()
    for message in catalogue("es"):
        for msgid in [message.id] if isinstance(message.id, str) else message.id:
            if not msgid:
                continue
            for piece in re.split(r"%\(\w+\)[sd]|\{\w+\}|<[^>]+>|\*\*|`|&nbsp;", msgid):
                piece = " ".join(piece.split()).strip(" .,:;()")
                if len(re.findall(r"[^\W\d_]{2,}", piece)) >= 2:
                    phrases.add(piece)
    return phrases


PHRASES = catalogue_phrases()


class PageText(VisibleText):
    """A rendered page's visible text, without code and verbatim LMS answers."""

    LEFT_OUT = {"script", "style", "code", "pre"}


def page_text(html):
    parser = PageText()
    parser.feed(html)
    return " ".join(" ".join(parser.texts).split())


def assert_translated(pages):
    """Check each language's render of a page against the English one."""
    english = page_text(pages["en"])
    shown = {p for p in PHRASES if p in english}
    assert len(shown) >= 3, f"the English page shows too few catalogue phrases: {english!r}"
    assert 'lang="en"' in pages["en"]
    for language in LANGUAGES:
        assert f'<html lang="{language}">' in pages[language]
        text = page_text(pages[language])
        left = sorted(p for p in shown if p in text)
        assert not left, f"{language}: English left on the page: {left}"


@pytest.fixture
def quiz(make_app):
    def factory(**settings):
        return make_app(merge_settings({"tool": {"name": TOOL}}, settings))

    return factory


def merge_settings(base, extra):
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge_settings(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def test_the_home_page_in_each_language(quiz):
    client = quiz().test_client()
    pages = {
        lang: client.get("/", headers={"Accept-Language": lang}).get_data(as_text=True)
        for lang in ("en", *LANGUAGES)
    }
    assert_translated(pages)
    # Moodle's own menu names, as its language packs spell them (lang/*/lti.php, mod/lti).
    assert "Administrar herramientas" in pages["es"]
    assert "Gérer les outils" in pages["fr"]
    assert "Tools verwalten" in pages["de"]


@pytest.mark.parametrize(
    "header, chosen",
    [
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("es-ES;q=0.5, de;q=0.6", "de"),
        ("pt-BR, de;q=0.1", "de"),
        ("pt-BR", None),
        ("*", "en"),
        ("", None),
        ("de;q=nonsense, fr;q=0.2", "fr"),
    ],
)
def test_the_browsers_language_is_its_preferred_available_one(header, chosen):
    assert i18n.browser_locale(header) == chosen
    assert i18n.browser_locale(header) == chosen  # and again, from the cache


def test_a_header_longer_than_a_browsers_is_read_but_not_kept():
    before = i18n._best_locale.cache_info().currsize
    header = ", ".join(f"x{i}-y;q=0.{i % 9 + 1}" for i in range(60)) + ", es;q=0.05"
    assert len(header) > i18n.CACHED_HEADER_LENGTH
    assert i18n.browser_locale(header) == "es"
    assert i18n._best_locale.cache_info().currsize == before


def test_a_registration_error_in_each_language(quiz):
    client = quiz().test_client()
    pages = {}
    for lang in ("en", *LANGUAGES):
        response = client.get(
            "/lti/register?openid_configuration=http://127.0.0.1:9/config",
            headers={"Accept-Language": lang},
        )
        assert response.status_code == 502
        pages[lang] = response.get_data(as_text=True)
    assert_translated(pages)
    assert "Gatehouse konnte Ihr LMS nicht erreichen" in pages["de"]
    # An LMS Gatehouse cannot name is "Ihr LMS", and "Ihrem LMS" after a preposition.
    assert "erneut in Ihrem LMS" in pages["de"] and " in Ihr LMS" not in pages["de"]


def test_a_missing_page_in_each_language(quiz):
    client = quiz().test_client()
    pages = {}
    for lang in ("en", *LANGUAGES):
        response = client.get("/no/such/page", headers={"Accept-Language": lang})
        assert response.status_code == 404
        pages[lang] = response.get_data(as_text=True)
    assert_translated(pages)
    assert "Diese Seite gibt es nicht" in pages["de"]


@pytest.fixture
def gated_quiz(quiz, tmp_path):
    terms = tmp_path / "terms.md"
    terms.write_text("# Terms\n\nBe nice.\n")

    def factory():
        app = quiz(
            registration={"gates": ["signin", "terms"]},
            gates={"terms": {"version": "1", "path": str(terms), "title": "Our terms"}},
        )
        store = app.extensions["gatehouse.store"]
        if store.find_account_by_email("admin@school.example") is None:
            store.create_account(
                "admin@school.example", "Ada Admin", hash_password("correct horse battery")
            )
        return app

    return factory


class SpeakingAdmin(Admin):
    """An LMS admin whose browser asks for `language` (Accept-Language) on every page."""

    def __init__(self, app, sim, language):
        super().__init__(app, sim)
        self.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language


def gate_flow(app, sim, language):
    """Return the sign-in page, the terms page and the close page of one registration."""
    admin = SpeakingAdmin(app, sim, language)
    signin = admin.start().get_data(as_text=True)
    terms = admin.sign_in().get_data(as_text=True)
    page = admin.get(f"/lti/register/{admin.rid}/terms")
    close = admin.post(
        f"/lti/register/{admin.rid}/terms",
        {"signer_name": "Ada Admin", "accept": "y", **csrf(page)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert 'data-lti-close="' in close, close
    return signin, terms, close


def test_the_gates_and_the_close_page_in_each_language(gated_quiz, simulator):
    flows = {
        lang: gate_flow(gated_quiz(), simulator("moodle"), lang) for lang in ("en", *LANGUAGES)
    }
    for index in range(3):
        assert_translated({lang: pages[index] for lang, pages in flows.items()})
    signin, terms, close = flows["fr"]
    # French typography: a no-break space before the colon.
    assert "Étape 1 sur 2\u00a0: Se connecter" in signin
    assert "Étape 2 sur 2\u00a0: Conditions" in terms
    # The LMS's next steps in its own French words; the values survive the translation.
    assert "<strong>En attente</strong>" in close and "Gérer les outils" in close
    assert "Enregistrement terminé" in close


def test_a_gate_flow_keeps_the_language_it_started_in(gated_quiz, simulator):
    admin = SpeakingAdmin(gated_quiz(), simulator("moodle"), "es-ES,es;q=0.9")
    assert '<html lang="es">' in admin.start().get_data(as_text=True)
    admin.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
    terms = admin.sign_in().get_data(as_text=True)
    assert '<html lang="es">' in terms and "Paso 2 de 2: Condiciones" in terms
    # The next registration in the same browser chooses its language again.
    second = SpeakingAdmin(admin.app, admin.sim, "de")
    second.client = admin.client
    assert '<html lang="de">' in second.start().get_data(as_text=True)


def test_a_wrong_password_is_told_in_the_admins_language(gated_quiz, simulator):
    admin = SpeakingAdmin(gated_quiz(), simulator("moodle"), "de")
    admin.start()
    page = admin.sign_in(password="wrong password here").get_data(as_text=True)
    assert "Die E-Mail-Adresse oder das Passwort ist nicht richtig." in page
    empty = admin.post(
        f"/lti/register/{admin.rid}/signin",
        {**csrf(admin.get(f"/lti/register/{admin.rid}/signin"))},
    )
    # WTForms' own messages come from its German catalogue.
    assert "Dieses Feld wird benötigt." in empty.get_data(as_text=True)


# --- launches ------------------------------------------------------------------------------------


@pytest.fixture
def live(quiz):
    servers = []

    def start(**settings):
        app = quiz(registration={"auto_activate": True}, **settings)
        server = LoopbackServer(app, "localhost").__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def launch(sim, client_id, locale=None, accept_language=None, **options):
    claims = {CLAIM_LAUNCH_PRESENTATION: {"locale": locale}} if locale else {}
    session = browser_session()
    if accept_language:
        session.headers["Accept-Language"] = accept_language
    pending = sim.prepare_launch(client_id, claims=claims, **options)
    return run_launch(pending.login_url, session=session)


def test_the_launch_page_in_each_language(live, simulator):
    server = live()
    sim = simulator("canvas")
    report = sim.register(server.url + "/lti/register")
    assert report.ok, report.render()
    pages = {}
    for lang in ("en", *LANGUAGES):
        result = launch(sim, report.client_id, locale=lang)
        assert result.status == 200, result.text
        pages[lang] = result.text
    assert_translated(pages)
    assert "Registro verificado" in pages["es"] and "Enregistrement vérifié" in pages["fr"]


def test_the_launch_locale_wins_over_the_browser(live, simulator):
    server = live()
    sim = simulator("moodle")
    report = sim.register(server.url + "/lti/register")
    page = launch(sim, report.client_id, locale="fr-CA", accept_language="de-DE,de;q=0.9").text
    assert '<html lang="fr">' in page and "Enregistrement vérifié" in page
    # An unknown locale falls back to the browser's language.
    page = launch(sim, report.client_id, locale="tlh", accept_language="de").text
    assert '<html lang="de">' in page and "Registrierung geprüft" in page
    # A refused launch speaks the launch's language too (its locale read before verifying).
    refused = launch(sim, report.client_id, locale="es", deployment_id="not-registered").text
    assert '<html lang="es">' in refused


def test_the_browser_wins_over_the_default_and_the_default_is_used_otherwise(quiz):
    client = quiz(ui={"default_locale": "fr"}).test_client()
    assert '<html lang="es">' in client.get("/", headers={"Accept-Language": "es-MX"}).text
    assert '<html lang="fr">' in client.get("/").text
    # A language Gatehouse does not speak falls back to the default.
    page = client.get("/", headers={"Accept-Language": "it, pt;q=0.8"}).text
    assert '<html lang="fr">' in page and "Enregistrer Quiz Tool dans votre LMS" in page


def test_the_console_stays_english(quiz):
    client = quiz().test_client()
    page = client.get("/console/login", headers={"Accept-Language": "de"}).text
    assert '<html lang="en">' in page


def test_an_unknown_default_locale_is_refused_at_start_up():
    tool = {"name": TOOL}
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={}, overrides={"tool": tool, "ui": {"default_locale": "it"}})
    assert "ui.default_locale: 'it' is not a language" in str(refused.value)
    assert "en, de, es, fr" in str(refused.value)
    settings = load_settings(environ={}, overrides={"tool": tool, "ui": {"default_locale": "de"}})
    assert settings.ui.default_locale == "de"


# --- how templates translate -------------------------------------------------------------------

WORDS_TEMPLATE = (
    '{% from "_macros.html" import copyable %}'
    "<p id=done>{{ _('Registration complete') }}</p>"
    "<p id=filled>{{ _('Copy %(what)s', what=value) }}</p>"
    "<p id=block>{% trans what=value %}Copy {{ what }}{% endtrans %}</p>"
    "<p id=plural>{{ ngettext('per day', 'every %(num)d days', 3) }}</p>"
    "<p id=one>{{ ngettext('per day', 'every %(num)d days', 1) }}</p>"
    "<p id=macro>{{ copyable('abc', 'x', value) }}</p>"
    "<p id=markup>{% trans what=value %}<em>Not</em> in the catalogue: {{ what }}{% endtrans %}</p>"
)


def rendered_words(html):
    """Return the text of each <p id=...> of WORDS_TEMPLATE's page."""
    return dict(re.findall(r"<p id=(\w+)>(.*?)</p>", html))


@pytest.mark.parametrize(
    ("language", "done", "copy", "plural", "one"),
    [
        ("en", "Registration complete", "Copy", "every 3 days", "per day"),
        ("fr", "Enregistrement terminé", "Copier", "tous les 3 jours", "par jour"),
    ],
)
def test_templates_translate_each_word_and_escape_what_they_fill_in(
    quiz, language, done, copy, plural, one
):
    app = quiz()
    with app.test_request_context("/", headers={"Accept-Language": language}):
        from flask import render_template_string

        words = rendered_words(render_template_string(WORDS_TEMPLATE, value="<b>x</b>"))
    assert words["done"] == done
    assert words["filled"] == f"{copy} &lt;b&gt;x&lt;/b&gt;"
    assert words["block"] == f"{copy} &lt;b&gt;x&lt;/b&gt;"
    assert words["plural"] == plural
    assert words["one"] == one
    # The words' own markup stays markup; only what is filled in is escaped.
    assert words["markup"] == "<em>Not</em> in the catalogue: &lt;b&gt;x&lt;/b&gt;"
    # A macro imported without the page's context still speaks the page's language.
    assert f'aria-label="{copy} &lt;b&gt;x&lt;/b&gt;"' in words["macro"]


def test_a_page_rendered_after_the_locale_changes_speaks_the_new_language(quiz):
    from flask import render_template_string

    from app.web.i18n import translate, use_launch_locale

    app = quiz()
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        page = "{{ _('Registration complete') }} {{ 'Registration complete' | tr }}"
        assert render_template_string(page) == "Registration complete Registration complete"
        assert translate("Copied") == "Copied"
        use_launch_locale("de")  # as a launch does, once it has read its locale
        assert translate("Copied") == "Kopiert"
        german = render_template_string(page)
    assert german == "Registrierung abgeschlossen Registrierung abgeschlossen"


def test_template_globals_read_as_jinja_chains_them(quiz):
    """A template's own globals win over the app's; the app's are read live, missing ones fail."""
    from flask import render_template_string

    from app.web.templating import TemplateGlobals

    app = quiz()
    template = app.jinja_env.from_string(
        "{{ tool_word }} {{ shade }}", globals={"shade": "its own"}
    )
    assert isinstance(template.globals, TemplateGlobals)
    app.jinja_env.globals.update(shade="the app's", tool_word="added later")
    with app.test_request_context("/"):
        assert template.render() == "added later its own"
        # An import compares a template's globals with the page's: the macro still sees them.
        page = '{% from "_macros.html" import copy_script %}{{ copy_script() }}'
        assert "/static/copy.js" in render_template_string(page)
    assert "shade" in template.globals and "url_for" in template.globals
    assert "nowhere" not in template.globals
    with pytest.raises(KeyError):
        template.globals["nowhere"]
