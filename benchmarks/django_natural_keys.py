"""rehost vs Django's dumpdata/loaddata: moving a Django project's records by natural key.

Django's own tool for moving records between databases by natural key is
``dumpdata --natural-foreign --natural-primary`` followed by ``loaddata``. This
benchmark runs it and rehost side by side on the same data, in one run:

1. A minimal Django project (INSTALLED_APPS = contenttypes, auth) is generated in
   a work directory, with a settings module that reads its database from the
   environment.
2. For each engine (SQLite, PostgreSQL; MariaDB on request) a source database is
   ``migrate``d and filled with users, groups, custom permissions, memberships
   and permission grants (deterministic seed). User and group IDs have gaps, as
   after deleted accounts, so target IDs differ from source IDs and both tools
   really remap them.
3. Two fresh targets are ``migrate``d (which creates content types and
   permissions there too). Django: ``dumpdata auth contenttypes --natural-foreign
   --natural-primary -o dump.json``, then ``loaddata dump.json`` into one target.
   rehost: ``rehost export SOURCE bundle/``, then ``rehost import bundle/ TARGET``
   (on conflict: skip) into the other. The user password hashes are secret-looking
   columns, so rehost encrypts them in the bundle under REHOST_PASSWORD.
4. Both targets are checked against the source, table by table, by natural key
   (counts and a digest of every row, references spelled as natural keys). A
   mismatch fails the run.

Each tool run is a separate process: its wall-clock time and peak resident memory
(``ru_maxrss`` from ``os.wait4``) are measured on its own. Migrations and data
generation are not timed.

Run (≥ 100,000 rows, SQLite and PostgreSQL)::

    ./dev bench benchmarks/django_natural_keys.py

Options: ``--users N`` (scale; the other tables follow it), ``--engines
sqlite,postgresql,mariadb``, ``--keep`` (keep the work directory and databases),
``--postgresql-url`` / ``--mariadb-url`` (server to create ``rhbench_*``
databases on). The results are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SCRIPT = Path(__file__).resolve()
WORK_DEFAULT = SCRIPT.parent / "work" / "django_natural_keys"
DB_PREFIX = "rhbench_"
PASSWORD = "rhbench-bundle-password"
SEED = 20251123

SETTINGS = '''\
"""Settings of the benchmark's throwaway Django project (generated)."""

import json
import os

