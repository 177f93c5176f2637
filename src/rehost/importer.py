"""Import: bundle → plan against a target → (optionally) apply in one transaction.

Planning and applying are one streamed pass over the bundle in dependency
order: each batch of records is matched to the target by natural key (in bulk),
given an action, and — when applying — written. A preview runs the same pass
without writing, handing out placeholder IDs, so it shows exactly what an
import would do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rehost.bundle.codec import key_label
from rehost.bundle.reader import Bundle
from rehost.crypto import BundleKey, KdfParams, get_cipher, is_secret
from rehost.crypto.ciphers import AppCipher
from rehost.db.connect import open_engine, redact
from rehost.db.rows import Sql
from rehost.db.schema import Schema, Table, reflect
from rehost.db.types import comparable, doc_encoder, from_doc, to_doc
from rehost.errors import (
    BundleError,
    DanglingReference,
    KeyCollision,
    ProfileError,
    RehostError,
    SchemaError,
    TargetWriteError,
    UsageError,
    VersionMismatch,
)
from rehost.idmap import IdMap
from rehost.ids import IdAllocator
from rehost.profile.model import Profile
from rehost.profile.resolve import Entity, Model
from rehost.progress import NoProgress, Progress
from rehost.versions import AppVersion, detect

BATCH = 1000
MAX_CHANGES = 1000
ACTIONS = ("create", "update", "unchanged", "skip", "merge", "delete")

PasswordSource = Callable[[], str]

LEDGER = "rehost_ledger"
MAX_LISTED = 20


class LedgerConflict(RehostError):
    """Records rehost wrote earlier were changed in the target since."""


def _row_hash(doc: dict[str, Any]) -> str:
    """SHA-256 of a target row in canonical document form."""
    text = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _create_ledger(conn: sa.Connection) -> None:
    """The ledger table, made before the import's transaction (DDL commits on MariaDB)."""
    text = "VARCHAR(255)" if conn.dialect.name in ("mysql", "mariadb") else "TEXT"
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {LEDGER} (entity {text} NOT NULL, target_id {text} NOT NULL, "
        f"hash {text} NOT NULL, bundle TEXT, written_at {text}, PRIMARY KEY (entity, target_id))"
    )
    conn.commit()


@dataclass
class Change:
    label: str
    action: str
    diffs: list[tuple[str, Any, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"record": self.label, "action": self.action}
        if self.diffs:
            d["fields"] = [{"field": f, "old": o, "new": n} for f, o, n in self.diffs]
        return d


@dataclass
class TableSummary:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    changes: list[Change] = field(default_factory=list)
    changes_omitted: int = 0

    def add(self, action: str, change: Change | None = None) -> None:
        self.counts[action] += 1
        if change is not None:
            if len(self.changes) < MAX_CHANGES:
                self.changes.append(change)
            else:
                self.changes_omitted += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "changes": [c.to_json() for c in self.changes],
            "changes_omitted": self.changes_omitted,
        }


@dataclass
class ImportReport:
    bundle: str
    target: str
    on_conflict: str
    preview: bool
    status: str  # preview | succeeded | incomplete
    tables: dict[str, TableSummary]
    order: list[str]
    manual_steps: list[str]
    source_version: AppVersion | None
    target_version: AppVersion | None
    warnings: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(ACTIONS, 0)
        for s in self.tables.values():
            for a, n in s.counts.items():
                out[a] += n
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "target": self.target,
            "on_conflict": self.on_conflict,
            "preview": self.preview,
            "status": self.status,
            "totals": self.totals(),
            "tables": {t: self.tables[t].to_json() for t in self.order if t in self.tables},
            "manual_steps": self.manual_steps,
            "source_version": self.source_version.to_json() if self.source_version else None,
            "target_version": self.target_version.to_json() if self.target_version else None,
            "warnings": self.warnings,
        }


# ------------------------------------------------------------------ helpers


def _strip_id(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "_id"}


@dataclass
class Row:
    """One incoming record during planning."""

    doc: dict[str, Any]
    owner_src: Any  # the owner's source ID (owned records)
    # A person-readable name for reports and errors, made when first asked for.
    label_of: str | Callable[[], str]
    values: dict[str, Any] = field(default_factory=dict)  # doc-space, refs as target IDs
    plain_secrets: dict[str, Any] = field(default_factory=dict)
    deferred: dict[str, Any] = field(default_factory=dict)  # column → reference object
    existing: dict[str, Any] | None = None  # target row, doc-space
    existing_raw_secret: dict[str, Any] = field(default_factory=dict)
    action: str = ""
    target_id: Any = None
    diffs: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        if not isinstance(self.label_of, str):
            self.label_of = self.label_of()
        return self.label_of


_PLAIN_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\([0-9, ]+\))?$")


def _refused(table: str, what: str, reason: str) -> TargetWriteError:
    """The one message for a write the target refused (the transaction is rolled back)."""
    first = reason.strip().splitlines()[0] if reason.strip() else reason
    return TargetWriteError(
        f"The target refused to {what} {table} records: {first}. The import was rolled "
        "back; the target is as it was. Check that the target's schema matches the "
        "source's version and that its constraints allow this data."
    )


def _owned_count(doc: dict[str, Any]) -> int:
    owned = doc.get("_owned")
    if not owned:
        return 0
    return sum(len(kids) + sum(_owned_count(k) for k in kids) for kids in owned.values())


@dataclass
class Group:
    """The records of one owned table under one owner (possibly none)."""

    owner_src: Any
    owner_label: str
    rows: list[Row]


