"""Errors in plain words first: every rule has its plain line and "What to do", the rest is folded.

The catalogue (app/web/error_words.py) is checked against every rule the code can raise, read
from the source with `ast`; the pages are checked end to end: Gatehouse served for real on
localhost, simulated LMSes on 127.0.0.1 broken one way each.
"""

import ast
import html
import re
import string
from pathlib import Path

import pytest
import requests

import app.domain.policy
import app.domain.registration
import app.lti.registration
import app.web.gates.views  # noqa: F401 - defines UnknownRegistration
from app.lti.errors import SPEC_SECTIONS, LaunchError, RegistrationError
from app.simulator.server import PROFILE_CLASSES
from app.testing import LoopbackServer
from app.web.error_words import WORDS, words_for

APP = Path(__file__).resolve().parent.parent / "app"
TEMPLATES = APP.parent / "templates"
# Where launches are refused: whoever reads these errors is a teacher or a student.
LAUNCH_MODULES = {"lti/launch.py", "domain/launch.py", "web/launch.py"}

# Words of the specification or of code, which an LMS administrator or a learner does not know.
JARGON = re.compile(
    r"_|§|\bclaims?\b|\bJWKS?\b|\bJWT\b|\bid.token\b|\btokens?\b|\bOpenID\b|\bissuer\b|"
    r"\bclient.?id\b|\bnonce\b|\bHTTP\b|\bJSON\b|\bRS256\b|\bkid\b|\bendpoint\b|\bLTI\b|"
    r"\bscopes?\b|\bOIDC\b",
    re.I,
)
# Words about setting the tool up, which a teacher or student cannot act on.
CONFIGURATION = re.compile(
    r"\bregist\w*|\bdeployment\b|\bconfigur\w*|\bkeys?\b|\bURL\b|\bactivate\b|\bconsole\b|"
    r"\bAPI\b|\bowner\b|\bsettings?\b",
    re.I,
)


def _enclosing_functions(tree):
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


def _function_of(node, parents):
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef):
            return node
    return None


def raised_rules():
    """Return {rule: module paths} for every rule the code under app/ can raise or store."""
    found: dict[str, set[str]] = {}
    unresolved = []
    for path in sorted(APP.rglob("*.py")):
        where = str(path.relative_to(APP))
        tree = ast.parse(path.read_text())
        parents = _enclosing_functions(tree)
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}

        def add(rule, where=where):
            found.setdefault(rule, set()).add(where)

        for node in ast.walk(tree):
            values = []
            if isinstance(node, ast.Call):
                values = [k.value for k in node.keywords if k.arg == "rule"]
            elif isinstance(node, ast.Dict):
                values = [
                    v
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant) and k.value == "rule"
                ]
            for value in values:
                if isinstance(value, ast.Constant):
                    if value.value is not None:
                        add(value.value)
                elif isinstance(value, ast.Name) and value.id in constants:
                    add(constants[value.id])
                elif isinstance(value, ast.Attribute) and value.attr == "rule":
                    continue  # handing on another error's rule (error.rule)
                elif isinstance(value, ast.Name) and value.id == "rule":
                    function = _function_of(node, parents)
                    params = [a.arg for a in function.args.args]
                    if function.name == "__init__":
                        continue  # a constructor's own rule= parameter: its callers are read
                    index = params.index("rule")
                    callers = [
                        call
                        for call in ast.walk(tree)
                        if isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Name)
                        and call.func.id == function.name
                        and function.name in functions
                    ]
                    assert callers, f"{where}: nobody calls {function.name}"
                    for call in callers:
                        given = call.args[index] if len(call.args) > index else None
                        given = given or next(
                            (k.value for k in call.keywords if k.arg == "rule"), None
                        )
                        assert isinstance(given, ast.Constant), ast.unparse(call)
                        add(given.value)
                else:
                    unresolved.append(f"{where}:{node.lineno} rule={ast.unparse(value)}")
    assert not unresolved, f"rules this test cannot read: {unresolved}"
    # Rules named in templates: the cookie page of the launch (templates/launch/login.html).
    for template in TEMPLATES.rglob("*.html"):
        for rule in re.findall(r'data-rule="([a-z0-9-]+)"', template.read_text()):
            found.setdefault(rule, set()).add("web/launch.py")
    return found


RULES = raised_rules()


def error_kinds(cls=RegistrationError):
    """Return every error class a page can show: RegistrationError and all its subclasses."""
    kinds = {cls}
    for subclass in cls.__subclasses__():
        kinds |= error_kinds(subclass)
    return kinds


