"""rehost clone against pgloader: MariaDB → PostgreSQL, N rows, side by side.

    ./dev bench benchmarks/clone_mariadb_to_pg.py [ROWS] [--jobs N]   (defaults 1,000,000 and 2)

The source database ``rh_bench_my`` (made once per row count, kept for later
runs) has ``branches`` (100 rows) and ``accounts`` (ROWS rows: an
AUTO_INCREMENT key, a foreign key to branches, ``DECIMAL(12,2)``,
``VARCHAR(80)`` with 4-byte characters, ``DATETIME(6)`` from 1960 on,
``DOUBLE``, ``TINYINT(1)``, ``BIGINT UNSIGNED`` up to 2^64-1, a zero date
``0000-00-00`` in 1 row of 1,000), plus a secondary index. Both tools load
into empty PostgreSQL databases; pgloader 3.6.9 from Debian with its default
MySQL casts, then again with the cast for zero dates its manual gives
(``ALTER SCHEMA … RENAME TO 'public'`` so all land in ``public``); the facts
and the verification below are of that second pgloader copy.

rehost runs with ``--map-type 'bigint unsigned=NUMERIC(20)'`` (without it, it
warns that such values would not fit PostgreSQL's BIGINT, and stops at the
first). Prints wall time and peak memory of each tool, the columns each one created,
the keys and indexes each one has, where each sequence continues, and what
``rehost clone --verify-only`` finds on the database pgloader wrote.
Needs MariaDB on 127.0.0.1:3306 (root, no password) and PostgreSQL on
127.0.0.1:5432 (postgres, trust).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from clone_sqlite_to_pg import ADMIN, fresh, timed

MY = "mysql+pymysql://root@127.0.0.1"
DB = "rh_bench_my"


def make_source(rows: int) -> str:
    url = f"{MY}/{DB}"
    root = sa.create_engine(f"{MY}/", isolation_level="AUTOCOMMIT")
    with root.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {DB} CHARACTER SET utf8mb4")
        have = conn.exec_driver_sql(
            "SELECT TABLE_ROWS FROM information_schema.TABLES"
            f" WHERE TABLE_SCHEMA = '{DB}' AND TABLE_NAME = 'accounts'"
        ).scalar()
        if have is not None:
            n = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {DB}.accounts").scalar()
            if n == rows:
                return url
    root.dispose()
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.exec_driver_sql("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")  # zero dates
        conn.exec_driver_sql("DROP TABLE IF EXISTS accounts, branches")
        conn.exec_driver_sql(
            "CREATE TABLE branches (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL UNIQUE)"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
        )
        conn.exec_driver_sql(
            "CREATE TABLE accounts (id INT AUTO_INCREMENT PRIMARY KEY,"
            " branch INT NOT NULL, balance DECIMAL(12,2) NOT NULL, name VARCHAR(80) NOT NULL,"
            " created DATETIME(6) NOT NULL, opened DATE NULL, score DOUBLE,"
            " active TINYINT(1) NOT NULL, counter BIGINT UNSIGNED NOT NULL,"
            " CONSTRAINT fk_accounts_branch FOREIGN KEY (branch) REFERENCES branches (id),"
            " KEY ix_accounts_created (created))"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
        )
        conn.exec_driver_sql(
            "INSERT INTO branches SELECT seq, CONCAT('branch ', seq) FROM seq_0_to_99"
        )
        conn.exec_driver_sql(
            "INSERT INTO accounts SELECT seq, MOD(seq, 100),"
            " (CAST(MOD(seq * 7919, 20000001) AS SIGNED) - 10000000) / 100,"
            " CONCAT('customer ', seq, ' ñ 😀'),"
            " TIMESTAMPADD(MICROSECOND, MOD(seq, 1000000),"
            "   TIMESTAMPADD(SECOND, seq * 37, '1960-01-01 00:00:00')),"
            " IF(MOD(seq, 1000) = 0, '0000-00-00', DATE('1969-07-20') + INTERVAL MOD(seq, 5000) DAY),"
            " seq / 7.0 + 0.1, MOD(seq, 2), 18446744073709551615 - seq"
            f" FROM seq_1_to_{rows}"
        )
    eng.dispose()
    return url


def loaded(url: str) -> int:
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with eng.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM accounts").scalar_one())
    finally:
        eng.dispose()


def pg_facts(url: str) -> dict[str, object]:
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        insp = sa.inspect(eng)
        facts: dict[str, object] = {}
        for t in ("branches", "accounts"):
            cols = insp.get_columns(t)
            facts[f"{t} columns"] = ", ".join(f"{c['name']} {c['type']}" for c in cols)
            facts[f"{t} keys"] = (
                f"pk {insp.get_pk_constraint(t)['constrained_columns']}, "
                f"fks {[fk['referred_table'] for fk in insp.get_foreign_keys(t)]}, "
                f"unique {[u['column_names'] for u in insp.get_unique_constraints(t)]}, "
                f"indexes {sorted(i['name'] for i in insp.get_indexes(t))}"
            )
        with eng.begin() as conn:
            conn.exec_driver_sql("SET LOCAL statement_timeout = '5s'")
            try:
                conn.exec_driver_sql(
                    "INSERT INTO accounts (branch, balance, name, created, active, counter)"
                    " VALUES (1, 0, 'new', now(), true, 0)"
                )
            except sa.exc.DBAPIError as exc:
                facts["insert without id"] = str(exc.orig).splitlines()[0]
            else:
                facts["insert without id"] = "id " + str(
                    conn.exec_driver_sql("SELECT max(id) FROM accounts").scalar()
                )
            conn.rollback()
        return facts
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
    src = make_source(rows)
    # pgloader's defaults stop at the zero DATE (the whole table is lost); the
    # second run adds the cast its manual gives for zero dates.
    runs = {
        "pgloader 3.6.9, defaults": "",
        "pgloader 3.6.9, + `CAST type date … using zero-dates-to-null`": (
            "CAST type date to date drop not null using zero-dates-to-null\n"
        ),
    }
    timings: dict[str, tuple[float, int, int]] = {}
    for label, cast in runs.items():
        pgl = fresh("rh_bench_pgloader")
        with tempfile.TemporaryDirectory() as tmp:
            load = Path(tmp) / "mariadb.load"
            load.write_text(
                f"LOAD DATABASE FROM mysql://root@127.0.0.1/{DB} INTO {pgl}\n"
                f"{cast}ALTER SCHEMA '{DB}' RENAME TO 'public';\n"
            )
            t, m, _ = timed(["pgloader", "--quiet", str(load)])
        timings[label] = (t, m, loaded(pgl))
    reh = fresh("rh_bench_rehost")
    src_cli = src.replace("mysql+pymysql://", "mysql://")
    # BIGINT UNSIGNED holds values above PostgreSQL's BIGINT: rehost says so and
    # wants the choice made explicit (pgloader makes it NUMERIC by itself).
    unsigned = ["--map-type", "bigint unsigned=NUMERIC(20)"]
    t_reh, m_reh, out = timed([rehost, "clone", src_cli, reh, *unsigned, *jobs, "--json"])
    report, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    if "ok" not in report:
        raise SystemExit(f"rehost clone failed: {report}")
    t_ver, _, again = timed([rehost, "clone", src_cli, reh, *unsigned, "--verify-only", "--json"])
    again_report, _ = json.JSONDecoder().raw_decode(again[again.index("{") :])
    started = time.perf_counter()
    proc = subprocess.run(
        [rehost, "clone", src_cli, pgl, *unsigned, "--verify-only", "--json"],
        capture_output=True,
        text=True,
    )
    t_chk = time.perf_counter() - started
    check = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    t_pgl = timings[list(runs)[-1]][0]
    print(f"{rows:,} rows (+100 branches), MariaDB → PostgreSQL")
    print("| tool | seconds | × pgloader (with cast) | peak MB | accounts rows loaded |")
    print("| --- | --- | --- | --- | --- |")
    for label, (t, m, n) in timings.items():
        print(f"| {label} | {t:.1f} | {t / t_pgl:.2f} | {m} | {n:,} |")
    n_reh = loaded(reh)
    print(
        f"| rehost clone {' '.join(jobs)} (load, keys, sequences, verify) | {t_reh:.1f}"
        f" | {t_reh / t_pgl:.2f}"
        f" | {m_reh} | {n_reh:,} |"
    )
    print(f"rehost verified: {report['ok']}")
    for t in report["tables"]:
        print(
            f"  rehost {t['table']}: load {t['seconds']} s, verify {t['verify_seconds']} s"
            f" ({t['verify']['method']})"
        )
    print(f"rehost clone --verify-only (rehost's copy): {t_ver:.1f} s")
    for t in again_report["tables"]:
        print(f"  {t['table']}: verify {t['verify_seconds']} s ({t['verify']['method']})")
    print(f"rehost clone --verify-only (pgloader's copy): {t_chk:.1f} s")
    for f in report["findings"]:
        print(f"  rehost finding: {f['code']} {f['subject']}: {f['message']}")
    facts = {"pgloader": pg_facts(pgl), "rehost": pg_facts(reh)}
    for key in facts["rehost"]:
        for tool in ("pgloader", "rehost"):
            print(f"{tool} {key}: {facts[tool].get(key)}")
    if check:
        for t in check["tables"]:
            v = t["verify"]
            print(
                f"rehost --verify-only on pgloader's {t['table']}: "
                f"{'equal' if t['verified'] else 'DIFFERENT'}"
                f" ({v['source_rows']} vs {v['target_rows']} rows,"
                f" first difference {v['first_difference']})"
            )
    else:
        print(f"rehost --verify-only on pgloader's copy: {proc.stdout[-800:]}{proc.stderr[-800:]}")
    with ADMIN.connect() as conn:
        for name in ("rh_bench_pgloader", "rh_bench_rehost"):
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
