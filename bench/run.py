"""Run Gatehouse's benchmark and print one table: `python -m bench.run` (`make bench`).

Everything is measured in the same run, so the ratios hold on a noisy machine: registrations
against Gatehouse, the floor (bench/floor.py) and ltijs (bench/ltijs/) in interleaved rounds;
`/lti/keys` against a bare route in interleaved pairs; platform lookups at three store sizes;
and a worker's memory. `--smoke` runs the same steps with tiny counts (tests/test_bench.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.simulator import Simulator
from app.simulator.driver import drive
from bench import chart, load, lookup, report, servers
from bench.report import Goal, fmt, ratio, ratio_goal

RESULTS_DIR = servers.BENCH / "results"
LABELS = {"gatehouse": "Gatehouse", "floor": "floor", "ltijs": "ltijs"}


@dataclass
class Plan:
    """How much of each step to run."""

    rounds: int = 4
    concurrency: tuple[int, int] = (1, 16)
    cell_seconds: float = 5.0
    warmup_seconds: float = 2.0
    ltijs_c1_seconds: float = 10.0
    ltijs_high_count: int = 32
    memory_registrations: int = 1000
    keys_pairs: int = 6
    keys_seconds: float = 3.0
    keys_connections: int = 16
    platforms: tuple[int, ...] = (1_000, 100_000, 1_000_000)
    lookups: int = 20_000
    registration_timeout: float = 300.0
    launch_rounds: int = 4
    launch_warmup_count: int = 64
    memory_launches: int = 1000
    # The class start: bursts of burst_seconds at rising rates, from the first rate up.
    burst_rates: tuple[float, ...] = (5, 10, 15, 20, 30, 40, 50, 60, 80, 100, 120, 150, 200)
    burst_seconds: float = 4.0

    @classmethod
    def smoke(cls) -> Plan:
        return cls(
            rounds=1,
            cell_seconds=0.0,
            warmup_seconds=0.0,
            ltijs_c1_seconds=0.0,
            ltijs_high_count=16,
            memory_registrations=5,
            keys_pairs=1,
            keys_seconds=1.0,
            keys_connections=8,
            platforms=(100, 1_000),
            lookups=200,
            registration_timeout=60.0,
            launch_rounds=1,
            launch_warmup_count=4,
            memory_launches=5,
            burst_rates=(5,),
            burst_seconds=1.0,
        )


def say(message: str) -> None:
    """Report progress on stderr; stdout carries only the result."""
    print(message, file=sys.stderr, flush=True)


# --- 1-3: registrations -------------------------------------------------------------------------


def registrations(plan: Plan, workdir: Path, ltijs_skip: str | None) -> dict:
    """Measure full registrations on Gatehouse, the floor and ltijs, interleaved by rounds."""
    low, high = plan.concurrency
    ltijs_reason = ltijs_skip or servers.ltijs_unavailable()
    candidates: dict[str, servers.Server] = {
        "gatehouse": servers.gatehouse(workdir, "gatehouse"),
        "floor": servers.floor(workdir),
    }
    if ltijs_reason is None:
        candidates["ltijs"] = servers.Ltijs(workdir, "ltijs")
    cells: list[load.Cell] = []
    with contextlib.ExitStack() as stack:
        running: dict[str, servers.Server] = {}
        for name, server in candidates.items():
            try:
                running[name] = stack.enter_context(server)
            except servers.ServerFailed as exc:
                if name != "ltijs":
                    raise
                ltijs_reason = f"ltijs did not start: {str(exc).strip()[-400:]}"
        for name, server in list(running.items()):  # ltijs may be left out
            say(f"registrations: warming up {name}")
            warm = load.register_many(
                server,
                name,
                high if name != "ltijs" else low,
                seconds=plan.warmup_seconds if name != "ltijs" else 0.0,
                min_count=2 * high if name != "ltijs" else 2,
                timeout=plan.registration_timeout,
            )
            if warm.failures:
                message = f"{name}: registrations fail: {warm.failures[0]}"
                ltijs_reason = _left_out(running, name, message)
        names = list(running)
        for number in range(plan.rounds):
            for name in _rotated(names, number):
                for concurrency in plan.concurrency:
                    spec = _cell_spec(plan, name, concurrency, number)
                    if spec is None:
                        continue
                    running[name].check_alive()
                    cell = load.register_many(
                        running[name],
                        name,
                        concurrency,
                        round_number=number + 1,
                        timeout=plan.registration_timeout,
                        **spec,
                    )
                    cells.append(cell)
                    say(
                        f"registrations: round {number + 1}/{plan.rounds} {name:9} "
                        f"c={concurrency:<2} {cell.completed:5} done, {len(cell.failures)} "
                        f"failed, {cell.throughput:8.2f}/s"
                    )
    return {
        "cells": [cell.as_dict() for cell in cells],
        "summary": report.summarise_cells(cells),
        "ltijs_unavailable": ltijs_reason,
        "ltijs_versions": {
            package: servers.package_version(package)
            for package in ("ltijs", "ltijs-sequelize", "sqlite3", "sequelize")
        },
    }


def _rotated(names: list[str], number: int) -> list[str]:
    """Return the servers in round `number`'s order: each goes first in turn."""
    shift = number % len(names)
    return names[shift:] + names[:shift]


