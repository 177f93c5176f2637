"""rehost clone against pgloader: one SQLite table of N rows into PostgreSQL, side by side.

    ./dev bench benchmarks/clone_sqlite_to_pg.py [ROWS] [--jobs N]   (defaults 1,000,000 and 2)

Needs pgloader (Debian package) and PostgreSQL on 127.0.0.1:5432 (user postgres,
trust). Prints wall time and peak memory of each tool, the ratio, the column
types each one created, and what `rehost clone --verify-only` finds on the
database pgloader wrote (its fidelity, checked the same way rehost checks itself).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

PG = "postgresql://postgres@127.0.0.1"
ADMIN = sa.create_engine(
    "postgresql+psycopg://postgres@127.0.0.1/postgres", isolation_level="AUTOCOMMIT"
)


def make_source(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, branch INTEGER NOT NULL,"
        " balance NUMERIC(12,2) NOT NULL, name VARCHAR(80) NOT NULL, created DATETIME NOT NULL,"
        " score REAL, active BOOLEAN NOT NULL)"
    )
    conn.execute("CREATE INDEX ix_accounts_branch ON accounts(branch)")
    rng = random.Random(7)
    base = dt.datetime(1960, 1, 1)
    conn.executemany(
        "INSERT INTO accounts VALUES (?,?,?,?,?,?,?)",
        (
            (
                i,
                i % 100,
                f"{rng.randint(-(10**8), 10**8) / 100:.2f}",
                f"customer {i} ñ 😀",
                (base + dt.timedelta(seconds=i * 37, microseconds=i % 1000)).isoformat(sep=" "),
                rng.random(),
                i % 2,
            )
            for i in range(1, rows + 1)
        ),
    )
    conn.commit()
    conn.close()


def fresh(name: str) -> str:
    with ADMIN.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return f"{PG}/{name}"


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in MB, output) of a command run under /usr/bin/time -v."""
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    err = proc.stderr
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", err)
    assert wall, err[-2000:]
    h, m, s = wall.groups()
    seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) // 1024
    if proc.returncode not in (0, 1):
        raise SystemExit(
            f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{err[-2000:]}"
        )
    return seconds, rss, proc.stdout + err


def columns(url: str) -> str:
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        cols = sa.inspect(eng).get_columns("accounts")
        return ", ".join(f"{c['name']} {c['type']}" for c in cols)
    finally:
        eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="?", type=int, default=1_000_000)
    ap.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="rehost clone --jobs (default 2: pgloader, too, runs several threads)",
    )
    args = ap.parse_args()
    rows = args.rows
    jobs = ["--jobs", str(args.jobs)]
    rehost = str(Path(sys.executable).with_name("rehost"))
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "accounts.db"
        make_source(source, rows)
        src_url = f"sqlite:///{source}"
        pgl_url = fresh("rh_bench_pgloader")
        reh_url = fresh("rh_bench_rehost")
        t_pgl, m_pgl, _ = timed(["pgloader", "--quiet", str(source), pgl_url])
        t_reh, m_reh, out = timed([rehost, "clone", src_url, reh_url, *jobs, "--json"])
        t_ver, _, again = timed([rehost, "clone", src_url, reh_url, "--verify-only", "--json"])
        t_chk, _, check = timed([rehost, "clone", src_url, pgl_url, "--verify-only", "--json"])
    print(f"{rows:,} rows, SQLite → PostgreSQL")
    print("| tool | seconds | peak MB |\n| --- | --- | --- |")
    print(f"| pgloader 3.6.9 | {t_pgl:.1f} | {m_pgl} |")
    print(
        f"| rehost clone {' '.join(jobs)} (load, keys, sequences, verify) | {t_reh:.1f} | {m_reh} |"
    )
    print(f"rehost / pgloader: {t_reh / t_pgl:.2f}")
    load = re.search(r'"seconds": ([\d.]+),\s*"kept"', out)
    if load:
        print(f"rehost load alone: {float(load.group(1)):.1f} s")
    for label, text in (("clone", out), ("--verify-only", again)):
        report, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])
        for t in report["tables"]:
            print(
                f"rehost {label} {t['table']}: verify {t['verify_seconds']} s"
                f" ({t['verify']['method']}), verified {t['verified']}"
            )
    print(f"rehost clone --verify-only (rehost's copy): {t_ver:.1f} s")
    print(f"rehost clone --verify-only (pgloader's copy): {t_chk:.1f} s")
    print(f"pgloader columns: {columns(pgl_url)}")
    print(f"rehost columns:   {columns(reh_url)}")
    verdict = re.search(r'"first_difference": ("[^"]*"|null)', check)
    print(
        f"rehost --verify-only on pgloader's copy: first difference {verdict.group(1) if verdict else '?'}"
    )
    with ADMIN.connect() as conn:
        for name in ("rh_bench_pgloader", "rh_bench_rehost"):
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
