"""rehost files transfer vs rsync -a (and cp -a, rclone when installed), local → local.

Side by side in one run, on the same trees, warm page cache, ``sync`` before
each timed run:

1. Small files: N files of 1–16 KiB (random sizes, deterministic seed) in D
   directories. Each tool copies the tree into its own empty target, then runs
   again with nothing changed (the no-change re-run).
2. Large files: K files of M MiB. rehost, ``cp -a`` and ``rsync -a`` copy them.

Every tool run is its own process: wall-clock time and peak resident memory
(``ru_maxrss`` from ``os.wait4``: the largest of the process and the workers it
waited for). With ``--repeat N`` each measurement runs N times (a first copy
always into an empty target) and the median is shown; the large-file runs of
the tools take turns, so a busy spell on a shared machine hits each alike.
``--small 0`` or ``--big 0`` leaves that group out. rehost runs as users run it
(``python -m rehost files transfer --json``), so its times include starting
Python and importing the CLI; that start-up (``rehost --version``) is printed
separately, and the time rehost itself reports (``seconds`` in its JSON: walk,
compare, copy) is a column of its own.
At the end every rehost target is checked with ``rehost files verify --content``.

Run::

    ./dev bench benchmarks/files_local.py                   # 5,000 small, 4 × 128 MiB
    ./dev bench benchmarks/files_local.py --small 50000 --dirs 500 --big-mib 512 --repeat 3
    ./dev bench benchmarks/files_local.py --empty-dirs 100000   # memory with many directories
    ./dev bench benchmarks/files_local.py --linked 300000       # memory with many hard links

``--empty-dirs N`` measures only that: N empty directories (two levels), a first
copy and a re-run by rehost and rsync -a, to show that rehost's peak memory does
not grow with the directory count (their times are set at the end, deepest first).
``--linked N`` measures only that: N files with a second name each (hard links),
a first copy and a re-run by rehost and ``rsync -aH``, then rehost's verify, for
the memory that remembering the links takes.

The work directory (default ``benchmarks/work/files``) is deleted first and at the
end unless ``--keep``. Results are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REHOST = [sys.executable, "-m", "rehost", "files", "transfer"]


def best_of(runs: list[tuple[float, int, float | None]]) -> tuple[float, int, float | None]:
    """The median run by wall time (its own seconds with it); the peak memory of all."""
    ordered = sorted(runs, key=lambda r: r[0])
    seconds, _, own = ordered[len(ordered) // 2]
    return seconds, max(r[1] for r in runs), own


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, float | None]:
    """Run one command; (seconds, peak RSS in MiB, rehost's own seconds from --json).
    A failure stops the benchmark."""
    rehost = cmd[:4] == REHOST[:4]
    if rehost:
        cmd = [*cmd, "--json"]
    os.sync()  # the previous step's dirty pages are not this tool's cost
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    own = json.loads(out)["seconds"] if rehost else None
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}"
        )
    return seconds, usage.ru_maxrss // 1024, own


def make_small(root: Path, files: int, dirs: int) -> int:
    rnd = random.Random(42)
    total = 0
    for i in range(files):
        d = root / f"d{i % dirs:04d}"
        d.mkdir(parents=True, exist_ok=True)
        size = rnd.randint(1024, 16384)
        (d / f"f{i:06d}.dat").write_bytes(rnd.randbytes(size))
        total += size
    return total


def make_big(root: Path, count: int, mib: int) -> None:
    root.mkdir(parents=True)
    block = os.urandom(1 << 20)
    for i in range(count):
        with open(root / f"big-{i}.bin", "wb") as f:
            for _ in range(mib):
                f.write(block)


def make_dirs(root: Path, count: int) -> None:
    fan = int(count**0.5) + 1
    for n in range(count):
        os.makedirs(root / f"d{n // fan:04d}" / f"e{n % fan:04d}")


def empty_dirs(work: Path, count: int, env: dict[str, str], rsync: str | None) -> None:
    make_dirs(work / "dirs", count)
    rows: list[tuple[str, str, float, int, float | None]] = []
    data = f"{count:,} empty directories"
    for label, cmd in [
        ("rehost", [*REHOST, str(work / "dirs"), str(work / "r-dirs")]),
        ("rsync -a", [rsync or "", "-a", f"{work / 'dirs'}/", f"{work / 's-dirs'}/"]),
    ]:
        if cmd[0]:
            rows.append((data, f"{label}: first copy", *run(cmd, env)))
            rows.append((data, f"{label}: no-change re-run", *run(cmd, env)))
    run([sys.executable, "-m", "rehost", "files", "verify", str(work / "dirs"),
         str(work / "r-dirs")], env)  # fmt: skip
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print_rows(rows)


def make_linked(root: Path, count: int) -> None:
    """``count`` one-byte files, each with a second name in a mirror directory
    (a/D/N and b/D/N, 1,000 per directory), as snapshots of a backup tree hold them."""
    for n in range(count):
        a, b = root / "a" / f"d{n // 1000:04d}", root / "b" / f"d{n // 1000:04d}"
        if n % 1000 == 0:
            a.mkdir(parents=True)
            b.mkdir(parents=True)
        (a / f"{n}").write_bytes(b"x")
        os.link(a / f"{n}", b / f"{n}")


def linked(work: Path, count: int, env: dict[str, str], rsync: str | None) -> None:
    make_linked(work / "linked", count)
    rows: list[tuple[str, str, float, int, float | None]] = []
    data = f"{count:,} files × 2 names"
    for label, cmd in [
        ("rehost", [*REHOST, str(work / "linked"), str(work / "r-linked")]),
        ("rsync -aH", [rsync or "", "-aH", f"{work / 'linked'}/", f"{work / 's-linked'}/"]),
    ]:
        if cmd[0]:
            rows.append((data, f"{label}: first copy", *run(cmd, env)))
            rows.append((data, f"{label}: no-change re-run", *run(cmd, env)))
    verify = [sys.executable, "-m", "rehost", "files", "verify", str(work / "linked")]
    rows.append((data, "rehost files verify", *run([*verify, str(work / "r-linked")], env)))
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print_rows(rows)


def warm(root: Path) -> None:
    for dirpath, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                while f.read(1 << 20):
                    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=5000, help="small files (default 5,000)")
    ap.add_argument("--dirs", type=int, default=50, help="directories for them (default 50)")
    ap.add_argument("--big", type=int, default=4, help="large files (default 4)")
    ap.add_argument("--big-mib", type=int, default=128, help="size of each, MiB (default 128)")
    ap.add_argument("--jobs", type=int, default=4, help="rehost --jobs (default 4)")
    ap.add_argument("--work", type=Path, default=HERE / "work" / "files")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--empty-dirs", type=int, metavar="N", help="only: N empty directories (memory)"
    )
    ap.add_argument(
        "--linked", type=int, metavar="N", help="only: N files with two names each (memory)"
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of each measurement; the median is shown"
    )
    args = ap.parse_args()

    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "XDG_STATE_HOME": str(work / "state")}
    tools = {"rsync": shutil.which("rsync"), "rclone": shutil.which("rclone"), "cp": "cp"}
    rows: list[tuple[str, str, float, int, float | None]] = []
    if args.empty_dirs or args.linked:
        try:
            if args.empty_dirs:
                empty_dirs(work, args.empty_dirs, env, tools["rsync"])
            else:
                linked(work, args.linked, env, tools["rsync"])
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        return
    try:
        small_bytes = make_small(work / "small", args.small, args.dirs)
        make_big(work / "big", args.big, args.big_mib)
        warm(work)
        start, _, _ = run([sys.executable, "-m", "rehost", "--version"], env)
        small = f"{args.small:,} small files ({small_bytes / 2**20:,.0f} MiB)"
        jobs = ["--jobs", str(args.jobs)]
        small_runs = [
            ("rehost", [*REHOST, *jobs, str(work / "small"), str(work / "r-small")]),
            (
                "rsync -a",
                [tools["rsync"] or "rsync", "-a", f"{work / 'small'}/", f"{work / 's-small'}/"],
            ),
            (
                "rclone copy",
                [tools["rclone"] or "", "copy", str(work / "small"), str(work / "c-small")],
            ),
        ]
        for label, cmd in small_runs if args.small else []:  # --small 0: large files only
            if not cmd[0]:
                continue
            firsts, agains = [], []
            for _ in range(args.repeat):  # each first copy into an empty target
                shutil.rmtree(Path(cmd[-1].rstrip("/")), ignore_errors=True)  # the target
                shutil.rmtree(work / "state", ignore_errors=True)
                firsts.append(run(cmd, env))
                agains.append(run(cmd, env))
            rows.append((small, f"{label}: first copy", *best_of(firsts)))
            rows.append((small, f"{label}: no-change re-run", *best_of(agains)))
        big = f"{args.big} × {args.big_mib} MiB"
        big_runs = [
            ("rehost", [*REHOST, *jobs, str(work / "big"), str(work / "r-big")]),
            ("cp -a", ["cp", "-a", str(work / "big"), str(work / "p-big")]),
            (
                "rsync -a",
                [tools["rsync"] or "rsync", "-a", f"{work / 'big'}/", f"{work / 's-big'}/"],
            ),
        ]
        big_runs = [(label, cmd) for label, cmd in big_runs if cmd[0] != "rsync" or tools["rsync"]]
        big_times: dict[str, list[tuple[float, int, float | None]]] = {}
        for _ in range(args.repeat if args.big else 0):
            for label, cmd in big_runs:  # interleaved: a busy spell hits every tool alike
                shutil.rmtree(Path(cmd[-1].rstrip("/")), ignore_errors=True)
                shutil.rmtree(work / "state", ignore_errors=True)
                big_times.setdefault(label, []).append(run(cmd, env))
        rows += [(big, label, *best_of(runs)) for label, runs in big_times.items()]
        for tree in [t for t, n in (("small", args.small), ("big", args.big)) if n]:
            verify = [sys.executable, "-m", "rehost", "files", "verify", "--content"]
            run(
                [*verify, str(work / tree), str(work / f"r-{tree}")], env
            )  # exits 1 on a difference
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"rehost start-up (python -m rehost --version): {start:.2f} s; rehost --jobs {args.jobs}")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print_rows(rows)


def print_rows(rows: list[tuple[str, str, float, int, float | None]]) -> None:
    """The results as a Markdown table, each time against rehost's in its group."""
    print("| data | tool | seconds | vs rehost | rehost's own seconds | peak RSS (MiB) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    ref: dict[tuple[str, str], float] = {}
    for data, label, seconds, rss, own in rows:
        kind = "re-run" if "re-run" in label else "copy"
        ref.setdefault((data, kind), seconds)  # rehost runs first in each group
        ratio = seconds / ref[(data, kind)]
        own_s = f"{own:.2f}" if own is not None else ""
        print(f"| {data} | {label} | {seconds:.2f} | {ratio:.2f}× | {own_s} | {rss} |")


if __name__ == "__main__":
    main()
