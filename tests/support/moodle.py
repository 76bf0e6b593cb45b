"""A real Moodle 4.5.6 for the test session: `../shared/lms/moodle/start.sh`, cached outside the
checkout, plus what tests need to look inside it (PHP CLI, its private PostgreSQL, logging in).

The Moodle tree and `start.sh` / `stop.sh` live next to the checkout, in `../shared/lms/moodle`
(test infrastructure, like a database server; `$GATEHOUSE_MOODLE_HOME` points elsewhere).
`start.sh DIR PORT` installs PHP with apt, unpacks and installs Moodle into DIR the first time
(about a minute), and only starts it afterwards (seconds). DIR is `$GATEHOUSE_MOODLE_DIR`, else
`/var/cache/gatehouse/moodle`: not `~/.cache`, because start.sh runs as root (apt, runuser) and
runs PostgreSQL as the `postgres` user on DIR/pg, which cannot enter root's 0700 home. PORT is
`$GATEHOUSE_MOODLE_PORT`, else 28080 (fixed, because Moodle's wwwroot, hence its issuer, is fixed
at install time; below Linux's ephemeral range so a server bound to port 0 never takes it).

Without `../shared/lms/moodle` the Moodle tests are skipped, unless GATEHOUSE_REQUIRE_MOODLE is
set (CI), which makes that, or a Moodle that will not start, a failure.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

CHECKOUT = Path(__file__).resolve().parents[2]


def _shared_moodle() -> Path:
    """Return where start.sh lives: $GATEHOUSE_MOODLE_HOME, else `shared/lms/moodle` beside the
    checkout or beside any folder above it (CI may clone main one level deeper), else the
    workplace's /work/shared."""
    if os.environ.get("GATEHOUSE_MOODLE_HOME"):
        return Path(os.environ["GATEHOUSE_MOODLE_HOME"])
    candidates = [folder / "shared" / "lms" / "moodle" for folder in CHECKOUT.parents]
    candidates.append(Path("/work/shared/lms/moodle"))
    for candidate in candidates:
        if (candidate / "start.sh").is_file():
            return candidate
    return CHECKOUT.parent / "shared" / "lms" / "moodle"


SHARED = _shared_moodle()
APT_LOCK_ATTEMPTS, APT_LOCK_WAIT = 4, 10  # seconds, growing: apt-get update takes a while
DEFAULT_DIR = "/var/cache/gatehouse/moodle"  # the postgres user must reach DIR/pg
DEFAULT_PORT = 28080
# Read once at import: the suite's clean_environment fixture empties GATEHOUSE_* per test.
REQUIRED = bool(os.environ.get("GATEHOUSE_REQUIRE_MOODLE"))
CACHE_DIR = os.environ.get("GATEHOUSE_MOODLE_DIR")
PORT = int(os.environ.get("GATEHOUSE_MOODLE_PORT") or DEFAULT_PORT)
START_TIMEOUT = 600  # a first start installs PHP and Moodle


class Unavailable(Exception):
    """Moodle cannot run here (no ../shared/lms/moodle, or start.sh failed).

    args: a one-line reason, then start.sh's last lines of output when it failed.
    """


def cache_dir() -> Path:
    """Return where Moodle is installed and kept between runs (outside the checkout)."""
    return Path(CACHE_DIR or DEFAULT_DIR)


def unavailable_reason() -> str | None:
    """Return why the real-Moodle tests cannot run here, or None."""
    if not (SHARED / "start.sh").is_file():
        return (
            f"the real-Moodle tests need {SHARED} (a Moodle 4.5.6 with start.sh) next to this "
            "checkout; it is not there"
        )
    return None


@dataclass
class User:
    username: str
    password: str


ADMIN = User("admin", "Admin-pass-1")
STUDENT = User("student1", "Student-pass-1")  # made by course.php


