"""Screenshots of Gatehouse for the README, made from the running app: `make screenshots`.

Gatehouse runs for real (the app on a loopback port, a throw-away SQLite database, the demo
tool behind the terms gate), the LMS simulator plays Moodle, Canvas, Brightspace and Sakai as
real servers, and Debian's Chromium (through Playwright, as the browser tests drive it) goes
through what an LMS administrator, a teacher, a student and the tool's owner see. The PNGs land
in docs/screenshots/, so re-running this after a change to the pages keeps the README current.

Three Gatehouses run side by side, as their settings are global: the main one (the terms gate,
platforms active at once), one behind the payment gate, and one that leaves new platforms awaiting
the owner's activation. The payment gate talks, through the official Stripe SDK, to the test suite's
Stripe-compatible server on loopback (tests/support/fake_stripe.py): this script is a developer
tool, run from a checkout with the test tools installed, like the tests.

    python -m scripts.screenshots                    # every shot, into docs/screenshots/
    python -m scripts.screenshots --only gate --out /tmp/shots

Pages are found by the markers the tests use (`data-lti-*` attributes, element ids, roles), never
by layout, so small changes to the markup do not break the run. Colours are pinned (the light
scheme, but for the shots of the dark one), the browser's language to British English (but for the
shots of another language) and the pixel ratio to 1, so the pictures only change when the pages do.
"""

from __future__ import annotations

