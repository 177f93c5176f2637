"""Export: source database → bundle of documents."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from rehost import __version__
from rehost.bundle.codec import key_label
from rehost.bundle.writer import MANIFEST, BundleWriter
from rehost.checks.findings import Finding, errors_in
from rehost.checks.keys import repeated_keys
from rehost.crypto import BundleKey, KdfParams, derive_salt, get_cipher
from rehost.crypto.ciphers import AppCipher
from rehost.db.connect import open_engine
from rehost.db.rows import Sql
from rehost.db.schema import reflect
from rehost.db.types import doc_encoder, to_doc
from rehost.errors import KeyCollision, RehostError, SchemaError, UsageError, WrongPassword
from rehost.profile.model import Profile
from rehost.profile.resolve import Entity, Model, resolve
from rehost.progress import NoProgress, Progress
from rehost.versions import AppVersion, detect

FILES_LAYOUT_MAX = 1000
KEY_CACHE_MAX = 200_000

PasswordSource = Callable[[], str]


@dataclass
class ExportResult:
    bundle: Path
    counts: dict[str, int]
    files: int
    version: AppVersion | None
    scope: list[str] | None
    secrets: int
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "counts": self.counts,
            "files": self.files,
            "version": self.version.to_json() if self.version else None,
            "scope": {"only": self.scope} if self.scope else "all",
            "secrets": self.secrets,
            "findings": [f.to_json() for f in self.findings],
        }


def load_model(conn: Connection, profile: Profile) -> Model:
    schema = reflect(conn.engine)
    return resolve(schema, profile)


class KeyRenderer:
    """Natural keys of referenced records, looked up in bulk and cached."""

    def __init__(self, sql: Sql, model: Model) -> None:
        self.sql = sql
        self.model = model
        self.cache: dict[str, dict[Any, Any]] = defaultdict(dict)

    def render(self, table: str, ids: Iterable[Any]) -> dict[Any, Any]:
        ent = self.model.entities[table]
        cache = self.cache[table]
        want = {i for i in ids if i is not None}
        missing = [i for i in want if i not in cache]
        if missing:
            if len(cache) + len(missing) > KEY_CACHE_MAX:
                cache.clear()
                missing = list(want)
            if not ent.key:
                for i in missing:
                    cache[i] = {"_id": i}
            else:
                ident = ent.surrogate
                assert ident is not None
                cols = [ident, *ent.key]
                rows = list(self.sql.where_in(table, cols, ident, missing))
                nested: dict[str, dict[Any, Any]] = {}
                for kc in ent.key:
                    ref = ent.refs.get(kc)
                    if ref and ref.remap:
                        pos = cols.index(kc)
                        nested[kc] = self.render(ref.table, (r[pos] for r in rows))
                for r in rows:
                    obj: dict[str, Any] = {"_id": r[0]}
                    for pos, kc in enumerate(ent.key, 1):
                        v = r[pos]
                        if kc in nested:
                            obj[kc] = nested[kc].get(v) if v is not None else None
                        else:
                            obj[kc] = to_doc(v, ent.kinds[kc], ent.scales[kc])
                    cache[r[0]] = obj
                for i in missing:
                    cache.setdefault(i, {"_id": i})
        return {i: cache[i] for i in want}


class SecretCodec:
    """Source application cipher → bundle key, per secret column."""

    def __init__(self, profile: Profile, bundle_key: BundleKey | None) -> None:
        self.bundle_key = bundle_key
        self.profile = profile
        self._ciphers: dict[str, AppCipher] = {}
        self.count = 0

    def cipher(self, how: str) -> AppCipher:
        if how not in self._ciphers:
            if how == "profile":
                s = self.profile.secrets
                self._ciphers[how] = get_cipher(s.cipher, s.source_key, "source")
            else:
                self._ciphers[how] = get_cipher("plaintext", None, "source")
        return self._ciphers[how]

    def encode(self, table: str, column: str, how: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, memoryview):
            value = value.tobytes()
        plain = self.cipher(how).decrypt(value)
        if plain is None:
            return None
        assert self.bundle_key is not None
        self.count += 1
        return self.bundle_key.encrypt(plain, f"{table}.{column}")


def _doc_identity(ent: Entity, row: dict[str, Any]) -> Any:
    if ent.surrogate:
        return row[ent.surrogate]
    if ent.pk:
        return [to_doc(row[c], ent.kinds[c]) for c in ent.pk]
    return [to_doc(row[c], ent.kinds[c]) for c in ent.columns]


@dataclass(frozen=True)
class _Shape:
    """How one entity type's rows (tuples in ``columns`` order) become documents."""

    ident: int | None  # position of the ID column
    owner: int | None  # position of the owner reference
    # (field, position, what, how): what is "ref" (how: table), "secret"
    # (how: cipher), or "value" (how: encoder)
    fields: tuple[tuple[str, int, str, Any], ...]