def _left_out(running: dict[str, servers.Server], name: str, message: str) -> str:
    """Stop the run for Gatehouse or the floor that cannot be measured; for ltijs, stop it and
    return why it is left out of the comparison."""
    server = running[name]
    if name != "ltijs":
        raise servers.ServerFailed(message + "\n" + server.log_tail())
    running.pop(name).stop()
    return message


def _cell_spec(plan: Plan, name: str, concurrency: int, number: int) -> dict | None:
    low, high = plan.concurrency
    if name != "ltijs":
        return {"seconds": plan.cell_seconds, "min_count": concurrency}
    if concurrency == low:
        return {"seconds": plan.ltijs_c1_seconds, "min_count": 1}
    # One node process holds its event loop for every registration (it generates an RSA key
    # pair for each platform), so at high concurrency every browser queues behind the others:
    # one batch of ltijs_high_count, in the second round, is what fits in the time budget.
    if number != min(1, plan.rounds - 1):
        return None
    count = max(plan.ltijs_high_count, concurrency)
    return {"seconds": 0.0, "min_count": count, "max_count": count}


# --- 2b: launches -------------------------------------------------------------------------------

LAUNCH_SERVERS = ("gatehouse", "gatehouse-pg", "floor", "ltijs")
LAUNCH_LABELS = {
    "gatehouse": "Gatehouse (SQLite)",
    "gatehouse-pg": "Gatehouse (PostgreSQL)",
    "floor": "floor",
    "ltijs": "ltijs",
}
# Every launch comes from 127.0.0.1, as a class behind one school address does; the default
# limits.launch (600/minute per address) would refuse most of them, so it is raised here.
LAUNCH_LIMIT = "100000/minute"
CLASS_START_P99_MS = 250.0


def launch_environment(tool_url: str) -> dict[str, str]:
    """Return Gatehouse's settings for the launch runs: limits on, the launch limit raised."""
    return {
        "GATEHOUSE_LAUNCH__TOOL_URL": tool_url,
        "GATEHOUSE_LIMITS__ENABLED": "true",
        "GATEHOUSE_LIMITS__LAUNCH": LAUNCH_LIMIT,
    }


def launches(plan: Plan, workdir: Path, ltijs_skip: str | None) -> dict:
    """Measure whole launches on Gatehouse (SQLite, PostgreSQL), the floor and ltijs."""
    low, high = plan.concurrency
    ltijs_reason = ltijs_skip or servers.ltijs_unavailable()
    postgres_reason = None
    cells: list[load.Cell] = []
    with contextlib.ExitStack() as stack:
        tool = stack.enter_context(load.trivial_tool())
        sim = stack.enter_context(Simulator("generic"))
        tool_url = tool.url + "/open"
        candidates: dict[str, servers.Server] = {
            "gatehouse": servers.gatehouse(
                workdir, "launch-gatehouse", **launch_environment(tool_url)
            ),
        }
        try:
            cluster = servers.postgres_cluster()
        except Exception as exc:  # tests.support.postgres.Unavailable, psycopg missing
            postgres_reason = f"PostgreSQL could not run here: {exc}"
        else:
            stack.callback(cluster.stop)
            on_postgres = servers.gatehouse(
                workdir,
                "launch-gatehouse-pg",
                DATABASE_URL=cluster.create_database(),
                **launch_environment(tool_url),
            )
            on_postgres.helpers = lambda: servers.cluster_pids(cluster)
            candidates["gatehouse-pg"] = on_postgres
        candidates["floor"] = servers.floor(
            workdir, "launch-floor", app="bench.launch_floor:app", tool_url=tool_url
        )
        if ltijs_reason is None:
            candidates["ltijs"] = servers.Ltijs(workdir, "launch-ltijs", tool_url)
        running: dict[str, servers.Server] = {}
        client_ids: dict[str, str] = {}
        for name, server in candidates.items():
            try:
                running[name] = stack.enter_context(server)
            except servers.ServerFailed as exc:
                if name != "ltijs":
                    raise
                ltijs_reason = f"ltijs did not start: {str(exc).strip()[-400:]}"
                continue
            registered = drive(sim, server.url + load.REGISTER_PATH, inline_close=True)
            if not registered.ok or not registered.client_id:
                message = f"{name}: the registration before the launches failed: " + "; ".join(
                    registered.problems
                )
                ltijs_reason = _left_out(running, name, message)
                continue
            client_ids[name] = registered.client_id
        for name, server in list(running.items()):
            say(f"launches: warming up {name}")
            warm = load.launch_many(
                server,
                name,
                sim,
                client_ids[name],
                tool_url,
                high,
                seconds=0.0,
                min_count=plan.launch_warmup_count,
                max_count=plan.launch_warmup_count,
            )
            if warm.failures:
                message = f"{name}: launches fail: {warm.failures[0]}"
                ltijs_reason = _left_out(running, name, message)
        names = list(running)
        for number in range(plan.launch_rounds):
            for name in _rotated(names, number):
                for concurrency in plan.concurrency:
                    running[name].check_alive()
                    cell = load.launch_many(
                        running[name],
                        name,
                        sim,
                        client_ids[name],
                        tool_url,
                        concurrency,
                        seconds=plan.cell_seconds,
                        min_count=concurrency,
                        round_number=number + 1,
                    )
                    cells.append(cell)
                    say(
                        f"launches: round {number + 1}/{plan.launch_rounds} {name:12} "
                        f"c={concurrency:<2} {cell.completed:5} done, {len(cell.failures)} "
                        f"failed, {cell.throughput:8.2f}/s"
                    )
        class_start = burst_ladder(
            plan, running["gatehouse"], sim, client_ids["gatehouse"], tool_url
        )
    return {
        "cells": [cell.as_dict() for cell in cells],
        "summary": report.summarise_cells(cells),
        "class_start": class_start,
        "launch_limit": LAUNCH_LIMIT,
        "ltijs_unavailable": ltijs_reason,
        "postgres_unavailable": postgres_reason,
    }