def test_the_scan_finds_the_rules_raised_in_every_way():
    # A plain rule= string, a constant (BINDING_RULE), a helper's parameter (_require_listed),
    # a stored dict (recovery) and a template's data-rule: the scan cannot pass by finding none.
    for rule in ("issuer-host-match", "launch-not-bound", "rs256", "private-key-jwt"):
        assert rule in RULES
    assert "worker-stopped" in RULES and "launch-cookies-blocked" in RULES
    assert RULES["id-token-aud"] == {"lti/launch.py"}
    assert len(RULES) > 70


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_has_a_plain_line_and_what_to_do(rule):
    assert rule in WORDS, f"{rule} (raised in {sorted(RULES[rule])}) has no plain words"
    first_line, what_to_do = WORDS[rule]
    assert first_line.strip() and what_to_do.strip()
    assert first_line.endswith(".") and what_to_do.endswith(".")
    assert not JARGON.search(first_line), first_line
    if RULES[rule] & LAUNCH_MODULES:
        for words in (first_line, what_to_do):
            assert not CONFIGURATION.search(words), words


@pytest.mark.parametrize("kind", sorted(k.__name__ for k in error_kinds()))
def test_every_error_kind_has_words_for_errors_without_a_rule(kind):
    first_line, what_to_do = WORDS[kind]
    assert first_line.strip() and what_to_do.strip()
    assert not JARGON.search(first_line), first_line


def test_launch_kinds_say_nothing_about_configuration():
    for kind in error_kinds(LaunchError):
        for words in WORDS[kind.__name__]:
            assert not CONFIGURATION.search(words), words


@pytest.mark.parametrize("key", sorted(WORDS))
def test_the_words_are_plain_literals_with_only_the_lms_placeholder(key):
    # No stale entry: each is a rule, an error kind, or a rule's variant ("rule:token").
    assert key.split(":")[0] in set(RULES) | {k.__name__ for k in error_kinds()}, key
    assert not JARGON.search(WORDS[key][0]), WORDS[key][0]
    for words in WORDS[key]:
        fields = {name for _, name, _, _ in string.Formatter().parse(words) if name is not None}
        assert fields <= {"lms"}, words
        assert words.format(lms="Moodle")


def test_an_outcome_unknown_says_what_it_means_rather_than_what_broke():
    # A timeout after sending: the LMS may hold a registration, so the timeout is not the news.
    unknown = words_for({"kind": "OutcomeUnknown", "rule": "deadline", "lms_status": None})
    assert unknown.first_line == WORDS["OutcomeUnknown"][0]
    refused = words_for({"kind": "PlatformRefused", "rule": "platform-response", "lms_status": 503})
    assert refused.first_line == WORDS["platform-response:server"][0]
    moodle = words_for({"kind": "PlatformUnreachable", "rule": "dns"}, "moodle")
    assert "Moodle" in moodle.what_to_do and "{lms}" not in moodle.what_to_do
    assert moodle.where.startswith("**Site administration")


def test_every_spec_section_belongs_to_a_rule_the_code_raises():
    assert set(SPEC_SECTIONS) <= set(RULES)
    for _name, link in SPEC_SECTIONS.values():
        assert link.startswith("https://www.imsglobal.org/spec/"), link


# --- the pages, end to end ------------------------------------------------------------------


def text_of(markup):
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def first_lines(markup):
    """Return what is read before "Technical details" is opened: the page without <details>."""
    main = "<h1" + markup.split("<h1", 1)[1].split("</main>", 1)[0]  # from the heading on
    return text_of(re.sub(r"<details[^>]*>.*?</details>", "", main, flags=re.S))


def folded(markup):
    """Return the "Technical details" block: (its summary, its text, its raw HTML)."""
    match = re.search(
        r"<details([^>]*data-technical-details[^>]*)>\s*<summary>(.*?)</summary>(.*?)</details>",
        markup,
        re.S,
    )
    assert match is not None, "no Technical details block"
    assert " open" not in match.group(1)  # folded until the reader opens it
    return text_of(match.group(2)), text_of(match.group(3)), match.group(3)


def test_a_foreign_configuration_is_explained_plainly_with_the_rule_and_section_folded(
    live, simulator, store
):
    sim = simulator("generic", faults={"issuer_mismatch"})
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert response.status_code == 502
    assert 'data-lti-error="issuer-host-match"' in response.text
    visible = first_lines(response.text)
    plain, what_to_do = WORDS["issuer-host-match"]
    assert plain in visible
    assert "What to do: " + what_to_do.format(lms="your LMS") in visible
    assert "Nothing was registered." in visible
    assert not JARGON.search(visible.replace("Technical details", "")), visible
    summary, details, raw = folded(response.text)
    assert summary == "Technical details"
    assert "is not on the same host as the configuration URL" in details  # the protocol's words
    assert "Rule: issuer-host-match" in details
    assert "LTI Dynamic Registration §3.5.1" in details
    assert (
        'href="https://www.imsglobal.org/spec/lti-dr/v1p0#issuer-and-openid-configuration-url-match"'
        in raw
    )
    # The owner's record keeps the technical sentence, as before.
    (attempt,) = store.list_registrations()[0]
    assert "not on the same host" in attempt.error["detail"]


