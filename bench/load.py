"""The clients: full registrations and launches through the LMS simulator, plain GETs for keys."""

from __future__ import annotations

import http.client
import itertools
import re
import resource
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from werkzeug.wrappers import Response

from app.simulator import Simulator
from app.simulator.driver import drive
from app.simulator.launch import browser_session, run_launch, verdict
from app.testing import LoopbackServer
from bench.servers import Server

REGISTER_PATH = "/lti/register"


def client_cpu_seconds() -> float:
    """Return the CPU seconds this process (browser threads and the simulated LMS) has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Cell:
    """One measurement: a server, a concurrency, a round; what completed and how fast."""

    server: str
    concurrency: int
    round: int
    latencies: list[float] = field(default_factory=list)  # seconds, browser-side
    elapsed: float = 0.0
    failures: list[str] = field(default_factory=list)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    unit: str = "registrations"  # what completed: registrations or launches

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "server": self.server,
            "concurrency": self.concurrency,
            "round": self.round,
            "completed": self.completed,
            "failed": len(self.failures),
            "elapsed_s": round(self.elapsed, 4),
            f"{self.unit}_per_s": round(self.throughput, 3),
            "server_cpu_s": round(self.server_cpu, 3),
            "client_cpu_s": round(self.client_cpu, 3),
            "failures": self.failures[:5],
        }


def register_many(
    server: Server,
    label: str,
    concurrency: int,
    *,
    seconds: float,
    min_count: int,
    max_count: int | None = None,
    timeout: float = 120.0,
    round_number: int = 0,
    profile: str = "generic",
) -> Cell:
    """Run closed-loop registrations at this concurrency and time them.

    Each of `concurrency` browsers starts a new registration as soon as its last one ends, until
    `seconds` have passed and at least `min_count` were started (never more than `max_count`).
    Throughput counts completed registrations over the time from the first start to the last
    end; latency is what the browser waits, from its GET of the registration URL to the close
    page. Every registration is judged like any other simulator run: one that the LMS did not
    accept, or whose final page would not close the dialog, counts as failed, not as done.
    """
    cell = Cell(server=label, concurrency=concurrency, round=round_number)
    tool_url = server.url + REGISTER_PATH
    with Simulator(profile) as sim:

        def once() -> tuple[str | None, float | None]:
            report = drive(sim, tool_url, timeout=timeout, inline_close=True)
            if not report.ok:
                return "; ".join(report.problems)[:500], None
            return None, report.browser_seconds

        return closed_loop(
            cell,
            server,
            concurrency,
            seconds=seconds,
            min_count=min_count,
            max_count=max_count,
            once=once,
        )


def closed_loop(
    cell: Cell,
    server: Server,
    concurrency: int,
    *,
    seconds: float,
    min_count: int,
    max_count: int | None,
    once: Callable[[], tuple[str | None, float | None]],
) -> Cell:
    """Run `once` from `concurrency` threads, each starting again as soon as its last ends; fill
    `cell` with latencies, failures, elapsed time and CPU, and return it.

    Threads stop once `seconds` have passed and at least `min_count` were started (never more
    than `max_count`). `once` returns (what went wrong or None, its latency or None for the
    time it took).
    """
    lock = threading.Lock()
    started = 0
    ends: list[float] = []
    begin = time.perf_counter()
    deadline = begin + seconds
    cpu_server = server.cpu_seconds()
    cpu_client = client_cpu_seconds()

    def worker() -> None:
        nonlocal started
        while True:
            with lock:
                if max_count is not None and started >= max_count:
                    return
                if time.perf_counter() >= deadline and started >= min_count:
                    return
                started += 1
            start = time.perf_counter()
            try:
                problem, latency = once()
            except Exception as exc:  # a timeout or a client bug shows as a failure, not a hang
                problem, latency = f"{type(exc).__name__}: {exc}", None
            end = time.perf_counter()
            with lock:
                ends.append(end)
                if problem is None:
                    cell.latencies.append(end - start if latency is None else latency)
                else:
                    cell.failures.append(problem)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cell.elapsed = (max(ends) if ends else time.perf_counter()) - begin
    cell.server_cpu = server.cpu_seconds() - cpu_server
    cell.client_cpu = client_cpu_seconds() - cpu_client
    return cell


# --- launches -----------------------------------------------------------------------------------

TOOL_ANSWER = "The tool opened."
_users = itertools.count(1)


def trivial_tool() -> LoopbackServer:
    """Return the tool every launch is handed to: any GET gets a short page."""

    def app(environ, start_response):
        return Response(TOOL_ANSWER)(environ, start_response)

    return LoopbackServer(app, "127.0.0.1", name="bench-tool")


def launch_once(sim: Simulator, client_id: str, tool_url: str, timeout: float) -> str | None:
    """Run one user's whole launch in a browser of its own; return what went wrong, or None.

    The LMS starts the launch (its login initiation URL), the browser follows it through the
    tool's login, the LMS's authorization endpoint and the form post to the tool's launch URL,
    then the tool's redirects (ltijs redirects to itself once, with its ltik) to the trivial
    tool, which must answer.
    """
    session = browser_session()  # a cookie jar and connections of its own, as a user has
    try:
        # A user of their own, as each student of a class is (ltijs keeps one launch per user:
        # the same user launching 16 times at once loses launches in its database).
        pending = sim.launches.prepare(client_id, claims={"sub": f"user-{next(_users)}"})
        result = run_launch(pending.login_url, timeout=timeout, session=session)
        status, location = result.status, result.location
        here = result.form[0] if result.form else pending.login_url
        for _hop in range(3):
            if status not in (302, 303) or not location:
                break
            here = urljoin(here, location)
            if here.startswith(tool_url):
                break
            answer = session.get(here, allow_redirects=False, timeout=timeout)
            status, location = answer.status_code, answer.headers.get("Location")
        if not here.startswith(tool_url):
            if here == (result.form[0] if result.form else pending.login_url):
                return "did not reach the tool: " + verdict(result)[1][:300]
            return f"did not reach the tool: HTTP {status} at {here[:200]}"
        answer = session.get(here, timeout=timeout)
        if answer.status_code != 200 or answer.text != TOOL_ANSWER:
            return f"the tool answered HTTP {answer.status_code}"
        return None
    finally:
        session.close()


def launch_many(
    server: Server,
    label: str,
    sim: Simulator,
    client_id: str,
    tool_url: str,
    concurrency: int,
    *,
    seconds: float,
    min_count: int,
    max_count: int | None = None,
    timeout: float = 60.0,
    round_number: int = 0,
) -> Cell:
    """Run closed-loop launches at this concurrency, each by a new user, and time them.

    As register_many: `concurrency` users launch one after another until `seconds` have passed
    and at least `min_count` launches started; latency is the user's, from the LMS's login
    initiation to the tool's page.
    """
    cell = Cell(server=label, concurrency=concurrency, round=round_number, unit="launches")
    return closed_loop(
        cell,
        server,
        concurrency,
        seconds=seconds,
        min_count=min_count,
        max_count=max_count,
        once=lambda: (launch_once(sim, client_id, tool_url, timeout), None),
    )


def launch_burst(
    server: Server,
    label: str,
    sim: Simulator,
    client_id: str,
    tool_url: str,
    rate: float,
    count: int,
    *,
    users: int = 64,
    timeout: float = 60.0,
) -> Cell:
    """Start `count` launches at `rate` a second, whether or not the earlier ones are done.

    A class starting: launches arrive on a schedule (open loop), so a server that falls behind
    shows as latency. Each latency runs from the launch's scheduled start, so time spent
    waiting for a free user thread counts too. The cell's concurrency is the rate.
    """
    cell = Cell(server=label, concurrency=round(rate), round=0, unit="launches")
    lock = threading.Lock()
    next_index = 0
    ends: list[float] = []
    cpu_server = server.cpu_seconds()
    begin = time.perf_counter()

    def user() -> None:
        nonlocal next_index
        while True:
            with lock:
                if next_index >= count:
                    return
                index = next_index
                next_index += 1
            scheduled = begin + index / rate
            time.sleep(max(0.0, scheduled - time.perf_counter()))
            try:
                problem = launch_once(sim, client_id, tool_url, timeout)
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            end = time.perf_counter()
            with lock:
                ends.append(end)
                if problem is None:
                    cell.latencies.append(end - scheduled)
                else:
                    cell.failures.append(problem)

    threads = [threading.Thread(target=user, daemon=True) for _ in range(min(users, count))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cell.elapsed = (max(ends) if ends else time.perf_counter()) - begin
    cell.server_cpu = server.cpu_seconds() - cpu_server
    return cell


# --- plain GETs ---------------------------------------------------------------------------------


@dataclass
class HttpRun:
    """Requests per second of one URL over one run."""

    path: str
    requests: int
    seconds: float
    errors: int
    server_cpu: float
    client: str
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.rps, 1),
            "errors": self.errors,
            "server_cpu_s": round(self.server_cpu, 3),
            "client": self.client,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
        }


def wrk_path() -> str | None:
    """Return the path of wrk, the load generator used for plain GETs, or None."""
    return shutil.which("wrk")


def get_many(server: Server, path: str, seconds: float, connections: int) -> HttpRun:
    """GET server.url + path from `connections` clients at once for `seconds`."""
    cpu = server.cpu_seconds()
    if wrk_path():
        run = _wrk(server.url + path, seconds, connections)
    else:
        run = _python_client(server.url + path, seconds, connections)
    run.path = path
    run.server_cpu = server.cpu_seconds() - cpu
    return run


_WRK_DURATION = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk(url: str, seconds: float, connections: int) -> HttpRun:
    # One wrk thread drives tens of thousands of requests a second: far more than the server
    # under test, so the load generator takes as little CPU from it as possible. A new
    # connection per request, as LMSes fetch key sets: a keep-alive connection stays with the
    # worker that accepted it, and how wrk's connections happened to split between the two
    # workers swung the results by 2x from one run to the next.
    command = [
        wrk_path() or "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "-H",
        "Connection: close",
        "--latency",
        url,
    ]
    result = subprocess.run(  # noqa: S603 - fixed arguments
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    out = result.stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not total:
        raise RuntimeError(f"unexpected wrk output:\n{out}\n{result.stderr}")
    elapsed = float(total.group(2)) * _WRK_DURATION[total.group(3)] / 1000
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())

    def percentile(name: str) -> float | None:
        found = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
        return round(float(found.group(1)) * _WRK_DURATION[found.group(2)], 3) if found else None

    return HttpRun(
        path="",
        requests=int(total.group(1)),
        seconds=elapsed,
        errors=errors,
        server_cpu=0.0,
        client=f"wrk, 1 thread, {connections} connections",
        latency_p50_ms=percentile("50"),
        latency_p99_ms=percentile("99"),
    )


def _python_client(url: str, seconds: float, connections: int) -> HttpRun:
    """GETs from threads, a connection each: the fallback when wrk is not installed."""
    parts = urlsplit(url)
    counts = [0] * connections
    errors = [0] * connections
    begin = time.perf_counter()
    deadline = begin + seconds

    def loop(index: int) -> None:
        while time.perf_counter() < deadline:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            try:
                conn.request("GET", parts.path, headers={"Connection": "close"})
                answer = conn.getresponse()
                answer.read()
                if answer.status == 200:
                    counts[index] += 1
                else:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
            finally:
                conn.close()

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return HttpRun(
        path="",
        requests=sum(counts),
        seconds=time.perf_counter() - begin,
        errors=sum(errors),
        server_cpu=0.0,
        client=f"Python http.client, {connections} threads (wrk is not installed)",
    )