def burst_ladder(
    plan: Plan, server: servers.Server, sim: Simulator, client_id: str, tool_url: str
) -> dict:
    """Find the highest rate of launches Gatehouse takes with p99 under 250 ms (a class start).

    Bursts of `burst_seconds` at each rate of the plan in turn, until one misses (p99 over
    250 ms or any failure); the answer is the last rate that held.
    """
    steps = []
    for rate in plan.burst_rates:
        count = max(1, round(rate * plan.burst_seconds))
        server.check_alive()
        cell = load.launch_burst(server, "gatehouse", sim, client_id, tool_url, rate, count)
        latencies = sorted(cell.latencies)
        p99 = lookup.percentile(latencies, 99) * 1000 if latencies else math.nan
        held = not cell.failures and p99 < CLASS_START_P99_MS
        steps.append(
            {
                "rate_per_s": rate,
                "launches": count,
                "completed": cell.completed,
                "failed": len(cell.failures),
                "failures": cell.failures[:3],
                "p50_ms": lookup.percentile(latencies, 50) * 1000 if latencies else math.nan,
                "p99_ms": p99,
                "server_cpu_ms": 1000 * cell.server_cpu / cell.completed
                if cell.completed
                else math.nan,
                "held": held,
            }
        )
        say(
            f"class start: {rate:g} launches/s for {plan.burst_seconds:g} s: p99 "
            f"{fmt(p99)} ms, {len(cell.failures)} failed: {'held' if held else 'missed'}"
        )
        if not held:
            break
    sustained = [step for step in steps if step["held"]]
    return {
        "steps": steps,
        "sustained_per_s": sustained[-1]["rate_per_s"] if sustained else None,
        "p99_ms": sustained[-1]["p99_ms"] if sustained else None,
        "p99_limit_ms": CLASS_START_P99_MS,
        "burst_seconds": plan.burst_seconds,
        "top_of_ladder": bool(sustained) and len(sustained) == len(plan.burst_rates),
    }


# --- 4: the key set -----------------------------------------------------------------------------


def key_set(plan: Plan, workdir: Path) -> dict:
    """Measure GET /lti/keys against a bare route of the same app, in interleaved pairs."""
    runs: list[load.HttpRun] = []
    paths = ("/lti/keys", "/bench/ok")
    with servers.gatehouse(workdir, "keys", app="bench.keys_app:app") as server:
        server.wait_for_workers()
        for path in paths:
            load.get_many(server, path, 1.0, plan.keys_connections)  # warm-up
        for pair in range(plan.keys_pairs):
            for path in paths if pair % 2 == 0 else paths[::-1]:
                server.check_alive()
                run = load.get_many(server, path, plan.keys_seconds, plan.keys_connections)
                runs.append(run)
                say(f"key set: pair {pair + 1}/{plan.keys_pairs} {path:10} {run.rps:8.0f}/s")
    return {"runs": [run.as_dict() for run in runs], "summary": report.summarise_http(runs)}


# --- 5: lookups ---------------------------------------------------------------------------------


def lookups(plan: Plan, workdir: Path) -> list[dict]:
    """Time find_platform at each store size."""
    say(f"lookup: filling a store with up to {max(plan.platforms):,} platforms")
    results = lookup.scale(workdir, list(plan.platforms), plan.lookups)
    for result in results:
        say(
            f"lookup: {result['platforms']:>9,} platforms p50 {result['p50_us']} µs "
            f"p99 {result['p99_us']} µs (filled in {result['insert_s']} s)"
        )
    return results


# --- 6: memory ----------------------------------------------------------------------------------


