"""Checks of an import target against the source's model (``rehost validate --target``).

Whatever would make an import into the target fail, or match records
ambiguously, is found here before any data moves: an unreachable target, a
different application version, tables or columns the target lacks, columns the
target requires that the source does not have, natural keys that repeat in the
target, and a target application key the cipher cannot use. The schema
comparison is a pure function of two descriptions; the rest reads the target.
"""

from __future__ import annotations

from dataclasses import replace

from rehost.checks.findings import Finding
from rehost.checks.keys import repeated_keys
from rehost.db.schema import Schema
from rehost.profile.model import Profile
from rehost.profile.resolve import Model
from rehost.versions import AppVersion

# Kinds that convert into one another without loss of meaning (engines spell
# booleans, UUIDs, JSON and zoned times differently).
_FAMILY = {
    "int": "number", "float": "number", "decimal": "number", "bool": "number",
    "text": "text", "uuid": "text", "json": "text",
    "date": "time", "datetime": "time", "datetimetz": "time", "time": "time",
    "bytes": "bytes",
}  # fmt: skip


def _holds(target_kind: str, source_kind: str) -> bool:
    """Can a column of ``target_kind`` take values of ``source_kind``? (text takes all)."""
    t, s = _FAMILY.get(target_kind), _FAMILY.get(source_kind)
    return t is None or s is None or t == s or t == "text"


def schema_findings(model: Model, target: Schema) -> list[Finding]:
    """Tables and columns an import would write that the target cannot take."""
    out: list[Finding] = []
    for name in model.order:
        ent = model.entities[name]
        table = target.tables.get(name)
        if table is None:
            out.append(
                Finding(
                    "TARGET_TABLE_MISSING",
                    "error",
                    name,
                    f"The target has no table {name}; an import would stop there.",
                    "Create the application's schema on the target first (run its "
                    "installer or migrations at the source's version), or exclude the "
                    "table in the profile.",
                )
            )
            continue
        missing = [c for c in ent.columns if c not in table.columns]
        if missing:
            out.append(
                Finding(
                    "TARGET_COLUMN_MISSING",
                    "error",
                    name,
                    f"The target's {name} has no column(s) {', '.join(missing)}.",
                    "Bring the target's schema to the source's application version.",
                )
            )
        required = [
            c
            for c, col in table.columns.items()
            if c not in ent.columns and not col.nullable and not col.has_default
        ]
        if required:
            out.append(
                Finding(
                    "TARGET_COLUMN_REQUIRED",
                    "error",
                    name,
                    f"The target's {name} requires {', '.join(required)} (NOT NULL, no "
                    "default), which the source does not have; new records could not be "
                    "inserted.",
                    "Bring both schemas to the same application version.",
                )
            )
        for c in ent.columns:
            col = table.columns.get(c)
            if col is not None and not _holds(col.kind, ent.kinds[c]):
                out.append(
                    Finding(
                        "TARGET_TYPE_DIFFERS",
                        "warning",
                        f"{name}.{c}",
                        f"{name}.{c} holds {ent.kinds[c]} values in the source and "
                        f"{col.kind} in the target ({col.type_text}); values are converted "
                        "on import and may be refused.",
                        "Check that the column means the same on both servers.",
                    )
                )
    return out


def version_findings(source: AppVersion | None, target: AppVersion | None) -> list[Finding]:
    """The import refuses differing versions; say so before it is tried."""
    sv = source.value if source else None
    tv = target.value if target else None
    if sv == tv:
        return []
    return [
        Finding(
            "TARGET_VERSION",
            "error",
            "version",
            f"The source is at application version {source.detail if source else 'unknown'}, "
            f"the target at {target.detail if target else 'unknown'}; import refuses this.",
            "Bring both to the same version (usually: upgrade the older one), or pass "
            "--ignore-version-check to import if you know the schemas match.",
        )
    ]


def check_target(
    target_url: str, model: Model, profile: Profile, source_version: AppVersion | None
) -> list[Finding]:
    """Read the target and check it against the source's model."""
    from rehost.crypto import get_cipher
    from rehost.db.connect import open_engine
    from rehost.db.rows import Sql
    from rehost.db.schema import reflect
    from rehost.errors import RehostError
    from rehost.versions import detect

    out: list[Finding] = []
    has_secrets = any(h == "profile" for e in model.entities.values() for h in e.secrets.values())
    if has_secrets and profile.secrets.cipher != "plaintext":
        try:
            get_cipher(profile.secrets.cipher, profile.secrets.target_key, "target")
        except RehostError as exc:
            out.append(
                Finding(
                    "TARGET_SECRET_KEY",
                    "error",
                    "secrets",
                    str(exc),
                    "Set secrets.target_key to the target application's key.",
                )
            )
    try:
        engine = open_engine(target_url, must_exist=True)
    except RehostError as exc:
        return out + [
            Finding(
                "TARGET_UNREACHABLE",
                "error",
                "target",
                str(exc),
                "Check the target URL and credentials.",
            )
        ]
    try:
        schema = reflect(engine)
        out += schema_findings(model, schema)
        with engine.connect() as conn:
            version = detect(conn, profile, set(schema.tables))
            out += version_findings(source_version, version)
            keyed = {
                t: e
                for t, e in model.entities.items()
                if t in schema.tables
                and e.key
                and all(c in schema.tables[t].columns for c in e.key)
            }
            comparable = replace(
                model, entities=keyed, order=tuple(t for t in model.order if t in keyed)
            )
            for table, ent, n, examples in repeated_keys(Sql(conn), comparable, None):
                out.append(
                    Finding(
                        "TARGET_DUPLICATE_KEY",
                        "error",
                        table,
                        f"The natural key ({', '.join(ent.key or ())}) of {table} repeats in "
                        f"the target: {n} value(s), e.g. {examples}; records could not be "
                        "matched by name.",
                        f"Make {table} records unique by their key in the target, or choose "
                        "another key in the profile.",
                    )
                )
    except RehostError as exc:
        out.append(Finding("TARGET_UNREACHABLE", "error", "target", str(exc)))
    finally:
        engine.dispose()
    return out
