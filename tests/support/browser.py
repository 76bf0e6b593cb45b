"""Playwright driving Debian's Chromium, and a fake LMS that embeds a tool or opens it.

Playwright's own browser download is not reachable here, so `launch_browser` uses the Debian
`chromium` package. Sites: the fake LMS is served on 127.0.0.1 and the tool on `localhost`, which
Chromium treats as two different sites (cross-site iframe, third-party cookies) and both as secure
contexts (so `Secure` cookies work over plain http).

    with sync_playwright() as pw:
        browser = launch_browser(pw)
        context = new_context(browser, third_party_cookies=False)
        with FakeLMS() as lms:
            page = context.new_page()
            page.goto(lms.page_url(tool_url, "iframe"))
            ...
            messages = wait_for_close(page)
"""

import atexit
import html
import json
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from app.testing import LoopbackServer

from . import required

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root; Chromium's sandbox refuses that
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Keep cross-site frames in the page's process. Playwright loses an out-of-process iframe
    # that becomes in-process and out-of-process again within a few milliseconds (a launch:
    # the tool's login page, the LMS's auto-submitting form, the tool's launch): it misses
    # the new frame's navigations and console, so a locator in it never matches although
    # Chromium shows the page. Cookie and postMessage rules are per site, not per process.
    "--disable-site-isolation-trials",
]
LTI_CLOSE_SUBJECT = "org.imsglobal.lti.close"
MODES = ("iframe", "window")


def unavailable_reason() -> str | None:
    """Return why browser tests cannot run here (no Debian Chromium), or None."""
    reason = None
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is missing: run `apt-get install -y chromium`"
    return required(reason)


def launch_browser(playwright, **options):
    """Launch headless Debian Chromium through Playwright (`playwright.chromium.launch`)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, **options
    )


def new_context(browser, third_party_cookies: bool, partitioned_cookies: bool = True, **options):
    """Return a fresh BrowserContext that blocks or allows unpartitioned third-party cookies.

    third_party_cookies=False: `browser.new_context()`. A fresh headless Chromium profile blocks
    unpartitioned third-party cookies (measured: `SameSite=None; Secure` set by a cross-site iframe
    is not sent back; `Partitioned` ones are). This is Brave or Incognito-like.

    third_party_cookies=True: `browser.browser_type.launch_persistent_context(...)` on a new
    temporary profile whose Default/Preferences holds {"profile": {"cookie_controls_mode": 0}},
    desktop Chrome's default of allowing them. It is a separate Chromium process with one context,
    not a context of `browser`; `context.browser` is None. Closing the context ends that process
    and deletes the profile.

    partitioned_cookies=False (with third_party_cookies=False): no cookie at all for the tool
    (`localhost`) in a page whose top level is the LMS (`127.0.0.1`), Partitioned or not, as
    Safari does in every cross-site frame; the tool's cookies still work in its own windows.
    Chromium's "block third-party cookies" setting lets Partitioned cookies through, so this is
    a site exception in the same kind of persistent profile: {"profile": {"content_settings":
    {"exceptions": {"cookies": {"[*.]localhost,127.0.0.1": {"setting": 2}}}}}} (primary pattern:
    the cookie's site; secondary: the top-level site; 2: block).
    """
    if third_party_cookies:
        preferences = {"profile": {"cookie_controls_mode": 0}}
    elif not partitioned_cookies:
        block_in_lms = {"[*.]localhost,127.0.0.1": {"setting": 2}}
        preferences = {"profile": {"content_settings": {"exceptions": {"cookies": block_in_lms}}}}
    else:
        return browser.new_context(**options)
    profile = Path(tempfile.mkdtemp(prefix="gatehouse-chromium-"))
    (profile / "Default").mkdir()
    (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    atexit.register(shutil.rmtree, profile, ignore_errors=True)  # if close() is never called
    context = browser.browser_type.launch_persistent_context(
        profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, **options
    )
    context.on("close", lambda _context: shutil.rmtree(profile, ignore_errors=True))
    return context


def wait_for_close(page, timeout: float = 5_000) -> list[dict]:
    """Wait until the fake LMS page got the LTI close message; return every message it received.

    Each message is {"origin": ..., "data": ...}. `timeout` is in milliseconds, like Playwright's.
    """
    page.wait_for_function("window.closed_by_tool === true", timeout=timeout)
    return page.evaluate("window.received")


class FakeLMS:
    """An LMS page on http://127.0.0.1:<port> that shows a tool in an iframe or a new window.

    Mode "iframe" embeds the tool as Canvas and Moodle do; mode "window" has a button `#open` that
    calls `window.open(tool_url)`, as Brightspace opens a new tab. In both, the page stores every
    `message` event in `window.received` as {origin, data}; on the LTI close message it sets
    `window.closed_by_tool = true` and removes the iframe, as Moodle does.
    """

    def __init__(self, iframe_attributes: dict[str, str] | None = None):
        self.iframe_attributes = dict(iframe_attributes or {})
        self._server = LoopbackServer(self._wsgi, host="127.0.0.1", name="fake-lms")

    def start(self) -> "FakeLMS":
        """Start serving in a daemon thread."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.stop()

    def __enter__(self) -> "FakeLMS":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def origin(self) -> str:
        """Return the LMS origin, as a tool sees it in `event.origin` or `document.referrer`."""
        return self._server.url

    def page_url(self, tool_url: str, mode: str = "iframe") -> str:
        """Return the URL of an LMS page that shows tool_url in `mode` ("iframe" or "window")."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        return f"{self.url}/{mode}?tool={quote(tool_url, safe='')}"

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        mode = request.path.strip("/")
        tool_url = request.args.get("tool")
        if mode not in MODES or not tool_url:
            return NotFound()(environ, start_response)
        response = Response(self._render(mode, tool_url), mimetype="text/html")
        return response(environ, start_response)

    def _render(self, mode: str, tool_url: str) -> str:
        attributes = {"id": "tool", "src": tool_url, "style": "width:100%;height:600px"}
        attributes.update(self.iframe_attributes)
        if mode == "iframe":
            shown = "<iframe {}></iframe>".format(
                " ".join(f'{k}="{html.escape(v)}"' for k, v in attributes.items())
            )
        else:
            shown = '<button id="open" type="button">Open the tool in a new window</button>'
        # json.dumps plus "</" escaping keeps the URL a plain JS string inside <script>.
        tool_js = json.dumps(tool_url).replace("</", "<\\/")
        subject_js = json.dumps(LTI_CLOSE_SUBJECT)
        return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Fake LMS: add a tool</title></head>
<body>
<h1>Fake LMS: register a tool ({mode})</h1>
{shown}
<script>
window.received = [];
window.closed_by_tool = false;
window.tool_window = null;
window.addEventListener("message", (event) => {{
  window.received.push({{origin: event.origin, data: event.data}});
  if (event.data && event.data.subject === {subject_js}) {{
    window.closed_by_tool = true;
    const frame = document.getElementById("tool");
    if (frame) frame.remove();
  }}
}});
const open = document.getElementById("open");
if (open) open.addEventListener("click", () => {{
  window.tool_window = window.open({tool_js}, "_blank");
}});
</script>
</body>
</html>
"""
