"""Rendering results for people (Rich) and scripts (JSON); progress bars."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rehost.checks.findings import Finding

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(
        json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n"
    )


class BarProgress:
    """Rich progress bars on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and err.is_terminal
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> BarProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, label: str, total: int | None) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def finish(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None


_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def render_findings(findings: list[Finding], *, show_info: bool = True) -> None:
    shown = [f for f in sorted(findings, key=Finding.sort_key) if show_info or f.severity != "info"]
    if not shown:
        return
    out.print("[bold]Findings[/]")
    for f in shown:
        out.print(
            f"  [{_STYLE[f.severity]}]{f.severity:<7}[/] {f.code} [bold]{escape(f.subject)}[/]: "
            f"{escape(f.message)}"
        )
        if f.fix:
            out.print(f"          [dim]fix: {escape(f.fix)}[/]")