import argparse
import html
import os
import string
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
# The test suite's fake Stripe (tests/support/), imported as the tests import it.
sys.path.insert(0, str(CHECKOUT / "tests"))
from support.fake_stripe import FakeStripe  # noqa: E402 - needs the path above

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
# LTI 1.3 Core §6.1.1 (launch_presentation): `locale` is the language the LMS shows its user.
CLAIM_LAUNCH_PRESENTATION = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"

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
# A Stripe Price the payment gate reads its amount from: 49.00 EUR a year.
PRICE_ID, PRICE = "price_school_year", (4900, "eur", "year")
STRIPE_KEY, STRIPE_WEBHOOK_SECRET = "sk_test_screenshots", "whsec_screenshots"
# The tool's logo, served by the LMS page server (the CSP lets pages load images from the logo's
# origin, app/web/security.py): a plain mark, so the header shows where a real logo goes.
LOGO_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="7" fill="#1b5fbf"/>
<path d="M8 24V12l8-5 8 5v12h-5v-7h-6v7z" fill="#fff"/></svg>
"""


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
        Shot(
            "close-details",
            "the close page's registration details: the Client ID to copy, the footer",
            (WIDE, NARROW),
        ),
        Shot(
            "error-details",
            "a refused registration with its technical details open",
            (WIDE, NARROW),
        ),
        Shot("payment", "the payment gate, its price read from the Stripe Price", (WIDE, NARROW)),
        Shot(
            "setting-up",
            "a launch before the owner has activated the school: being set up",
            (WIDE, NARROW),
        ),
        Shot("about", "/lti/register opened in a browser: what it is for", (WIDE, NARROW)),
        Shot("not-found", "a page that does not exist", (WIDE,)),
        Shot(
            "console-registrations", "the console's registrations, by LMS and institution", (WIDE,)
        ),
        Shot("console-audit", "the console's audit log, one sentence an entry", (WIDE,)),
        Shot(
            "console-platform",
            "a platform in the console: services by name, the Client ID to copy",
            (WIDE, NARROW),
        ),
        Shot(
            "close-dark", "the close page in the dark scheme, with the tool's logo", (WIDE, NARROW)
        ),
        Shot("console-dark", "the console's home in the dark scheme", (WIDE,)),
        Shot("close-fr", "the close page for a browser set to French", (WIDE, NARROW)),
        Shot("launch-staff-es", "a teacher's launch from a Moodle set to Spanish", (WIDE, NARROW)),
    )
}
# Shots of the registration in Moodle's dialog, on the main Gatehouse.
DIALOG_SHOTS = {"gate", "close", "close-details", "close-dark", "close-fr"}
CONSOLE_SHOTS = {"console", "console-registrations", "console-audit", "console-platform"}
CONSOLE_SHOTS |= {"console-dark"}


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

    @property
    def logo_url(self) -> str:
        return f"{self._server.url}/logo.svg"

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path == "/logo.svg":
            return Response(LOGO_SVG, mimetype="image/svg+xml")(environ, start_response)
        args = request.args
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
    """Gatehouse, the simulated LMSes and the browser for one run; `take` makes the shots.

    `gatehouse` is the main Gatehouse, `paying` the one behind the payment gate, `awaiting` the
    one whose new platforms wait for the owner's activation.
    """

    def __init__(self, browser, gatehouses: dict[str, LoopbackServer], lms: LMSPages, out: Path):
        self.browser = browser
        self.gatehouse = gatehouses["main"]
        self.paying = gatehouses["paying"]
        self.awaiting = gatehouses["awaiting"]
        self.lms = lms
        self.out = out
        self.written: list[Path] = []
        self._sims: dict[tuple[str, tuple[str, ...]], Simulator] = {}

    @property
    def register_url(self) -> str:
        return self.gatehouse.url + "/lti/register"

    def sim(self, profile: str, faults: Iterable[str] = (), key: str = "") -> Simulator:
        """Return the simulated LMS `profile` (one per Gatehouse `key`, so registrations differ)."""
        index = (profile + key, tuple(faults))
        if index not in self._sims:
            self._sims[index] = Simulator(profile, faults=faults).start()
        return self._sims[index]

    def close(self) -> None:
        for sim in self._sims.values():
            sim.stop()

    def page(
        self,
        width: int,
        height: int = VIEWPORT_HEIGHT,
        scheme: str = "light",
        locale: str = "en-GB",
    ):
        """Open a page in a new browser context (Playwright sends Accept-Language for `locale`)."""
        context = self.browser.new_context(
            viewport={"width": width, "height": height},
            device_scale_factor=1,
            color_scheme=scheme,
            reduced_motion="reduce",
            locale=locale,
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

    def register_in_dialog(
        self, width: int, profile: str = "moodle", shots=frozenset(), **look: str
    ) -> Simulator:
        """Register in the LMS's dialog at `width`, passing the terms gate; shoot on the way.

        `look` is the page's `scheme` and `locale`; the shots taken are those in `shots`.
        """
        sim = self.sim(profile)
        page = self.page(width, **look)
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
        for name in sorted(shots & {"close", "close-dark", "close-fr"}):
            self.save(page, SHOTS[name], width)
        if "close-details" in shots:
            frame.locator(
                "details:has(> summary:text-is('Registration details')) > summary"
            ).click()
            fit_frame(page)
            self.save(page, SHOTS["close-details"], width)
        page.context.close()
        return sim

    def refused_in_dialog(self, width: int, shots=frozenset()) -> None:
        """Open the dialog of a Moodle whose configuration offers no RS256: a refusal."""
        sim = self.sim("moodle", faults=("no_rs256",))
        page = self.page(width)
        page.goto(self.lms.url(sim.initiation_url(self.register_url), "dialog"))
        wait_for(page, "body[data-lti-error]")
        if "error" in shots:
            self.save(page, SHOTS["error"], width)
        if "error-details" in shots:
            page.frame_locator("#tool").locator("[data-technical-details] > summary").click()
            fit_frame(page)
            self.save(page, SHOTS["error-details"], width)
        page.context.close()

    def payment_in_dialog(self, width: int) -> None:
        """Open the dialog of a Moodle registering with the Gatehouse behind the payment gate."""
        sim = self.sim("moodle", key="paying")
        page = self.page(width)
        page.goto(self.lms.url(sim.initiation_url(self.paying.url + "/lti/register"), "dialog"))
        wait_for(page, "#price-amount")
        self.save(page, SHOTS["payment"], width)
        page.context.close()

    def about(self, width: int) -> None:
        """Open /lti/register in a browser, as someone following the home page's link does."""
        page = self.page(width)
        page.goto(self.register_url)
        page.locator("body[data-register-about]").wait_for()
        # Down to the footer (the other shots show it): the page is dense text, near the budget.
        footer = page.locator("[data-page-footer]").bounding_box()
        self.save(page, SHOTS["about"], width, clip_height=int(footer["y"]))
        page.context.close()

    def not_found(self, width: int) -> None:
        page = self.page(width)
        page.goto(self.gatehouse.url + "/lti/no-such-page")
        page.locator('body[data-error-page="404"]').wait_for()
        self.save(page, SHOTS["not-found"], width)
        page.context.close()

    # --- launches -----------------------------------------------------------------------------

    def launch(
        self,
        sim: Simulator,
        width: int,
        shot: Shot | None,
        learner: bool,
        locale: str | None = None,
        ready: str | None = None,
    ) -> None:
        """Launch the tool in a Moodle course page from `sim`'s latest registration.

        `locale` is the launch's launch_presentation locale and the browser's language; `ready`
        the selector of the page to wait for (by default, the verified page of the audience).
        """
        client_id = sim.registrations()[-1].client_id
        claims = {CLAIM_ROLES: [LEARNER]} if learner else {}
        if locale:
            claims[CLAIM_LAUNCH_PRESENTATION] = {"locale": locale, "document_target": "iframe"}
        # No platform storage: the course page here is not the simulator's; the launch is
        # bound by Gatehouse's Partitioned cookie, as in Chrome's default settings.
        pending = sim.prepare_launch(client_id, claims=claims or None, storage_target=None)
        look = {"locale": locale} if locale else {}
        page = self.page(width, LAUNCH_VIEWPORT_HEIGHTS[width], **look)
        page.goto(self.lms.url(pending.login_url, "launch"))
        audience = "learner" if learner else "staff"
        wait_for(page, ready or f'body[data-lti-audience="{audience}"]')
        if shot is not None:
            self.save(page, shot, width)
        page.context.close()

    def setting_up(self, width: int) -> None:
        """Register a Moodle with the Gatehouse that waits for activation, and launch from it."""
        sim = self.sim("moodle", key="awaiting")
        if not sim.registrations():
            page = self.page(width)
            url = sim.initiation_url(self.awaiting.url + "/lti/register")
            page.goto(self.lms.url(url, "dialog"))
            wait_for(page, "body[data-lti-close]")
            page.context.close()
        self.launch(
            sim, width, SHOTS["setting-up"], learner=True, ready="body[data-lti-setting-up]"
        )

    # --- the console --------------------------------------------------------------------------

    def console(self, width: int, names: set[str], scheme: str = "light") -> None:
        """Sign in to the console at `width` and shoot the console pages in `names`."""
        page = self.page(width, scheme=scheme)
        page.goto(self.gatehouse.url + "/console/login")
        page.locator("#email").fill(OWNER_EMAIL)
        page.locator("#password").fill(OWNER_PASSWORD)
        page.locator("#signin").click()
        page.locator("#counts").wait_for()
        for name in ("console", "console-dark"):
            if name in names and width in SHOTS[name].widths:
                self.save(page, SHOTS[name], width, clip_height=1500)
        if "console-registrations" in names and width in SHOTS["console-registrations"].widths:
            page.goto(self.gatehouse.url + "/console/registrations")
            page.locator("tr[data-registration]").first.wait_for()
            self.save(page, SHOTS["console-registrations"], width, clip_height=900)
        if "console-audit" in names and width in SHOTS["console-audit"].widths:
            page.goto(self.gatehouse.url + "/console/audit")
            page.locator("tr[data-audit]").first.wait_for()
            self.save(page, SHOTS["console-audit"], width, clip_height=750)
        if "console-platform" in names and width in SHOTS["console-platform"].widths:
            page.goto(self.gatehouse.url + "/console/platforms")
            # Sakai's platform: the LMS that grants services by checkbox, so the page says more.
            row = page.locator("tr[data-platform]", has_text="Sakai").first
            row.locator("a[href*='/console/platforms/']").first.click()
            page.locator("#services").wait_for()
            # The details and the services: the page goes on with deployments and history.
            clip = 800 if width == WIDE else 1300
            self.save(page, SHOTS["console-platform"], width, clip_height=clip)
        page.context.close()

    # --- the whole run ------------------------------------------------------------------------

    def take(self, names: set[str]) -> None:
        """Take the shots named (all their widths), and what they need before them."""
        moodle = None
        needs_moodle = names - DIALOG_SHOTS - {"error", "error-details", "payment", "about"}
        needs_moodle -= {"not-found", "setting-up"}
        for width in (WIDE, NARROW):
            wanted = {n for n in names & DIALOG_SHOTS if width in SHOTS[n].widths}
            plain = wanted - {"close-dark", "close-fr"}
            if plain or (width == WIDE and needs_moodle):
                moodle = self.register_in_dialog(width, shots=plain)
            if "close-dark" in wanted:
                self.register_in_dialog(width, shots={"close-dark"}, scheme="dark")
            if "close-fr" in wanted:
                self.register_in_dialog(width, shots={"close-fr"}, locale="fr-FR")
        for width in SHOTS["error"].widths:
            wanted = {n for n in names & {"error", "error-details"} if width in SHOTS[n].widths}
            if wanted or (names & CONSOLE_SHOTS and width == WIDE):
                self.refused_in_dialog(width, shots=wanted)
        for name, learner in (("launch-staff", False), ("launch-learner", True)):
            for width in SHOTS[name].widths:
                if name in names:
                    self.launch(moodle, width, SHOTS[name], learner)
        if "launch-staff-es" in names:
            for width in SHOTS["launch-staff-es"].widths:
                self.launch(moodle, width, SHOTS["launch-staff-es"], False, locale="es-ES")
        for name, shoot in (
            ("payment", self.payment_in_dialog),
            ("setting-up", self.setting_up),
            ("about", self.about),
            ("not-found", self.not_found),
        ):
            if name in names:
                for width in SHOTS[name].widths:
                    shoot(width)
        if names & CONSOLE_SHOTS:
            # More LMS families and launches, so the console's table and charts have rows.
            for profile in ("canvas", "brightspace", "sakai"):
                sim = self.register_in_dialog(WIDE, profile)
                for _ in range(2):
                    self.launch(sim, WIDE, None, learner=True)
            self.launch(moodle, WIDE, None, learner=False)
            self.console(WIDE, names - {"console-dark"})
            if "console-platform" in names:
                self.console(NARROW, {"console-platform"})
            if "console-dark" in names:
                self.console(WIDE, {"console-dark"}, scheme="dark")