def memory(plan: Plan, workdir: Path) -> dict:
    """Read each gunicorn worker's VmRSS after start-up and after N registrations and launches."""
    with load.trivial_tool() as tool, Simulator("generic") as sim:
        tool_url = tool.url + "/open"
        # Limits off for the registrations, as in their benchmark; launches go through the limit.
        env = {**launch_environment(tool_url), "GATEHOUSE_LIMITS__ENABLED": "false"}
        with servers.gatehouse(workdir, "memory", **env) as server:
            workers = server.wait_for_workers()
            start = {pid: servers.rss_bytes(pid) for pid in workers}
            start_pss = {pid: servers.pss_bytes(pid) for pid in workers}
            say(f"memory: {plan.memory_registrations} registrations")
            cell = load.register_many(
                server,
                "gatehouse",
                plan.concurrency[1],
                seconds=0.0,
                min_count=plan.memory_registrations,
                max_count=plan.memory_registrations,
                timeout=plan.registration_timeout,
            )
            say(f"memory: {plan.memory_launches} launches")
            registered = drive(sim, server.url + load.REGISTER_PATH)
            if not registered.ok:
                raise servers.ServerFailed("memory: " + "; ".join(registered.problems))
            launched = load.launch_many(
                server,
                "gatehouse",
                sim,
                registered.client_id,
                tool_url,
                plan.concurrency[1],
                seconds=0.0,
                min_count=plan.memory_launches,
                max_count=plan.memory_launches,
            )
            time.sleep(1.0)
            if sorted(server.worker_pids()) != sorted(workers):
                raise servers.ServerFailed("a gunicorn worker was replaced during the memory run")
            after = {pid: servers.rss_bytes(pid) for pid in workers}
            after_pss = {pid: servers.pss_bytes(pid) for pid in workers}
    mib = 2**20
    return {
        "registrations": cell.completed,
        "failed": len(cell.failures),
        "launches": launched.completed,
        "launches_failed": len(launched.failures),
        "workers": [
            {
                "start_rss_mb": round(start[pid] / mib, 1),
                "after_rss_mb": round(after[pid] / mib, 1),
                "start_pss_mb": round(start_pss[pid] / mib, 1),
                "after_pss_mb": round(after_pss[pid] / mib, 1),
            }
            for pid in workers
        ],
        "start_rss_mb": round(max(start.values()) / mib, 1),
        "after_rss_mb": round(max(after.values()) / mib, 1),
    }


# --- the table ----------------------------------------------------------------------------------


