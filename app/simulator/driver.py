"""The browser driver: open a registration URL as an LMS admin's browser would, then judge."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urljoin, urlsplit

import requests

from app.simulator.checks import CLOSE_MARKER_RE, CLOSE_MESSAGE_RE, origin, visible_text
from app.simulator.records import RegistrationRecord

ERROR_RULE_RE = re.compile(r'data-lti-error="([^"]+)"')

if TYPE_CHECKING:
    from app.simulator.server import Event, Simulator

MAX_REDIRECTS = 10
# What a report shows instead of a registration token: the token is a credential, and reports
# are pasted into issues and CI logs.
HIDDEN_TOKEN = "[token]"  # noqa: S105 - what stands in for one, not one
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) GatehouseLMSSimulator/1.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en",
}


@dataclass
class SimulationReport:
    """What happened when the simulated LMS registered a tool, and whether it worked."""

    ok: bool
    profile: str
    issuer: str
    client_id: str | None = None
    deployment_id: str | None = None
    granted_scopes: list[str] = field(default_factory=list)
    final_url: str | None = None
    final_status: int | None = None
    problems: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    # Seconds from the browser's first request to the tool until the final page had arrived.
    browser_seconds: float | None = None
    # The registration tokens the LMS issued for this run, which render() never shows.
    registration_tokens: list[str] = field(default_factory=list, repr=False)

    def render(self) -> str:
        """Return the report as text for a terminal, ending in PASS or FAIL, tokens hidden."""
        return hide_tokens(self._text(), self.registration_tokens)

    def _text(self) -> str:
        lines = [f"LMS simulator: {self.profile} (issuer {self.issuer})", "", "Steps:"]
        lines += [f"  {n}. {step}" for n, step in enumerate(self.steps, 1)] or ["  (none)"]
        lines += ["", "Result:"]
        lines.append(f"  client_id:      {self.client_id or '-'}")
        lines.append(f"  deployment_id:  {self.deployment_id or '-'}")
        if self.granted_scopes:
            lines.append(f"  granted scopes: {self.granted_scopes[0]}")
            lines += [f"                  {scope}" for scope in self.granted_scopes[1:]]
        else:
            lines.append("  granted scopes: -")
        final = "-"
        if self.final_url:
            final = f"{self.final_status} {display_url(self.final_url, self.registration_tokens)}"
        lines.append(f"  final page:     {final}")
        if self.problems:
            lines += ["", "Problems:"]
            lines += [f"  - {problem}" for problem in self.problems]
        lines += ["", "PASS" if self.ok else "FAIL"]
        return "\n".join(lines)


def drive(
    sim: Simulator,
    tool_url: str,
    update_client_id: str | None = None,
    timeout: float = 30.0,
    *,
    inline_close: bool = False,
) -> SimulationReport:
    """Open tool_url through the simulated LMS like an admin's browser and judge the outcome.

    With inline_close, a final page whose inline script posts `org.imsglobal.lti.close` also
    counts as closing the dialog (other tools, such as the benchmark's floor and ltijs, close
    that way); by default only Gatehouse's `data-lti-close="auto"` marker does.
    """
    profile = sim.profile
    report = SimulationReport(ok=False, profile=sim.profile_name, issuer=sim.issuer)
    action = f"update of client_id {update_client_id}" if update_client_id else "new registration"
    report.steps.append(f"Admin enters the tool's registration URL {tool_url} ({action})")
    report.steps += profile.notes()
    if sim.faults:
        report.steps.append(f"Faults active in this LMS: {', '.join(sorted(sim.faults))}")
    first_event = sim.event_count
    url, grant = sim.initiate(tool_url, update_client_id)
    report.registration_tokens.append(grant.token)
    tokens = report.registration_tokens
    deadline = time.monotonic() + timeout
    seen_events: set[int] = set()

    def drain() -> list[Event]:
        fresh = [
            e
            for e in sim.events_since(first_event)
            if e.index not in seen_events and e.token in (None, grant.token)
        ]
        for e in fresh:
            seen_events.add(e.index)
            report.steps.append(f"LMS: {e.text}")
        return fresh

    final: requests.Response | None = None
    with requests.Session() as browser:
        browser.headers.update(BROWSER_HEADERS)
        browser.headers["Referer"] = sim.base_url + profile.admin_page
        current = url
        started = time.perf_counter()
        for hop in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                report.problems.append(f"The registration did not finish within {timeout:g} s.")
                break
            verb = "opens" if hop == 0 else "follows the redirect to"
            report.steps.append(f"Browser {verb} {display_url(current, tokens)}")
            try:
                answer = browser.get(current, allow_redirects=False, timeout=remaining)
            except requests.RequestException as exc:
                drain()
                report.steps.append(f"Browser could not load the page: {type(exc).__name__}")
                report.problems.append(
                    f"The browser could not load {display_url(current, tokens)}: "
                    f"{type(exc).__name__}: "
                    f"{exc}"
                )
                break
            drain()
            location = answer.headers.get("Location")
            if answer.is_redirect and location:
                current = urljoin(current, location)
                report.steps.append(f"Tool answered {answer.status_code} (redirect)")
                answer.close()
                continue
            kind = answer.headers.get("Content-Type", "").split(";")[0] or "no content type"
            report.steps.append(f"Tool answered {answer.status_code} ({kind})")
            final = answer
            break
        else:
            report.problems.append(f"The tool redirected more than {MAX_REDIRECTS} times.")
        report.browser_seconds = time.perf_counter() - started
        drain()

    judge(report, sim, tool_url, grant.token, first_event, final, inline_close=inline_close)
    return report


def judge(
    report: SimulationReport,
    sim: Simulator,
    tool_url: str,
    token: str,
    first_event: int,
    final: requests.Response | None,
    *,
    inline_close: bool = False,
) -> None:
    """Fill in the report's outcome from what the LMS saw and where the browser ended."""
    posts = sim.records_for(token)
    accepted = [r for r in posts if r.accepted]
    if accepted:
        record = accepted[0]
        report.client_id = record.client_id
        report.deployment_id = record.deployment_id
        report.granted_scopes = _granted_scopes(record)
    if not posts:
        fetched = any(
            e.text.startswith("GET openid configuration") and e.token in (None, token)
            for e in sim.events_since(first_event)
        )
        if not fetched:
            report.problems.append("The tool never fetched the LMS's OpenID configuration.")
        report.problems.append(
            "The tool never sent its registration (no POST reached the registration endpoint)."
        )
    for record in posts:
        if not record.accepted:
            report.problems.append(_rejection_sentence(sim, record))
        elif isinstance(record.body, dict):
            report.problems.extend(
                f"{sim.profile.display_name} accepted it, but: {problem}"
                for problem in sim.profile.review(record.body)
            )
    if len(posts) > 1:
        report.problems.append(
            f"The tool POSTed {len(posts)} times with the same registration token; "
            "it must POST exactly once."
        )
    if final is not None:
        report.final_url = final.url
        report.final_status = final.status_code
        page = final.text
        marked = bool(CLOSE_MARKER_RE.search(page)) or (
            inline_close and bool(CLOSE_MESSAGE_RE.search(page))
        )
        if final.status_code != 200:
            report.problems.append(f"The tool's final page answered HTTP {final.status_code}.")
        if origin(final.url) != origin(tool_url):
            report.problems.append(
                f"The final page is served from {_show_origin(final.url)}, not from the origin "
                f"of the registration URL ({_show_origin(tool_url)}); Canvas ignores close "
                "messages from any other origin."
            )
        if not marked:
            also = " nor post org.imsglobal.lti.close" if inline_close else ""
            report.problems.append(
                f'The final page does not carry data-lti-close="auto" or "after-reading"{also}, '
                "so it would not close the LMS dialog."
            )
        if final.status_code >= 400 or not marked:
            report.problems.append(f"Page text: {visible_text(page) or '(empty page)'}")
            # Gatehouse folds its rule under "Technical details", past the text's cut.
            rule = ERROR_RULE_RE.search(page)
            if rule:
                report.problems.append(f"Rule: {rule.group(1)}")
        final.close()
    report.ok = not report.problems and len(accepted) == 1


