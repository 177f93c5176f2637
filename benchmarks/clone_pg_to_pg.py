"""rehost clone against pg_dump/pg_restore: PostgreSQL → PostgreSQL on pgbench data.

    ./dev bench benchmarks/clone_pg_to_pg.py [SCALE] [--jobs N] [--runs R]

SCALE is pgbench's (default 20: 2,000,000 pgbench_accounts rows); the source,
made once with ``pgbench -i -s SCALE --foreign-keys`` (primary keys and foreign
keys), is kept as ``rh_bench_pgsrc_sSCALE`` for later runs. Each run clones it
into a fresh database:

* ``pg_dump -Fc | pg_restore``  (one pipe, no file)
* ``pg_dump -Fd -j2`` then ``pg_restore -j2``  (a directory, two workers each)
* ``rehost clone --jobs N``  (schema, binary COPY, keys after load, sequences,
  and its own verification of every table)

and every target is then checked against the source here, independently of
rehost: per table the row count and an order-independent sum of the rows'
MD5s, computed by PostgreSQL, plus the constraint and index definitions and
the sequences' values. Prints a Markdown table: seconds, ratio to the
fastest pg_dump/pg_restore run, peak memory (ru_maxrss of the tool's
processes, from /usr/bin/time -v; the server's backends are not counted), and
the machine's 1-minute load average when each run started (other work on a
small machine moves the figures: compare within a run).
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and its client tools.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

HOST = ["-h", "127.0.0.1", "-U", "postgres"]
PG = "postgresql://postgres@127.0.0.1"
ADMIN = sa.create_engine(
    "postgresql+psycopg://postgres@127.0.0.1/postgres", isolation_level="AUTOCOMMIT"
)


def fresh(name: str) -> str:
    with ADMIN.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return name


def drop(name: str) -> None:
    with ADMIN.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def source(scale: int) -> str:
    """The pgbench database at this scale, made once and reused."""
    name = f"rh_bench_pgsrc_s{scale}"
    with ADMIN.connect() as conn:
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM pg_database WHERE datname = %(n)s", {"n": name}
        ).scalar()
    if exists:
        eng = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1/{name}")
        try:
            with eng.connect() as conn:
                n = conn.exec_driver_sql("SELECT count(*) FROM pgbench_accounts").scalar()
                fks = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
                ).scalar()
            if n == scale * 100_000 and fks:
                return name
        except sa.exc.DBAPIError:
            pass
        finally:
            eng.dispose()
    fresh(name)
    subprocess.run(
        ["pgbench", *HOST, "-i", "-q", "-s", str(scale), "--foreign-keys", name], check=True
    )
    return name


def timed(cmd: list[str] | str) -> tuple[float, int, str]:
    """(seconds, peak RSS in MB, output) of a command (a string: through sh) under time -v."""
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else cmd
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    err = proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{err[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", err)
    assert wall, err[-2000:]
    h, m, s = wall.groups()
    seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) // 1024
    return seconds, rss, proc.stdout + err


def fingerprint(db: str) -> dict[str, object]:
    """What must be equal between source and target, computed by PostgreSQL."""
    eng = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1/{db}")
    facts: dict[str, object] = {}
    try:
        with eng.connect() as conn:
            tables = [
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                )
            ]
            for t in tables:
                facts[f"rows {t}"] = conn.exec_driver_sql(
                    f"SELECT count(*), sum(('x' || left(md5(t::text), 16))::bit(64)::bigint)"
                    f" FROM {t} t"
                ).one()
            facts["constraints"] = sorted(
                conn.exec_driver_sql(
                    "SELECT conrelid::regclass::text, contype, pg_get_constraintdef(oid)"
                    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                ).all()
            )
            facts["indexes"] = sorted(
                conn.exec_driver_sql(
                    "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'"
                ).all()
            )
            facts["columns"] = sorted(
                conn.exec_driver_sql(
                    "SELECT table_name, column_name, data_type, character_maximum_length,"
                    " is_nullable, column_default FROM information_schema.columns"
                    " WHERE table_schema = 'public'"
                ).all()
            )
            facts["sequences"] = sorted(
                conn.exec_driver_sql(
                    "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
                ).all()
            )
    finally:
        eng.dispose()
    return facts


def same(src: dict[str, object], dst: dict[str, object]) -> str:
    differ = [k for k in sorted(set(src) | set(dst)) if src.get(k) != dst.get(k)]
    return "yes" if not differ else "NO: " + ", ".join(differ)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scale", nargs="?", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    rehost = str(Path(sys.executable).with_name("rehost"))
    src = source(args.scale)
    expected = fingerprint(src)
    rows: list[tuple[int, float, str, float, int, str]] = []
    for run in range(1, args.runs + 1):
        load = os.getloadavg()[0]
        this: list[tuple[str, float, int, str]] = []
        tgt = fresh("rh_bench_pgtgt")
        t, m, _ = timed(
            f"pg_dump {' '.join(HOST)} -Fc {src} | pg_restore {' '.join(HOST)} -d {tgt}"
        )
        this.append(("`pg_dump -Fc \\| pg_restore`", t, m, same(expected, fingerprint(tgt))))

        tgt = fresh("rh_bench_pgtgt")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "dump"
            t1, m1, _ = timed(["pg_dump", *HOST, "-Fd", "-j2", "-f", str(out), src])
            t2, m2, _ = timed(["pg_restore", *HOST, "-j2", "-d", tgt, str(out)])
            shutil.rmtree(out)
        this.append(
            (
                "`pg_dump -Fd -j2` + `pg_restore -j2`",
                t1 + t2,
                max(m1, m2),
                same(expected, fingerprint(tgt)),
            )
        )

        tgt = fresh("rh_bench_pgtgt")
        t, m, out = timed(
            [rehost, "clone", f"{PG}/{src}", f"{PG}/{tgt}", "--jobs", str(args.jobs), "--json"]
        )
        report, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
        verified = "passed" if report["ok"] else "FAILED"
        copy = max(x["seconds"] for x in report["tables"])
        check = sum(x["verify_seconds"] for x in report["tables"])
        this.append(
            (
                f"`rehost clone --jobs {args.jobs}` (its verify {verified}; "
                f"biggest table's copy {copy:.1f} s, verify {check:.1f} s)",
                t,
                m,
                same(expected, fingerprint(tgt)),
            )
        )
        drop(tgt)
        rows.extend((run, load, *r) for r in this)
    best = min(t for _, _, name, t, _, _ in rows if name.startswith("`pg_dump"))
    accounts = args.scale * 100_000
    print(f"pgbench scale {args.scale} ({accounts:,} accounts), PostgreSQL → PostgreSQL")
    print(
        "| run | load | tool | seconds | × best pg_dump/pg_restore | peak MB | target equals source |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for run, load, name, t, m, ok in rows:
        print(f"| {run} | {load:.1f} | {name} | {t:.1f} | {t / best:.2f} | {m} | {ok} |")


if __name__ == "__main__":
    main()
