"""Compare this checkout's registration (or launch) cost with an earlier commit's: `python -m
bench.ab REF` (`--launches` for launches).

`make bench` compares Gatehouse with the floor and ltijs within one run; two runs on different
days differ by more than a change usually does (the floor alone moved 18% between two quiet
runs). To say "no slower", this runs both versions side by side instead: the commit REF checked
out in a temporary git worktree and this checkout, each under gunicorn with the benchmark's
settings, registrations at one concurrency in interleaved rounds (alternating which goes first),
and reports the server CPU per registration of each. CPU time, not wall time: it holds on a
machine that is busy with something else. With `--launches`, the same for whole launches (the
launch benchmark's client and settings, bench/run.py), each version registered once first.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.simulator import Simulator
from app.simulator.driver import drive
from bench import load, run, servers


class Checkout(servers.Gunicorn):
    """Gatehouse served from another checkout (gunicorn puts its working directory first)."""

    checkout: Path

    def cwd(self) -> Path:
        return self.checkout


@contextlib.contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """Check `ref` out in a temporary git worktree; remove it afterwards."""
    path = Path(tempfile.mkdtemp(prefix="gatehouse-ab-")) / "checkout"
    git = ["git", "-C", str(servers.ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", str(path), ref], check=True)  # noqa: S603
    try:
        yield path
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(path)], check=False)  # noqa: S603
        shutil.rmtree(path.parent, ignore_errors=True)


def compare(ref: str, rounds: int, count: int, concurrency: int) -> dict[str, list[float]]:
    """Return the server CPU milliseconds per registration of each round, for REF and HEAD."""
    workdir = Path(tempfile.mkdtemp(prefix="gatehouse-ab-work-"))
    costs: dict[str, list[float]] = {ref: [], "this checkout": []}
    with worktree(ref) as path:
        before = servers.gatehouse(workdir, "before")
        before.__class__ = Checkout
        before.checkout = path
        after = servers.gatehouse(workdir, "after")
        with before, after:
            pair = [(before, ref), (after, "this checkout")]
            for server, label in pair:  # warm-up: imports, first connections, caches
                load.register_many(server, label, concurrency, seconds=0, min_count=count // 4)
            for number in range(rounds):
                for server, label in pair if number % 2 == 0 else pair[::-1]:
                    cell = load.register_many(
                        server, label, concurrency, seconds=0, min_count=count, max_count=count
                    )
                    if cell.failures:
                        raise SystemExit(f"{label}: {cell.failures[0]}")
                    costs[label].append(1000 * cell.server_cpu / len(cell.latencies))
    shutil.rmtree(workdir, ignore_errors=True)
    return costs


def compare_launches(ref: str, rounds: int, count: int, concurrency: int) -> dict[str, list[float]]:
    """Return the server CPU milliseconds per launch of each round, for REF and HEAD."""
    workdir = Path(tempfile.mkdtemp(prefix="gatehouse-ab-work-"))
    costs: dict[str, list[float]] = {ref: [], "this checkout": []}
    with worktree(ref) as path, load.trivial_tool() as tool, Simulator("generic") as sim:
        tool_url = tool.url + "/open"
        env = run.launch_environment(tool_url)
        before = servers.gatehouse(workdir, "before", **env)
        before.__class__ = Checkout
        before.checkout = path
        after = servers.gatehouse(workdir, "after", **env)
        with before, after:
            pair = [(before, ref), (after, "this checkout")]
            client_ids = {}
            for server, label in pair:
                registered = drive(sim, server.url + load.REGISTER_PATH)
                if not registered.ok:
                    raise SystemExit(f"{label}: {'; '.join(registered.problems)}")
                client_ids[label] = registered.client_id
                load.launch_many(  # warm-up
                    server, label, sim, client_ids[label], tool_url, concurrency,
                    seconds=0, min_count=count // 4, max_count=count // 4,
                )  # fmt: skip
            for number in range(rounds):
                for server, label in pair if number % 2 == 0 else pair[::-1]:
                    cell = load.launch_many(
                        server, label, sim, client_ids[label], tool_url, concurrency,
                        seconds=0, min_count=count, max_count=count,
                    )  # fmt: skip
                    if cell.failures:
                        raise SystemExit(f"{label}: {cell.failures[0]}")
                    costs[label].append(1000 * cell.server_cpu / len(cell.latencies))
    shutil.rmtree(workdir, ignore_errors=True)
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("ref", help="the commit to compare with (e.g. a release tag or HEAD~5)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--count", type=int, default=400, help="registrations per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--launches", action="store_true", help="compare launches instead")
    args = parser.parse_args(argv)
    what = "launch" if args.launches else "registration"
    costs = (compare_launches if args.launches else compare)(
        args.ref, args.rounds, args.count, args.concurrency
    )
    medians = {label: statistics.median(values) for label, values in costs.items()}
    for label, values in costs.items():
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(f"{label:>15}: median {medians[label]:.2f} ms CPU per {what} ({rounds})")
    old, new = medians.values()
    print(f"this checkout / {args.ref}: {new / old:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
