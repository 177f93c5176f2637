"""Validation codes: stable names for what a plan check can find.

RH1xx connectivity, versions, privileges, RH2xx data and keys, RH3xx types (clone),
RH4xx secrets, RH5xx files and space, RH6xx the plan itself and estimates.
Findings of the library's own checks (inspect, clone planning) keep their
severity and message and get a code here; ``origin`` keeps their own name.
"""

from __future__ import annotations

from dataclasses import dataclass

from rehost.checks.findings import Finding, Severity


@dataclass(frozen=True)
class Code:
    code: str
    title: str
    severity: Severity
    fix: str


_TABLE = [
    Code("RH101", "source unreachable", "error", "Check the source URL, credentials and server."),
    Code("RH102", "target unreachable", "error", "Check the target URL, credentials and server."),
    Code("RH103", "version mismatch", "error", "Bring source and target to the same version."),
    Code("RH104", "no version found", "info", "Set 'version:' in the profile."),
    Code(
        "RH105",
        "target privileges missing",
        "error",
        "GRANT the target user what the move needs (the message names it).",
    ),
    Code("RH201", "duplicate natural key", "error", "Choose key columns that are unique."),
    Code("RH202", "no natural key", "warning", "Name a key for the table in the profile."),
    Code("RH203", "nullable natural key", "warning", "Make the key columns NOT NULL."),
    Code("RH204", "owned table without key", "info", "Name a key in the profile."),
    Code("RH205", "no primary key", "warning", "Add a primary key or exclude the table."),
    Code("RH206", "unbreakable reference cycle", "error", "Make one reference nullable."),
    Code("RH207", "composite foreign key", "warning", "Check the reference is exported."),
    Code("RH208", "reference to an excluded table", "error", "Do not exclude what is needed."),
    Code("RH209", "deferred reference", "info", "Nothing to do: set after the rows exist."),
    Code("RH210", "owned children", "info", "Nothing to do: exported with their owner."),
    Code("RH211", "dangling reference", "error", "Fix or delete the rows in the source."),
    Code("RH212", "table missing on the target", "error", "Create the schema on the target."),
    Code("RH213", "column missing on the target", "error", "Bring the target's schema up."),
    Code("RH214", "column the target requires", "error", "Bring both schemas to one version."),
    Code("RH215", "natural key repeats in the target", "error", "Make the target's keys unique."),
    Code("RH299", "other data finding", "warning", "See the message."),
    Code("RH301", "type the target cannot hold", "error", "Map the type with a clone override."),
    Code("RH302", "type narrowed", "warning", "Check the values fit the target type."),
    Code("RH303", "timestamp converted to UTC", "warning", "Check time zones."),
    Code("RH304", "zero date", "warning", "Replace zero dates in the source."),
    Code("RH305", "default dropped", "warning", "Recreate the default on the target."),
    Code("RH306", "check constraint dropped", "warning", "Recreate the check on the target."),
    Code("RH307", "index dropped", "warning", "Recreate the index on the target."),
    Code("RH308", "autoincrement dropped", "warning", "Recreate the sequence on the target."),
    Code("RH309", "foreign key action changed", "warning", "Check the foreign key on the target."),
    Code("RH310", "foreign key to an uncopied table", "warning", "Clone that table too."),
    Code("RH311", "constraint failed", "error", "Fix the rows that break the constraint."),
    Code("RH312", "type differs on the target", "warning", "Check the column means the same."),
    Code(
        "RH313",
        "view, trigger or routine across engines",
        "error",
        "Recreate it by hand on the target; leave it out with skip_objects.",
    ),
    Code("RH314", "view, trigger or routine left out", "warning", "Recreate it by hand."),
    Code("RH315", "object not created", "error", "Fix the cause, or create it by hand."),
    Code("RH316", "object on a table left out", "warning", "Clone that table too, or recreate."),
    Code(
        "RH317",
        "object definition unreadable",
        "error",
        "Let the source account read it, or leave it out with skip_objects.",
    ),
    Code("RH318", "object missing on the target", "error", "Clone again, or create it."),
    Code("RH320", "clone target not empty", "error", "Clone into an empty database."),
    Code("RH399", "other type finding", "warning", "See the message."),
    Code("RH401", "secret cannot be decrypted", "error", "Check secrets.source_key."),
    Code("RH402", "secrets misconfigured", "error", "Fix 'secrets:' in the profile."),
    Code("RH403", "bundle password missing", "error", "Set options.password in the plan."),
    Code("RH404", "target key missing", "error", "Set secrets.target_key in the profile."),
    Code("RH405", "columns look secret", "info", "Declare them under entities.secrets."),
    Code("RH501", "source share unreadable", "error", "Check the share's path or URL."),
    Code(
        "RH502",
        "target share unreachable or not writable",
        "error",
        "Create the folder or fix rights; check the share's URL and settings.",
    ),
    Code("RH503", "not enough free space", "error", "Free space on the target."),
    Code("RH504", "unreadable source files", "warning", "Fix their permissions."),
    Code("RH505", "links leaving the share", "warning", "They are copied as links."),
    Code("RH506", "owner missing on the target", "warning", "Create the user or group."),
    Code("RH601", "estimate", "info", ""),
    Code("RH602", "names collide", "error", "Give each move its own target."),
]

