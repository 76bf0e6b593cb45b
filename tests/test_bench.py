"""The benchmark (`make bench`) in a smoke run: the same steps with tiny counts, the same tables.

The figures of a smoke run mean nothing; what is checked is that every step runs against real
servers, every registration succeeds, and the table, the goals and the JSON keep their shape.
"""

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from app.simulator.driver import drive
from app.testing import LoopbackServer
from bench import chart, floor, load, report, run, servers
from bench.load import register_many

ROOT = Path(__file__).resolve().parent.parent


def postgres_available() -> bool:
    """Tell whether the benchmark can start its PostgreSQL cluster here (as the suite does)."""
    from support.postgres import find_bindir

    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return find_bindir() is not None


def test_smoke_run_prints_the_table_and_writes_the_results(tmp_path):
    result = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--skip-ltijs",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for figure in (
        "Registrations/s, concurrency 1 ",
        "Latency p99 (ms), concurrency 16",
        "Server CPU per registration (ms), concurrency 16",
        "GET /lti/keys, requests/s",
        "Platform lookup p50 / p99 (µs), 1,000 platforms",
        "Worker RSS after 5 registrations and 5 launches (MB)",
        "Launches/s, concurrency 16",
        "Latency p99 (ms), concurrency 16",
        "Server CPU per launch (ms), concurrency 16",
        "Class start: highest rate with p99 under 250 ms (launches/s)",
    ):
        assert f"| {figure}" in out
    assert "| Figure" in out and "Gatehouse / floor" in out and "Gatehouse / ltijs" in out
    # Leaving ltijs out is said, in the table, the goals and the notes, never silent.
    assert "not measured" in out
    assert (
        "FAIL  Registration throughput at concurrency 16 at least 2x ltijs's: not measured: "
        "skipped with --skip-ltijs" in out
    )
    assert (
        "FAIL  Launch throughput at concurrency 16 at least 1.5x ltijs's: not measured: "
        "skipped with --skip-ltijs" in out
    )
    assert "ltijs was not measured: skipped with --skip-ltijs." in out
    assert "ltijs launches were not measured: skipped with --skip-ltijs." in out
    assert "limits.launch raised to 100000/minute" in out

    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    assert data["plan"]["smoke"] is True
    assert data["table"] in out and data["launch_table"] in out
    assert len(data["goals"]) == 9
    assert all(goal["verdict"] in ("PASS", "FAIL") for goal in data["goals"])
    for line in out.split("Goals:")[1].split("Notes:")[0].strip().splitlines():
        assert line.strip().startswith(("PASS  ", "FAIL  "))
    if chart.unavailable() is None:
        assert "<svg" in path.with_suffix(".svg").read_text()
    else:
        assert f"No chart: {chart.unavailable()}." in out
    summary = data["registrations"]["summary"]
    assert set(summary) == {"gatehouse", "floor"}
    for server in ("gatehouse", "floor"):
        assert summary[server]["1"]["completed"] >= 1
        assert summary[server]["16"]["completed"] >= 16
        assert summary[server]["1"]["failed"] == summary[server]["16"]["failed"] == 0
        assert summary[server]["16"]["server_cpu_ms"] > 0
    assert data["registrations"]["ltijs_unavailable"] == "skipped with --skip-ltijs"
    keys = data["keys"]["summary"]
    assert keys["/lti/keys"]["requests"] > 0 and keys["/bench/ok"]["requests"] > 0
    assert keys["/lti/keys"]["errors"] == keys["/bench/ok"]["errors"] == 0
    assert [entry["platforms"] for entry in data["lookup"]] == [100, 1000]
    assert all(entry["uses_index"] for entry in data["lookup"])
    assert data["memory"]["registrations"] == 5 and len(data["memory"]["workers"]) == 2
    assert data["memory"]["launches"] == 5 and data["memory"]["launches_failed"] == 0
    launches = data["launches"]
    measured = {"gatehouse", "floor"} | ({"gatehouse-pg"} if postgres_available() else set())
    assert set(launches["summary"]) == measured
    for server in measured:
        assert launches["summary"][server]["1"]["completed"] >= 1
        assert launches["summary"][server]["16"]["completed"] >= 16
        assert launches["summary"][server]["1"]["failed"] == 0
        assert launches["summary"][server]["16"]["failed"] == 0
        assert launches["summary"][server]["16"]["server_cpu_ms"] > 0
    assert launches["ltijs_unavailable"] == "skipped with --skip-ltijs"
    (step,) = launches["class_start"]["steps"]
    assert step["completed"] == step["launches"] == 5
    assert 0 < data["memory"]["start_rss_mb"] <= data["memory"]["after_rss_mb"] + 5


def test_the_floors_database_is_ready_before_its_workers_open_it(tmp_path):
    # Two workers switching a new file to WAL at once: one is answered "locked" at once (a
    # smoke run's floor failed its first registration with HTTP 500 that way).
    servers.floor(tmp_path, "floor")  # not started: the file is made when the server is
    with closing(sqlite3.connect(tmp_path / "floor.sqlite3")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"platforms", "states"} <= tables


