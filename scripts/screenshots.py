"""Screenshots of Gatehouse for the README, made from the running app: `make screenshots`.

Gatehouse runs for real (the app on a loopback port, a throw-away SQLite database, the demo
tool behind the terms gate), the LMS simulator plays Moodle, Canvas, Brightspace and Sakai as
real servers, and Debian's Chromium (through Playwright, as the browser tests drive it) goes
through what an LMS administrator, a teacher, a student and the tool's owner see. The PNGs land
in docs/screenshots/, so re-running this after a change to the pages keeps the README current.

    python -m scripts.screenshots                    # every shot, into docs/screenshots/
    python -m scripts.screenshots --only gate --out /tmp/shots

Pages are found by the markers the tests use (`data-lti-*` attributes, element ids, roles), never
by layout, so small changes to the markup do not break the run. Colours are pinned to the light
scheme and the pixel ratio to 1, so the pictures only change when the pages do.
"""

from __future__ import annotations

import argparse
import html
import string
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from app import create_app
from app.lti.launch import CLAIM_ROLES
from app.simulator.server import Simulator
from app.testing import LoopbackServer
from app.web.login import hash_password

CHECKOUT = Path(__file__).resolve().parent.parent
OUT_DIR = CHECKOUT / "docs" / "screenshots"
LMS_PAGE = string.Template((Path(__file__).with_name("lms_page.html")).read_text())
# Debian's Chromium, as tests/support/browser.py launches it (Playwright cannot download its own).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # run as root, as on the project's machines; the sandbox refuses that
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    # Keep cross-site frames in the page's process, or Playwright can lose the tool's frame
    # mid-launch and never see its last page (tests/support/browser.py says more).
    "--disable-site-isolation-trials",
]
WIDE, NARROW = 1280, 480
VIEWPORT_HEIGHT = 800
# A launch fills the window's height (moodle/moodle mod/lti/view.php): windows tall enough for
# the whole of a teacher's page, at each width.
LAUNCH_VIEWPORT_HEIGHTS = {WIDE: 900, NARROW: 1300}
TIMEOUT_MS = 20_000
# Over this a PNG is reported: the README's strip should load fast.
SIZE_BUDGET = 150_000
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"

TOOL = {
    "name": "Gatehouse demo tool",
    "description": "A demonstration tool registered by Gatehouse.",
    "contacts": ["owner@tool.example"],
    "scopes": [
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    ],
}
TERMS = """The school may use the tool in its courses for the period it has paid for.
Student data stays in the LMS: the tool keeps only scores and **never sells or shares** them.
"""
OWNER_EMAIL, OWNER_PASSWORD = "owner@tool.example", "correct horse battery staple"


@dataclass(frozen=True)
class Shot:
    """One picture: what it shows, and the widths it is taken at."""

    name: str
    shows: str
    widths: tuple[int, ...]

    def filename(self, width: int) -> str:
        return f"{self.name}-{width}.png"


SHOTS = {
    shot.name: shot
    for shot in (
        Shot("close", "the close page in Moodle's registration dialog", (WIDE, NARROW)),
        Shot("gate", "the terms gate in Moodle's registration dialog", (WIDE, NARROW)),
        Shot(
            "error", "a registration refused: the LMS's configuration breaks a rule", (WIDE, NARROW)
        ),
        Shot("launch-staff", "a teacher's launch, verified, in a Moodle course", (WIDE, NARROW)),
        Shot("launch-learner", "a student's launch in a Moodle course", (WIDE, NARROW)),
        Shot("console", "the owner console's home, after a few registrations", (WIDE,)),
    )
}


class LMSPages:
    """Serve the LMS page around Gatehouse's frame, on 127.0.0.1 (Gatehouse is on localhost).

    Two sites, as in a real LMS: the frame is cross-site, so cookies and postMessage behave as
    they do there. `?kind=dialog` is Moodle's registration dialog, `?kind=launch` a course page.
    """

    def __init__(self) -> None:
        self._server = LoopbackServer(self._wsgi, "127.0.0.1", name="screenshots-lms")

    def __enter__(self) -> LMSPages:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()

    def url(self, src: str, kind: str) -> str:
        return f"{self._server.url}/?kind={kind}&src={quote(src, safe='')}"

    def _wsgi(self, environ, start_response):
        args = Request(environ).args
        kind = "launch" if args.get("kind") == "launch" else "dialog"
        words = {
            "dialog": ("Manage tools", "Site administration / Plugins / External tool"),
            "launch": ("Quiz 1: cell structure", "Introduction to Biology / Week 1"),
        }[kind]
        page = LMS_PAGE.substitute(
            lms="Moodle",
            kind=kind,
            title=words[0],
            crumbs=words[1],
            src=html.escape(args.get("src", "about:blank")),
        )
        return Response(page, mimetype="text/html")(environ, start_response)


