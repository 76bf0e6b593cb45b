"""`gatehouse user create` and `set-password` as run for real: on a terminal, in a script."""

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from app.testing.process import base_environment

GATEHOUSE = Path(sys.executable).parent / "gatehouse"


def gatehouse(tmp_path, *args, stdin=subprocess.DEVNULL, input=None):
    """Run the command with no terminal (as CI, cron or a pipe would) on tmp_path's database."""
    env = {**base_environment(), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    return subprocess.run(  # noqa: S603 - our own command
        [str(GATEHOUSE), *args],
        env=env,
        cwd=tmp_path,
        stdin=None if input is not None else stdin,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_user_create_asks_on_a_terminal_and_otherwise_says_how_to_give_the_password(tmp_path):
    # On a terminal, as before: asked for twice, hidden.
    assert "Created owner account first@tool.example" in create_on_a_terminal(tmp_path)

    # No terminal: no getpass warning and "Aborted!", but what to use instead.
    ran = gatehouse(tmp_path, "user", "create", "--owner", "--email", "owner@tool.example")
    assert ran.returncode == 2
    assert "use --password PASSWORD, or --password-stdin" in ran.stderr
    assert "GetPassWarning" not in ran.stderr and "Aborted" not in ran.stderr
    assert "Traceback" not in ran.stderr
    again = gatehouse(tmp_path, "user", "set-password", "--email", "owner@tool.example")
    assert again.returncode == 1 and "no account with the e-mail" in again.stderr

    made = gatehouse(
        tmp_path,
        *("user", "create", "--owner", "--email", "owner@tool.example", "--password-stdin"),
        input="a long enough password\n",
    )
    assert made.returncode == 0, made.stderr
    assert "Created owner account owner@tool.example" in made.stdout
    changed = gatehouse(
        tmp_path,
        *("user", "set-password", "--email", "owner@tool.example"),
    )
    assert changed.returncode == 2 and "--password-stdin" in changed.stderr
    changed = gatehouse(
        tmp_path,
        *("user", "set-password", "--email", "owner@tool.example", "--password-stdin"),
        input="another long password",
    )
    assert changed.returncode == 0, changed.stderr
    both = gatehouse(
        tmp_path,
        *("user", "create", "--email", "x@tool.example", "--password", "a long password"),
        "--password-stdin",
        input="a long password\n",
    )
    assert both.returncode == 2 and "either --password or --password-stdin" in both.stderr
    short = gatehouse(
        tmp_path, "user", "create", "--email", "y@tool.example", "--password-stdin", input="short"
    )
    assert short.returncode == 2 and "at least 10 characters" in short.stderr


def read_until(fd, text, timeout=30.0):
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {text!r} in {seen!r}"
        if select.select([fd], [], [], remaining)[0]:
            try:
                seen += os.read(fd, 1024)
            except OSError:  # the other end closed
                break
    return seen.decode(errors="replace")


def create_on_a_terminal(tmp_path):
    """Run `gatehouse user create` on a pseudo-terminal, typing the password; return the screen."""
    primary, secondary = pty.openpty()
    env = {**base_environment(), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    process = subprocess.Popen(  # noqa: S603 - our own command
        [str(GATEHOUSE), "user", "create", "--owner", "--email", "first@tool.example"],
        env=env,
        cwd=tmp_path,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,  # no controlling terminal: getpass uses stdin, the pty
    )
    os.close(secondary)
    try:
        read_until(primary, "Password:")
        os.write(primary, b"a long enough password\n")
        read_until(primary, "Repeat for confirmation:")
        os.write(primary, b"a long enough password\n")
        output = read_until(primary, "Created owner account")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    assert "a long enough password" not in output  # hidden
    return output
