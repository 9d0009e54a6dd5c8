"""Which command module a run imports: the table in runner.cli, and what `validate` loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli import COMMANDS, _command_name, app, load_commands

REPO = Path(__file__).resolve().parents[2]


def test_the_table_names_every_command_and_its_module() -> None:
    load_commands(["--help"])
    registered = {
        c.name or c.callback.__name__: c.callback.__module__ for c in app.registered_commands
    }  # type: ignore[union-attr]
    for group in app.registered_groups:
        callbacks = group.typer_instance.registered_commands  # type: ignore[union-attr]
        registered[group.name] = callbacks[0].callback.__module__  # type: ignore[index, union-attr]
    assert {name: module.rsplit(".", 1)[1] for name, module in registered.items()} == COMMANDS


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["validate", "jobs.d"], "validate"),
        (["-C", "x", "plan"], "plan"),
        (["--chdir", "x", "status", "-o", "json"], "status"),
        (["--chdir=x", "engine", "serve"], "engine"),
        (["-Cx", "state", "show"], "state"),
        (["--help"], None),
        (["--version"], None),
        (["-C"], None),
        ([], None),
        (["--", "validate"], None),
    ],
)
def test_command_name_after_the_global_options(argv: list[str], name: str | None) -> None:
    assert _command_name(argv) == name


def test_validate_loads_no_cloud_sdk_no_engine_no_templates(tmp_path: Path) -> None:
    # What start-up saves (bench/startup.py) holds only while `validate` imports none of these.
    code = (
        "import json, sys\n"
        "from runner.cli import main\n"
        "code = main(['validate', sys.argv[1]])\n"
        "heavy = ('boto3', 'botocore', 'rich', 'jinja2', 'runner.engine', 'runner.backends')\n"
        "print(json.dumps([m for m in sys.modules if m.split('.')[0] in heavy\n"
        "                  or m.startswith(heavy[4:])]))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "jobs.d")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
