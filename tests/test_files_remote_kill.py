"""kill -9 of rehost itself mid-transfer to an SFTP or S3 target, then a re-run.

The process is killed with SIGKILL from inside (at the Nth file it reports as
copied, while other copies are in flight and before that file reaches the
manifest), so no cleanup of rehost's runs. The re-run must finish, send only
what is not on the target whole, leave no temporary file, and verify.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.test_files_cli import snapshot
from tests.test_files_remote import (  # noqa: F401  (fixtures)
    PASSWORD,
    S3Server,
    SFTPServer,
    _env,
    bucket,
    files,
    s3_server,
    sftp,
)

TOTAL = 80
KILL_AT = 6

_KILLED_RUN = """
import os, signal, sys
from rehost.files.location import RemoteOptions
from pathlib import Path
from rehost.files.transfer import TransferOptions, transfer

src, url, state, known_hosts, endpoint, kill_at = sys.argv[1:]

class Kill:
    copied = 0
    def action(self, op, reason, rel):
        if op == "copy":
            self.copied += 1
            if self.copied == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)

remote = RemoteOptions(sftp_password=os.environ["REHOST_SFTP_PASSWORD"],
                       sftp_known_hosts=known_hosts or None, s3_endpoint_url=endpoint or None)
transfer(src, url, TransferOptions(jobs=4, state_dir=Path(state), remote=remote), observer=Kill())
print("not killed")
"""


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for d in ("a", "b"):
        (src / d).mkdir(parents=True)
    for i in range(TOTAL):
        (src / ("a" if i % 2 else "b") / f"{i:02d}.bin").write_bytes(os.urandom(60_000 + i))
    return src


def _killed_run(
    src: Path, url: str, state: Path, known_hosts: str = "", endpoint: str = ""
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, str(src), url, str(state), known_hosts, endpoint,
         str(KILL_AT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)


def test_kill_9_mid_transfer_to_sftp_then_rerun(sftp: SFTPServer, tmp_path: Path) -> None:  # noqa: F811
    src = _source(tmp_path)
    before = snapshot(src)
    state = tmp_path / "state-run"
    url = sftp.url("data")
    _killed_run(src, url, state, known_hosts=str(sftp.known_hosts))

    data = sftp.root / "data"
    whole = [p for p in data.rglob("*.bin") if not p.name.startswith(".rehost-tmp")]
    assert KILL_AT <= len(whole) < TOTAL
    for p in whole:  # under its real name, a file is complete
        assert p.read_bytes() == (src / p.relative_to(data)).read_bytes()

    rep = files("transfer", str(src), url, "--state", str(state), *sftp.opts)
    assert rep["ok"]
    assert rep["counts"]["copied"] == TOTAL - len(whole)  # only what was not there whole
    assert not [p for p in data.rglob("*") if p.name.startswith(".rehost-tmp")]
    assert files("verify", str(src), url, "--content", "--state", str(state), *sftp.opts)["ok"]
    again = files("transfer", str(src), url, "--state", str(state), *sftp.opts)
    assert again["counts"]["copied"] == 0
    assert snapshot(src) == before


def test_kill_9_mid_transfer_to_s3_then_rerun(
    s3_server: S3Server,  # noqa: F811
    bucket: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    src = _source(tmp_path)
    before = snapshot(src)
    state = tmp_path / "state-run"
    url = f"s3://{bucket}/data"
    _killed_run(src, url, state, endpoint=s3_server.endpoint)

    client = s3_server.client
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])  # type: ignore[attr-defined]
    keys = [o["Key"] for o in listed if o["Key"].endswith(".bin")]
    assert KILL_AT <= len(keys) < TOTAL
    for key in keys:  # an object is whole or absent
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
        assert body == (src / key.removeprefix("data/")).read_bytes()

    rep = files("transfer", str(src), url, "--state", str(state), *s3_server.opts)
    assert rep["ok"]
    assert rep["counts"]["copied"] == TOTAL - len(keys)
    assert files("verify", str(src), url, "--content", "--state", str(state), *s3_server.opts)["ok"]
    again = files("transfer", str(src), url, "--state", str(state), *s3_server.opts)
    assert again["counts"]["copied"] == 0
    assert snapshot(src) == before
