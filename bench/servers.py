"""The servers under test, started as they are deployed, and what the kernel says they used."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from app import testing
from app.testing import ServerFailed, ServerProcess, base_environment
from bench import floor as floor_app

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LTIJS_DIR = BENCH / "ltijs"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# The tool every server registers, as close to one another as each allows.
TOOL_NAME = "Quiz Tool"
TOOL_DESCRIPTION = "Auto-graded quizzes."
# The five scopes ltijs always asks for; Gatehouse is configured to ask for the same.
TOOL_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
)


class Server(ServerProcess):
    """A server process under test (app.testing starts and stops it), and what it used."""

    # Other processes doing the server's work (its PostgreSQL server), counted in its CPU.
    helpers: Callable[[], list[int]] | None = None

    def pids(self) -> list[int]:
        """Return the pids of the server: its main process, every descendant, its helpers."""
        return [self.pid, *descendants(self.pid), *(self.helpers() if self.helpers else [])]

    def cpu_seconds(self) -> float:
        """Return user + system CPU seconds used so far by the server's live processes."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def check_alive(self) -> None:
        """Raise ServerFailed when the process has exited."""
        if self.process is None or self.process.poll() is not None:
            raise ServerFailed(f"{self.label} exited:\n{self.log_tail()}")


class Gunicorn(Server, testing.Gunicorn):
    """A Flask app under gunicorn with Gatehouse's own settings (app/gunicorn_config.py)."""

    def __init__(
        self,
        workdir: Path,
        label: str,
        app: str,
        env: dict[str, str],
        workers: int = 2,
        threads: int = 4,
    ):
        super().__init__(
            app,
            env,
            workers=workers,
            threads=threads,
            label=label,
            log_path=workdir / f"{label}.log",
        )
        self.workdir = workdir

    def worker_pids(self) -> list[int]:
        """Return the pids of the gunicorn workers (the master's children)."""
        return children(self.pid)

    def wait_for_workers(self, timeout: float = 30.0) -> list[int]:
        """Wait until every worker has loaded the app (its memory stops growing)."""
        deadline = time.monotonic() + timeout
        previous: dict[int, int] = {}
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            current = {pid: rss_bytes(pid) for pid in pids}
            if len(pids) == self.workers and current == previous and all(current.values()):
                return pids
            previous = current
            time.sleep(0.5)
        raise ServerFailed(f"{self.label}: workers did not settle:\n{self.log_tail()}")


def gatehouse(workdir: Path, label: str, app: str = "wsgi:app", **env: str) -> Gunicorn:
    """Return Gatehouse under gunicorn on its own SQLite file, set up like the other tools."""
    database = workdir / f"{label}.sqlite3"
    scopes = ", ".join(f'"{scope}"' for scope in TOOL_SCOPES)
    return Gunicorn(
        workdir,
        label,
        app,
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "SECRET_KEY": "benchmark",
            "GATEHOUSE_TOOL__NAME": TOOL_NAME,
            "GATEHOUSE_TOOL__DESCRIPTION": TOOL_DESCRIPTION,
            "GATEHOUSE_TOOL__SCOPES": f"[{scopes}]",
            "GATEHOUSE_REGISTRATION__AUTO_ACTIVATE": "true",
            "GATEHOUSE_SECURITY__ALLOW_INSECURE_PLATFORMS": "true",
            # All registrations come from one address: measure the work, not the rate limits.
            "GATEHOUSE_LIMITS__ENABLED": "false",
            **env,
        },
    )


def floor(
    workdir: Path, label: str = "floor", app: str = "bench.floor:app", tool_url: str = ""
) -> Gunicorn:
    """Return the floor app (bench/floor.py, or bench/launch_floor.py) under the same settings."""
    database = str(workdir / f"{label}.sqlite3")
    floor_app.connect(database).close()  # in WAL with its tables before two workers open it
    server = Gunicorn(workdir, label, app, {"FLOOR_DATABASE": database, "FLOOR_TOOL_URL": tool_url})
    # The floor has one route and nothing else: a bare GET of it answers 400 once it is up.
    server.health_path = "/lti/register"
    server.health_status = 400
    return server