def figures(results: dict) -> tuple[str, list[Goal], list[str]]:
    """Build the table, the goals and the notes from the results."""
    plan = results["plan"]
    low, high = plan["concurrency"]
    summary = results["registrations"]["summary"]
    ltijs_reason = results["registrations"]["ltijs_unavailable"]

    def reg(server: str, concurrency: int, key: str) -> float | None:
        entry = summary.get(server, {}).get(str(concurrency))
        return entry[key] if entry else None

    rows: list[list[str]] = []

    def row(label: str, values: dict, unit: str = "") -> None:
        gh, fl, lt = (values.get(s) for s in report.SERVERS)
        rows.append(
            [
                label,
                fmt(gh, unit),
                fmt(fl, unit),
                fmt(lt, unit) if lt is not None or not ltijs_reason else "not measured",
                fmt(ratio(gh, fl)),
                fmt(ratio(gh, lt)),
            ]
        )

    for concurrency in (low, high):
        row(
            f"Registrations/s, concurrency {concurrency}",
            {s: reg(s, concurrency, "registrations_per_s") for s in report.SERVERS},
        )
        row(
            f"Latency p50 (ms), concurrency {concurrency}",
            {s: reg(s, concurrency, "p50_ms") for s in report.SERVERS},
        )
        row(
            f"Latency p99 (ms), concurrency {concurrency}",
            {s: reg(s, concurrency, "p99_ms") for s in report.SERVERS},
        )
    row(
        "Server CPU per registration (ms), concurrency " + str(high),
        {s: reg(s, high, "server_cpu_ms") for s in report.SERVERS},
    )
    counts = {}
    for server in report.SERVERS:
        a, b = reg(server, low, "completed"), reg(server, high, "completed")
        failed = (reg(server, low, "failed") or 0) + (reg(server, high, "failed") or 0)
        if a is not None or b is not None:
            counts[server] = f"{a or 0} / {b or 0}" + (f" ({failed} failed)" if failed else "")
    rows.append(
        [
            f"Registrations measured, concurrency {low} / {high}",
            counts.get("gatehouse", "n/a"),
            counts.get("floor", "n/a"),
            counts.get("ltijs", "not measured" if ltijs_reason else "n/a"),
            "",
            "",
        ]
    )

    keys = results["keys"]["summary"]
    k, b = keys["/lti/keys"], keys["/bench/ok"]
    rows.append(
        [
            'GET /lti/keys, requests/s (floor: a bare "ok" route, same app and gunicorn)',
            fmt(k["requests_per_s"]),
            fmt(b["requests_per_s"]),
            "",
            fmt(ratio(k["requests_per_s"], b["requests_per_s"])),
            "",
        ]
    )
    rows.append(
        [
            "GET /lti/keys, server CPU per request (µs) (floor: the bare route)",
            fmt(k["server_cpu_us"]),
            fmt(b["server_cpu_us"]),
            "",
            fmt(ratio(k["server_cpu_us"], b["server_cpu_us"])),
            "",
        ]
    )
    for entry in results["lookup"]:
        rows.append(
            [
                f"Platform lookup p50 / p99 (µs), {entry['platforms']:,} platforms",
                f"{fmt(entry['p50_us'])} / {fmt(entry['p99_us'])}",
                "",
                "",
                "",
                "",
            ]
        )
    mem = results["memory"]
    rows.append(["Worker RSS after start-up (MB)", fmt(mem["start_rss_mb"]), "", "", "", ""])
    rows.append(
        [
            f"Worker RSS after {mem['registrations']:,} registrations and "
            f"{mem['launches']:,} launches (MB)",
            fmt(mem["after_rss_mb"]),
            "",
            "",
            "",
            "",
        ]
    )
    header = ["Figure", "Gatehouse", "floor", "ltijs", "Gatehouse / floor", "Gatehouse / ltijs"]
    rendered = report.table(rows, header)

    # Goals
    goals = []
    gh_high = reg("gatehouse", high, "registrations_per_s")
    fl_high = reg("floor", high, "registrations_per_s")
    lt_high = reg("ltijs", high, "registrations_per_s")
    gh_cpu, fl_cpu = reg("gatehouse", high, "server_cpu_ms"), reg("floor", high, "server_cpu_ms")
    goals += [
        ratio_goal(
            f"Registration throughput at concurrency {high} at least 0.67 of the floor's",
            gh_high,
            fl_high,
            "registrations/s",
            at_least=0.67,
        ),
        ratio_goal(
            f"Registration throughput at concurrency {high} at least 2x ltijs's",
            gh_high,
            lt_high,
            "registrations/s",
            at_least=2,
            times=True,
            why=ltijs_reason or "no ltijs registration completed",
        ),
        ratio_goal(
            f"Server CPU per registration at concurrency {high} at most 1.15x the floor's",
            gh_cpu,
            fl_cpu,
            "ms",
            at_most=1.15,
            times=True,
        ),
        ratio_goal(
            "GET /lti/keys at least 0.9 of the bare route's requests/s",
            k["requests_per_s"],
            b["requests_per_s"],
            "requests/s",
            at_least=0.9,
        ),
    ]
    largest = max(results["lookup"], key=lambda e: e["platforms"])
    goals.append(
        Goal(
            f"Platform lookup p99 under 1 ms at {largest['platforms']:,} platforms",
            f"{fmt(largest['p99_us'])} µs, "
            + (
                "through the (issuer, client_id) index"
                if largest["uses_index"]
                else f"query plan: {largest['query_plan']}"
            ),
            largest["p99_us"] < 1000 and largest["uses_index"],
        )
    )
    goals.append(
        Goal(
            "Worker memory under 70 MB after the runs",
            f"{fmt(mem['after_rss_mb'])} MB RSS, the larger of {len(mem['workers'])} workers "
            f"after {mem['registrations']:,} registrations and {mem['launches']:,} launches "
            f"({fmt(mem['start_rss_mb'])} MB after start-up)",
            mem["after_rss_mb"] < 70,
        )
    )

    notes = _notes(results, reg, ltijs_reason, low, high)
    return rendered, goals, notes


