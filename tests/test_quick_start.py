"""The first minute (README, Quick start): what `make run` installs and what it says when ready."""

import shlex
import subprocess
import time
from pathlib import Path

import requests

from app.simulator import PROFILES
from app.testing import Gunicorn

ROOT = Path(__file__).resolve().parents[1]


def make_dry_run(target, tmp_path):
    """Return the commands `make TARGET` would run from scratch (a fresh .venv), run none."""
    return subprocess.run(  # noqa: S603 - our own Makefile
        ["make", "--dry-run", "--always-make", f"VENV={tmp_path / 'venv'}", target],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def pip_installs(commands):
    return [line for line in commands.splitlines() if "pip install" in line]


def test_make_run_installs_what_serving_needs_and_make_test_the_rest(tmp_path):
    commands = make_dry_run("run", tmp_path)
    installs = pip_installs(commands)
    assert any(line.rstrip().endswith("-e .") for line in installs), commands
    # No test tools (playwright, schemathesis, hypothesis, ruff) and no PostgreSQL driver.
    assert not [line for line in installs if "[" in line], installs
    # Progress: a line per step, and pip's own output for the long one.
    assert "Installing Gatehouse and what it needs to run" in commands
    assert not [line for line in installs if "--quiet" in line and "-e" in line], installs
    # `make test` (through install) adds them on top.
    installs = pip_installs(make_dry_run("install", tmp_path))
    assert installs[-1].rstrip().endswith("-e '.[test,postgres]'"), installs


def gatehouse(tmp_path, **env):
    return Gunicorn(
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'gatehouse.sqlite3'}",
            "SECRET_KEY": "quick start",
            "GATEHOUSE_TOOL__NAME": "Quiz Tool",
            "GATEHOUSE_SECURITY__ALLOW_INSECURE_PLATFORMS": "true",
            "GATEHOUSE_REGISTRATION__AUTO_ACTIVATE": "true",
            **env,
        },
        workers=2,
        label="gatehouse",
    )


def banner_of(server, timeout=20.0):
    """Return the server's log once the banner is in it (the last worker prints it once up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log_tail(20000)
        if "Gatehouse is ready" in log:
            time.sleep(0.5)  # a second banner, if any, would come from the other worker now
            return server.log_tail(20000)
        time.sleep(0.1)
    raise AssertionError(f"no banner:\n{server.log_tail()}")


def test_make_run_says_once_where_it_serves_and_what_to_do_next(tmp_path):
    with gatehouse(tmp_path, GATEHOUSE_BANNER="1") as server:
        log = banner_of(server)
        assert log.count("Gatehouse is ready") == 1, log
        assert f"Gatehouse is ready: {server.url}/\n" in log
        lines = [line.strip() for line in log.splitlines()]
        simulate = next(line for line in lines if " simulate " in line)
        assert simulate.endswith(f"--profile canvas --url {server.url}/lti/register")
        named = log.split("profiles: ", 1)[1].split(")", 1)[0]
        assert set(named.split(", ")) <= set(PROFILES)
        create = next(line for line in lines if " user create " in line)
        assert create.endswith("user create --owner --email you@example.com")
        assert f"{server.url}/console/" in lines
        assert requests.get(f"{server.url}/", timeout=10).status_code == 200
        console = requests.get(f"{server.url}/console/", allow_redirects=False, timeout=10)
        assert console.status_code == 302 and "/console/login" in console.headers["Location"]

        # The commands work as printed, from the checkout, on the server's database.
        environment = server.environment()
        ran = subprocess.run(  # noqa: S603 - the banner's own command line
            shlex.split(simulate), cwd=ROOT, env=environment, capture_output=True, text=True
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "Stored platform matches what the LMS granted." in ran.stdout
        owner = subprocess.run(  # noqa: S603
            [*shlex.split(create), "--password-stdin"],
            cwd=ROOT,
            env=environment,
            input="a long enough password\n",
            capture_output=True,
            text=True,
        )
        assert owner.returncode == 0, owner.stdout + owner.stderr
        assert "Created owner account you@example.com" in owner.stdout

    # Without make run's GATEHOUSE_BANNER (the Procfile, a deploy), gunicorn's log only.
    with gatehouse(tmp_path) as server:
        time.sleep(1.0)
        assert "Booting worker" in server.log_tail(20000)
        assert "Gatehouse is ready" not in server.log_tail(20000)
