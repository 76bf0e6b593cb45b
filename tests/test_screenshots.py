"""The README's first screen: its pictures come from `make screenshots`, and they are all there.

The smoke run takes one shot (the terms gate in Moodle's dialog, at both widths) from the real
app into tmp_path; the other tests check what is committed: every shot the script makes, each a
PNG as wide as its name says, each linked from the README's table of issue 15's twelve items
(where every linked picture exists), the first screen's strip, and the registration's diagram.
"""

import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from support import browser as browser_rig

from scripts.screenshots import NARROW, SHOTS, SIZE_BUDGET, VIEWPORT_HEIGHT, WIDE

ROOT = Path(__file__).resolve().parents[1]
SHOTS_DIR = ROOT / "docs" / "screenshots"
README = (ROOT / "README.md").read_text()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Return (width, height) of a PNG, after checking its signature and its header's CRC."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (kind, length) == (b"IHDR", 13), f"{path.name}: no IHDR first"
    header = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(kind + header) == crc, f"{path.name}: damaged header"
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path.name}: cut short"
    width, height = struct.unpack(">II", header[:8])
    return width, height


@pytest.mark.skipif(
    browser_rig.unavailable_reason() is not None, reason=str(browser_rig.unavailable_reason())
)
def test_the_script_shoots_the_gate_in_moodles_dialog_at_both_widths(tmp_path):
    result = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "scripts.screenshots", "--only", "gate", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate-1280.png", "gate-480.png"]
    for width in (WIDE, NARROW):
        shot = tmp_path / f"gate-{width}.png"
        got_width, height = png_size(shot)
        assert got_width == width
        # The LMS's page around Moodle's dialog, which is at least 800 pixels high.
        assert VIEWPORT_HEIGHT < height < 3 * VIEWPORT_HEIGHT
        assert shot.stat().st_size < SIZE_BUDGET
        assert f"gate-{width}.png: the terms gate" in result.stdout


def test_every_shot_is_committed_as_wide_as_it_says():
    expected = {shot.filename(width) for shot in SHOTS.values() for width in shot.widths}
    assert {p.name for p in SHOTS_DIR.glob("*.png")} == expected
    for name in expected:
        width = int(name.rsplit("-", 1)[1].removesuffix(".png"))
        assert png_size(SHOTS_DIR / name)[0] == width, name
        assert (SHOTS_DIR / name).stat().st_size < SIZE_BUDGET, f"{name} is heavy for a README"


def test_the_readmes_pictures_exist_and_its_first_screen_shows_the_three():
    linked = re.findall(r"\]\((docs/screenshots/[^)]+)\)", README)
    assert linked, "the README shows no screenshot"
    missing = [path for path in linked if not (ROOT / path).is_file()]
    assert missing == []
    first_screen = README[: README.index("## Quick start")]
    for name in ("close-1280.png", "gate-1280.png", "console-1280.png"):
        assert f"](docs/screenshots/{name})" in first_screen, name
    assert "(https://heroku.com/deploy)" in first_screen
    assert "(https://render.com/deploy)" in first_screen


def test_the_readmes_table_shows_each_item_of_issue_15_and_links_every_shot():
    start = README.index("| What the pages do (issue 15) |")
    table = README[start : README.index("\n\n", start)]
    rows = table.splitlines()[2:]
    assert [row.split("|")[1].split(".")[0].strip() for row in rows] == [
        str(n) for n in range(1, 13)
    ]
    linked = re.findall(r"\]\(docs/screenshots/([^)]+)\)", table)
    assert [name for name in linked if not (SHOTS_DIR / name).is_file()] == []
    every_file = {shot.filename(width) for shot in SHOTS.values() for width in shot.widths}
    assert sorted(every_file - set(linked)) == [], "shots the README's table does not link"


def test_the_readme_draws_the_registration_in_order():
    (diagram,) = re.findall(r"```mermaid\n(.*?)```", README, flags=re.S)
    assert diagram.startswith("sequenceDiagram")
    steps = [
        "paste https://your-gatehouse/lti/register",
        "openid_configuration and registration_token",
        "fetch openid_configuration",
        "gates",
        "POST registration to registration_endpoint (Bearer registration_token)",
        "client_id",
        "store the platform",
        "org.imsglobal.lti.close",
    ]
    positions = [diagram.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p == -1]
    assert positions == sorted(positions), "the diagram's steps are out of order"
    # Mermaid ends a statement at ';' and reads '#' as an entity: neither may appear in a message.
    assert ";" not in diagram and "#" not in diagram