def launch_figures(results: dict) -> tuple[str, list[Goal], list[str]]:
    """Build the launch table, its goals and notes from the results."""
    plan = results["plan"]
    low, high = plan["concurrency"]
    launches = results["launches"]
    summary = launches["summary"]
    missing = {
        "ltijs": launches["ltijs_unavailable"],
        "gatehouse-pg": launches["postgres_unavailable"],
    }

    def get(server: str, concurrency: int, key: str) -> float | None:
        entry = summary.get(server, {}).get(str(concurrency))
        return entry[key] if entry else None

    rows: list[list[str]] = []

    def row(label: str, key: str, concurrency: int) -> None:
        values = {s: get(s, concurrency, key) for s in LAUNCH_SERVERS}
        gh, fl, lt = values["gatehouse"], values["floor"], values["ltijs"]
        rows.append(
            [
                label,
                *(
                    "not measured" if values[s] is None and missing.get(s) else fmt(values[s])
                    for s in LAUNCH_SERVERS
                ),
                fmt(ratio(gh, fl)),
                fmt(ratio(gh, lt)),
            ]
        )

    for concurrency in (low, high):
        row(f"Launches/s, concurrency {concurrency}", "launches_per_s", concurrency)
        row(f"Latency p50 (ms), concurrency {concurrency}", "p50_ms", concurrency)
        row(f"Latency p99 (ms), concurrency {concurrency}", "p99_ms", concurrency)
    row(f"Server CPU per launch (ms), concurrency {high}", "server_cpu_ms", high)
    counts = []
    for server in LAUNCH_SERVERS:
        a, b = get(server, low, "completed"), get(server, high, "completed")
        failed = (get(server, low, "failed") or 0) + (get(server, high, "failed") or 0)
        if a is None and b is None:
            counts.append("not measured" if missing.get(server) else "n/a")
        else:
            counts.append(f"{a or 0} / {b or 0}" + (f" ({failed} failed)" if failed else ""))
    rows.append([f"Launches measured, concurrency {low} / {high}", *counts, "", ""])
    start = launches["class_start"]
    limit = f"{start['p99_limit_ms']:g} ms"
    rows.append(
        [
            f"Class start: highest rate with p99 under {limit} (launches/s)",
            (
                fmt(start["sustained_per_s"]) + ("+" if start["top_of_ladder"] else "")
                if start["sustained_per_s"] is not None
                else f"below {fmt(start['steps'][0]['rate_per_s'])}"
            ),
            "",
            "",
            "",
            "",
            "",
        ]
    )
    rows.append(
        [
            "Class start: p99 at that rate (ms)",
            fmt(start["p99_ms"]),
            "",
            "",
            "",
            "",
            "",
        ]
    )
    header = [
        "Launch figure",
        *(LAUNCH_LABELS[s] for s in LAUNCH_SERVERS),
        "Gatehouse / floor",
        "Gatehouse / ltijs",
    ]
    rendered = report.table(rows, header)

    goals = []
    gh, fl, lt = (get(s, high, "launches_per_s") for s in ("gatehouse", "floor", "ltijs"))
    gh_cpu, fl_cpu = get("gatehouse", high, "server_cpu_ms"), get("floor", high, "server_cpu_ms")
    goals += [
        ratio_goal(
            f"Launch throughput at concurrency {high} at least 0.9 of the floor's",
            gh,
            fl,
            "launches/s",
            at_least=0.9,
        ),
        ratio_goal(
            f"Launch throughput at concurrency {high} at least 1.5x ltijs's",
            gh,
            lt,
            "launches/s",
            at_least=1.5,
            times=True,
            why=missing["ltijs"] or "no ltijs launch completed",
        ),
        ratio_goal(
            f"Server CPU per launch at concurrency {high} at most 1.2x the floor's",
            gh_cpu,
            fl_cpu,
            "ms",
            at_most=1.2,
            times=True,
        ),
    ]

    notes = [
        "Launches: the same LMS simulator and client; each launch is a new user (a sub of its "
        "own) with a cookie jar and connections of its own: the LMS's login initiation, the "
        "tool's login, the LMS's authorization endpoint (which signs the id_token), the form "
        "post to the tool's launch URL, and the hand-off redirect to a trivial tool (Gatehouse:"
        " launch.tool_url, with its signed lti_token; ltijs: its redirect to itself with an "
        "ltik, then onConnect's redirect). Latency is the user's, from the login initiation to "
        f"the tool's page. {plan['launch_rounds']} round(s), servers interleaved in rotating "
        "order, after a warm-up; one registration each beforehand.",
        "The launch floor (bench/launch_floor.py): store the state, redirect; verify the RS256 "
        "id_token against the LMS's key set cached per worker, check the claims, consume the "
        "state once, redirect. Same gunicorn settings and SQLite settings as Gatehouse. Gatehouse "
        "on PostgreSQL: a private cluster on this machine (as the test suite runs it); its "
        "server processes count in Gatehouse's server CPU.",
        f"Gatehouse's launch runs use its production limits (in-memory, per worker) with "
        f"limits.launch raised to {launches['launch_limit']}: every launch comes from "
        "127.0.0.1, as a class behind one school address does, and the default 600/minute "
        "would refuse most of them.",
        f"Class start: open-loop bursts of {fmt(start['burst_seconds'])} s against Gatehouse "
        "(SQLite) at rising rates, each launch started on schedule whether or not earlier ones "
        f"had finished, latency counted from its scheduled start; the figure is the last rate "
        f"whose p99 stayed under {limit} with no failure"
        + (" (the top of the ladder: it may take more)." if start["top_of_ladder"] else ".")
        + " Steps: "
        + ", ".join(
            f"{fmt(step['rate_per_s'])}/s p99 {fmt(step['p99_ms'])} ms"
            + (f" ({step['failed']} failed)" if step["failed"] else "")
            for step in start["steps"]
        )
        + ".",
    ]
    client = [get(s, high, "client_cpu_ms") for s in ("gatehouse", "floor")]
    client = [c for c in client if c is not None and not math.isnan(c)]
    if client:
        notes.append(
            f"The client and the simulated LMS used {fmt(min(client))}-{fmt(max(client))} ms of "
            "CPU per launch on the same cores (the LMS signs each id_token), which caps every "
            "server's throughput alike; server CPU per launch compares the servers' own work."
        )
    paired = _round_ratio_note(launches["cells"], "launch", high)
    if paired:
        notes.append(paired)
    if not missing["ltijs"]:
        notes.append(
            "ltijs fetches the LMS's key set on every launch (Auth.validateToken's got.get, no "
            "cache), keeps the launch in its database and redirects the browser to itself with "
            "an ltik before its onConnect runs: one more request per launch."
        )
    for server, reason in missing.items():
        if reason:
            notes.append(f"{LAUNCH_LABELS[server]} launches were not measured: {reason}.")
    failed = sum(entry["failed"] for by_c in summary.values() for entry in by_c.values())
    if failed:
        notes.append(f"{failed} launches failed during the measurements (see the JSON).")
    return rendered, goals, notes