class Moodle:
    """A started Moodle: its URL (also its issuer), PHP command, database and helpers."""

    def __init__(self, directory: Path, port: int = PORT):
        self.dir = directory
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.moodle_dir = str(directory / "moodle")
        self.php_command = ["php", "-d", "max_input_vars=5000", "-d", "memory_limit=512M"]
        self.started_here = False

    def start(self) -> Moodle:
        """Run start.sh (idempotent); remember whether this call started the PHP server."""
        self.started_here = not self._serving()
        for attempt in range(APT_LOCK_ATTEMPTS):
            try:
                result = subprocess.run(  # noqa: S603 - a fixed script and arguments
                    [str(SHARED / "start.sh"), str(self.dir), str(self.port)],
                    capture_output=True,
                    text=True,
                    timeout=START_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise Unavailable(f"start.sh did not finish in {START_TIMEOUT} s") from exc
            # start.sh checks PHP's extensions with `php -m | grep -q` under pipefail: when grep
            # stops reading early php dies of SIGPIPE, the check fails, and start.sh runs apt-get
            # for packages already installed, which fails while any other apt-get holds dpkg's
            # lock (seen on a loaded machine beside another apt-get): wait, run start.sh again.
            if result.returncode == 0 or "dpkg frontend lock" not in result.stderr:
                break
            time.sleep(APT_LOCK_WAIT * (attempt + 1))
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["(no output)"]
            raise Unavailable(
                f"start.sh {self.dir} {self.port} failed: {lines[-1]}",
                "\n".join(lines[-15:]),
            )
        printed = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        self.url = printed["MOODLE_URL"]
        self.moodle_dir = printed["MOODLE_DIR"]
        self.php_command = shlex.split(printed["MOODLE_PHP"])
        return self

    def stop(self) -> None:
        """Stop Moodle, only if start() started it (a developer's running Moodle stays up)."""
        if self.started_here:
            subprocess.run(  # noqa: S603 - a fixed script and arguments
                [str(SHARED / "stop.sh"), str(self.dir)],
                capture_output=True,
                timeout=60,
                check=False,
            )

    def _serving(self) -> bool:
        pid_file = self.dir / "php.pid"
        if not pid_file.is_file():
            return False
        try:
            os.kill(int(pid_file.read_text().strip()), 0)
        except (ValueError, OSError):
            return False
        return True

    # --- looking inside -----------------------------------------------------------------------

    def php(self, script: str | Path, *args: str) -> str:
        """Run a PHP CLI script with MOODLE_DIR set; return its stdout (raise on failure)."""
        result = subprocess.run(  # noqa: S603 - the PHP command start.sh printed
            [*self.php_command, str(script), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "MOODLE_DIR": self.moodle_dir},
        )
        if result.returncode != 0:
            raise RuntimeError(f"php {script} failed: {result.stdout}\n{result.stderr}")
        return result.stdout

    def run_php(self, body: str) -> str:
        """Run PHP statements inside Moodle as the admin (CLI), e.g. calls to mod/lti's API."""
        preamble = (
            "<?php\ndefine('CLI_SCRIPT', true);\n"
            "require(getenv('MOODLE_DIR') . '/config.php');\n"
            "require_once($CFG->dirroot . '/mod/lti/locallib.php');\n"
            "require_once($CFG->dirroot . '/course/lib.php');\n"
            "\\core\\session\\manager::set_user(get_admin());\n"
        )
        with tempfile.NamedTemporaryFile("w", suffix=".php", delete=False) as script:
            script.write(preamble + body + "\n")
        try:
            return self.php(script.name)
        finally:
            os.unlink(script.name)

    def sql(self, query: str, params: tuple | dict = ()) -> list[tuple]:
        """Run one query on Moodle's own database (its private cluster) and return the rows."""
        import psycopg

        port = (self.dir / "pg.port").read_text().strip()
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            dbname="moodle",
            user="moodle",
            password="moodle",
            connect_timeout=5,
            autocommit=True,
        ) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def tool_types(self, domain: str) -> list[dict]:
        """Return Moodle's registered tools (mdl_lti_types) for a tool domain, oldest first."""
        rows = self.sql(
            "select id, name, clientid, state, tooldomain, baseurl from mdl_lti_types "
            "where tooldomain = %s order by id",
            (domain,),
        )
        keys = ("id", "name", "clientid", "state", "tooldomain", "baseurl")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def reset(self) -> None:
        """Delete what earlier runs left: every registered tool and course.php's course (its
        activities would pile up run after run), through Moodle's own API."""
        self.run_php(
            "foreach ($DB->get_records('lti_types') as $type) { lti_delete_type($type->id); }\n"
            "if ($course = $DB->get_record('course', ['shortname' => 'LTI101'])) {\n"
            "    delete_course($course, false);\n"
            "}"
        )

    def make_course(self, type_id: int, activity: str) -> dict[str, int]:
        """Run course.php: course LTI101, student1 enrolled, an activity using the tool type."""
        out = self.php(SHARED / "course.php", str(type_id), activity)
        found = dict(re.findall(r"(\w+)=(\d+)", out))
        return {key: int(value) for key, value in found.items()}

    def user_id(self, username: str) -> int:
        ((user_id,),) = self.sql("select id from mdl_user where username = %s", (username,))
        return user_id

    def openid_configuration(self) -> dict:
        response = requests.get(self.url + "/mod/lti/openid-configuration.php", timeout=10)
        response.raise_for_status()
        return response.json()


def session_cookie(moodle: Moodle, user: User) -> dict:
    """Log in through Moodle's login form (scripted) and return its session cookie for a browser.

    Scripted, not typed: a browser on the login page fires AJAX calls that, with PHP's
    multi-worker server, sometimes race the login POST and undo it ("Invalid login").
    """
    with requests.Session() as session:
        form = session.get(moodle.url + "/login/index.php", timeout=30)
        token = re.findall(r'name="logintoken" value="([^"]+)"', form.text)[0]
        answer = session.post(
            moodle.url + "/login/index.php",
            data={"username": user.username, "password": user.password, "logintoken": token},
            timeout=30,
        )
        if "/login/" in answer.url:
            raise RuntimeError(f"Moodle refused {user.username}'s log-in: {answer.url}")
        value = session.cookies.get("MoodleSession")
    return {"name": "MoodleSession", "value": value, "url": moodle.url, "httpOnly": True}