def test_round_by_round_ratios_pair_each_rounds_own_figures():
    def cell(server, round_, completed, cpu, concurrency=16):
        return {
            "server": server,
            "round": round_,
            "completed": completed,
            "server_cpu_s": cpu,
            "concurrency": concurrency,
        }

    cells = [
        cell("gatehouse", 1, 100, 0.5),  # 5 ms each
        cell("floor", 1, 125, 0.5),  # 4 ms
        cell("floor", 2, 100, 0.5),  # 5 ms: a slow stretch of the host, for both
        cell("gatehouse", 2, 80, 0.5),  # 6.25 ms
        cell("gatehouse", 3, 0, 0.5),  # nothing completed: no figure for round 3
        cell("floor", 3, 100, 0.4),
        cell("gatehouse", 4, 10, 1.0, concurrency=1),  # another concurrency
        cell("floor", 4, 10, 0.5, concurrency=1),
    ]
    assert report.round_ratios(cells, "gatehouse", "floor", 16) == [1.25, 1.25]
    assert report.round_ratios(cells, "gatehouse", "floor", 1) == [2.0]
    note = run._round_ratio_note(cells, "registration", 16)
    assert "1.25x, 1.25x (median 1.25x)" in note and "pooled figure" in note
    assert run._round_ratio_note(cells, "registration", 1) is None  # one round says nothing


def test_the_driver_accepts_an_inline_close_message_only_when_asked(
    simulator, tmp_path, monkeypatch
):
    monkeypatch.setenv("FLOOR_DATABASE", str(tmp_path / "floor.sqlite3"))
    sim = simulator("generic")
    with LoopbackServer(floor.app, "127.0.0.1") as server:
        strict = drive(sim, server.url + "/lti/register")
        relaxed = drive(sim, server.url + "/lti/register", inline_close=True)
    assert not strict.ok
    assert any("does not carry data-lti-close" in problem for problem in strict.problems)
    assert relaxed.ok, relaxed.render()
    assert relaxed.browser_seconds is not None and relaxed.browser_seconds > 0


def test_the_launch_floor_verifies_and_uses_each_state_once(simulator, tmp_path, monkeypatch):
    import requests

    from app.simulator.launch import parse_form, post_form, run_launch
    from bench import launch_floor

    monkeypatch.setenv("FLOOR_DATABASE", str(tmp_path / "floor.sqlite3"))
    monkeypatch.setenv("FLOOR_TOOL_URL", "http://127.0.0.1:9/tool")
    sim = simulator("generic")
    with LoopbackServer(launch_floor.app, "127.0.0.1") as server:
        registered = drive(sim, server.url + "/lti/register", inline_close=True)
        assert registered.ok, registered.render()
        result = run_launch(sim.prepare_launch(registered.client_id).login_url)
        assert (result.status, result.location) == (303, "http://127.0.0.1:9/tool")
        assert post_form(result.form).status_code == 401  # the state was used
        # A new login, whose state is unused, with the id_token's signature broken.
        login = requests.get(sim.prepare_launch(registered.client_id).login_url, timeout=10)
        action, fields = parse_form(login.text)
        head, body, signature = fields["id_token"].split(".")
        forged = {**fields, "id_token": f"{head}.{body}.{signature[::-1]}"}
        answer = post_form((action, forged))
        assert answer.status_code == 401 and answer.text == "bad signature"
        assert post_form((action, fields)).status_code == 401  # refused ones use it up too


@pytest.mark.skipif(
    servers.ltijs_unavailable() is not None,
    reason=f"ltijs is not installed here: {servers.ltijs_unavailable()} (make bench installs it)",
)
def test_ltijs_completes_a_registration_and_a_launch_through_the_same_client(tmp_path, simulator):
    sim = simulator("generic")
    with load.trivial_tool() as tool, servers.Ltijs(tmp_path, "ltijs", tool.url + "/") as server:
        cell = register_many(server, "ltijs", 1, seconds=0.0, min_count=1, timeout=60)
        registered = drive(sim, server.url + load.REGISTER_PATH, inline_close=True)
        assert registered.ok, registered.render()
        problem = load.launch_once(sim, registered.client_id, tool.url + "/", timeout=30)
    assert cell.failures == []
    assert cell.completed == 1
    assert problem is None


def test_ab_compares_a_commit_checked_out_beside_this_one():
    # HEAD against this checkout: the figures mean nothing at this size; the run must register
    # through both servers, print both medians and the ratio, and leave no worktree behind.
    result = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "bench.ab", "HEAD", "--rounds", "1", "--count", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAD: median" in result.stdout
    assert "this checkout: median" in result.stdout
    assert "this checkout / HEAD:" in result.stdout
    command = ["git", "worktree", "list"]  # noqa: S607 - git from PATH, as bench.ab runs it
    listed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603
    assert "gatehouse-ab-" not in listed.stdout