def draw_chart(results: dict, path: Path) -> str | None:
    """Draw throughput and p99 of each system beside the JSON; return why not, or None."""
    reason = chart.unavailable()
    if reason:
        return reason
    high = str(results["plan"]["concurrency"][1])

    def values(section: str, servers_: tuple[str, ...], key: str, labels: dict) -> dict:
        summary = results[section]["summary"]
        return {labels[s]: summary[s][high][key] for s in servers_ if high in summary.get(s, {})}

    registration_labels = {**LABELS, "gatehouse": "Gatehouse (SQLite)"}
    chart.draw(
        [
            (
                f"Registrations/s, concurrency {high}",
                "registrations/s",
                values("registrations", report.SERVERS, "registrations_per_s", registration_labels),
            ),
            (
                f"Registration p99, concurrency {high}",
                "ms",
                values("registrations", report.SERVERS, "p99_ms", registration_labels),
            ),
            (
                f"Launches/s, concurrency {high}",
                "launches/s",
                values("launches", LAUNCH_SERVERS, "launches_per_s", LAUNCH_LABELS),
            ),
            (
                f"Launch p99, concurrency {high}",
                "ms",
                values("launches", LAUNCH_SERVERS, "p99_ms", LAUNCH_LABELS),
            ),
        ],
        f"Gatehouse benchmark, {results['date']}",
        path,
    )
    return None


def _round_ratio_note(cells: list[dict], what: str, concurrency: int) -> str | None:
    """Return a note of Gatehouse's server CPU over the floor's round by round, or None.

    Information beside the goal, which stays judged on the pooled figure: the host's speed moves
    between rounds, and each round's pair of figures was taken within about a minute.
    """
    ratios = report.round_ratios(cells, "gatehouse", "floor", concurrency)
    if len(ratios) < 2:
        return None
    return (
        f"Server CPU per {what} at concurrency {concurrency}, Gatehouse / floor, round by "
        f"round (a round measures the servers one after another, within about a minute): "
        + ", ".join(f"{fmt(r)}x" for r in ratios)
        + f" (median {fmt(statistics.median(ratios))}x). The goal is judged on the pooled "
        "figure in the table."
    )


def _notes(results: dict, reg, ltijs_reason: str | None, low: int, high: int) -> list[str]:
    info = results["machine"]
    plan = results["plan"]
    notes = [
        f"Machine: {report.machine_line(info)}.",
        f"Registrations: the built-in LMS simulator (generic profile) on loopback and one "
        f"client for all three servers: {high} browser threads at most, each running the "
        f"whole flow (LMS initiation, GET of /lti/register, the tool's GET of the "
        f"configuration and POST of the registration, the close page), judged like any "
        f"simulator run. Latency is the browser's wait, from its GET to the close page. "
        f"{plan['rounds']} round(s), servers interleaved in rotating order, after a warm-up.",
        "Gatehouse and the floor: gunicorn, 2 workers x 4 threads (app/gunicorn_config.py), "
        "SQLite in WAL mode. ltijs: one node process, its normal deployment (its event loop "
        "is single-threaded), Sequelize on SQLite in WAL mode.",
    ]
    client = [reg(s, high, "client_cpu_ms") for s in ("gatehouse", "floor")]
    client = [c for c in client if c is not None and not math.isnan(c)]
    if client:
        notes.append(
            f"The client and the simulated LMS share the {info['cores']} cores with the "
            f"servers and used {fmt(min(client))}-{fmt(max(client))} ms of CPU per "
            "registration; that shared cost narrows throughput ratios, so the server CPU per "
            "registration row is the closer comparison of the servers' own work."
        )
    spread = []
    for server in report.SERVERS:
        entry = results["registrations"]["summary"].get(server, {}).get(str(high))
        if entry and len(entry["rounds_per_s"]) > 1:
            spread.append(
                f"{LABELS[server]} {fmt(min(entry['rounds_per_s']))}-"
                f"{fmt(max(entry['rounds_per_s']))}"
            )
    if spread:
        notes.append(
            f"Throughput at concurrency {high} across rounds: "
            + ", ".join(spread)
            + " registrations/s."
        )
    paired = _round_ratio_note(results["registrations"]["cells"], "registration", high)
    if paired:
        notes.append(paired)
    if ltijs_reason:
        notes.append(f"ltijs was not measured: {ltijs_reason}.")
    else:
        versions = results["registrations"]["ltijs_versions"]
        notes.append(
            f"ltijs {versions['ltijs']} with ltijs-sequelize {versions['ltijs-sequelize']} "
            f"(sequelize {versions['sequelize']}, sqlite3 {versions['sqlite3']}) from the npm "
            "registry. For every platform it registers it generates a 4096-bit RSA key pair "
            "synchronously (crypto.generateKeyPairSync in its Auth.generatePlatformKeyPair), "
            "which holds node's only event loop for about as long as its CPU per registration "
            f"shows; so at concurrency {high} browsers queue behind one another, and it was "
            f"measured in one batch of {plan['ltijs_high_count']} registrations, in the "
            "second round."
        )
    keys = results["keys"]["summary"]["/lti/keys"]
    notes.append(
        f"Key set: {keys['client']}, a new connection per request, {plan['keys_pairs']} "
        f"interleaved pairs of {plan['keys_seconds']:g} s runs per route after a warm-up."
    )
    sizes = sorted(results["lookup"], key=lambda e: e["platforms"])
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        notes.append(
            f"Lookups: the store's own find_platform on one SQLite file grown from "
            f"{small['platforms']:,} to {large['platforms']:,} platforms, {large['lookups']:,} "
            f"random stored platforms at each size: p50 {fmt(large['p50_us'])} µs at "
            f"{large['platforms']:,} vs {fmt(small['p50_us'])} µs at {small['platforms']:,} "
            f"({fmt(ratio(large['p50_us'], small['p50_us']))}x); query plan: "
            f"{large['query_plan']}."
        )
    load = results.get("machine_load")
    if load:
        notes.append(
            f"During the run the machine's CPUs were busy {load['busy_percent']}% of the time; "
            f"processes other than the benchmark's used {load['others_percent']}% of the "
            f"{info['cores']} cores and the hypervisor took {load['steal_percent']}% (steal)."
        )
    failed = sum(
        entry["failed"]
        for by_c in results["registrations"]["summary"].values()
        for entry in by_c.values()
    )
    if failed:
        notes.append(f"{failed} registrations failed during the measurements (see the JSON).")
    return notes