class Run:
    """Gatehouse, the simulated LMSes and the browser for one run; `take` makes the shots."""

    def __init__(self, browser, gatehouse: LoopbackServer, lms: LMSPages, out: Path):
        self.browser = browser
        self.gatehouse = gatehouse
        self.lms = lms
        self.out = out
        self.written: list[Path] = []
        self._sims: dict[tuple[str, tuple[str, ...]], Simulator] = {}

    @property
    def register_url(self) -> str:
        return self.gatehouse.url + "/lti/register"

    def sim(self, profile: str, faults: Iterable[str] = ()) -> Simulator:
        key = (profile, tuple(faults))
        if key not in self._sims:
            self._sims[key] = Simulator(profile, faults=faults).start()
        return self._sims[key]

    def close(self) -> None:
        for sim in self._sims.values():
            sim.stop()

    def page(self, width: int, height: int = VIEWPORT_HEIGHT):
        context = self.browser.new_context(
            viewport={"width": width, "height": height},
            device_scale_factor=1,
            color_scheme="light",
            reduced_motion="reduce",
            locale="en-GB",
        )
        context.set_default_timeout(TIMEOUT_MS)
        return context.new_page()

    def save(self, page, shot: Shot, width: int, clip_height: int | None = None) -> None:
        """Write the page's PNG (the whole page, or its top `clip_height` pixels)."""
        page.evaluate("document.fonts.ready")
        path = self.out / shot.filename(width)
        if clip_height is None:
            page.screenshot(path=path, full_page=True, animations="disabled")
        else:
            height = min(clip_height, page.evaluate("document.documentElement.scrollHeight"))
            clip = {"x": 0, "y": 0, "width": width, "height": height}
            page.screenshot(path=path, full_page=True, clip=clip, animations="disabled")
        self.written.append(path)
        size = path.stat().st_size
        note = "" if size <= SIZE_BUDGET else f" (over {SIZE_BUDGET // 1000} KB)"
        print(f"  {path.name}: {shot.shows}, {size // 1000} KB{note}")

    # --- the registration, as Moodle ----------------------------------------------------------

    def register_in_dialog(self, width: int, profile: str = "moodle", shots=frozenset()):
        """Register in the LMS's dialog at `width`, passing the terms gate; shoot on the way."""
        sim = self.sim(profile)
        page = self.page(width)
        page.goto(self.lms.url(sim.initiation_url(self.register_url), "dialog"))
        frame = page.frame_locator("#tool")
        frame.locator("#accept-terms").wait_for()
        frame.locator("#accept").check()
        frame.locator("#signer_name").fill("Ada Admin")
        email = frame.locator("#email")
        if email.count():
            email.fill("ada.admin@school.example")
            email.blur()  # no focus ring in the picture
        if "gate" in shots:
            self.save(page, SHOTS["gate"], width)
        frame.locator("#accept-terms").click()
        wait_for(page, "body[data-lti-close]")
        if "close" in shots:
            self.save(page, SHOTS["close"], width)
        page.context.close()
        return sim

    def refused_in_dialog(self, width: int, shoot: bool) -> None:
        """Open the dialog of a Moodle whose configuration offers no RS256: a refusal."""
        sim = self.sim("moodle", faults=("no_rs256",))
        page = self.page(width)
        page.goto(self.lms.url(sim.initiation_url(self.register_url), "dialog"))
        wait_for(page, "body[data-lti-error]")
        if shoot:
            self.save(page, SHOTS["error"], width)
        page.context.close()

    # --- launches -----------------------------------------------------------------------------

    def launch(self, sim: Simulator, width: int, shot: Shot | None, learner: bool) -> None:
        """Launch the tool in a Moodle course page from `sim`'s latest registration."""
        client_id = sim.registrations()[-1].client_id
        claims = {CLAIM_ROLES: [LEARNER]} if learner else None
        # No platform storage: the course page here is not the simulator's; the launch is
        # bound by Gatehouse's Partitioned cookie, as in Chrome's default settings.
        pending = sim.prepare_launch(client_id, claims=claims, storage_target=None)
        page = self.page(width, LAUNCH_VIEWPORT_HEIGHTS[width])
        page.goto(self.lms.url(pending.login_url, "launch"))
        audience = "learner" if learner else "staff"
        wait_for(page, f'body[data-lti-audience="{audience}"]')
        if shot is not None:
            self.save(page, shot, width)
        page.context.close()

    # --- the console --------------------------------------------------------------------------

    def console(self, width: int) -> None:
        page = self.page(width)
        page.goto(self.gatehouse.url + "/console/login")
        page.locator("#email").fill(OWNER_EMAIL)
        page.locator("#password").fill(OWNER_PASSWORD)
        page.locator("#signin").click()
        page.locator("#counts").wait_for()
        self.save(page, SHOTS["console"], width, clip_height=1500)
        page.context.close()

    # --- the whole run ------------------------------------------------------------------------

    def take(self, names: set[str]) -> None:
        """Take the shots named (all their widths), and what they need before them."""
        moodle = None
        for width in (WIDE, NARROW):
            wanted = {n for n in names & {"gate", "close"} if width in SHOTS[n].widths}
            if wanted or (width == WIDE and names - {"gate", "close", "error"}):
                moodle = self.register_in_dialog(width, shots=wanted)
        for width in SHOTS["error"].widths:
            if "error" in names or ("console" in names and width == WIDE):
                self.refused_in_dialog(width, shoot="error" in names)
        for name, learner in (("launch-staff", False), ("launch-learner", True)):
            for width in SHOTS[name].widths:
                if name in names:
                    self.launch(moodle, width, SHOTS[name], learner)
        if "console" in names:
            # More LMS families and launches, so the console's table and charts have rows.
            for profile in ("canvas", "brightspace", "sakai"):
                sim = self.register_in_dialog(WIDE, profile)
                for _ in range(2):
                    self.launch(sim, WIDE, None, learner=True)
            self.launch(moodle, WIDE, None, learner=False)
            self.console(WIDE)


