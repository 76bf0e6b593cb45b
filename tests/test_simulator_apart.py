"""The simulator stands apart from the product: loaded only by `gatehouse simulate`."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent


def app_imports(package):
    """Return {module file: the app.* modules it imports} for every file of an app/ package."""
    found = {}
    for path in sorted((CHECKOUT / "app" / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}: write app imports absolute"
                names.add(node.module)
        found[path.relative_to(CHECKOUT)] = {n for n in names if n == "app" or n.startswith("app.")}
    return found


def outside(names, allowed):
    return sorted(n for n in names if not any(n == a or n.startswith(a + ".") for a in allowed))


def test_the_simulator_imports_nothing_of_the_product_but_the_protocol():
    # app.testing is the serving helper the simulator shares with the tests and the benchmark;
    # it is plumbing, not product (see the next test and app/testing/__init__.py).
    for path, names in app_imports("simulator").items():
        assert not outside(names, ("app.lti", "app.simulator", "app.testing")), path


def test_the_serving_helper_imports_nothing_from_the_product():
    for path, names in app_imports("testing").items():
        assert not outside(names, ("app.testing",)), path


PROBE = """
import sys
from app.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
loaded = sorted(m for m in sys.modules if m.startswith(("app.simulator", "app.testing")))
print(code, " ".join(loaded) or "-")
"""


def run_cli(tmp_path, *args):
    """Run `gatehouse <args>` in a fresh interpreter; return its exit code and the modules
    of app.simulator and app.testing it loaded."""
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", PROBE, *args],
        cwd=CHECKOUT,
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "GATEHOUSE_TOOL__NAME": "Quiz Tool",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    code, loaded = done.stdout.splitlines()[-1].split(" ", 1)
    return code, loaded.split() if loaded != "-" else []


@pytest.mark.parametrize("args", [["migrate"], ["--help"], ["check-config"]])
def test_commands_other_than_simulate_never_load_the_simulator(tmp_path, args):
    code, loaded = run_cli(tmp_path, *args)
    assert code in ("0", "None"), loaded
    assert loaded == []


def test_simulate_loads_the_simulator_when_it_runs(tmp_path):
    code, loaded = run_cli(tmp_path, "simulate", "--help")
    assert code in ("0", "None")
    assert "app.simulator.server" in loaded and "app.testing.serving" in loaded