def fit_frame(page) -> None:
    """Make the LMS page's frame as tall as the page in it, as an opened section grew it."""
    tool = next(frame for frame in page.frames if frame.parent_frame is not None)
    height = tool.evaluate("document.documentElement.scrollHeight")
    page.locator("#tool").evaluate("(frame, h) => { frame.style.height = h + 'px'; }", height + 2)


def wait_for(page, selector: str) -> None:
    """Wait for `selector` in the LMS page's frame; on a timeout, say what the frame shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.frame_locator("#tool").locator(selector).wait_for()
    except PlaywrightTimeout as exc:
        # Frame URLs only: evaluating in a frame that is stuck can wait forever.
        shown = "\n".join(frame.url for frame in page.frames)
        raise RuntimeError(f"No {selector} in the LMS page's frame; its frames:\n{shown}") from exc


def gatehouse_app(workdir: Path, logo_uri: str, stripe_url: str, **registration):
    """Build Gatehouse on a new SQLite database in `workdir`, with an owner.

    `registration` replaces the registration settings: by default the terms gate and platforms
    active at once.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    terms = workdir / "terms.md"
    terms.write_text(TERMS)
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'gatehouse.db'}",
            "SECRET_KEY": "screenshots-only",
            "SETTINGS": {
                "tool": {**TOOL, "logo_uri": logo_uri},
                # The simulated LMSes answer on plain http, on loopback.
                "security": {"allow_insecure_platforms": True},
                "limits": {"enabled": False},
                "registration": registration or {"gates": ["terms"], "auto_activate": True},
                "gates": {
                    "terms": {"version": "2026-12", "path": str(terms)},
                    "payment": {"price_id": PRICE_ID, "api_base": stripe_url},
                },
            },
        }
    )
    store = app.extensions["gatehouse.store"]
    owner = store.create_account(OWNER_EMAIL, "Olga Owner", hash_password(OWNER_PASSWORD))
    store.set_owner(owner.id, True)
    return app


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block (Gatehouse reads Stripe's secrets from there)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def make_screenshots(names: Iterable[str], out: Path = OUT_DIR) -> list[Path]:
    """Take the shots named into `out`; return the files written."""
    from playwright.sync_api import sync_playwright  # a test tool: `make install` brings it

    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="gatehouse-screenshots-") as workdir,
        FakeStripe(
            api_key=STRIPE_KEY, prices={PRICE_ID: PRICE}, webhook_secret=STRIPE_WEBHOOK_SECRET
        ) as stripe_server,
        environment(STRIPE_SECRET_KEY=STRIPE_KEY, STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET),
        LMSPages() as lms,
    ):
        common = (lms.logo_url, stripe_server.url)
        apps = {
            "main": gatehouse_app(Path(workdir, "main"), *common),
            "paying": gatehouse_app(
                Path(workdir, "paying"), *common, gates=["payment"], auto_activate=True
            ),
            "awaiting": gatehouse_app(
                Path(workdir, "awaiting"), *common, gates=[], auto_activate=False
            ),
        }
        with (
            LoopbackServer(apps["main"], "localhost", name="gatehouse") as main,
            LoopbackServer(apps["paying"], "localhost", name="gatehouse-paying") as paying,
            LoopbackServer(apps["awaiting"], "localhost", name="gatehouse-awaiting") as awaiting,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            gatehouses = {"main": main, "paying": paying, "awaiting": awaiting}
            run = Run(browser, gatehouses, lms, out)
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