def wait_for(page, selector: str) -> None:
    """Wait for `selector` in the LMS page's frame; on a timeout, say what the frame shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.frame_locator("#tool").locator(selector).wait_for()
    except PlaywrightTimeout as exc:
        # Frame URLs only: evaluating in a frame that is stuck can wait forever.
        shown = "\n".join(frame.url for frame in page.frames)
        raise RuntimeError(f"No {selector} in the LMS page's frame; its frames:\n{shown}") from exc


def gatehouse_app(workdir: Path):
    """Build Gatehouse on a new SQLite database in `workdir`, with the terms gate and an owner."""
    terms = workdir / "terms.md"
    terms.write_text(TERMS)
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'gatehouse.db'}",
            "SECRET_KEY": "screenshots-only",
            "SETTINGS": {
                "tool": TOOL,
                # The simulated LMSes answer on plain http, on loopback.
                "security": {"allow_insecure_platforms": True},
                "limits": {"enabled": False},
                "registration": {"gates": ["terms"], "auto_activate": True},
                "gates": {"terms": {"version": "2026-12", "path": str(terms)}},
            },
        }
    )
    store = app.extensions["gatehouse.store"]
    owner = store.create_account(OWNER_EMAIL, "Olga Owner", hash_password(OWNER_PASSWORD))
    store.set_owner(owner.id, True)
    return app


def make_screenshots(names: Iterable[str], out: Path = OUT_DIR) -> list[Path]:
    """Take the shots named into `out`; return the files written."""
    from playwright.sync_api import sync_playwright  # a test tool: `make install` brings it

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gatehouse-screenshots-") as workdir:
        app = gatehouse_app(Path(workdir))
        with (
            LoopbackServer(app, "localhost", name="gatehouse") as gatehouse,
            LMSPages() as lms,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            run = Run(browser, gatehouse, lms, out)
            try:
                run.take(set(names))
            finally:
                run.close()
                browser.close()
    return run.written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.screenshots", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SHOTS),
        help="take only this shot (repeatable); default: all",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where the PNGs go")
    args = parser.parse_args(argv)
    started = time.monotonic()
    print(f"==> Screenshots of the running app into {args.out}")
    written = make_screenshots(args.only or SHOTS, args.out)
    print(f"==> {len(written)} screenshots in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
