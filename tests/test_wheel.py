"""The wheel, installed outside the checkout, serves every page and keeps its data in instance/.

The wheel is built from this checkout with the project's own build backend and installed, alone,
into a fresh virtual environment under a temporary folder; its dependencies are the ones this test
runs with, reached through a path line (not the checkout's editable install: `.pth` files in a
folder named by a path line are not read), so nothing is downloaded.
"""

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests

from app.testing import Gunicorn

ROOT = Path(__file__).resolve().parent.parent
OWNER = "owner@school.example"
PASSWORD = "a long enough password"  # noqa: S105 - a throw-away account in a throw-away database


def run(*command, cwd=None, env=None):
    """Run a command to completion, failing the test with its output when it fails."""
    result = subprocess.run(  # noqa: S603 - our own interpreters, fixed arguments
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """Build the wheel and install it into a fresh virtual environment outside the checkout."""
    base = tmp_path_factory.mktemp("wheel")
    assert not base.resolve().is_relative_to(ROOT)
    dist, python = base / "dist", base / "venv" / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--quiet")
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, ROOT)
    (wheel,) = dist.glob("gatehouse-*.whl")
    run(sys.executable, "-m", "venv", "--without-pip", base / "venv")
    run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel)
    site_packages = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    )
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site_packages / "gatehouse_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return base / "venv"


@pytest.fixture
def site(venv, tmp_path):
    """Return a working directory outside the checkout and the environment of a plain deploy."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GATEHOUSE_")
        and name not in ("DATABASE_URL", "SECRET_KEY", "PYTHONPATH", "DYNO")
    }
    # HOME: gunicorn keeps its control socket there, one per test rather than one per machine.
    env.update(HOME=str(tmp_path), GATEHOUSE_TOOL__NAME="Quiz Tool")
    work = tmp_path / "site"
    work.mkdir()
    return work, env


class InstalledGunicorn(Gunicorn):
    """The installed Gatehouse under the venv's gunicorn, in a folder outside the checkout."""

    def __init__(self, venv, work, env):
        super().__init__("app:create_app()", env, log_path=work.parent / "gunicorn.log")
        self.venv, self.work = venv, work

    def command(self):
        # As the README's Deploying section runs it: wsgi.py is not in the wheel.
        return [str(self.venv / "bin" / "python"), "-m", "gunicorn", *super().command()[1:]]

    def cwd(self):
        return self.work

    def environment(self):
        return {k: v for k, v in super().environment().items() if k != "PYTHONPATH"}

    def get(self, path, **kwargs):
        return requests.get(self.url + path, timeout=10, allow_redirects=False, **kwargs)

    def post(self, path, **kwargs):
        return requests.post(self.url + path, timeout=10, allow_redirects=False, **kwargs)


def files_under(folder):
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_carries_the_templates_the_static_files_and_the_package_data(venv):
    installed = next(venv.glob("lib/python*/site-packages/app"))
    carried = files_under(installed)
    assert files_under(ROOT / "app") <= carried  # the simulator's data and app/lti/lms/ too
    assert {f"templates/{name}" for name in files_under(ROOT / "templates")} <= carried
    assert {f"static/{name}" for name in files_under(ROOT / "static")} <= carried


def test_the_wheel_names_its_licence_as_an_spdx_expression(venv):
    # PEP 639: `license = "MIT"`. The older table form ({text = ...}) is deprecated and made
    # setuptools warn on every build; it wrote the legacy `License:` field instead.
    (metadata,) = venv.glob("lib/python*/site-packages/gatehouse-*.dist-info/METADATA")
    fields = metadata.read_text().split("\n\n", 1)[0].splitlines()
    assert "License-Expression: MIT" in fields
    assert not [line for line in fields if line.startswith("License:")]


def test_the_installed_wheel_serves_every_page_and_keeps_one_database_in_instance(venv, site):
    work, env = site
    python = venv / "bin" / "python"
    gatehouse = venv / "bin" / "gatehouse"
    where = run(python, "-c", "import app; print(app.__file__)", cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(venv)  # the wheel's copy, not the checkout's
    # The owner made from the command line, before the server ever ran...
    owner = ("--email", OWNER, "--password", PASSWORD, "--owner")
    run(gatehouse, "user", "create", *owner, cwd=work, env=env)
    database = work / "instance" / "gatehouse.sqlite3"
    assert database.is_file()

    with InstalledGunicorn(venv, work, env) as server:
        home = server.get("/")
        assert home.status_code == 200
        assert "<h1>Register Quiz Tool in your LMS</h1>" in home.text
        assert server.get("/static/style.css").content == (ROOT / "static/style.css").read_bytes()
        not_lms = server.get("/lti/register")
        assert not_lms.status_code == 200
        assert "<h1>This is Quiz Tool's LTI registration URL</h1>" in not_lms.text
        missing = server.get("/no-such-page")
        assert missing.status_code == 404 and "<h1>This page does not exist</h1>" in missing.text

        # ...signs in to the console gunicorn serves: both opened the same file. The session
        # cookie is Secure, which requests keeps off plain http, so it is carried by hand.
        login = server.get("/console/login")
        assert login.status_code == 200 and "Sign in to the owner console" in login.text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login.text)
        signed_in = server.post(
            "/console/login",
            data={"csrf_token": token.group(1), "email": OWNER, "password": PASSWORD},
            cookies={"gatehouse_session": login.cookies["gatehouse_session"]},
        )
        assert signed_in.status_code == 302, signed_in.text
        registrations = server.get(
            signed_in.headers["Location"],
            cookies={"gatehouse_session": signed_in.cookies["gatehouse_session"]},
        )
        assert registrations.status_code == 200 and OWNER in registrations.text

    assert not list(venv.rglob("*.sqlite3*")), "a database was written into the installation"
    assert sorted(p.name for p in work.rglob("*.sqlite3")) == ["gatehouse.sqlite3"]
    migrated = run(gatehouse, "migrate", cwd=work, env=env)
    assert migrated == f"The schema of {database} is up to date.\n"