def render(results: dict) -> str:
    """Return the whole printed result: title, table, goals, notes."""
    table, goals, notes = figures(results)
    launch_table, launch_goals, launch_notes = launch_figures(results)
    goals, notes = goals + launch_goals, notes + launch_notes
    if results.get("chart_unavailable"):
        notes.append(f"No chart: {results['chart_unavailable']}.")
    results["goals"] = [goal.as_dict() for goal in goals]
    results["table"] = table
    results["launch_table"] = launch_table
    results["notes"] = notes
    lines = [
        f"Gatehouse benchmark, {results['date']} ({results['duration_s']:.0f} s)",
        "",
        table,
        "",
        launch_table,
        "",
        "Goals:",
    ]
    lines += [f"  {goal.line()}" for goal in goals]
    lines += ["", "Notes:"]
    lines += [f"  - {note}" for note in notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts: check it runs")
    parser.add_argument(
        "--skip-ltijs", action="store_true", help="leave ltijs out (the table and goals say so)"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where <date>.json goes (default bench/results)",
    )
    parser.add_argument("--rounds", type=int, help="interleaved registration rounds")
    parser.add_argument("--platforms", help="comma-separated store sizes for the lookup")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args(argv)

    plan = Plan.smoke() if args.smoke else Plan()
    if args.rounds:
        plan.rounds = args.rounds
    if args.platforms:
        plan.platforms = tuple(int(n) for n in args.platforms.split(","))
    began = time.monotonic()
    machine_before = report.machine_cpu()
    own_before = report.own_cpu_seconds()
    now = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
    results: dict = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine(),
        "plan": {
            **plan.__dict__,
            "concurrency": list(plan.concurrency),
            "platforms": list(plan.platforms),
            "smoke": args.smoke,
        },
    }
    try:
        skip = "skipped with --skip-ltijs" if args.skip_ltijs else None
        results["registrations"] = registrations(plan, workdir, skip)
        results["launches"] = launches(plan, workdir, skip)
        results["keys"] = key_set(plan, workdir)
        results["memory"] = memory(plan, workdir)
        results["lookup"] = lookups(plan, workdir)
    except servers.ServerFailed as exc:
        say(f"benchmark failed: {exc}")
        return 2
    finally:
        if args.keep:
            say(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["duration_s"] = round(time.monotonic() - began, 1)
    results["machine_load"] = report.machine_load(
        machine_before, report.machine_cpu(), report.own_cpu_seconds() - own_before
    )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{now:%Y-%m-%d}.json"
    results["chart_unavailable"] = draw_chart(results, path.with_suffix(".svg"))
    text = render(results)
    print(text)
    path.write_text(json.dumps(_plain(results), indent=2, allow_nan=False) + "\n")
    drawn = "" if results["chart_unavailable"] else f" and {path.with_suffix('.svg')}"
    say(f"results written to {path}{drawn}")
    return 0


def _plain(value):
    """Return value with NaN (a figure that could not be measured) as null, for strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