class DocumentBuilder:
    # Owned rows held in memory at once, roughly: a batch of root rows is cut so
    # that its descendants stay near this, whatever the table sizes.
    CHILD_ROWS_PER_BATCH = 20_000

    def __init__(self, sql: Sql, model: Model, secrets: SecretCodec) -> None:
        self.sql = sql
        self.model = model
        self.keys = KeyRenderer(sql, model)
        self.secrets = secrets
        self.rows_read = 0
        self._shapes: dict[str, _Shape] = {}

    def shape(self, table: str) -> _Shape:
        got = self._shapes.get(table)
        if got is None:
            ent = self.model.entities[table]
            pos = {c: i for i, c in enumerate(ent.columns)}
            fields: list[tuple[str, int, str, Any]] = []
            for c in ent.fields:
                ref = ent.refs.get(c)
                if ref is not None and ref.remap:
                    fields.append((c, pos[c], "ref", ref.table))
                elif c in ent.secrets:
                    fields.append((c, pos[c], "secret", ent.secrets[c]))
                else:
                    fields.append((c, pos[c], "value", doc_encoder(ent.kinds[c], ent.scales[c])))
            got = _Shape(
                ident=pos[ent.surrogate] if ent.surrogate else None,
                owner=pos[ent.owner] if ent.owner else None,
                fields=tuple(fields),
            )
            self._shapes[table] = got
        return got

    def _children(self, table: str, owner_ids: Sequence[Any]) -> list[tuple[Any, ...]]:
        ent = self.model.entities[table]
        assert ent.owner is not None
        order = ent.pk or ent.columns
        rows = [
            tuple(r) for r in self.sql.where_in(table, ent.columns, ent.owner, owner_ids, order)
        ]
        self.rows_read += len(rows)
        return rows

    def build(
        self, table: str, raw_rows: Sequence[tuple[Any, ...]]
    ) -> list[tuple[dict[str, Any], str, Any]]:
        """Documents (with owned children embedded) for a batch of root rows."""
        model = self.model
        root = model.entities[table]
        rows_of: dict[str, list[tuple[Any, ...]]] = {table: [tuple(r) for r in raw_rows]}
        self.rows_read += len(raw_rows)
        for child in model.descendants(table):
            parent = model.entities[child].owner_table
            assert parent is not None
            pid = self.shape(parent).ident
            ids = [r[pid] for r in rows_of[parent]] if pid is not None else []
            rows_of[child] = self._children(child, ids) if ids else []
        want: dict[str, set[Any]] = defaultdict(set)
        for t, rows in rows_of.items():
            for _c, p, what, how in self.shape(t).fields:
                if what == "ref":
                    want[how].update(r[p] for r in rows if r[p] is not None)
        keyobjs = {t: self.keys.render(t, ids) for t, ids in want.items()}
        by_owner: dict[str, dict[Any, list[tuple[Any, ...]]]] = {}
        for child in model.descendants(table):
            groups: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
            op = self.shape(child).owner
            assert op is not None
            for r in rows_of[child]:
                groups[r[op]].append(r)
            by_owner[child] = groups
        encode_secret = self.secrets.encode
        shapes = {t: self.shape(t) for t in rows_of}

        def doc_of(ent: Entity, row: tuple[Any, ...]) -> dict[str, Any]:
            shape = shapes[ent.table]
            doc: dict[str, Any] = {}
            if shape.ident is not None:
                doc["_id"] = row[shape.ident]
            for c, p, what, how in shape.fields:
                v = row[p]
                if what == "value":
                    doc[c] = how(v)
                elif what == "ref":
                    doc[c] = None if v is None else keyobjs[how].get(v, {"_id": v})
                else:
                    doc[c] = encode_secret(ent.table, c, how, v)
            if ent.children and shape.ident is not None:
                owned: dict[str, list[dict[str, Any]]] = {}
                me = row[shape.ident]
                for child in ent.children:
                    kids = by_owner[child].get(me)
                    if kids:
                        cent = model.entities[child]
                        owned[child] = [doc_of(cent, k) for k in kids]
                if owned:
                    doc["_owned"] = owned
            return doc

        out = []
        for row in rows_of[table]:
            doc = doc_of(root, row)
            if root.key:
                ident: Any = {k: doc[k] for k in root.key}
                label = key_label(ident)
            else:
                identity = _doc_identity(root, dict(zip(root.columns, row, strict=True)))
                label = f"id-{key_label(identity)}"
                ident = identity
            out.append((doc, label, ident))
        return out