class Importer:
    def __init__(
        self,
        conn: sa.Connection,
        bundle: Bundle,
        model: Model,
        target_schema: Schema,
        *,
        on_conflict: str,
        preview: bool,
        bundle_key: BundleKey | None,
        target_ciphers: dict[str, AppCipher],
        progress: Progress,
        ledger: bool = False,
        force: bool = False,
        bundle_label: str = "",
    ) -> None:
        self.conn = conn
        self.sql = Sql(conn)
        self.bundle = bundle
        self.model = model
        self.target = target_schema
        self.on_conflict = on_conflict
        self.preview = preview
        self.bkey = bundle_key
        self.ciphers = target_ciphers
        self.progress = progress
        self.alloc = IdAllocator(self.sql)
        self.idmap: dict[str, IdMap] = defaultdict(IdMap)
        self.action_of: dict[str, dict[Any, str]] = defaultdict(dict)
        self.summaries: dict[str, TableSummary] = {t: TableSummary() for t in model.order}
        self.in_bundle = {t for t, n in bundle.manifest["counts"].items() if n}
        self.deferred: list[tuple[str, Row, str]] = []
        self._placeholder = itertools.count(-1, -1)
        self._key_cache: dict[str, dict[str, Any]] = defaultdict(dict)
        self._empty: dict[str, bool] = {}
        self.warnings: list[str] = []
        self._plans: dict[str, list[tuple[str, str, Callable[[Any], Any] | None]]] = {}
        self.referenced = {
            ref.table for ent in model.entities.values() for ref in ent.refs.values() if ref.remap
        }
        # The ledger: what earlier imports wrote (entity, target ID → row hash).
        self.ledger = ledger
        self.force = force
        self.bundle_label = bundle_label
        self._ledger_rows: dict[str, dict[str, str]] = {}
        self._checked: set[tuple[str, str]] = set()
        self.modified: list[str] = []
        self.modified_count = 0
        self.written: dict[str, set[Any]] = defaultdict(set)
        self.removed: dict[str, set[Any]] = defaultdict(set)

    # ------------------------------------------------------------- streaming

    def _docs_along(
        self, path: list[str]
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None, str]]:
        """(doc, parent doc, parent label) for every record of path[-1] — including a
        None doc once per parent that has none, so replaced children can be removed."""
        root = path[0]
        root_ent = self.model.entities[root]

        def walk(doc: dict[str, Any], depth: int, label: str) -> Iterator[tuple[Any, Any, str]]:
            table = path[depth]
            if depth == len(path) - 1:
                yield doc, None, label
                return
            child = path[depth + 1]
            kids = doc.get("_owned", {}).get(child, [])
            if depth + 1 == len(path) - 1:
                if not kids:
                    yield None, doc, label
                for k in kids:
                    yield k, doc, label
                return
            cent = self.model.entities[child]
            for k in kids:
                yield from walk(k, depth + 1, f"{label} / {self._own_label(cent, k)}")
            del table

        for doc in self.bundle.documents(root):
            yield from walk(doc, 0, self._own_label(root_ent, doc))

    def _owned_label(self, owner_label: str, ent: Entity, doc: dict[str, Any]) -> str:
        return f"{owner_label} / {self._own_label(ent, doc)}"

    def _own_label(self, ent: Entity, doc: dict[str, Any]) -> str:
        if ent.key:
            return key_label({k: doc.get(k) for k in ent.key if k != ent.owner})
        if "_id" in doc:
            return f"#{doc['_id']}"
        return key_label({k: doc.get(k) for k in ent.fields})

    def _groups(self, table: str) -> Iterator[list[Group]]:
        """Batches of groups; an owner's records never straddle two batches."""
        ent = self.model.entities[table]
        path = self.model.path_from_root(table)
        batch: list[Group] = []
        size = 0
        if ent.is_root:
            for doc, _parent, label in self._docs_along(path):
                batch.append(Group(None, "", [Row(doc=doc, owner_src=None, label_of=label)]))
                # A document carries its owned records: count them, so that a batch
                # of big documents stays small in memory.
                size += 1 + _owned_count(doc)
                if size >= BATCH:
                    yield batch
                    batch, size = [], 0
        else:
            current: Group | None = None
            for doc, parent, plabel in self._docs_along(path):
                assert parent is not None
                psrc = parent.get("_id")
                if current is None or current.owner_src != psrc:
                    if current is not None:
                        batch.append(current)
                        size += max(1, len(current.rows))
                        if size >= BATCH:
                            yield batch
                            batch, size = [], 0
                    current = Group(psrc, plabel, [])
                if doc is not None:
                    current.rows.append(
                        Row(
                            doc=doc,
                            owner_src=psrc,
                            label_of=partial(self._owned_label, plabel, ent, doc),
                        )
                    )
            if current is not None:
                batch.append(current)
        if batch:
            yield batch

    # ------------------------------------------------------------- references

    def _resolve_refs(self, table: str, rows: list[Row]) -> None:
        ent = self.model.entities[table]
        for col, ref in ent.refs.items():
            if col == ent.owner:
                continue
            deferred = (table, col) in self.model.deferred
            if not ref.remap:
                for r in rows:
                    r.values[col] = r.doc.get(col)
                continue
            pending: list[tuple[Row, dict[str, Any]]] = []
            for r in rows:
                obj = r.doc.get(col)
                if obj is None:
                    r.values[col] = None
                    continue
                if not isinstance(obj, dict):
                    raise BundleError(
                        f"Bundle record {table} {r.label}: field {col} is not a reference."
                    )
                if deferred:
                    r.values[col] = None
                    r.deferred[col] = obj
                    continue
                tid = self._from_idmap(ref.table, obj)
                if tid is not None:
                    r.values[col] = tid
                else:
                    pending.append((r, obj))
            if pending:
                found = self.lookup_refs(ref.table, [o for _, o in pending])
                for r, obj in pending:
                    tid = found.get(id(obj))
                    if tid is None:
                        self._dangling(table, r.label, col, ref.table, obj)
                    r.values[col] = tid

    def _from_idmap(self, table: str, obj: dict[str, Any]) -> Any:
        src = obj.get("_id")
        if src is not None and table in self.in_bundle:
            return self.idmap[table].get(src)
        return None

    def _dangling(
        self, table: str, label: str, col: str, ref_table: str, obj: dict[str, Any]
    ) -> None:
        raise DanglingReference(
            f"{table} '{label}' references {ref_table} '{key_label(_strip_id(obj)) or obj.get('_id')}'"
            f" (source ID {obj.get('_id')}) through {col}, but that record is in neither the bundle "
            "nor the target. Export it together with the record that references it (a full "
            "export, or an --only that includes it), or create it on the target first. Nothing "
            "was written."
        )

    def lookup_refs(self, table: str, objs: list[dict[str, Any]]) -> dict[int, Any]:
        """Target IDs for reference objects (by natural key, in bulk); id(obj) → target ID."""
        ent = self.model.entities[table]
        out: dict[int, Any] = {}
        if not ent.key or not ent.surrogate:
            return out
        # Resolve nested key references first.
        keyvals: list[tuple[dict[str, Any], tuple[Any, ...] | None]] = []
        nested: dict[str, dict[int, Any]] = {}
        for kc in ent.key:
            ref = ent.refs.get(kc)
            if ref and ref.remap:
                inner = [o[kc] for o in objs if isinstance(o.get(kc), dict)]
                resolved: dict[int, Any] = {}
                leftovers = []
                for io in inner:
                    tid = self._from_idmap(ref.table, io)
                    if tid is not None:
                        resolved[id(io)] = tid
                    else:
                        leftovers.append(io)
                if leftovers:
                    resolved.update(self.lookup_refs(ref.table, leftovers))
                nested[kc] = resolved
        for o in objs:
            parts: list[Any] = []
            ok = True
            for kc in ent.key:
                v = o.get(kc)
                if kc in nested and isinstance(v, dict):
                    tid = nested[kc].get(id(v))
                    if tid is None:
                        ok = False
                        break
                    parts.append(tid)
                else:
                    parts.append(self._cmp(ent, kc, v))
            keyvals.append((o, tuple(parts) if ok else None))
        wanted = [
            kv for _, kv in keyvals if kv is not None and not any(_is_placeholder(p) for p in kv)
        ]
        existing = self._fetch_by_keys(table, ent, ent.key, wanted, [ent.surrogate])
        for o, kv in keyvals:
            if kv is not None and kv in existing:
                out[id(o)] = existing[kv][ent.surrogate]
            elif kv is not None and any(_is_placeholder(p) for p in kv):
                # Preview: the record is planned for creation under a new parent.
                cache = self._key_cache[table]
                out[id(o)] = cache.get(repr(kv))
        return out

    def _cmp(self, ent: Entity, col: str, v: Any) -> Any:
        tkind = self._tkind(ent.table, col)
        c = comparable(v, tkind)
        if self.sql.dialect == "mysql" and isinstance(c, str):
            c = c.casefold()  # MySQL's default collations compare case-insensitively
        return c

    def _tkind(self, table: str, col: str) -> str:
        t = self.target.tables[table]
        return t.columns[col].kind if col in t.columns else "other"

    def _empty_before(self, table: str) -> bool:
        """Whether the target table held no records when this import reached it."""
        if table not in self._empty:
            q = self.sql.q(table)
            self._empty[table] = self.sql.execute(f"SELECT 1 FROM {q} LIMIT 1").first() is None
        return self._empty[table]

    def _fetch_by_keys(
        self,
        table: str,
        ent: Entity,
        key: Sequence[str],
        keys: list[tuple[Any, ...]],
        extra: Sequence[str],
    ) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Target rows (doc-space) whose natural key is among ``keys``."""
        if not keys:
            return {}
        tt = self.target.tables[table]
        cols = [c for c in ent.columns if c in tt.columns]
        for c in extra:
            if c not in cols:
                cols.append(c)
        want = set(keys)
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        rows: list[tuple[Any, ...]] = []
        if len(key) == 1:
            vals = {k[0] for k in keys}
            params = [self._param(tt, key[0], v) for v in vals if v is not None]
            if params:
                rows.extend(self.sql.where_in(table, cols, key[0], params))
            if None in vals:
                rows.extend(
                    self.sql.execute(
                        f"SELECT {self.sql.cols(cols)} FROM {self.sql.q(table)} "
                        f"WHERE {self.sql.q(key[0])} IS NULL"
                    ).fetchall()
                )
        else:
            # The whole key at once, so a composite unique index answers it; the
            # exact comparison (case, types) is made again here.
            tuples = {
                tuple(
                    None if v is None else self._param(tt, kc, v)
                    for kc, v in zip(key, k, strict=True)
                )
                for k in keys
            }
            types: list[str] | None = [tt.columns[kc].type_text for kc in key]
            if not all(_PLAIN_TYPE.match(ty) for ty in types or ()):
                types = None  # a type rehost cannot spell back in SQL: plain OR terms
            rows.extend(self.sql.where_keys(table, cols, key, tuples, types))
        for raw in rows:
            rec = dict(zip(cols, raw, strict=True))
            kv = tuple(self._cmp_target(tt, ent, kc, rec[kc]) for kc in key)
            if kv in want:
                out[kv] = rec
        return out

    def _param(self, tt: Table, col: str, v: Any) -> Any:
        kind = tt.columns[col].kind
        if self.sql.dialect == "mysql" and isinstance(v, str):
            return v  # casefolded already; the collation matches regardless of case
        return from_doc(v, kind, self.sql.dialect)

    def _cmp_target(self, tt: Table, ent: Entity, col: str, raw: Any) -> Any:
        kind = tt.columns[col].kind
        ref = ent.refs.get(col)
        if ref is not None and ref.remap:
            return raw
        c = comparable(to_doc(raw, kind, tt.columns[col].scale), kind)
        if self.sql.dialect == "mysql" and isinstance(c, str):
            c = c.casefold()
        return c

    # ----------------------------------------------------------------- tables

    def run(self) -> None:
        for table in self.model.order:
            if table not in self.in_bundle:
                continue
            ent = self.model.entities[table]
            total = self.bundle.manifest["counts"].get(table)
            keyless_into_data = ent.is_root and not ent.key and not self._empty_before(table)
            self.progress.start(f"{'plan' if self.preview else 'import'} {table}", total)
            if table in self.model.self_keyed:
                for batch in self._levels(table):
                    self._table_batch(table, ent, batch)
            else:
                for batch in self._groups(table):
                    self._table_batch(table, ent, batch)
            self.progress.finish()
            created = self.summaries[table].counts["create"]
            if keyless_into_data and created:
                self.warnings.append(
                    f"{table} has no natural key, so its {created} record(s) "
                    f"{'would be' if self.preview else 'were'} created even if the target "
                    f"already holds the same ones (it held {table} records before this "
                    "import). Give it a 'key' in the export profile to match them by name."
                )
        self._finish_deferred()
        self._close_ledger()

    # ----------------------------------------------------------------- ledger

    def _ledger_of(self, table: str) -> dict[str, str]:
        rows = self._ledger_rows.get(table)
        if rows is None:
            rows = {}
            if LEDGER in self.target.tables or (self.ledger and not self.preview):
                q = f"SELECT target_id, hash FROM {LEDGER} WHERE entity = {self.sql.mark}"
                rows = {str(t): h for t, h in self.sql.execute(q, [table]).fetchall()}
            self._ledger_rows[table] = rows
        return rows

    def _hashes(self, table: str, pks: list[Any]) -> dict[str, str]:
        """Current target rows' hashes (single-column primary keys), by target ID."""
        tt = self.target.tables[table]
        cols = list(tt.columns)
        kinds = [(tt.columns[c].kind, tt.columns[c].scale) for c in cols]
        at = cols.index(tt.pk[0])
        out: dict[str, str] = {}
        for raw in self.sql.where_in(table, cols, tt.pk[0], pks):
            doc = {c: to_doc(v, k, s) for c, (k, s), v in zip(cols, kinds, raw, strict=True)}
            out[str(raw[at])] = _row_hash(doc)
        return out

    def _guard(self, table: str, records: list[tuple[Any, str]]) -> None:
        """Before an update or delete: note records changed in the target since rehost
        wrote them (their hash no longer matches the ledger's)."""
        if not self.ledger:
            return
        tt = self.target.tables[table]
        if len(tt.pk) != 1:
            return
        known = self._ledger_of(table)
        todo: list[tuple[Any, str]] = []
        for pk, label in records:
            if pk is None or _is_placeholder(pk) or (table, str(pk)) in self._checked:
                continue
            self._checked.add((table, str(pk)))
            if str(pk) in known:
                todo.append((pk, label))
        if not todo:
            return
        now = self._hashes(table, [pk for pk, _ in todo])
        for pk, label in todo:
            h = now.get(str(pk))
            if h is not None and h != known[str(pk)]:
                self.modified_count += 1
                if len(self.modified) < MAX_LISTED:
                    self.modified.append(
                        f"{table} '{label}' (id {pk})" if label else f"{table} id {pk}"
                    )

    def _close_ledger(self) -> None:
        """Stop on changed records (unless forced), then record what this import wrote."""
        if not self.ledger:
            return
        if self.modified_count:
            listed = "; ".join(self.modified)
            more = self.modified_count - len(self.modified)
            if more:
                listed += f"; and {more} more"
            what = (
                f"{self.modified_count} record(s) rehost wrote earlier were changed in the target "
                f"since: {listed}."
            )
            if self.preview:
                self.warnings.append(
                    f"{what} An import with --on-conflict overwrite stops on them; --force "
                    "overwrites them."
                )
            elif not self.force:
                raise LedgerConflict(
                    f"{what} Overwriting them would lose those changes, so nothing was written. "
                    "Pass --force to overwrite them."
                )
        if self.preview:
            return
        when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        m = self.sql.mark
        for table in sorted(set(self.written) | set(self.removed)):
            tt = self.target.tables[table]
            if len(tt.pk) != 1:
                continue
            ids = {str(p) for p in self.written[table] | self.removed[table]}
            self.sql.executemany(
                f"DELETE FROM {LEDGER} WHERE entity = {m} AND target_id = {m}",
                [(table, i) for i in sorted(ids)],
            )
            hashes = self._hashes(table, [p for p in self.written[table] if p is not None])
            if hashes:
                self.sql.executemany(
                    f"INSERT INTO {LEDGER} (entity, target_id, hash, bundle, written_at) "
                    f"VALUES ({m}, {m}, {m}, {m}, {m})",
                    [(table, i, h, self.bundle_label, when) for i, h in sorted(hashes.items())],
                )

    def _levels(self, table: str) -> Iterator[list[Group]]:
        """Rows of a tree-shaped table, parents before children."""
        ent = self.model.entities[table]
        groups = [g for batch in self._groups(table) for g in batch]
        selfcols = [c for c, r in ent.refs.items() if r.table == table and c != ent.owner]
        placed: set[Any] = set()
        remaining = [(g, r) for g in groups for r in g.rows]
        empties = [g for g in groups if not g.rows]
        all_ids = {r.doc.get("_id") for _, r in remaining}
        if empties:
            yield empties
        while remaining:
            level, rest = [], []
            for g, r in remaining:
                parents = [
                    (r.doc.get(c) or {}).get("_id")
                    for c in selfcols
                    if isinstance(r.doc.get(c), dict)
                ]
                if all(p in placed or p not in all_ids or p == r.doc.get("_id") for p in parents):
                    level.append((g, r))
                else:
                    rest.append((g, r))
            if not level:
                raise SchemaError(
                    f"Records of {table} reference each other in a loop; cannot order them."
                )
            for _, r in level:
                placed.add(r.doc.get("_id"))
            by_group: dict[int, Group] = {}
            for g, r in level:
                by_group.setdefault(id(g), Group(g.owner_src, g.owner_label, [])).rows.append(r)
            batch = list(by_group.values())
            for i in range(0, len(batch), BATCH):
                yield batch[i : i + BATCH]
            remaining = rest

    def _table_batch(self, table: str, ent: Entity, groups: list[Group]) -> None:
        rows = [r for g in groups for r in g.rows]
        summary = self.summaries[table]
        tt = self.target.tables[table]
        owner_action: dict[Any, str] = {}
        owner_tid: dict[Any, Any] = {}
        if ent.owner:
            otab = ent.owner_table
            assert otab
            for g in groups:
                owner_action[g.owner_src] = self.action_of[otab].get(g.owner_src, "skip")
                owner_tid[g.owner_src] = self.idmap[otab].get(g.owner_src)
            for r in rows:
                r.values[ent.owner] = owner_tid[r.owner_src]
        self._resolve_refs(table, rows)
        plain = [c for c in ent.fields if not (c in ent.refs and ent.refs[c].remap)]
        secret = [c for c in plain if c in ent.secrets]
        for r in rows:
            doc, values = r.doc, r.values
            for c in plain:
                values[c] = doc.get(c)
            for c in secret:
                v = values[c]
                if is_secret(v):
                    assert self.bkey is not None
                    r.plain_secrets[c] = self.bkey.decrypt(v, f"{table}.{c}")
                    values[c] = None
        # Match existing target records by natural key.
        if ent.key:
            keyed = []
            as_is = [(kc in ent.refs and ent.refs[kc].remap) or kc == ent.owner for kc in ent.key]
            for r in rows:
                kv = tuple(
                    r.values.get(kc) if raw else self._cmp(ent, kc, r.values.get(kc))
                    for kc, raw in zip(ent.key, as_is, strict=True)
                )
                r.existing = None
                if not any(_is_placeholder(p) for p in kv):
                    keyed.append((r, kv))
            extra = [c for c in tt.pk]
            if self._empty_before(table):
                found = {}  # nothing to match: a first import skips the lookups
            else:
                found = self._fetch_by_keys(table, ent, ent.key, [kv for _, kv in keyed], extra)
            seen: dict[tuple[Any, ...], Row] = {}
            for r, kv in keyed:
                if kv in seen:
                    raise KeyCollision(
                        f"Two {table} records in the bundle share the natural key "
                        f"{key_label(list(kv))}: '{seen[kv].label}' and '{r.label}'. The key "
                        "must be unique."
                    )
                seen[kv] = r
                rec = found.get(kv)
                if rec is not None:
                    r.existing = rec
        elif ent.owner and rows:
            self._match_by_content(table, ent, tt, groups, owner_action, owner_tid)
        # Decide.
        creates: list[Row] = []
        updates: list[Row] = []
        for r in rows:
            action = self._decide(ent, r, owner_action.get(r.owner_src))
            r.action = action
            if action in ("create", "merge"):
                creates.append(r)
            elif r.existing is not None:
                r.target_id = self._pk_of(tt, r.existing)
                if action == "update":
                    updates.append(r)
        self._create(table, ent, tt, creates)
        if updates:
            self._guard(table, [(r.target_id, r.label) for r in updates])
        if updates and not self.preview:
            self._update(table, ent, tt, updates)
        if self.ledger and not self.preview:
            self.written[table].update(r.target_id for r in [*creates, *updates])
        # Source → target IDs are kept only for records something refers to.
        keep_ids = ent.surrogate is not None and table in self.referenced
        for r in rows:
            summary.add(
                r.action, Change(r.label, r.action, r.diffs) if r.action == "update" else None
            )
            src = r.doc.get("_id")
            if keep_ids and src is not None and r.target_id is not None:
                self.idmap[table][src] = r.target_id
                if ent.children:
                    self.action_of[table][src] = r.action
            for col, obj in r.deferred.items():
                self.deferred.append((table, r, col))
                del obj
        # Owned records the bundle no longer has are removed (replace), not when merging.
        if ent.owner and ent.merge != "union":
            replaced = [
                g for g in groups if owner_action.get(g.owner_src) in ("update", "unchanged")
            ]
            if replaced:
                self._remove_missing(table, ent, tt, replaced, owner_tid)
        self.progress.advance(len(rows))

    def _match_by_content(
        self,
        table: str,
        ent: Entity,
        tt: Table,
        groups: list[Group],
        owner_action: dict[Any, str],
        owner_tid: dict[Any, Any],
    ) -> None:
        """Owned records without a natural key match an existing record of the same
        owner with identical fields, so an unchanged re-import changes nothing."""
        assert ent.owner
        live = [
            g
            for g in groups
            if g.rows
            and owner_action.get(g.owner_src) in ("update", "unchanged", "skip")
            and not _is_placeholder(owner_tid.get(g.owner_src))
            and owner_tid.get(g.owner_src) is not None
        ]
        if not live:
            return
        fields = [
            c for c in ent.fields if c in tt.columns and (table, c) not in self.model.deferred
        ]
        cols = list(dict.fromkeys([*tt.pk, ent.owner, *fields]))
        pool: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        owners = [owner_tid[g.owner_src] for g in live]
        for raw in self.sql.where_in(table, cols, ent.owner, owners):
            rec = dict(zip(cols, raw, strict=True))
            sig = (rec[ent.owner], *(self._sig_target(ent, tt, c, rec[c]) for c in fields))
            pool[sig].append(rec)
        for g in live:
            for r in g.rows:
                sig = (
                    r.values[ent.owner],
                    *(self._sig_incoming(ent, tt, c, r) for c in fields),
                )
                matches = pool.get(sig)
                if matches:
                    r.existing = matches.pop()

    def _sig_target(self, ent: Entity, tt: Table, c: str, raw: Any) -> Any:
        ref = ent.refs.get(c)
        if ref is not None and ref.remap:
            return raw
        if c in ent.secrets:
            return _hashable(
                _norm_secret(
                    self._target_cipher(ent, c).decrypt(_unview(raw)) if raw is not None else None
                )
            )
        kind = tt.columns[c].kind
        return _hashable(comparable(to_doc(raw, kind, tt.columns[c].scale), kind))

    def _sig_incoming(self, ent: Entity, tt: Table, c: str, r: Row) -> Any:
        ref = ent.refs.get(c)
        if ref is not None and ref.remap:
            return r.values.get(c)
        if c in ent.secrets and c in r.plain_secrets:
            return _hashable(_norm_secret(r.plain_secrets[c]))
        kind = tt.columns[c].kind
        return _hashable(comparable(r.values.get(c), kind))

    def _decide(self, ent: Entity, r: Row, owner_action: str | None) -> str:
        if ent.owner is None:
            if r.existing is None:
                return "create"
            if self.on_conflict == "skip":
                return "skip"
            return self._compare(ent, r)
        oa = owner_action or "skip"
        if oa in ("create", "merge"):
            return "create" if r.existing is None else self._compare(ent, r)
        if oa == "skip":
            if ent.merge == "union":
                return "merge" if r.existing is None else "unchanged"
            return "skip"
        # Owner overwritten (update or unchanged): replace, or union.
        if r.existing is None:
            return "merge" if ent.merge == "union" else "create"
        return self._compare(ent, r)

    def _compare(self, ent: Entity, r: Row) -> str:
        assert r.existing is not None
        diffs: list[tuple[str, Any, Any]] = []
        for c, kind, encode in self._compare_plan(ent):
            if c in r.deferred:
                continue
            old_raw = r.existing.get(c)
            if encode is not None:  # neither a secret nor a reference
                # The usual case: the same value in document form, with no conversion.
                old = encode(old_raw)
                new = r.values.get(c)
                if old != new and comparable(old, kind) != comparable(new, kind):
                    diffs.append((c, old, new))
                continue
            if c in r.plain_secrets or c in ent.secrets:
                new_plain = r.plain_secrets.get(c)
                old_plain = (
                    self._target_cipher(ent, c).decrypt(_unview(old_raw))
                    if old_raw is not None
                    else None
                )
                if _norm_secret(old_plain) != _norm_secret(new_plain):
                    diffs.append((c, "(secret)", "(secret changed)"))
                continue
            ref = ent.refs.get(c)
            if ref is not None and ref.remap:
                if old_raw != r.values.get(c):
                    new_obj = r.doc.get(c)
                    diffs.append(
                        (
                            c,
                            None if old_raw is None else f"#{old_raw}",
                            None
                            if new_obj is None
                            else key_label(_strip_id(new_obj)) or f"#{new_obj.get('_id')}",
                        )
                    )
                continue
        r.diffs = diffs
        return "update" if diffs else "unchanged"

    def _compare_plan(self, ent: Entity) -> list[tuple[str, str, Callable[[Any], Any] | None]]:
        """(field, target kind, document encoder or None for secrets and references)."""
        plan = self._plans.get(ent.table)
        if plan is None:
            tt = self.target.tables[ent.table]
            plan = []
            for c in ent.fields:
                if c not in tt.columns or (ent.table, c) in self.model.deferred:
                    continue
                col = tt.columns[c]
                ref = ent.refs.get(c)
                plain = c not in ent.secrets and not (ref is not None and ref.remap)
                plan.append((c, col.kind, doc_encoder(col.kind, col.scale) if plain else None))
            self._plans[ent.table] = plan
        return plan

    def _target_cipher(self, ent: Entity, col: str) -> AppCipher:
        how = ent.secrets.get(col, "plaintext")
        return self.ciphers[how]

    def _pk_of(self, tt: Table, rec: dict[str, Any]) -> Any:
        if len(tt.pk) == 1:
            return rec[tt.pk[0]]
        return tuple(rec[c] for c in tt.pk)

    # ----------------------------------------------------------------- writes

    def _row_params(self, ent: Entity, tt: Table, r: Row, cols: Sequence[str]) -> tuple[Any, ...]:
        out = []
        for c in cols:
            if c == ent.surrogate:
                out.append(r.target_id)
                continue
            kind = tt.columns[c].kind
            if c in r.plain_secrets or (c in ent.secrets and c not in r.values):
                plain = r.plain_secrets.get(c)
                out.append(None if plain is None else self._target_cipher(ent, c).encrypt(plain))
                continue
            v = r.values.get(c)
            ref = ent.refs.get(c)
            if (ref is not None and ref.remap) or c == ent.owner:
                out.append(v)
            else:
                out.append(from_doc(v, kind, self.sql.dialect))
        return tuple(out)

    def _create(self, table: str, ent: Entity, tt: Table, rows: list[Row]) -> None:
        if not rows:
            return
        if ent.surrogate and ent.surrogate in tt.columns:
            if self.preview:
                for r in rows:
                    r.target_id = next(self._placeholder)
            else:
                ids = self.alloc.allocate(table, ent.surrogate, len(rows))
                for r, i in zip(rows, ids, strict=True):
                    r.target_id = i
                if self.ledger:  # records made by this import are never drift-checked
                    self._checked.update((table, str(i)) for i in ids)
        cols = [c for c in ent.columns if c in tt.columns]
        if not ent.surrogate:
            for r in rows:
                pkv = tuple(r.values.get(c) for c in tt.pk)
                r.target_id = (pkv[0] if len(pkv) == 1 else pkv) if tt.pk else None
        if self.preview:
            return
        params = [self._row_params(ent, tt, r, cols) for r in rows]
        if self.sql.dialect == "postgresql":
            # COPY takes identity values as given, GENERATED ALWAYS columns included.
            self._copy(table, cols, params)
            return
        sql = (
            f"INSERT INTO {self.sql.q(table)} ({self.sql.cols(cols)}) "
            f"VALUES ({self.sql.marks(len(cols))})"
        )
        self._write(table, sql, params, "insert")

    def _copy(self, table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        """PostgreSQL: new records through COPY, several times faster than INSERTs."""
        import psycopg

        stmt = f"COPY {self.sql.q(table)} ({self.sql.cols(cols)}) FROM STDIN"
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(stmt) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise _refused(table, "insert", str(exc)) from None
        finally:
            cursor.close()

    def _update(self, table: str, ent: Entity, tt: Table, rows: list[Row]) -> None:
        pk = list(tt.pk)
        if not pk:
            raise SchemaError(
                f"Cannot update records of {table} on the target: it has no primary key."
            )
        cols = [
            c
            for c in ent.fields
            if c in tt.columns and c not in pk and (table, c) not in self.model.deferred
        ]
        if ent.owner and ent.owner not in pk:
            cols.append(ent.owner)
        if not cols:
            return
        sets = ", ".join(f"{self.sql.q(c)} = {self.sql.mark}" for c in cols)
        where = " AND ".join(f"{self.sql.q(c)} = {self.sql.mark}" for c in pk)
        sql = f"UPDATE {self.sql.q(table)} SET {sets} WHERE {where}"
        params = []
        for r in rows:
            assert r.existing is not None
            vals = self._row_params(ent, tt, r, cols)
            params.append(vals + tuple(r.existing[c] for c in pk))
        self._write(table, sql, params, "update")

    def _write(self, table: str, sql: str, params: list[tuple[Any, ...]], what: str) -> None:
        try:
            self.sql.executemany(sql, params)
        except sa.exc.DBAPIError as exc:
            raise _refused(table, what, str(exc.orig) if exc.orig else str(exc)) from None

    def _remove_missing(
        self, table: str, ent: Entity, tt: Table, groups: list[Group], owner_tid: dict[Any, Any]
    ) -> None:
        assert ent.owner
        owners = [owner_tid[g.owner_src] for g in groups if owner_tid.get(g.owner_src) is not None]
        keep: set[Any] = set()
        for g in groups:
            for r in g.rows:
                if r.existing is not None:
                    keep.add(self._pk_of(tt, r.existing))
                elif r.target_id is not None:
                    keep.add(r.target_id)
        pk = list(tt.pk)
        if not pk or not owners:
            return
        owner_label = {
            owner_tid[g.owner_src]: g.owner_label
            for g in groups
            if owner_tid.get(g.owner_src) is not None
        }
        doomed: list[Any] = []
        under: dict[Any, str] = {}
        for got in self.sql.where_in(table, [*pk, ent.owner], ent.owner, owners):
            d = got[0] if len(pk) == 1 else tuple(got[: len(pk)])
            if d not in keep:
                doomed.append(d)
                under[d] = owner_label.get(got[-1], "")
        if doomed:
            self._delete(table, doomed, under)

    def _delete(self, table: str, pks: list[Any], under: dict[Any, str] | None = None) -> None:
        """Delete records and, first, everything they own (``under``: their owners' names)."""
        ent = self.model.entities[table]
        tt = self.target.tables[table]
        for child in ent.children:
            cent = self.model.entities[child]
            ctt = self.target.tables[child]
            if not ctt.pk or not cent.owner or len(tt.pk) != 1:
                continue
            kids = [
                (r[0] if len(ctt.pk) == 1 else tuple(r))
                for r in self.sql.where_in(child, list(ctt.pk), cent.owner, pks)
            ]
            if kids:
                self._delete(child, kids)
        summary = self.summaries.setdefault(table, TableSummary())
        labelled: list[tuple[Any, str]] = []
        for pk_value, label in self._target_labels(table, pks):
            label = label or f"id {pk_value}"
            if under and under.get(pk_value):
                label = f"{under[pk_value]} / {label}"
            summary.add("delete", Change(label=label, action="delete"))
            labelled.append((pk_value, label))
        self._guard(table, labelled)
        if self.preview:
            return
        if self.ledger:
            self.removed[table].update(pks)
        pk = list(tt.pk)
        where = " AND ".join(f"{self.sql.q(c)} = {self.sql.mark}" for c in pk)
        params = [((p,) if len(pk) == 1 else tuple(p)) for p in pks]
        self._write(table, f"DELETE FROM {self.sql.q(table)} WHERE {where}", params, "delete")

    def _target_labels(self, table: str, pks: list[Any]) -> list[tuple[Any, str]]:
        """Person-readable names of target records (their own key columns), for reports."""
        ent = self.model.entities[table]
        tt = self.target.tables[table]
        cols = [
            c
            for c in (ent.key or ())
            if c in tt.columns and c != ent.owner and not (c in ent.refs and ent.refs[c].remap)
        ]
        if len(tt.pk) != 1 or not cols:
            return [(p, "") for p in pks]
        names: dict[Any, str] = {}
        for r in self.sql.where_in(table, [tt.pk[0], *cols], tt.pk[0], pks):
            names[r[0]] = key_label(
                [to_doc(v, tt.columns[c].kind) for c, v in zip(cols, r[1:], strict=True)]
            )
        return [(p, names.get(p, "")) for p in pks]

    def _finish_deferred(self) -> None:
        """Fill in references that were left empty to break cycles."""
        by_col: dict[tuple[str, str], list[Row]] = defaultdict(list)
        for table, r, col in self.deferred:
            by_col[(table, col)].append(r)
        for (table, col), rows in by_col.items():
            ent = self.model.entities[table]
            ref = ent.refs[col]
            tt = self.target.tables[table]
            resolved: dict[int, Any] = {}
            pending = []
            for r in rows:
                obj = r.deferred[col]
                tid = self._from_idmap(ref.table, obj)
                if tid is None:
                    pending.append(obj)
                else:
                    resolved[id(obj)] = tid
            if pending:
                resolved.update(self.lookup_refs(ref.table, pending))
            updates = []
            for r in rows:
                if r.action == "skip" or r.target_id is None:
                    continue
                obj = r.deferred[col]
                tid = resolved.get(id(obj))
                if tid is None:
                    self._dangling(table, r.label, col, ref.table, obj)
                old = r.existing.get(col) if r.existing is not None else None
                if r.action in ("create", "merge") or old != tid:
                    updates.append((tid, r.target_id))
                    if r.action == "unchanged":
                        s = self.summaries[table]
                        s.counts["unchanged"] -= 1
                        r.action = "update"
                        s.add(
                            "update",
                            Change(
                                r.label,
                                "update",
                                [
                                    (
                                        col,
                                        f"#{old}" if old is not None else None,
                                        key_label(_strip_id(obj)),
                                    )
                                ],
                            ),
                        )
            if updates and self.ledger:
                labels = {r.target_id: r.label for r in rows}
                self._guard(table, [(t, labels.get(t, "")) for _, t in updates])
                if not self.preview:
                    self.written[table].update(t for _, t in updates)
            if updates and not self.preview and len(tt.pk) == 1:
                sql = (
                    f"UPDATE {self.sql.q(table)} SET {self.sql.q(col)} = {self.sql.mark} "
                    f"WHERE {self.sql.q(tt.pk[0])} = {self.sql.mark}"
                )
                self._write(table, sql, updates, "update")


def _hashable(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v, sort_keys=True, default=str)
    return v


def _is_placeholder(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v < 0


def _unview(v: Any) -> Any:
    return v.tobytes() if isinstance(v, memoryview) else v


def _norm_secret(v: Any) -> Any:
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return v
    return v


# ------------------------------------------------------------------ entry point


def _check_target(model: Model, target: Schema, bundle: Bundle) -> None:
    missing_tables = [
        t for t in model.order if t not in target.tables and bundle.manifest["counts"].get(t)
    ]
    if missing_tables:
        raise SchemaError(
            f"The target has no table(s) {', '.join(missing_tables)}. Create the application's "
            "schema on the target first (run its migrations to the source's version), then import."
        )
    problems = []
    for t in model.order:
        if t not in target.tables:
            continue
        tcols = target.tables[t].columns
        for c in model.entities[t].columns:
            if c not in tcols:
                problems.append(f"{t}.{c}")
    if problems:
        raise SchemaError(
            f"The target lacks column(s) {', '.join(problems)} that the bundle has. Migrate the "
            "target's schema to the source's version, then import."
        )


def _apply_import_profile(model: Model, profile: Profile) -> list[str]:
    """Merge rules are the importer's choice: the import profile may set them.

    Returns warnings for the parts of the profile an import cannot use: how
    records are keyed, owned, laid out or excluded was fixed at export.
    """
    warnings: list[str] = []
    unknown = sorted(set(profile.entities) - set(model.entities))
    if unknown:
        raise ProfileError(
            f"The import profile names entity type(s) {', '.join(unknown)}, which are not in "
            f"this bundle. Entity types in the bundle: {', '.join(sorted(model.entities))}."
        )
    for name, over in sorted(profile.entities.items()):
        ent = model.entities[name]
        fixed = []
        if over.key is not None and tuple(over.key) != tuple(ent.key or ()):
            fixed.append("key")
        if over.owner is not None and over.owner != ent.owner:
            fixed.append("owner")
        if over.owned is not None and over.owned != (ent.owner is not None):
            fixed.append("owned")
        if over.layout != "auto" and over.layout != ent.layout:
            fixed.append("layout")
        if fixed:
            warnings.append(
                f"The import profile sets {', '.join(fixed)} for {name} differently from the "
                "bundle; these were fixed when the bundle was exported and are ignored here "
                "(export again with them)."
            )
    kept = sorted(t for t in profile.exclude if t in model.entities)
    if kept:
        warnings.append(
            f"The import profile excludes {', '.join(kept)}, but the bundle holds them: "
            "exclusions apply at export, so they are imported. Export again to leave them out."
        )
    for name, over in profile.entities.items():
        if over.merge is None:
            continue
        ent = model.entities[name]
        if over.merge == "union" and ent.owner is None:
            raise ProfileError(
                f"The profile sets 'merge: union' on {name}, which is not owned by another "
                "entity type in this bundle; merging applies to owned children."
            )
        ent.merge = over.merge
    return warnings


def _ciphers(model: Model, bundle: Bundle, profile: Profile) -> dict[str, AppCipher]:
    out: dict[str, AppCipher] = {"plaintext": get_cipher("plaintext", None, "target")}
    if any("profile" in e.secrets.values() for e in model.entities.values()):
        s = profile.secrets
        name = s.cipher
        manifest_cipher = (bundle.manifest.get("secrets") or {}).get("cipher")
        if (
            name == "plaintext"
            and manifest_cipher
            and manifest_cipher != "plaintext"
            and not s.target_key
        ):
            raise UsageError(
                f"The bundle's secrets are stored by the application with the '{manifest_cipher}' "
                "cipher; give the import a profile whose secrets section names the cipher and "
                "target_key (for example target_key: env:TARGET_APP_KEY)."
            )
        out["profile"] = get_cipher(name, s.target_key, "target")
    return out


def import_(
    bundle_path: Path | str,
    target: str,
    *,
    on_conflict: str = "skip",
    preview: bool = False,
    profile: Profile | None = None,
    password: PasswordSource | str | None = None,
    ignore_version_check: bool = False,
    manual_steps_done: bool = False,
    progress: Progress | None = None,
    ledger: bool = False,
    force: bool = False,
) -> ImportReport:
    """Import ``bundle_path`` into ``target``: match records by natural key, remap IDs,
    and write everything in one transaction (or, with ``preview``, nothing).

    With ``ledger``, a real import records a hash of every record it wrote in the
    target's ``rehost_ledger`` table, and stops (unless ``force``) when records it is
    about to overwrite or delete were changed in the target since."""
    if on_conflict not in ("skip", "overwrite"):
        raise UsageError(f"--on-conflict must be skip or overwrite, not '{on_conflict}'.")
    profile = profile or Profile()
    progress = progress or NoProgress()
    bundle = Bundle.open(bundle_path)
    bundle.verify()
    model = Model.from_json(bundle.manifest["model"], profile)
    warnings = _apply_import_profile(model, profile)
    bkey: BundleKey | None = None
    sec = bundle.manifest.get("secrets")
    if sec:
        if password is None:
            raise UsageError(
                "This bundle holds secrets, so it needs its password: give --password-file FILE "
                "or set REHOST_PASSWORD."
            )
        pw = password() if callable(password) else password
        bkey = BundleKey.derive(pw, KdfParams.from_json(sec["kdf"]))
        bkey.verify(sec["check"])
    ciphers = _ciphers(model, bundle, profile)
    manual = list(dict.fromkeys([*bundle.manifest.get("manual_steps", []), *profile.manual_steps]))
    source_version = AppVersion.from_json(bundle.manifest.get("source", {}).get("version"))
    engine = open_engine(target)
    try:
        with engine.connect() as conn:
            conn.info["write"] = not preview
            target_schema = reflect(conn.engine)
            _check_target(model, target_schema, bundle)
            target_version = detect(conn, profile, set(target_schema.tables))
            conn.rollback()
            if not ignore_version_check and _versions_differ(source_version, target_version):
                raise VersionMismatch(
                    f"The bundle comes from application version {_vdesc(source_version)}, but the "
                    f"target is at {_vdesc(target_version)}. Bring both to the same version, or "
                    "pass --ignore-version-check if you know the schemas match."
                )
            if ledger and not preview:
                _create_ledger(conn)
            trans = conn.begin()
            try:
                imp = Importer(
                    conn,
                    bundle,
                    model,
                    target_schema,
                    on_conflict=on_conflict,
                    preview=preview,
                    bundle_key=bkey,
                    target_ciphers=ciphers,
                    progress=progress,
                    ledger=ledger,
                    force=force,
                    bundle_label=str(bundle_path),
                )
                try:
                    imp.run()
                finally:
                    for m in imp.idmap.values():
                        m.close()
                if preview:
                    trans.rollback()
                else:
                    trans.commit()
            except BaseException:
                if trans.is_active:
                    trans.rollback()
                raise
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise TargetWriteError(
            f"The target {redact(target)} failed during the import: {reason}. Everything was "
            "rolled back."
        ) from None
    finally:
        engine.dispose()
    status = (
        "preview"
        if preview
        else ("incomplete" if manual and not manual_steps_done else "succeeded")
    )
    return ImportReport(
        bundle=str(bundle_path),
        target=redact(target),
        on_conflict=on_conflict,
        preview=preview,
        status=status,
        tables=imp.summaries,
        order=list(model.order),
        manual_steps=manual,
        source_version=source_version,
        target_version=target_version,
        warnings=warnings + imp.warnings,
    )


def _versions_differ(a: AppVersion | None, b: AppVersion | None) -> bool:
    if a is None and b is None:
        return False
    if a is None or b is None:
        return True
    return a.value != b.value


def _vdesc(v: AppVersion | None) -> str:
    return "(none found)" if v is None else f"{v.detail} [{v.source}]"
