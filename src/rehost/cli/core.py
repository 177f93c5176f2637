"""Typer application: global options, error handling, and the command groups."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.markup import escape

from rehost import __version__
from rehost.cli.render import err, print_json
from rehost.errors import RehostError

app = typer.Typer(
    name="rehost",
    help=(
        "Move a self-hosted application's data to a new home.\n\n"
        "Start with 'rehost demo' to see a whole export → preview → import on SQLite."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

_state = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Turn a RehostError into a one-paragraph message and its exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RehostError as exc:
            if _state["debug"]:
                traceback.print_exc()
            err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
            if kwargs.get("json_out"):
                # A script asked for JSON: it gets the error as JSON on stdout too.
                print_json(
                    {
                        "status": "error",
                        "error": {
                            "type": type(exc).__name__,
                            "message": str(exc),
                            "exit_code": exc.exit_code,
                        },
                    }
                )
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted; nothing was committed.")
            raise typer.Exit(130) from None
        except typer.Exit:
            raise
        except Exception as exc:  # an unexpected failure: say so plainly
            if _state["debug"]:
                raise
            err.print(
                f"[bold red]error:[/] unexpected {type(exc).__name__}: {exc}\n"
                "Run again with --debug for the traceback, and report it.",
                markup=True,
                highlight=False,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rehost {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks for errors.", envvar="REHOST_DEBUG"
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    _state["debug"] = debug


def main() -> None:
    if os.environ.get("NO_COLOR") is None and not sys.stdout.isatty():
        os.environ.setdefault("NO_COLOR", "1")
    app()
