"""Schema + profile → model: entity types with keys, references, owners and secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rehost.checks.findings import Finding
from rehost.db.schema import Schema, Table
from rehost.errors import ProfileError
from rehost.graph import Edge, order_tables
from rehost.profile.model import Profile

# Tables that record an application's schema version, and rehost's own import
# ledger: metadata, not data.
VERSION_TABLES = (
    "alembic_version",
    "django_migrations",
    "schema_migrations",
    "ar_internal_metadata",
    "flyway_schema_history",
    "__EFMigrationsHistory",
    "knex_migrations",
    "knex_migrations_lock",
    "rehost_ledger",
)

SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|pwd|secret|token|api_?key|private_?key|credentials?|"
    r"access_?key|auth_?key|client_secret)(_|$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Ref:
    column: str
    table: str
    ref_column: str
    nullable: bool
    # True when the referenced column is a per-server ID that must be remapped.
    remap: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.ref_column,
            "nullable": self.nullable,
            "remap": self.remap,
        }


@dataclass
class Entity:
    table: str
    columns: tuple[str, ...]
    kinds: dict[str, str]
    scales: dict[str, int | None]
    nullable: dict[str, bool]
    pk: tuple[str, ...]
    surrogate: str | None
    key: tuple[str, ...] | None
    key_origin: str
    refs: dict[str, Ref]
    owner: str | None = None
    children: tuple[str, ...] = ()
    merge: str = "replace"
    # column → "profile" (the profile's cipher) or "plaintext" (inferred secret)
    secrets: dict[str, str] = field(default_factory=dict)
    layout: str = "auto"

    @property
    def owner_table(self) -> str | None:
        return self.refs[self.owner].table if self.owner else None

    @property
    def is_root(self) -> bool:
        return self.owner is None

    @property
    def fields(self) -> tuple[str, ...]:
        """Columns written as document fields (the ID and the owner are implicit)."""
        return tuple(c for c in self.columns if c != self.surrogate and c != self.owner)

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": {
                c: {"kind": self.kinds[c], "nullable": self.nullable[c], "scale": self.scales[c]}
                for c in self.columns
            },
            "primary_key": list(self.pk),
            "id": self.surrogate,
            "key": list(self.key) if self.key else None,
            "key_origin": self.key_origin,
            "references": {c: r.to_json() for c, r in sorted(self.refs.items())},
            "owner": self.owner,
            "children": list(self.children),
            "merge": self.merge,
            "secrets": dict(sorted(self.secrets.items())),
            "layout": self.layout,
        }

    @classmethod
    def from_json(cls, table: str, d: dict[str, Any]) -> Entity:
        cols = d["columns"]
        return cls(
            table=table,
            columns=tuple(cols),
            kinds={c: v["kind"] for c, v in cols.items()},
            scales={c: v.get("scale") for c, v in cols.items()},
            nullable={c: bool(v["nullable"]) for c, v in cols.items()},
            pk=tuple(d["primary_key"]),
            surrogate=d.get("id"),
            key=tuple(d["key"]) if d.get("key") else None,
            key_origin=d.get("key_origin", ""),
            refs={
                c: Ref(c, r["table"], r["column"], bool(r["nullable"]), bool(r["remap"]))
                for c, r in d.get("references", {}).items()
            },
            owner=d.get("owner"),
            children=tuple(d.get("children", ())),
            merge=d.get("merge", "replace"),
            secrets=dict(d.get("secrets", {})),
            layout=d.get("layout", "auto"),
        )


@dataclass
class Model:
    entities: dict[str, Entity]
    order: tuple[str, ...]
    deferred: frozenset[tuple[str, str]]
    self_keyed: frozenset[str]
    excluded: tuple[str, ...]
    findings: list[Finding]
    profile: Profile

    def roots(self) -> list[str]:
        return [t for t in self.order if self.entities[t].is_root]

    def descendants(self, table: str) -> list[str]:
        """Owned tables below ``table``, parents before children."""
        out: list[str] = []
        for child in self.entities[table].children:
            out.append(child)
            out.extend(self.descendants(child))
        return out

    def root_of(self, table: str) -> str:
        e = self.entities[table]
        while e.owner_table:
            e = self.entities[e.owner_table]
        return e.table

    def path_from_root(self, table: str) -> list[str]:
        """[root, …, table] through owners."""
        path = [table]
        e = self.entities[table]
        while e.owner_table:
            path.append(e.owner_table)
            e = self.entities[e.owner_table]
        return list(reversed(path))

    def to_json(self) -> dict[str, Any]:
        return {
            "entities": {t: self.entities[t].to_json() for t in sorted(self.entities)},
            "order": list(self.order),
            "deferred": sorted(f"{t}.{c}" for t, c in self.deferred),
            "self_keyed": sorted(self.self_keyed),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], profile: Profile | None = None) -> Model:
        ents = {t: Entity.from_json(t, v) for t, v in d["entities"].items()}
        deferred = set()
        for item in d.get("deferred", []):
            t, _, c = item.rpartition(".")
            deferred.add((t, c))
        return cls(
            entities=ents,
            order=tuple(d["order"]),
            deferred=frozenset(deferred),
            self_keyed=frozenset(d.get("self_keyed", [])),
            excluded=(),
            findings=[],
            profile=profile or Profile(),
        )


def _infer_key(table: Table) -> tuple[tuple[str, ...] | None, str]:
    sur = table.surrogate
    candidates = [
        u
        for u in table.uniques
        # A constraint that holds the per-server ID identifies nothing across servers.
        if sur not in u and all(not table.columns[c].nullable for c in u)
    ]
    if candidates:
        position = {c: i for i, c in enumerate(table.columns)}
        candidates.sort(key=lambda u: (len(u), [position[c] for c in u]))
        return candidates[0], "unique"
    if table.pk and sur is None:
        return table.pk, "primary key"
    return None, "none"


def resolve(schema: Schema, profile: Profile) -> Model:
    """Combine the reflected schema with the profile. Raises ProfileError for a
    profile that names what does not exist; everything else becomes findings."""
    findings: list[Finding] = []
    present = set(schema.tables)
    for name in profile.exclude:
        if name not in present:
            raise ProfileError(
                f"The profile excludes table '{name}', which does not exist in the source. "
                "Remove it from 'exclude' or check its spelling."
            )
    for name in profile.entities:
        if name not in present:
            raise ProfileError(
                f"The profile describes table '{name}' under 'entities', which does not exist "
                f"in the source. Known tables: {', '.join(sorted(present)) or '(none)'}."
            )
        if name in profile.exclude:
            raise ProfileError(f"Table '{name}' is both excluded and described under 'entities'.")
    excluded = set(profile.exclude) | {t for t in VERSION_TABLES if t in present}
    tables = {n: t for n, t in schema.tables.items() if n not in excluded}

    entities: dict[str, Entity] = {}
    for name, table in sorted(tables.items()):
        over = profile.entities.get(name)

        def need_column(col: str, what: str, name: str = name, table: Table = table) -> None:
            if col not in table.columns:
                raise ProfileError(
                    f"The profile's {what} for table '{name}' names column '{col}', which does "
                    f"not exist. Columns of {name}: {', '.join(table.columns)}."
                )

        refs: dict[str, Ref] = {}
        for fk in table.fks:
            if len(fk.columns) != 1:
                findings.append(
                    Finding(
                        "COMPOSITE_FOREIGN_KEY",
                        "warning",
                        f"{name}({', '.join(fk.columns)})",
                        f"Table {name} has a foreign key over several columns to {fk.ref_table}; "
                        "its values are copied as they are, not remapped.",
                        "Make sure the referenced rows keep the same values on the target.",
                    )
                )
                continue
            col = fk.columns[0]
            if fk.ref_table in excluded:
                nullable = table.columns[col].nullable
                findings.append(
                    Finding(
                        "REFERENCE_TO_EXCLUDED",
                        "warning" if nullable else "error",
                        f"{name}.{col}",
                        f"{name}.{col} references table {fk.ref_table}, which is excluded"
                        + (
                            "; it is exported as empty (NULL)."
                            if nullable
                            else ", and the column cannot be empty."
                        ),
                        f"Stop excluding {fk.ref_table}, or exclude {name} too.",
                    )
                )
                continue
            if fk.ref_table not in schema.tables:
                continue
            ref_table = schema.tables[fk.ref_table]
            refs[col] = Ref(
                column=col,
                table=fk.ref_table,
                ref_column=fk.ref_columns[0],
                nullable=table.columns[col].nullable,
                remap=ref_table.surrogate == fk.ref_columns[0],
            )

        key: tuple[str, ...] | None
        if over and over.key is not None:
            for c in over.key:
                need_column(c, "key")
            key, origin = tuple(over.key), "profile"
            nullable_cols = [c for c in key if table.columns[c].nullable]
            if nullable_cols:
                findings.append(
                    Finding(
                        "NULLABLE_KEY",
                        "warning",
                        name,
                        f"The natural key of {name} includes nullable column(s) "
                        f"{', '.join(nullable_cols)}; empty values are matched as equal.",
                        "Prefer NOT NULL columns in natural keys.",
                    )
                )
        else:
            key, origin = _infer_key(table)

        owner: str | None = None
        if over and over.owner is not None:
            need_column(over.owner, "owner")
            if over.owner not in refs or not refs[over.owner].remap:
                raise ProfileError(
                    f"The profile makes {name}.{over.owner} the owner of {name}, but that column "
                    "is not a foreign key to another table's ID. An owner must be a reference."
                )
            owner = over.owner
        elif not (over and over.owned is False):
            for fk in table.fks:
                if (
                    len(fk.columns) == 1
                    and (fk.ondelete or "").upper() == "CASCADE"
                    and fk.columns[0] in refs
                    and refs[fk.columns[0]].remap
                    and fk.ref_table != name
                ):
                    owner = fk.columns[0]
                    break
        if owner and refs[owner].table == name:
            raise ProfileError(f"Table {name} cannot own itself through {owner}.")

        secrets: dict[str, str] = {}
        if over and over.secrets is not None:
            for c in over.secrets:
                need_column(c, "secrets")
                secrets[c] = "profile"
        else:
            for c, colinfo in table.columns.items():
                if SECRET_NAME.search(c) and colinfo.kind in ("text", "bytes") and c not in refs:
                    secrets[c] = "plaintext"

        merge = (over.merge if over and over.merge else None) or "replace"
        entities[name] = Entity(
            table=name,
            columns=tuple(table.columns),
            kinds={c: v.kind for c, v in table.columns.items()},
            scales={c: v.scale for c, v in table.columns.items()},
            nullable={c: v.nullable for c, v in table.columns.items()},
            pk=table.pk,
            surrogate=table.surrogate,
            key=key,
            key_origin=origin,
            refs=refs,
            owner=owner,
            merge=merge,
            secrets=secrets,
            layout=over.layout if over else "auto",
        )

    # Owners must form a forest and have IDs.
    for name, ent in entities.items():
        seen = {name}
        cur = ent
        while cur.owner_table:
            if cur.owner_table in seen:
                raise ProfileError(
                    f"Ownership loops through table {cur.owner_table}: set 'owner' (or "
                    "'owned: false') in the profile so each table has one owner chain."
                )
            seen.add(cur.owner_table)
            cur = entities[cur.owner_table]
        if ent.merge == "union" and ent.owner is None:
            raise ProfileError(
                f"The profile sets 'merge: union' on table {name}, which has no owner. Merging "
                "applies to owned children (like team members); give 'owner' too."
            )
    for name, ent in sorted(entities.items()):
        if ent.owner_table:
            parent = entities[ent.owner_table]
            parent.children = tuple(sorted((*parent.children, name)))

    edges = []
    for name, ent in entities.items():
        for col, ref in ent.refs.items():
            edges.append(
                Edge(
                    table=name,
                    column=col,
                    ref_table=ref.table,
                    nullable=ref.nullable and col != ent.owner,
                    in_key=bool(ent.key and col in ent.key) or col == ent.owner,
                )
            )
    ordering = order_tables(entities, edges)
    for cycle in ordering.unbreakable:
        findings.append(
            Finding(
                "UNBREAKABLE_CYCLE",
                "error",
                " → ".join(cycle),
                f"Tables {', '.join(cycle)} reference each other through columns that cannot be "
                "empty, so no import order exists.",
                "Make one of the references nullable in the schema.",
            )
        )

    for name, ent in sorted(entities.items()):
        if ent.key is None:
            if ent.is_root:
                findings.append(
                    Finding(
                        "NO_NATURAL_KEY",
                        "warning",
                        name,
                        f"Table {name} has no unique NOT NULL columns to match records by name; "
                        "imports always create its records, and re-imports duplicate them.",
                        f"Give a key in the profile: entities: {{{name}: {{key: [column, …]}}}}.",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "OWNED_WITHOUT_KEY",
                        "info",
                        name,
                        f"Table {name} is owned by {ent.owner_table} and has no natural key: its "
                        "records are replaced together with their owner.",
                    )
                )
        if not ent.pk:
            findings.append(
                Finding(
                    "NO_PRIMARY_KEY",
                    "warning",
                    name,
                    f"Table {name} has no primary key; it is read in full-column order and its "
                    "records can only be matched by a natural key.",
                    "Add a primary key, or give a key in the profile.",
                )
            )
        inferred = sorted(c for c, how in ent.secrets.items() if how == "plaintext")
        if inferred:
            findings.append(
                Finding(
                    "SECRET_COLUMNS",
                    "info",
                    name,
                    f"Column(s) {', '.join(inferred)} of {name} look secret: they are encrypted in "
                    "the bundle under its password.",
                    f"List them under entities: {{{name}: {{secrets: […]}}}} to set this "
                    "explicitly, or give an empty list if they are not secret.",
                )
            )
        if ent.owner:
            findings.append(
                Finding(
                    "OWNED",
                    "info",
                    name,
                    f"Table {name} is owned by {ent.owner_table} (through {ent.owner}): its "
                    f"records are part of their {ent.owner_table} documents"
                    + (", merged (union) on import." if ent.merge == "union" else "."),
                )
            )
    deferred_list = sorted(ordering.deferred)
    for t, c in deferred_list:
        findings.append(
            Finding(
                "DEFERRED_REFERENCE",
                "info",
                f"{t}.{c}",
                f"{t}.{c} is part of a reference cycle: it is set after the records it "
                "references exist, in the same transaction.",
            )
        )
    return Model(
        entities=entities,
        order=ordering.order,
        deferred=ordering.deferred,
        self_keyed=ordering.self_keyed,
        excluded=tuple(sorted(excluded)),
        findings=findings,
        profile=profile,
    )
