"""rehost files transfer vs rclone copy, local → SFTP and local → S3 on loopback.

The servers are the tests' own: asyncssh's SFTP server (tests/sftp_server.py,
password auth) and moto's S3 server (``python -m moto.server``), each in its own
process on 127.0.0.1, so both tools talk to the same Python servers. N files of
1–16 KiB in D directories (files_local.py's tree); each tool copies the tree to
its own target, then runs again with nothing changed. Wall-clock time and peak
RSS per tool run (files_local.run); rehost's own ``seconds`` from its JSON.
Every rehost target is checked with ``rehost files verify --content`` at the end.

Run::

    ./dev bench benchmarks/files_remote.py                  # 5,000 files in 50 dirs
    ./dev bench benchmarks/files_remote.py --small 1000 --only SFTP

rclone is optional (``apt-get install rclone``); without it only rehost runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from files_local import REHOST, make_small, print_rows, run, warm

HERE = Path(__file__).resolve().parent
PASSWORD = "bench"
BUCKET = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sftp(work: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    import asyncssh

    (work / "sftp-root").mkdir()
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(work / "host_key"))
    port = free_port()
    known = work / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {key.export_public_key().decode().strip()}\n")
    server = HERE.parent / "tests" / "sftp_server.py"
    proc = subprocess.Popen(
        [sys.executable, str(server), str(work / "sftp-root"), str(work / "host_key"), PASSWORD,
         str(port)], stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == str(port).encode()
    return proc, port, known


def start_s3() -> tuple[subprocess.Popen[bytes], str]:
    import boto3

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            break
        except Exception:
            time.sleep(0.1)
    return proc, endpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=5000, help="small files (default 5,000)")
    ap.add_argument("--dirs", type=int, default=50, help="directories for them (default 50)")
    ap.add_argument("--jobs", type=int, default=4, help="rehost --jobs (default 4)")
    ap.add_argument("--only", choices=["SFTP", "S3"], help="one store only")
    ap.add_argument("--work", type=Path, default=HERE / "work" / "files-remote")
    args = ap.parse_args()

    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    sftp, port, known = start_sftp(work)
    s3, endpoint = start_s3()
    rclone = shutil.which("rclone")
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(work / "state"),
        "REHOST_SFTP_PASSWORD": PASSWORD,
        "RCLONE_CONFIG": str(work / "rclone.conf"),  # none: remotes from the environment
        "RCLONE_CONFIG_BSFTP_TYPE": "sftp",
        "RCLONE_CONFIG_BSFTP_HOST": "127.0.0.1",
        "RCLONE_CONFIG_BSFTP_PORT": str(port),
        "RCLONE_CONFIG_BSFTP_USER": "rehost",
        "RCLONE_CONFIG_BSFTP_KNOWN_HOSTS_FILE": str(known),
        "RCLONE_CONFIG_BS3_TYPE": "s3",
        "RCLONE_CONFIG_BS3_PROVIDER": "Other",
        "RCLONE_CONFIG_BS3_ENDPOINT": endpoint,
        "RCLONE_CONFIG_BS3_ACCESS_KEY_ID": "bench",
        "RCLONE_CONFIG_BS3_SECRET_ACCESS_KEY": "bench",
        "RCLONE_CONFIG_BS3_REGION": "us-east-1",
    }
    env.pop("AWS_CA_BUNDLE", None)  # plain http on loopback; rclone refuses a custom bundle
    if rclone:
        obscured = subprocess.run([rclone, "obscure", PASSWORD], capture_output=True, text=True)
        env["RCLONE_CONFIG_BSFTP_PASS"] = obscured.stdout.strip()
    rows: list[tuple[str, str, float, int, float | None]] = []
    try:
        small_bytes = make_small(work / "small", args.small, args.dirs)
        warm(work / "small")
        data = f"{args.small:,} small files ({small_bytes / 2**20:,.0f} MiB)"
        src = str(work / "small")
        sftp_url = f"sftp://rehost@127.0.0.1:{port}/rehost"
        jobs = ["--jobs", str(args.jobs)]
        for store, rehost_cmd, rclone_dst in [
            ("SFTP", [*REHOST, src, sftp_url, "--sftp-known-hosts", str(known), *jobs],
             "bsftp:/rclone"),
            ("S3", [*REHOST, src, f"s3://{BUCKET}/rehost", "--s3-endpoint-url", endpoint, *jobs],
             f"bs3:{BUCKET}/rclone"),
        ]:  # fmt: skip
            if args.only and store != args.only:
                continue
            tools = [("rehost", rehost_cmd)]
            if rclone:
                tools.append(("rclone copy", [rclone, "copy", src, rclone_dst]))
            for label, cmd in tools:
                first = run(cmd, env)
                again = run(cmd, env)
                rows.append((f"{data} → {store}", f"{label}: first copy", *first))
                rows.append((f"{data} → {store}", f"{label}: no-change re-run", *again))
        verify = [sys.executable, "-m", "rehost", "files", "verify", "--content", src]
        if args.only != "S3":
            run([*verify, sftp_url, "--sftp-known-hosts", str(known)], env)
        if args.only != "SFTP":
            run([*verify, f"s3://{BUCKET}/rehost", "--s3-endpoint-url", endpoint], env)
    finally:
        sftp.kill()
        s3.kill()
        shutil.rmtree(work, ignore_errors=True)

    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; rehost --jobs "
          f"{args.jobs}; rclone defaults (--transfers 4 --checkers 8)\n")  # fmt: skip
    print_rows(rows)


if __name__ == "__main__":
    main()
