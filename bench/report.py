"""Summaries, goals and the one table the benchmark prints (Markdown, so the README can show it)."""

from __future__ import annotations

import math
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass

from bench.load import Cell, HttpRun
from bench.lookup import percentile

SERVERS = ("gatehouse", "floor", "ltijs")


def summarise_cells(cells: list[Cell]) -> dict:
    """Return, per server and concurrency, the figures the table shows.

    Every figure pools the rounds: throughput is all completed registrations over all the
    measured time (rounds were interleaved across servers, so each spans the same stretch of
    the run), latency percentiles take every registration, CPU is the total over the total.
    The per-round throughputs are kept to show the spread.
    """
    summary: dict = {}
    for cell in cells:
        entry = summary.setdefault(cell.server, {}).setdefault(str(cell.concurrency), [])
        entry.append(cell)
    result: dict = {}
    for server, by_concurrency in summary.items():
        result[server] = {}
        for concurrency, group in by_concurrency.items():
            latencies = sorted(x for cell in group for x in cell.latencies)
            completed = sum(cell.completed for cell in group)
            rounds = [cell.throughput for cell in group if cell.completed]
            elapsed = sum(cell.elapsed for cell in group)
            result[server][concurrency] = {
                f"{group[0].unit}_per_s": completed / elapsed if elapsed else 0.0,
                "rounds_per_s": [round(r, 3) for r in rounds],
                "p50_ms": percentile(latencies, 50) * 1000 if latencies else math.nan,
                "p99_ms": percentile(latencies, 99) * 1000 if latencies else math.nan,
                "completed": completed,
                "failed": sum(len(cell.failures) for cell in group),
                "server_cpu_ms": 1000 * sum(c.server_cpu for c in group) / completed
                if completed
                else math.nan,
                "client_cpu_ms": 1000 * sum(c.client_cpu for c in group) / completed
                if completed
                else math.nan,
            }
    return result


def summarise_http(runs: list[HttpRun]) -> dict:
    """Return per path the pooled requests/s (all requests over all runs) and CPU per request."""
    by_path: dict[str, list[HttpRun]] = {}
    for run in runs:
        by_path.setdefault(run.path, []).append(run)
    result = {}
    for path, group in by_path.items():
        requests = sum(r.requests for r in group)
        seconds = sum(r.seconds for r in group)
        result[path] = {
            "requests_per_s": requests / seconds if seconds else 0.0,
            "rounds_per_s": [round(r.rps, 1) for r in group],
            "server_cpu_us": 1e6 * sum(r.server_cpu for r in group) / requests
            if requests
            else math.nan,
            "requests": requests,
            "errors": sum(r.errors for r in group),
            "client": group[0].client,
        }
    return result


@dataclass
class Goal:
    """One goal of the issue: what it asks, the measured value, and whether it was met."""

    text: str
    measured: str
    met: bool | None  # None: could not be measured, which is reported as a FAIL
    why: str = ""

    @property
    def verdict(self) -> str:
        return "PASS" if self.met else "FAIL"

    def line(self) -> str:
        detail = self.measured if self.met is not None else f"not measured: {self.why}"
        return f"{self.verdict}  {self.text}: {detail}"

    def as_dict(self) -> dict:
        return {
            "goal": self.text,
            "measured": self.measured,
            "verdict": self.verdict,
            "why": self.why or None,
        }


def ratio_goal(
    text: str,
    value: float | None,
    reference: float | None,
    unit: str,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    times: bool = False,
    why: str = "",
) -> Goal:
    """Return the goal that value / reference is at least `at_least` (or at most `at_most`).

    Measured as "0.82 (174 vs 212 registrations/s)", with an x after the ratio when `times`;
    a missing figure is "not measured", a FAIL.
    """
    r = ratio(value, reference)
    if math.isnan(r):
        met = None
    else:
        met = r >= at_least if at_least is not None else r <= at_most
    shown = f"{fmt(r)}{'x' if times else ''} ({fmt(value)} vs {fmt(reference)} {unit})"
    return Goal(text, shown, met, why=why)


def ratio(a: float | None, b: float | None) -> float:
    """Return a / b, or NaN when either is missing."""
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b


def round_ratios(cells: list[dict], server: str, reference: str, concurrency: int) -> list[float]:
    """Return `server`'s CPU per completed item over `reference`'s, round by round.

    A round measures the servers one after another, within about a minute, so these pair
    figures taken close together, where the pooled figure the goals use mixes the host's slow
    and fast stretches. Rounds where either completed nothing are left out.
    """
    per_round: dict[int, dict[str, float]] = {}
    for cell in cells:
        if cell["concurrency"] == concurrency and cell["completed"]:
            costs = per_round.setdefault(cell["round"], {})
            costs[cell["server"]] = cell["server_cpu_s"] / cell["completed"]
    return [
        costs[server] / costs[reference]
        for _round, costs in sorted(per_round.items())
        if server in costs and reference in costs and costs[reference]
    ]


def fmt(value: float | None, unit: str = "") -> str:
    """Format a figure with sensible precision; n/a for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 100:
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 0.1 or magnitude == 0:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return text + unit


def machine() -> dict:
    """Describe the machine the benchmark ran on."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = math.nan
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory_gib = int(line.split()[1]) / 2**20
                    break
    except OSError:
        pass
    node = None
    node_path = shutil.which("node")
    if node_path:
        node = subprocess.run(  # noqa: S603 - fixed command
            [node_path, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    debian = None
    if os.path.exists("/etc/debian_version"):
        with open("/etc/debian_version") as handle:
            debian = handle.read().strip()
    import gunicorn

    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_gib, 1),
        "os": f"Debian {debian}" if debian else platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "gunicorn": gunicorn.__version__,
        "node": node,
        "executable": sys.executable,
    }


def machine_cpu() -> dict:
    """Return the machine's CPU time so far, in seconds: busy (not idle, not iowait), steal."""
    with open("/proc/stat") as handle:
        fields = [int(n) for n in handle.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return {
        "busy": (user + nice + system + irq + softirq) / ticks,
        "steal": steal / ticks,
        "total": sum(fields[:8]) / ticks,
    }


def own_cpu_seconds() -> float:
    """Return CPU seconds of this process and of its children that have ended (the servers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine_load(before: dict, after: dict, own: float) -> dict:
    """Say how busy the machine was over the run, and how much of that was someone else."""
    total = after["total"] - before["total"]
    busy = after["busy"] - before["busy"]
    if total <= 0:
        return {}
    return {
        "busy_percent": round(100 * busy / total, 1),
        "others_percent": round(100 * max(0.0, busy - own) / total, 1),
        "steal_percent": round(100 * (after["steal"] - before["steal"]) / total, 1),
    }


def machine_line(info: dict) -> str:
    """Return the machine as one sentence."""
    node = f", node {info['node']}" if info.get("node") else ""
    return (
        f"{info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB RAM, {info['os']}, "
        f"Python {info['python']}, SQLite {info['sqlite']}, gunicorn {info['gunicorn']}{node}"
    )


def table(rows: list[list[str]], header: list[str]) -> str:
    """Render rows as a padded Markdown table."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    right = [False] + [True] * (len(header) - 1)

    def line(cells: list[str]) -> str:
        padded = [
            str(c).rjust(w) if r else str(c).ljust(w)
            for c, w, r in zip(cells, widths, right, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if r else ":" + "-" * (w + 1)
            for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return "\n".join([line(header), rule, *[line(r) for r in rows]])
