"""Inspect: inventory of a source plus the inferred profile and its findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rehost.checks.findings import Finding
from rehost.checks.keys import repeated_keys
from rehost.db.connect import open_engine, redact
from rehost.db.rows import Sql
from rehost.db.schema import reflect
from rehost.profile.model import Profile
from rehost.profile.resolve import Model, resolve
from rehost.versions import AppVersion, detect


@dataclass
class Inventory:
    source: str
    engine: str
    version: AppVersion | None
    model: Model
    rows: dict[str, int]
    findings: list[Finding]

    def to_json(self) -> dict[str, Any]:
        ents = {}
        for t in self.model.order:
            e = self.model.entities[t]
            d = e.to_json()
            d["rows"] = self.rows.get(t, 0)
            d["owner_table"] = e.owner_table
            ents[t] = d
        return {
            "source": self.source,
            "engine": self.engine,
            "version": self.version.to_json() if self.version else None,
            "entities": ents,
            "order": list(self.model.order),
            "excluded": list(self.model.excluded),
            "findings": [f.to_json() for f in sorted(self.findings, key=Finding.sort_key)],
        }


# Keys from a unique constraint cannot repeat; the others are checked in the data.
KEY_ORIGINS_TO_CHECK = {"primary key", "profile"}


def duplicate_key_findings(sql: Sql, model: Model) -> list[Finding]:
    """Natural keys that are not unique in the data (unique constraints guarantee theirs)."""
    return [
        Finding(
            "DUPLICATE_KEY",
            "error",
            table,
            f"The natural key ({', '.join(ent.key or ())}) of {table} is not unique: "
            f"{n} value(s) repeat, e.g. {examples}.",
            f"Choose columns that identify each {table} record: entities: "
            f"{{{table}: {{key: [...]}}}}.",
        )
        for table, ent, n, examples in repeated_keys(sql, model, KEY_ORIGINS_TO_CHECK)
    ]


def secret_findings(sql: Sql, model: Model, profile: Profile) -> list[Finding]:
    """Can the source application's secrets be read? Tries the cipher on one stored value."""
    from rehost.crypto import get_cipher
    from rehost.errors import RehostError

    columns = [
        (t, c)
        for t in model.order
        for c, how in sorted(model.entities[t].secrets.items())
        if how == "profile"
    ]
    if not columns:
        return []
    s = profile.secrets
    try:
        cipher = get_cipher(s.cipher, s.source_key, "source")
    except RehostError as exc:
        return [
            Finding(
                "SECRETS_CONFIG", "error", "secrets", str(exc), "Fix 'secrets:' in the profile."
            )
        ]
    for table, column in columns:
        q = sql.q(column)
        row = sql.execute(f"SELECT {q} FROM {sql.q(table)} WHERE {q} IS NOT NULL LIMIT 1").first()
        if row is None:
            continue
        value = row[0].tobytes() if isinstance(row[0], memoryview) else row[0]
        try:
            cipher.decrypt(value)
        except Exception as exc:  # any cipher's failure, named without the value
            return [
                Finding(
                    "SECRET_DECRYPT",
                    "error",
                    f"{table}.{column}",
                    f"A stored {table}.{column} value cannot be decrypted with the {s.cipher} "
                    f"cipher and the source key ({type(exc).__name__}).",
                    "Check secrets.source_key: it must be the source application's own key.",
                )
            ]
        break
    return []


def inspect(source: str, *, profile: Profile | None = None) -> Inventory:
    """Read the source's schema, row counts and version; infer the profile; check it."""
    profile = profile or Profile()
    engine = open_engine(source)
    try:
        schema = reflect(engine)
        model = resolve(schema, profile)
        with engine.connect() as conn:
            sql = Sql(conn)
            rows = {t: sql.count(t) for t in model.order}
            version = detect(conn, profile, set(schema.tables))
            findings = list(model.findings) + duplicate_key_findings(sql, model)
            findings += secret_findings(sql, model, profile)
        if version is None:
            findings.append(
                Finding(
                    "NO_VERSION",
                    "info",
                    "source",
                    "No schema version table was found (alembic_version, django_migrations, "
                    "schema_migrations, flyway_schema_history, __EFMigrationsHistory, "
                    "knex_migrations); imports cannot check versions.",
                    "Set 'version: {table: …}' or 'version: {query: …}' in the profile.",
                )
            )
    finally:
        engine.dispose()
    return Inventory(
        source=redact(source),
        engine=engine.dialect.name,
        version=version,
        model=model,
        rows=rows,
        findings=findings,
    )