def test_an_lms_refusal_names_the_lms_says_where_to_start_again_and_folds_its_answer(
    live, simulator
):
    sim = simulator("moodle", faults={"refuse_registration"})
    response = requests.get(sim.initiation_url(live.register_url), timeout=30)
    assert response.status_code == 502
    visible = first_lines(response.text)
    # Moodle answers 403: the plain words for a refused registration permission.
    assert WORDS["platform-response:token"][0] in visible
    assert "What to do: Start the registration again from Moodle, and finish it within" in visible
    assert "Where to start a registration in Moodle: Site administration → Plugins" in visible
    assert "nothing was registered" in visible
    assert "HTTP" not in visible and "Incorrect scope" not in visible
    _, details, raw = folded(response.text)
    assert "What your LMS answered" in details and "HTTP status 403" in details
    assert "Incorrect scope" in details  # Moodle's own body, verbatim
    assert "Rule: platform-response" in details
    assert "#client-registration-response" in raw


def test_an_unreachable_lms_keeps_try_again_with_plain_words(make_app, simulator):
    app = make_app()
    sim = simulator("generic", faults={"config_status_500"})
    with LoopbackServer(app, "localhost") as server:
        response = requests.get(sim.initiation_url(server.url + "/lti/register"), timeout=30)
    assert response.status_code == 502
    visible = first_lines(response.text)
    assert WORDS["platform-response:server"][0] in visible
    assert "data-retry" in response.text  # the token was not spent: trying again is offered
    assert "Nothing was registered." in visible
    _, details, _ = folded(response.text)
    assert "HTTP status 500" in details


def test_a_failed_registration_shown_again_keeps_its_plain_words(live, simulator):
    sim = simulator("moodle", faults={"refuse_registration"})
    url = sim.initiation_url(live.register_url)
    first = requests.get(url, timeout=30)
    again = requests.get(url, timeout=30)  # a refresh: the stored failure, shown again
    assert again.status_code == 409
    assert first_lines(again.text) == first_lines(first.text)
    assert "Where to start a registration in Moodle" in first_lines(again.text)


def test_a_learner_sees_no_configuration_words_before_the_technical_details(make_app, simulator):
    app = make_app({"registration": {"auto_activate": True}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("generic")
        report = sim.register(server.url + "/lti/register")
        result = sim.launch(report.client_id, claims={"aud": "someone-else"})
    assert result.status == 401 and result.error_rule == "id-token-aud"
    visible = first_lines(result.text)
    assert visible.startswith("The tool could not be opened " + WORDS["id-token-aud"][0])
    assert "What to do: Tell your teacher or your LMS's administrator" in visible
    assert not CONFIGURATION.search(visible.replace("Technical details", "")), visible
    assert not JARGON.search(visible), visible
    _, details, _ = folded(result.text)
    assert "The id_token is addressed to 'someone-else'" in details
    assert "Rule: id-token-aud" in details
    assert "Security Framework" in details


@pytest.mark.parametrize("profile", sorted(PROFILE_CLASSES))
def test_the_close_page_has_no_developer_words_before_its_collapsed_lines(live, simulator, profile):
    response = requests.get(simulator(profile).initiation_url(live.register_url), timeout=30)
    assert response.status_code == 200
    visible = first_lines(response.text)
    developer_words = re.compile(r"\b\w+_\w+\b|§|\bclaim\b|\bJWKS?\b|\bid_token\b|\bLti[A-Z]\w+")
    assert not developer_words.search(visible), developer_words.search(visible)


def test_the_login_page_says_plainly_what_to_do_when_the_browser_blocks_cookies(
    make_app, simulator
):
    app = make_app({"registration": {"auto_activate": True}})
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("generic")
        report = sim.register(server.url + "/lti/register")
        login = requests.get(sim.prepare_launch(report.client_id).login_url, timeout=5)
    assert login.status_code == 200
    # static/launch.js shows this block when the cookie did not stick in a window of its own.
    block = re.search(r'<div id="login-blocked" hidden[^>]*>(.*?)\n</div>', login.text, re.S)
    assert block is not None
    visible = first_lines(block.group(1))
    plain, what_to_do = WORDS["launch-cookies-blocked"]
    assert visible == f"The tool could not be opened {plain} What to do: {what_to_do}"
    _, details, _ = folded(block.group(1))
    assert "short-lived cookie" in details and "Rule: launch-cookies-blocked" in details


@pytest.mark.parametrize("code", [400, 403, 404, 405, 413, 429, 418, 500])
def test_every_http_error_page_says_what_to_do(app, code):
    from werkzeug.exceptions import default_exceptions

    from app.web.errors import _http_error

    with app.test_request_context("/somewhere"):
        page, status, _headers = _http_error(default_exceptions[code]())
    assert status == code
    assert re.search(r"<strong>What to do:</strong> \w", page)