DATABASES = {"default": json.loads(os.environ["RHBENCH_DATABASE"])}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    import pymysql

    pymysql.install_as_MySQLdb()
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
SECRET_KEY = "rhbench-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
'''

# Tables compared between source and targets, in the order they are shown.
TABLES = (
    "django_content_type",
    "auth_permission",
    "auth_group",
    "auth_user",
    "auth_group_permissions",
    "auth_user_groups",
    "auth_user_user_permissions",
)


# --------------------------------------------------------------------- engines


@dataclass(frozen=True)
class Database:
    """One database of a run, as rehost and as Django see it."""

    url: str  # rehost's URL
    django: dict[str, Any]  # Django's DATABASES entry


class Engine:
    """Creates, names and drops the benchmark's databases on one engine."""

    name = ""

    def create(self, role: str) -> Database:
        raise NotImplementedError

    def drop_all(self) -> None:
        raise NotImplementedError


class SqliteEngine(Engine):
    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.root = root / "sqlite"

    def create(self, role: str) -> Database:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{role}.db"
        path.unlink(missing_ok=True)
        return Database(
            url=f"sqlite:///{path}",
            django={"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)},
        )

    def drop_all(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class ServerEngine(Engine):
    """PostgreSQL or MariaDB: databases named rhbench_<role> on a running server."""

    def __init__(self, name: str, server_url: str) -> None:
        self.name = name
        parts = urlsplit(server_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        self.created: list[str] = []

    def _admin(self, statements: Iterable[str]) -> None:
        if self.name == "postgresql":
            import psycopg

            with psycopg.connect(
                host=self.host,
                port=self.port or 5432,
                user=self.user or "postgres",
                password=self.password or None,
                dbname="postgres",
                autocommit=True,
            ) as conn:
                for s in statements:
                    conn.execute(s)  # type: ignore[arg-type]
        else:
            import pymysql

            conn = pymysql.connect(
                host=self.host,
                port=self.port or 3306,
                user=self.user or "root",
                password=self.password,
            )
            try:
                with conn.cursor() as cur:
                    for s in statements:
                        cur.execute(s)
            finally:
                conn.close()

    def create(self, role: str) -> Database:
        db = f"{DB_PREFIX}{role}"
        if self.name == "postgresql":
            self._admin([f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}"])
            port = self.port or 5432
            scheme, backend = "postgresql", "django.db.backends.postgresql"
        else:
            self._admin(
                [
                    f"DROP DATABASE IF EXISTS {db}",
                    f"CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                ]
            )
            port = self.port or 3306
            scheme, backend = "mysql", "django.db.backends.mysql"
        self.created.append(db)
        auth = self.user + (f":{self.password}" if self.password else "")
        return Database(
            url=f"{scheme}://{auth}@{self.host}:{port}/{db}",
            django={
                "ENGINE": backend,
                "NAME": db,
                "USER": self.user,
                "PASSWORD": self.password,
                "HOST": self.host,
                "PORT": str(port),
                **({"OPTIONS": {"charset": "utf8mb4"}} if self.name == "mariadb" else {}),
            },
        )

    def drop_all(self) -> None:
        force = " WITH (FORCE)" if self.name == "postgresql" else ""
        self._admin([f"DROP DATABASE IF EXISTS {db}{force}" for db in self.created])
        self.created.clear()


# ----------------------------------------------------------------- processes


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mib: float
    stdout: str


class ToolFailed(RuntimeError):
    pass


def run(cmd: Sequence[str], env: dict[str, str], logdir: Path, label: str) -> Measured:
    """Run one process; its wall time and peak RSS (its own, from wait4)."""
    logdir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logdir / f"{label}.out", logdir / f"{label}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        tail = err_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise ToolFailed(
            f"{label} failed (exit {proc.returncode}) after {seconds:.1f} s: {' '.join(cmd)}\n"
            f"{tail or stdout[-4000:]}"
        )
    return Measured(seconds, usage.ru_maxrss / 1024, stdout)  # ru_maxrss is in KiB on Linux


class Project:
    """The generated Django project and the commands run against it."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.logs = work / "logs"
        work.mkdir(parents=True, exist_ok=True)
        (work / "rhbench_settings.py").write_text(SETTINGS, encoding="utf-8")

    def env(self, db: Database | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.work), env.get("PYTHONPATH")]))
        env["DJANGO_SETTINGS_MODULE"] = "rhbench_settings"
        env["REHOST_PASSWORD"] = PASSWORD
        env.pop("REHOST_DEBUG", None)
        # Cache bytecode (in the work directory) as an installed program would: with
        # PYTHONDONTWRITEBYTECODE every process would recompile every module it imports.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(self.work / "pycache")
        if db is not None:
            env["RHBENCH_DATABASE"] = json.dumps(db.django)
        return env

    def django(self, db: Database, label: str, *args: str) -> Measured:
        return run([sys.executable, "-m", "django", *args], self.env(db), self.logs, label)

    def worker(self, db: Database, label: str, *args: str) -> Any:
        res = run([sys.executable, str(SCRIPT), "--worker", *args], self.env(db), self.logs, label)
        return json.loads(res.stdout)

    def rehost(self, label: str, *args: str) -> Measured:
        return run([sys.executable, "-m", "rehost", *args], self.env(), self.logs, label)


# ------------------------------------------------------- workers (inside Django)


def _fake_hash(rng: random.Random) -> str:
    """A string shaped like Django's PBKDF2 hash (hashing 40,000 passwords would take hours)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    salt = "".join(rng.choices(alphabet, k=22))
    digest = "".join(rng.choices(alphabet + "+/", k=43)) + "="
    return f"pbkdf2_sha256$1000000${salt}${digest}"


def populate(users: int, seed: int) -> dict[str, int]:
    """Fill the source: users, groups, custom permissions, memberships and grants."""
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType
    from django.db import transaction

    rng = random.Random(seed)
    first = [
        "Ada",
        "Bo",
        "Chloé",
        "Dmitri",
        "Eve",
        "François",
        "Grace",
        "Håkon",
        "Iris",
        "Jürgen",
        "Kenji",
        "Lena",
        "Miguel",
        "Noor",
        "Oskar",
        "Priya",
        "Quinn",
        "Rosa",
        "Søren",
        "Zoë",
    ]
    last = [
        "Smith",
        "García",
        "Müller",
        "Nakamura",
        "O'Brien",
        "Kowalski",
        "Dubois",
        "Rossi",
        "Andersson",
        "Nguyen",
        "Okafor",
        "Petrov",
        "Silva",
        "Yılmaz",
        "Cohen",
        "Novak",
    ]
    n_groups = max(2, users // 20)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    with transaction.atomic():
        # Permissions an administrator added: they exist on the source only.
        cts = list(ContentType.objects.all())
        Permission.objects.bulk_create(
            Permission(
                content_type=rng.choice(cts),
                codename=f"custom_action_{i:03d}",
                name=f"Can perform custom action {i}",
            )
            for i in range(40)
        )
        perms = list(Permission.objects.values_list("id", flat=True))
        # IDs with gaps (deleted records), so they cannot line up with the target's.
        group_ids = [3 * i + 5 for i in range(n_groups)]
        Group.objects.bulk_create(
            (
                Group(id=gid, name=f"team-{i:05d}-{rng.choice(last).lower()}")
                for i, gid in enumerate(group_ids)
            ),
            batch_size=2000,
        )
        user_ids = [i + i // 7 + 11 for i in range(users)]
        batch: list[User] = []
        for i, uid in enumerate(user_ids):
            fn, ln = rng.choice(first), rng.choice(last)
            joined = start + timedelta(seconds=rng.randrange(10 * 365 * 86400))
            seen = rng.random() < 0.8
            batch.append(
                User(
                    id=uid,
                    username=f"{fn.lower()}.{ln.lower()}.{i:06d}",
                    first_name=fn,
                    last_name=ln,
                    email=f"user{i:06d}@example.org",
                    password=_fake_hash(rng) if rng.random() < 0.95 else "!" + "x" * 40,
                    is_staff=rng.random() < 0.02,
                    is_superuser=rng.random() < 0.002,
                    is_active=rng.random() < 0.97,
                    date_joined=joined,
                    last_login=joined + timedelta(seconds=rng.randrange(86400 * 300))
                    if seen
                    else None,
                )
            )
            if len(batch) == 5000:
                User.objects.bulk_create(batch)
                batch = []
        User.objects.bulk_create(batch)

        memberships = [
            User.groups.through(user_id=uid, group_id=gid)
            for uid in user_ids
            for gid in rng.sample(group_ids, rng.choices((0, 1, 2, 3), weights=(10, 50, 25, 15))[0])
        ]
        User.groups.through.objects.bulk_create(memberships, batch_size=5000)
        user_grants = _pairs(rng, user_ids, perms, users // 4)
        User.user_permissions.through.objects.bulk_create(
            (User.user_permissions.through(user_id=u, permission_id=p) for u, p in user_grants),
            batch_size=5000,
        )
        group_grants = _pairs(rng, group_ids, perms, n_groups * 5 // 2)
        Group.permissions.through.objects.bulk_create(
            (Group.permissions.through(group_id=g, permission_id=p) for g, p in group_grants),
            batch_size=5000,
        )
    return counts()


def _pairs(rng: random.Random, left: list[int], right: list[int], n: int) -> list[tuple[int, int]]:
    n = min(n, len(left) * len(right))
    out: set[tuple[int, int]] = set()
    while len(out) < n:
        out.add((rng.choice(left), rng.choice(right)))
    return sorted(out)


def counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cur:
        out = {}
        for t in TABLES:
            cur.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(t)}")
            out[t] = cur.fetchone()[0]
    return out


def fingerprint() -> dict[str, dict[str, Any]]:
    """Per table: row count and a digest of its rows with references as natural keys."""
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType

    perm = (
        "permission__content_type__app_label",
        "permission__content_type__model",
        "permission__codename",
    )
    user_fields = [f.name for f in User._meta.concrete_fields if f.name != "id"]
    queries: dict[str, Any] = {
        "django_content_type": ContentType.objects.values_list("app_label", "model"),
        "auth_permission": Permission.objects.values_list(
            "content_type__app_label", "content_type__model", "codename", "name"
        ),
        "auth_group": Group.objects.values_list("name"),
        "auth_user": User.objects.values_list(*user_fields),
        "auth_group_permissions": Group.permissions.through.objects.values_list(
            "group__name", *perm
        ),
        "auth_user_groups": User.groups.through.objects.values_list(
            "user__username", "group__name"
        ),
        "auth_user_user_permissions": User.user_permissions.through.objects.values_list(
            "user__username", *perm
        ),
    }
    out: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        rows = sorted(
            json.dumps([_plain(v) for v in r], ensure_ascii=False) for r in queries[table]
        )
        digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        out[table] = {"rows": len(rows), "digest": digest, "sample": rows[:3]}
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    if isinstance(v, bool):
        return int(v)  # MariaDB hands booleans back as 0/1
    return v


def worker_main(argv: list[str]) -> None:
    import django

    django.setup()
    what = argv[0]
    if what == "populate":
        result: Any = populate(int(argv[1]), int(argv[2]))
    elif what == "fingerprint":
        result = fingerprint()
    elif what == "counts":
        result = counts()
    else:
        raise SystemExit(f"unknown worker task {what!r}")
    json.dump(result, sys.stdout)


# ---------------------------------------------------------------- the benchmark


@dataclass
class ToolResult:
    engine: str
    tool: str
    export: Measured
    import_: Measured
    verified: bool
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.export.seconds + self.import_.seconds


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def compare(source: dict[str, Any], target: dict[str, Any]) -> list[str]:
    problems = []
    for t in TABLES:
        s, g = source[t], target[t]
        if s["rows"] != g["rows"]:
            problems.append(f"{t}: {g['rows']} rows, source has {s['rows']}")
        elif s["digest"] != g["digest"]:
            problems.append(
                f"{t}: same row count, different rows (e.g. {g['sample'][:1]} vs {s['sample'][:1]})"
            )
    return problems


def bench_engine(
    engine: Engine, project: Project, users: int, seed: int
) -> tuple[dict[str, int], list[ToolResult]]:
    e = engine.name
    work = project.work / e
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    log(f"[{e}] source: migrate, then {users:,} users and their groups, permissions, grants")
    source = engine.create("source")
    project.django(source, f"{e}-source-migrate", "migrate", "--noinput", "-v0")
    rows: dict[str, int] = project.worker(
        source, f"{e}-source-populate", "populate", str(users), str(seed)
    )
    log(f"[{e}] source rows: {sum(rows.values()):,} " + json.dumps(rows))
    expected = project.worker(source, f"{e}-source-fingerprint", "fingerprint")

    results = []
    for slug, tool, go in (
        ("django", "Django dumpdata/loaddata", django_run),
        ("rehost", "rehost export/import", rehost_run),
    ):
        target = engine.create(f"{slug}_target")
        project.django(target, f"{e}-{slug}-target-migrate", "migrate", "--noinput", "-v0")
        log(f"[{e}] {tool} …")
        exp, imp = go(project, e, work, source, target)
        log(
            f"[{e}] {tool}: export {exp.seconds:.1f} s ({exp.peak_mib:.0f} MiB), "
            f"import {imp.seconds:.1f} s ({imp.peak_mib:.0f} MiB)"
        )
        got = project.worker(target, f"{e}-{slug}-target-fingerprint", "fingerprint")
        problems = compare(expected, got)
        for p in problems:
            log(f"[{e}] {tool}: MISMATCH {p}")
        results.append(ToolResult(e, tool, exp, imp, not problems, problems))
    return rows, results


def django_run(
    project: Project, e: str, work: Path, source: Database, target: Database
) -> tuple[Measured, Measured]:
    dump = work / "dump.json"
    # Untimed warm-up, so both tools start with their bytecode cached: the content
    # types, dumped and loaded onto the target (where migrate already made them).
    warm = work / "warm-up.json"
    project.django(
        source,
        f"{e}-django-warm-dump",
        "dumpdata",
        "contenttypes",
        "--natural-primary",
        "-o",
        str(warm),
    )
    project.django(target, f"{e}-django-warm-load", "loaddata", str(warm))
    exp = project.django(
        source,
        f"{e}-django-dumpdata",
        "dumpdata",
        "auth",
        "contenttypes",
        "--natural-foreign",
        "--natural-primary",
        "-o",
        str(dump),
    )
    imp = project.django(target, f"{e}-django-loaddata", "loaddata", str(dump))
    return exp, imp


def rehost_run(
    project: Project, e: str, work: Path, source: Database, target: Database
) -> tuple[Measured, Measured]:
    bundle = work / "bundle"
    # Untimed warm-up (bytecode cache), which also shows the keys rehost inferred.
    project.rehost(f"{e}-rehost-inspect", "inspect", source.url)
    exp = project.rehost(f"{e}-rehost-export", "export", source.url, str(bundle), "--json")
    imp = project.rehost(f"{e}-rehost-import", "import", str(bundle), target.url, "--json")
    report = json.loads(imp.stdout)
    if report.get("status") != "succeeded":
        raise ToolFailed(f"rehost import ended with status {report.get('status')!r}")
    return exp, imp


def markdown(results: list[ToolResult]) -> str:
    head = (
        "engine",
        "tool",
        "export s",
        "import s",
        "total s",
        "peak MiB export",
        "peak MiB import",
        "same data as source",
    )
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * 5 + ["---"]) + "|",
    ]
    for r in results:
        lines.append(
            f"| {r.engine} | {r.tool} | {r.export.seconds:.1f} | {r.import_.seconds:.1f} | "
            f"{r.total:.1f} | {r.export.peak_mib:.0f} | {r.import_.peak_mib:.0f} | "
            f"{'yes' if r.verified else 'NO'} |"
        )
    return "\n".join(lines)


def ratios(results: list[ToolResult]) -> list[str]:
    out = []
    for e in dict.fromkeys(r.engine for r in results):
        by = {r.tool.split()[0]: r for r in results if r.engine == e}
        dj, rh = by["Django"], by["rehost"]
        ratio = rh.total / dj.total
        verdict = "met" if ratio <= 0.2 else "NOT met"
        out.append(
            f"{e}: rehost/Django total time = {rh.total:.1f} s / {dj.total:.1f} s = {ratio:.3f} "
            f"(1/{dj.total / rh.total:.1f}); target ≤ 0.2 {verdict}; peak memory rehost "
            f"{max(rh.export.peak_mib, rh.import_.peak_mib):.0f} MiB vs Django "
            f"{max(dj.export.peak_mib, dj.import_.peak_mib):.0f} MiB"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker_main(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--users", type=int, default=40_000, help="users in the source (default 40,000)"
    )
    ap.add_argument("--engines", default="sqlite,postgresql", help="sqlite,postgresql,mariadb")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--keep", action="store_true", help=f"keep {WORK_DEFAULT} and the databases")
    ap.add_argument("--postgresql-url", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--mariadb-url", default="mysql://root@127.0.0.1:3306")
    args = ap.parse_args(argv)

    work = WORK_DEFAULT
    shutil.rmtree(work, ignore_errors=True)
    project = Project(work)
    engines: list[Engine] = []
    for name in args.engines.split(","):
        name = name.strip()
        if name == "sqlite":
            engines.append(SqliteEngine(work))
        elif name in ("postgresql", "mariadb"):
            engines.append(
                ServerEngine(
                    name, args.postgresql_url if name == "postgresql" else args.mariadb_url
                )
            )
        else:
            ap.error(f"unknown engine {name!r}")

    results: list[ToolResult] = []
    row_counts: dict[str, dict[str, int]] = {}
    try:
        for engine in engines:
            try:
                row_counts[engine.name], res = bench_engine(engine, project, args.users, args.seed)
                results.extend(res)
            finally:
                if not args.keep:
                    engine.drop_all()
    except ToolFailed as exc:
        log(f"\nFAILED: {exc}")
        return 1
    finally:
        if args.keep:
            log(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    first = next(iter(row_counts.values()))
    print(f"\nSource rows ({args.users:,} users, seed {args.seed}): {sum(first.values()):,}")
    for t in TABLES:
        print(f"  {t:<28} {first[t]:>8,}")
    print()
    print(markdown(results))
    print()
    for line in ratios(results):
        print(line)
    bad = [r for r in results if not r.verified]
    for r in bad:
        print(f"VERIFICATION FAILED: {r.engine} {r.tool}: " + "; ".join(r.problems))
    if not bad:
        print(
            "verified: every target holds the same rows as its source in all "
            f"{len(TABLES)} tables (compared by natural key)"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