# ------------------------------------------------------------------ selection


@dataclass(frozen=True)
class OnlySpec:
    table: str
    key: str

    @classmethod
    def parse(cls, text: str) -> OnlySpec:
        table, sep, key = text.partition("=")
        if not sep or not table.strip() or not key.strip():
            raise UsageError(
                f"--only '{text}' is not ENTITY=KEY (for example --only projects=web-app)."
            )
        return cls(table.strip(), key.strip())

    def __str__(self) -> str:
        return f"{self.table}={self.key}"


def _find_roots(sql: Sql, model: Model, spec: OnlySpec) -> set[Any]:
    from rehost.bundle.codec import slugify

    ent = model.entities.get(spec.table)
    if ent is None:
        raise UsageError(
            f"--only {spec}: there is no entity type '{spec.table}'. Entity types: "
            f"{', '.join(model.roots())}."
        )
    if not ent.is_root:
        raise UsageError(
            f"--only {spec}: {spec.table} records are owned by {ent.owner_table}; select the "
            f"{ent.owner_table} record instead (its {spec.table} come with it)."
        )
    if not ent.surrogate:
        raise UsageError(f"--only {spec}: {spec.table} has no ID column to select records by.")
    renderer = KeyRenderer(sql, model)
    found: set[Any] = set()
    examples: list[str] = []
    for batch in sql.scan(spec.table, [ent.surrogate], [ent.surrogate]):
        keys = renderer.render(spec.table, [r[0] for r in batch])
        for i, obj in keys.items():
            label = key_label({k: v for k, v in obj.items() if k != "_id"}) if ent.key else f"#{i}"
            if len(examples) < 3:
                examples.append(label)
            if spec.key in (label, slugify(label), str(i) if not ent.key else None):
                found.add(i)
    if not found:
        shown = "; ".join(f"'{e}'" for e in examples)
        raise UsageError(
            f"--only {spec}: no {spec.table} record has the key '{spec.key}'. The key of "
            f"{spec.table} ({', '.join(ent.key or ['id'])}) is written as its values joined by ' / ', "
            f"in column-name order, or as the bundle file name without .json; for example "
            f"{shown}."
        )
    return found


