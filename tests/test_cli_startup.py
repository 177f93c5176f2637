"""The ``rehost`` program imports only the command group it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer.main

from rehost.cli import COMMANDS, MODULES, app, modules_for


def test_every_command_is_mapped_to_the_module_that_registers_it():
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    assert set(group.commands) == set(COMMANDS)
    for name, command in group.commands.items():
        callback = command.callback
        if isinstance(command, click.Group):  # 'files': a Typer sub-application
            callback = next(iter(command.commands.values())).callback
        assert callback is not None
        assert callback.__module__ == f"rehost.cli.{COMMANDS[name]}", name
    assert set(COMMANDS.values()) == set(MODULES)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["files", "transfer", "a", "b"], ["files"]),
        (["--debug", "clone", "x", "y"], ["clone"]),
        (["import", "bundle", "--into", "t"], ["database"]),
        (["cutover", "plan.yaml"], ["migrate"]),
        (["--version"], []),
        ([], list(MODULES)),
        (["--help"], list(MODULES)),
        (["--version", "--help"], list(MODULES)),
        (["fiels", "transfer"], list(MODULES)),  # a typo: every command, for suggestions
        (["--", "files"], list(MODULES)),
    ],
)
def test_modules_for(argv: list[str], expected: list[str]):
    assert modules_for(argv) == expected


def _run(argv: list[str]) -> tuple[int, list[str], str]:
    """Run the program as the console script does; return its exit status, the
    modules it loaded and its output."""
    code = (
        "import sys, json\n"
        f"sys.argv = ['rehost', *{argv!r}]\n"
        "from rehost.cli import main\n"
        "try:\n"
        "    main()\n"
        "    status = 0\n"
        "except SystemExit as exc:\n"
        "    status = exc.code or 0\n"
        "print(json.dumps([status, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    status, modules = json.loads(proc.stderr.strip().splitlines()[-1])
    return status, modules, proc.stdout


def test_files_commands_load_no_database_code(tmp_path: Path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("hello\n")
    status, modules, out = _run(
        ["files", "transfer", str(tmp_path / "src"), str(tmp_path / "dst"), "--json"]
    )
    assert status == 0, out
    assert json.loads(out)["ok"] is True
    assert (tmp_path / "dst" / "a.txt").read_text() == "hello\n"
    assert "sqlalchemy" not in modules
    assert "rehost.cli.database" not in modules and "rehost.cli.clone" not in modules


def test_help_and_unknown_commands_still_see_every_command():
    status, _, out = _run(["--help"])
    assert status == 0
    for name in COMMANDS:
        assert name in out, name
    status, modules, _ = _run(["--version"])
    assert status == 0 and "rehost.cli.files" not in modules
