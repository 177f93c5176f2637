"""rehost at scale: export, import and re-import preview of N owned rows on SQLite.

Not a comparison (the Django benchmark is the side-by-side one): this shows how
time and peak memory grow with table size. The source has 1,000 groups that own
N items (ON DELETE CASCADE, key (group_id, name)), 50 tags, and an empty
item_tags table that references items.

Run::

    ./dev bench benchmarks/scale.py --rows 300000 --rows 1000000

Each step runs ``rehost`` as its own process; wall time and peak resident memory
(ru_maxrss from os.wait4) are measured per step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE groups_ (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, descr TEXT);
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES groups_(id) ON DELETE CASCADE,
    name TEXT NOT NULL, payload TEXT, amount NUMERIC(12,2), created_at DATETIME NOT NULL,
    flag BOOLEAN, UNIQUE (group_id, name));
CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE);
CREATE TABLE item_tags (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    tag_id INTEGER NOT NULL REFERENCES tags(id), UNIQUE (item_id, tag_id));
"""


def generate(path: Path, rows: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.executemany(
        "INSERT INTO groups_ VALUES (?, ?, ?)",
        [(i, f"group-{i}", "d" * 20) for i in range(1, 1001)],
    )
    conn.executemany("INSERT INTO tags VALUES (?, ?)", [(i, f"tag-{i}") for i in range(1, 51)])
    t0 = dt.datetime(2020, 1, 1)
    conn.executemany(
        "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                i,
                rnd.randint(1, 1000),
                f"item-{i}",
                "x" * rnd.randint(10, 80),
                f"{rnd.randint(0, 100000) / 100:.2f}",
                (t0 + dt.timedelta(seconds=i)).isoformat(" "),
                rnd.random() < 0.5,
            )
            for i in range(1, rows + 1)
        ),
    )
    conn.commit()
    conn.close()


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak MiB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"failed: {' '.join(args)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, action="append", help="items rows (repeatable)")
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "work" / "scale")
    args = ap.parse_args()
    sizes = args.rows or [300_000]
    rehost = [sys.executable, "-m", "rehost"]
    env = dict(os.environ, REHOST_PASSWORD="scale-benchmark")
    print("| rows | step | seconds | peak MiB | bundle MiB |")
    print("|---:|---|---:|---:|---:|")
    for n in sizes:
        work = args.work / str(n)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        src, dst, bundle = work / "src.db", work / "dst.db", work / "bundle"
        generate(src, n)
        with sqlite3.connect(dst) as conn:
            conn.executescript(SCHEMA)
        conn.close()
        s, m = timed([*rehost, "export", f"sqlite:///{src}", str(bundle)], env)
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) / 2**20
        print(f"| {n:,} | export | {s:.1f} | {m:.0f} | {size:.0f} |", flush=True)
        s, m = timed([*rehost, "import", str(bundle), f"sqlite:///{dst}"], env)
        print(f"| {n:,} | import (empty target) | {s:.1f} | {m:.0f} | |", flush=True)
        s, m = timed(
            [
                *rehost,
                "import",
                str(bundle),
                f"sqlite:///{dst}",
                "--preview",
                "--on-conflict",
                "overwrite",
            ],
            env,
        )
        print(f"| {n:,} | re-import preview (all unchanged) | {s:.1f} | {m:.0f} | |", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