class Ltijs(Server):
    """ltijs (bench/ltijs/server.js) in one node process, its database on SQLite."""

    health_path = "/lti/keys"

    def __init__(self, workdir: Path, label: str, tool_url: str = ""):
        super().__init__(label, workdir / f"{label}.log")
        self.workdir = workdir
        self.tool_url = tool_url

    def command(self) -> list[str]:
        return [node_binary() or "node", "server.js"]

    def cwd(self) -> Path:
        return LTIJS_DIR

    def environment(self) -> dict[str, str]:
        database = self.workdir / f"{self.label}.sqlite3"
        # Same journal mode as the others (WAL is a property of the file, so set it up front).
        import sqlite3

        with sqlite3.connect(database) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.close()
        return {
            **base_environment(),
            "PORT": str(self.port),
            "LTIJS_DATABASE": str(database),
            "LTIJS_KEY": "benchmark-encryption-key",
            "NODE_ENV": "production",
            "TOOL_URL": self.tool_url,
        }


def postgres_cluster():
    """Start a private PostgreSQL cluster as the test suite does, or raise its Unavailable."""
    from tests.support.postgres import start_cluster

    return start_cluster()


def cluster_pids(cluster) -> list[int]:
    """Return the pids of a cluster's server: the postmaster and its backends."""
    try:
        with open(Path(cluster.data) / "postmaster.pid") as handle:
            postmaster = int(handle.readline())
    except (OSError, ValueError):
        return []
    return [postmaster, *descendants(postmaster)]


def node_binary() -> str | None:
    """Return the path of node, or None."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory) / "node"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def ltijs_unavailable() -> str | None:
    """Say why ltijs cannot run here, or return None when it can."""
    if node_binary() is None:
        return "node is not installed (make bench installs Debian's nodejs and npm as root)"
    missing = [
        package
        for package in ("ltijs", "ltijs-sequelize", "sqlite3")
        if not (LTIJS_DIR / "node_modules" / package / "package.json").is_file()
    ]
    if missing:
        reason = f"bench/ltijs/node_modules lacks {', '.join(missing)}"
        log = LTIJS_DIR / "npm-install.log"
        errors = []
        if log.is_file():
            lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
            errors = [line for line in lines if "ERR" in line or "error" in line.lower()]
        if errors:
            return f"{reason}: npm ci failed: {' / '.join(errors[-4:])[:600]}"
        return f"{reason} (make bench installs it with npm ci in bench/ltijs)"
    return None


def package_version(package: str) -> str | None:
    """Return the installed version of an npm package under bench/ltijs, or None."""
    import json

    try:
        manifest = LTIJS_DIR / "node_modules" / package / "package.json"
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


# --- /proc ------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    # The command name may hold spaces and parentheses: split after its closing one.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = _stat_fields(pid)
    except (OSError, ValueError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """Return the pids whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if int(_stat_fields(int(entry))[1]) == pid:
                found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return sorted(found)


def descendants(pid: int) -> list[int]:
    """Return every process below pid."""
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def rss_bytes(pid: int) -> int:
    """Return a process's resident set size (VmRSS) in bytes, 0 when it is gone."""
    return _proc_kib(pid, "status", "VmRSS:") * 1024


def pss_bytes(pid: int) -> int:
    """Return a process's proportional set size (shared pages split among sharers), or 0."""
    return _proc_kib(pid, "smaps_rollup", "Pss:") * 1024


def _proc_kib(pid: int, name: str, label: str) -> int:
    """Return the kiB figure on the line of /proc/<pid>/<name> starting with label, or 0."""
    try:
        with open(f"/proc/{pid}/{name}") as handle:
            for line in handle:
                if line.startswith(label):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