def select_closure(sql: Sql, model: Model, specs: Sequence[OnlySpec]) -> dict[str, set[Any]]:
    """Root records chosen by --only, plus every document they need, recursively."""
    chosen: dict[str, set[Any]] = defaultdict(set)
    pending: dict[str, set[Any]] = defaultdict(set)
    for spec in specs:
        pending[spec.table] |= _find_roots(sql, model, spec)

    def ascend(table: str, ids: set[Any]) -> None:
        ent = model.entities[table]
        if ent.is_root:
            pending[table] |= ids - chosen[table]
            return
        assert ent.owner and ent.surrogate and ent.owner_table
        owners = {r[0] for r in sql.where_in(table, [ent.owner], ent.surrogate, ids)}
        ascend(ent.owner_table, owners)

    def follow(table: str, ids: set[Any]) -> None:
        ent = model.entities[table]
        if not ids:
            return
        ident = ent.surrogate
        refcols = [c for c, r in ent.refs.items() if c != ent.owner]
        if refcols and ident:
            rows = list(sql.where_in(table, refcols, ident, ids))
            for pos, c in enumerate(refcols):
                ref = ent.refs[c]
                vals = {r[pos] for r in rows if r[pos] is not None}
                if not vals:
                    continue
                target = model.entities[ref.table]
                if ref.remap or ref.ref_column == target.surrogate:
                    ascend(ref.table, vals)
                elif target.surrogate:
                    got = {
                        r[0]
                        for r in sql.where_in(ref.table, [target.surrogate], ref.ref_column, vals)
                    }
                    ascend(ref.table, got)
        for child in ent.children:
            cent = model.entities[child]
            assert cent.owner
            if cent.surrogate:
                kids = {r[0] for r in sql.where_in(child, [cent.surrogate], cent.owner, ids)}
                follow(child, kids)
            else:
                # No ID: follow this child's references straight from its rows.
                refcols_c = [c for c, r in cent.refs.items() if c != cent.owner]
                if refcols_c:
                    rows = list(sql.where_in(child, refcols_c, cent.owner, ids))
                    for pos, c in enumerate(refcols_c):
                        ref = cent.refs[c]
                        vals = {r[pos] for r in rows if r[pos] is not None}
                        if vals and ref.remap:
                            ascend(ref.table, vals)

    while any(pending.values()):
        table = next(t for t in model.order if pending.get(t))
        ids = pending.pop(table) - chosen[table]
        chosen[table] |= ids
        follow(table, ids)
    return {t: ids for t, ids in chosen.items() if ids}


# --------------------------------------------------------------------- export


def _check_keys_unique(sql: Sql, model: Model) -> None:
    for table, ent, n, examples in repeated_keys(sql, model, {"profile"}):
        more = f" and {n - 3} more" if n > 3 else ""
        raise KeyCollision(
            f"The natural key ({', '.join(ent.key or ())}) of {table} is not unique in the "
            f"source: {examples}{more}. Choose columns that identify each {table} record for "
            "'key' in the profile."
        )


def _bundle_key(
    dest: Path, model: Model, password: PasswordSource | str | None
) -> BundleKey | None:
    if not any(e.secrets for e in model.entities.values()):
        return None
    if password is None:
        raise UsageError(
            "This export includes secret columns, so it needs a bundle password: give "
            "--password-file FILE or set REHOST_PASSWORD."
        )
    pw = password() if callable(password) else password
    params: KdfParams | None = None
    try:
        old = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
        if old.get("secrets"):
            candidate = KdfParams.from_json(old["secrets"]["kdf"])
            key = BundleKey.derive(pw, candidate)
            key.verify(old["secrets"]["check"])
            params = candidate
    except (OSError, ValueError, KeyError, TypeError, RehostError, WrongPassword):
        params = None
    if params is None:
        params = KdfParams(salt=derive_salt("|".join(sorted(model.entities))))
    return BundleKey.derive(pw, params)


