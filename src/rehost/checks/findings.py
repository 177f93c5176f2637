"""A finding: one validation result, with a code a script can match on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]

_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    subject: str
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    def sort_key(self) -> tuple[int, str, str]:
        return (_ORDER[self.severity], self.subject, self.code)


def errors_in(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