def _granted_scopes(record: RegistrationRecord) -> list[str]:
    scope = record.response.get("scope") if isinstance(record.response, dict) else None
    return scope.split() if isinstance(scope, str) else []


def _rejection_sentence(sim: Simulator, record: RegistrationRecord) -> str:
    name = sim.profile.display_name
    if 200 <= record.status < 300:
        if isinstance(record.response, dict):
            flaw = "a JSON body without client_id"
        else:
            flaw = "a body that is not JSON"
        return (
            f"{name} answered the registration with HTTP {record.status} but {flaw}, so nothing "
            "usable was registered."
        )
    detail = sim.profile.describe(record.status, record.response)
    if isinstance(record.response, str) and "<" in record.response:
        detail = visible_text(record.response, 200)
    return f"{name} rejected the registration with HTTP {record.status}: {detail}"


def display_url(url: str, tokens: list[str] | tuple[str, ...] = ()) -> str:
    """Return url for a report: tokens hidden, long values cut short, the nested configuration
    URL decoded."""
    parts = urlsplit(url)
    segments = []
    for segment in parts.path.split("/"):
        if unquote(segment) in tokens:
            segment = HIDDEN_TOKEN
        elif len(segment) > 24:
            segment = _short(segment)
        segments.append(segment)
    path = "/".join(segments)
    shown = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "openid_configuration":
            value = display_url(value, tokens)
        elif "token" in key.lower() or value in tokens:
            value = HIDDEN_TOKEN
        elif len(value) > 60:
            value = _short(value)
        shown.append(f"{key}={value}")
    query = f"?{'&'.join(shown)}" if shown else ""
    return f"{parts.scheme}://{parts.netloc}{path}{query}"


def hide_tokens(text: str, tokens: list[str] | tuple[str, ...]) -> str:
    """Return text with each token replaced, as written or percent-encoded (once or twice)."""
    for token in tokens:
        if not token:
            continue
        once = {token, quote(token, safe=""), quote_plus(token)}
        for spelling in sorted(once | {quote(s, safe="") for s in once}, key=len, reverse=True):
            text = text.replace(spelling, HIDDEN_TOKEN)
    return text


def _short(value: str) -> str:
    return value[:8] + "…" if len(value) > 12 else value


def _show_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