def export(
    source: str,
    dest: Path | str,
    *,
    profile: Profile | None = None,
    only: Sequence[str] = (),
    password: PasswordSource | str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the application in ``source`` (or the records chosen by ``only`` and
    everything they need) as a bundle at ``dest``. Nothing is written unless the
    whole export succeeds."""
    profile = profile or Profile()
    progress = progress or NoProgress()
    dest = Path(dest)
    specs = [OnlySpec.parse(s) for s in only]
    engine = open_engine(source)
    try:
        with engine.connect() as conn:
            if engine.dialect.name in ("postgresql", "mysql"):
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                model = load_model(conn, profile)
                errors = errors_in(model.findings)
                if errors:
                    raise SchemaError(
                        "The source cannot be exported as it is: "
                        + " ".join(f"[{f.code}] {f.message} {f.fix}" for f in errors)
                    )
                sql = Sql(conn)
                _check_keys_unique(sql, model)
                version = detect(conn, profile, set(reflect_names(conn)))
                bkey = _bundle_key(dest, model, password)
                selected = select_closure(sql, model, specs) if specs else None
                writer = BundleWriter(dest)
                try:
                    result = _write(sql, model, writer, bkey, selected, progress)
                    counts, nsecrets = result
                    manifest = _manifest(
                        model, profile, version, bkey, counts, specs, engine.dialect.name
                    )
                    writer.commit(manifest)
                except BaseException:
                    writer.abort()
                    raise
    finally:
        engine.dispose()
    return ExportResult(
        bundle=dest,
        counts=counts,
        files=len(writer.files),
        version=version,
        scope=[str(s) for s in specs] or None,
        secrets=nsecrets,
        findings=model.findings,
    )


def reflect_names(conn: Connection) -> list[str]:
    import sqlalchemy as sa

    return sa.inspect(conn).get_table_names()


def _write(
    sql: Sql,
    model: Model,
    writer: BundleWriter,
    bkey: BundleKey | None,
    selected: dict[str, set[Any]] | None,
    progress: Progress,
) -> tuple[dict[str, int], int]:
    secrets = SecretCodec(model.profile, bkey)
    builder = DocumentBuilder(sql, model, secrets)
    counts: dict[str, int] = {}
    for table in model.roots():
        ent = model.entities[table]
        if selected is not None:
            ids = selected.get(table, set())
            total = len(ids)
        else:
            total = sql.count(table)
        if total == 0:
            counts[table] = 0
            for d in model.descendants(table):
                counts[d] = 0
            continue
        layout = ent.layout
        if layout == "auto":
            layout = "files" if total <= FILES_LAYOUT_MAX else "lines"
        writer.begin_type(table, layout)
        progress.start(f"export {table}", total)
        before = {d: 0 for d in model.descendants(table)}
        n = 0
        batches: Iterable[list[tuple[Any, ...]]]
        if selected is not None:
            assert ent.surrogate
            batches = _selected_batches(sql, ent, sorted(selected.get(table, set())))
        else:
            batches = sql.scan(table, ent.columns, ent.pk)
        step = _roots_per_build(sql, model, table)
        for batch in batches:
            for i in range(0, len(batch), step):
                docs = builder.build(table, batch[i : i + step])
                for doc, label, ident in docs:
                    writer.add(table, doc, label, ident)
                    _count_children(model, table, doc, before)
                n += len(docs)
                progress.advance(len(docs))
        writer.end_type(table)
        progress.finish()
        counts[table] = n
        counts.update(before)
    for t in model.entities:
        counts.setdefault(t, 0)
    return dict(sorted(counts.items())), secrets.count


def _roots_per_build(sql: Sql, model: Model, table: str) -> int:
    """How many root rows to build at once so their owned rows stay few in memory."""
    descendants = model.descendants(table)
    if not descendants:
        return 1_000_000
    roots = max(1, sql.count(table))
    owned = sum(sql.count(d) for d in descendants)
    per_root = max(1.0, owned / roots)
    return max(1, int(DocumentBuilder.CHILD_ROWS_PER_BATCH / per_root))


def _selected_batches(sql: Sql, ent: Entity, ids: list[Any]) -> Iterable[list[tuple[Any, ...]]]:
    assert ent.surrogate
    step = 900
    for i in range(0, len(ids), step):
        chunk = ids[i : i + step]
        yield list(sql.where_in(ent.table, ent.columns, ent.surrogate, chunk, ent.pk))


def _count_children(model: Model, table: str, doc: dict[str, Any], counts: dict[str, int]) -> None:
    for child, kids in doc.get("_owned", {}).items():
        counts[child] = counts.get(child, 0) + len(kids)
        for k in kids:
            _count_children(model, child, k, counts)


def _manifest(
    model: Model,
    profile: Profile,
    version: AppVersion | None,
    bkey: BundleKey | None,
    counts: dict[str, int],
    specs: Sequence[OnlySpec],
    dialect: str,
) -> dict[str, Any]:
    return {
        "format": "rehost-bundle",
        "format_version": 1,
        "tool": f"rehost {__version__}",
        "source": {
            "engine": dialect,
            "version": version.to_json() if version else None,
        },
        "scope": {"only": [str(s) for s in specs]} if specs else "all",
        "counts": counts,
        "model": model.to_json(),
        "secrets": (
            {
                "kdf": bkey.params.to_json(),
                "check": bkey.check_token(),
                "cipher": profile.secrets.cipher,
            }
            if bkey
            else None
        ),
        "manual_steps": list(profile.manual_steps),
    }