CODES: dict[str, Code] = {c.code: c for c in _TABLE}

# The library's own finding codes, and where they sit in the table.
ORIGINS = {
    "NO_VERSION": "RH104",
    "DUPLICATE_KEY": "RH201",
    "NO_NATURAL_KEY": "RH202",
    "NULLABLE_KEY": "RH203",
    "OWNED_WITHOUT_KEY": "RH204",
    "NO_PRIMARY_KEY": "RH205",
    "UNBREAKABLE_CYCLE": "RH206",
    "COMPOSITE_FOREIGN_KEY": "RH207",
    "REFERENCE_TO_EXCLUDED": "RH208",
    "DEFERRED_REFERENCE": "RH209",
    "OWNED": "RH210",
    "TARGET_TABLE_MISSING": "RH212",
    "TARGET_COLUMN_MISSING": "RH213",
    "TARGET_COLUMN_REQUIRED": "RH214",
    "TARGET_DUPLICATE_KEY": "RH215",
    "TARGET_TYPE_DIFFERS": "RH312",
    "clone-type-unmapped": "RH301",
    "clone-type-narrowed": "RH302",
    "clone-timestamp-utc": "RH303",
    "clone-zero-date": "RH304",
    "clone-default-dropped": "RH305",
    "clone-check-dropped": "RH306",
    "clone-index-dropped": "RH307",
    "clone-autoinc-dropped": "RH308",
    "clone-fk-action": "RH309",
    "clone-fk-outside": "RH310",
    "clone-constraint-failed": "RH311",
    "clone-object-engine": "RH313",
    "clone-object-skipped": "RH314",
    "clone-object-failed": "RH315",
    "clone-object-outside": "RH316",
    "clone-object-unreadable": "RH317",
    "clone-object-missing": "RH318",
    "SECRET_DECRYPT": "RH401",
    "SECRETS_CONFIG": "RH402",
    "SECRET_COLUMNS": "RH405",
}


@dataclass(frozen=True)
class PlanFinding(Finding):
    """A finding with a code of the table; ``origin`` is the library's own code for it."""

    origin: str | None = None

    @property
    def title(self) -> str:
        return CODES[self.code].title

    def to_json(self) -> dict[str, str | None]:  # type: ignore[override]
        return {
            "code": self.code,
            "title": self.title,
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
            "origin": self.origin,
        }

    def sort_key(self) -> tuple[int, str, str]:
        # grouped by code, not by subject: one problem's findings stay together
        return ({"error": 0, "warning": 1, "info": 2}[self.severity], self.code, self.subject)


def finding(code: str, subject: str, message: str, fix: str | None = None) -> PlanFinding:
    c = CODES[code]
    return PlanFinding(code, c.severity, subject, message, c.fix if fix is None else fix)


def from_library(f: Finding, where: str) -> PlanFinding:
    """A library finding (inspect, clone plan) under its table code, about ``where``."""
    code = ORIGINS.get(f.code)
    if code is None:
        code = "RH399" if f.code.startswith("clone-") else "RH299"
    return PlanFinding(
        code, f.severity, f"{where}: {f.subject}", f.message, f.fix or CODES[code].fix, f.code
    )
