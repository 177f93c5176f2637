"""Commands for file shares: inventory, transfer, verify."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from rehost.cli.core import app, handle_errors
from rehost.cli.render import err, out, print_json
from rehost.errors import UsageError
from rehost.files import interrupt
from rehost.files.entry import display
from rehost.files.exclude import Excludes
from rehost.files.inventory import Inventory, inventory
from rehost.files.location import RemoteOptions
from rehost.files.owners import OwnerMap, parse_map
from rehost.files.throttle import parse_rate
from rehost.files.transfer import (
    COUNT_KEYS,
    TransferOptions,
    TransferReport,
    count_tree,
    resolve_pair,
    transfer,
)
from rehost.files.verify import VerifyReport, verify

files_app = typer.Typer(
    help="File shares: inventory, transfer (only what changed on re-runs), verify.",
    no_args_is_help=True,
)
app.add_typer(files_app, name="files")

JSON_OPT = typer.Option(False, "--json", help="Print the result as JSON for scripts.")
OWNERS_OPT = typer.Option(
    "name", "--owners", help="Owner and group: 'name' (mapped by name), 'numeric' or 'none'."
)
MAP_USER_OPT = typer.Option(
    [], "--map-user", help="Map a user by name: SOURCE=TARGET (repeatable)."
)
MAP_GROUP_OPT = typer.Option(
    [], "--map-group", help="Map a group by name: SOURCE=TARGET (repeatable)."
)
STATE_OPT = typer.Option(
    None,
    "--state",
    help="Directory for the manifest (default: ~/.local/state/rehost/files/<target hash>/).",
    file_okay=False,
)
SFTP_PASSWORD_OPT = typer.Option(
    None,
    "--sftp-password-file",
    help="File holding the SFTP password (or set REHOST_SFTP_PASSWORD); "
    "without either, keys (agent, ~/.ssh/id_*) are used.",
    dir_okay=False,
)
SFTP_KNOWN_HOSTS_OPT = typer.Option(
    None,
    "--sftp-known-hosts",
    help="known_hosts file to check the server's host key against (default ~/.ssh/known_hosts).",
    dir_okay=False,
)
SFTP_KEY_OPT = typer.Option(
    None, "--sftp-key", help="Private key file for SFTP (default: agent and ~/.ssh/id_*).",
    dir_okay=False,
)  # fmt: skip
S3_ENDPOINT_OPT = typer.Option(
    None,
    "--s3-endpoint-url",
    help="S3-compatible endpoint (MinIO, Ceph …); default AWS_ENDPOINT_URL or AWS itself. "
    "Credentials come from the usual AWS variables and files.",
)
S3_REGION_OPT = typer.Option(None, "--s3-region", help="S3 region (default: AWS settings).")
RETRIES_OPT = typer.Option(
    3, "--retries", help="Retries after a network error (backoff 0.5 s, doubling) per operation."
)
EXCLUDE_OPT = typer.Option(
    [],
    "--exclude",
    help="Leave out paths matching PATTERN on both sides (repeatable): '*.tmp' (a name at "
    "any depth), 'cache/' (directories only), '/tmp' (at the root), 'thumbs/*.jpg', "
    "'logs/**/old'. Excluded paths on the target are never removed.",
    metavar="PATTERN",
)
SHOW_AT_MOST = 50  # names listed in the human summary; --json lists all


def _owner_map(owners: str, map_user: list[str], map_group: list[str]) -> OwnerMap:
    return OwnerMap(owners, parse_map(map_user, "user"), parse_map(map_group, "group"))


def _remote_options(
    password_file: Path | None,
    known_hosts: Path | None,
    key: Path | None,
    endpoint: str | None,
    region: str | None,
    retries: int,
) -> RemoteOptions:
    password = os.environ.get("REHOST_SFTP_PASSWORD")
    if password_file is not None:
        try:
            password = password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"--sftp-password-file {password_file}: {exc.strerror}") from exc
    if retries < 0:
        raise UsageError(f"--retries {retries}: give 0 or more")
    return RemoteOptions(
        sftp_password=password,
        sftp_known_hosts=str(known_hosts) if known_hosts else None,
        sftp_key=str(key) if key else None,
        s3_endpoint_url=endpoint,
        s3_region=region,
        retries=retries,
    )


def _listed(title: str, rows: list[str], *, style: str = "") -> None:
    if not rows:
        return
    out.print(f"[bold]{title}[/]")
    for row in rows[:SHOW_AT_MOST]:
        out.print(f"  [{style}]{escape(row)}[/]" if style else f"  {escape(row)}", soft_wrap=True)
    if len(rows) > SHOW_AT_MOST:
        out.print(f"  … {len(rows) - SHOW_AT_MOST:,} more (--json lists all)")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


# ----------------------------------------------------------------- inventory


def _render_inventory(inv: Inventory) -> None:
    data = inv.to_json()
    counts = ", ".join(f"{k}: {n:,}" for k, n in data["counts"].items() if n)
    out.print(
        f"[bold]{escape(inv.root)}[/]: {counts or 'empty'}; {_size(inv.total_bytes)} in files"
    )
    for title, key in (("owner", "owners"), ("group", "groups"), ("extension", "extensions")):
        t = Table(title=f"By {title}", title_justify="left")
        t.add_column(title)
        t.add_column("files", justify="right")
        t.add_column("bytes", justify="right")
        for row in data[key]:
            t.add_row(escape(row["name"]), f"{row['files']:,}", _size(row["bytes"]))
        out.print(t)
    _listed("Largest files", [f"{_size(r['bytes']):>12}  {r['path']}" for r in data["largest"]])
    hl = data["hardlinks"]
    if hl["groups"]:
        out.print(f"hard links: {hl['groups']:,} file(s) with {hl['names']:,} further name(s)")
    _listed(
        "Symbolic links leaving the tree (kept as links, never followed)",
        [f"{r['path']} → {r['target']}" for r in data["links_leaving_tree"]],
    )
    _listed(
        "Special files (skipped by transfer)",
        [f"{r['kind']}: {r['path']}" for r in data["special"]],
    )
    _listed("Unreadable", [f"{r['path']}: {r['reason']}" for r in data["unreadable"]], style="red")


@files_app.command("inventory")
@handle_errors
def inventory_cmd(
    path: str = typer.Argument(..., help="The tree to describe: a path, sftp:// or s3:// URL."),
    json_out: bool = JSON_OPT,
    sftp_password_file: Path | None = SFTP_PASSWORD_OPT,
    sftp_known_hosts: Path | None = SFTP_KNOWN_HOSTS_OPT,
    sftp_key: Path | None = SFTP_KEY_OPT,
    s3_endpoint_url: str | None = S3_ENDPOINT_OPT,
    s3_region: str | None = S3_REGION_OPT,
    retries: int = RETRIES_OPT,
    exclude: list[str] = EXCLUDE_OPT,
) -> None:
    """Describe a tree: counts, bytes, owners, extensions, largest files, links, specials.

    Lists unreadable entries too. Reads only.

    Examples:

      rehost files inventory /srv/app/uploads

      rehost files inventory /srv/app/uploads --exclude cache/ --exclude '*.tmp'
    """
    remote = _remote_options(sftp_password_file, sftp_known_hosts, sftp_key, s3_endpoint_url,
                             s3_region, retries)  # fmt: skip
    inv = inventory(path, remote, tuple(exclude))
    if json_out:
        print_json(inv.to_json())
    else:
        _render_inventory(inv)


# ------------------------------------------------------------------ transfer


class _Bar:
    """Files, bytes, rate and ETA on stderr; totals come from a counting walk beside the copy."""

    def __init__(self, enabled: bool, root: bytes | None, exclude: tuple[str, ...] = ()) -> None:
        self.enabled = enabled and err.is_terminal
        self.root = root
        self.excludes = Excludes(exclude)
        self.files = 0
        self.total_files: int | None = None
        self._stop = threading.Event()
        self._progress: Progress | None = None

    def __enter__(self) -> _Bar:
        if not self.enabled:
            return self
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self._task = self._progress.add_task("transfer", total=None, files="0 files")
        self._progress.start()
        if self.root is not None:
            threading.Thread(
                target=count_tree,
                args=(self.root, self._totals, self._stop, self.excludes),
                daemon=True,
            ).start()
        return self

    def _totals(self, files: int, nbytes: int) -> None:
        if self._progress is not None:
            self.total_files = files
            self._progress.update(self._task, total=nbytes)

    def update(self, files: int, nbytes: int) -> None:
        if self._progress is None:
            return
        self.files += files
        of = f"/{self.total_files:,}" if self.total_files is not None else ""
        self._progress.update(self._task, advance=nbytes, files=f"{self.files:,}{of} files")

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._progress is not None:
            self._progress.stop()


class _Printer:
    """Prints each decision: all of them in a preview, removals always (before they happen)."""

    def __init__(self, preview: bool) -> None:
        self.preview = preview

    def action(self, op: str, reason: str, rel: bytes) -> None:
        if op == "remove":
            verb = "would remove" if self.preview else "removing"
            err.print(f"{verb} (only on the target): {escape(display(rel))}", soft_wrap=True)
        elif self.preview:
            label = f"{op} ({reason})" if reason else op
            out.print(f"{escape(label):<32} {escape(display(rel))}", soft_wrap=True)


def _render_transfer(rep: TransferReport) -> None:
    title = "Preview (nothing written)" if rep.preview else "Transfer"
    out.print(f"[bold]{title}[/]: {escape(rep.source)} → {escape(rep.target)}")
    t = Table(title_justify="left")
    t.add_column("outcome")
    t.add_column("entries", justify="right")
    for key in COUNT_KEYS:
        n = rep.counts[key]
        if not n and key not in ("copied", "unchanged", "failed"):
            continue
        style = "red" if key == "failed" and n else ""
        t.add_row(f"[{style}]{key}[/]" if style else key, f"{n:,}")
        if key == "skipped":
            for reason, m in sorted(rep.skipped.items()):
                t.add_row(f"  [dim]{escape(reason)}[/]", f"[dim]{m:,}[/]")
    out.print(t)
    verb = "to copy" if rep.preview else "copied"
    fast = rep.bytes_copied >= 1 << 20 and rep.seconds > 0 and not rep.preview
    rate = f" ({_size(rep.bytes_copied / rep.seconds)}/s)" if fast else ""
    out.print(f"{_size(rep.bytes_copied)} {verb} in {rep.seconds:.2f} s{rate}")
    out.print(f"manifest: {escape(rep.state_dir)}", soft_wrap=True)
    if rep.not_preserved:
        out.print("[yellow]not preserved[/] (entries): " + "; ".join(
            f"{escape(what)} × {n:,}" for what, n in sorted(rep.not_preserved.items())
        ))  # fmt: skip
    if not rep.delete_extra:
        kept = "kept; --delete-extra removes them"
    else:
        kept = "would be removed" if rep.preview else "removed"
    held = set(rep.kept)
    _listed(
        f"Only on the target ({kept})",
        [display(p) + ("/" if k == "dir" else "") for p, k in rep.extra if p not in held],
    )
    _listed(
        "Only on the target, kept: they hold paths --exclude leaves out",
        [display(p) + "/" for p in rep.kept],
    )
    _listed(
        "Names that differ only in case (the target ignores case; not sent)",
        [f"{display(p)}: same name as {display(w)}" for p, w in rep.collisions],
        style="yellow",
    )
    _listed("Errors", [f"{display(e.path)}: {e.message}" for e in rep.errors], style="red")
    if rep.errors:
        out.print(
            f"[bold red]{len(rep.errors):,} error(s)[/]; run the same command again to retry them."
        )


def _stopping() -> None:
    os.write(2, b"stopping: finishing the files in flight (Ctrl-C again to stop at once)\n")


@files_app.command("transfer")
@handle_errors
def transfer_cmd(
    src: str = typer.Argument(
        ..., help="Source tree: a path, sftp:// or s3:// URL; never modified."
    ),
    dst: str = typer.Argument(
        ..., help="Target: a path (created if missing), sftp:// or s3:// URL."
    ),
    checksum: bool = typer.Option(
        False, "--checksum", help="Compare content by BLAKE3 hash, not by size and mtime."
    ),
    owners: str = OWNERS_OPT,
    map_user: list[str] = MAP_USER_OPT,
    map_group: list[str] = MAP_GROUP_OPT,
    jobs: int = typer.Option(4, "--jobs", "-j", help="Files copied in parallel."),
    delete_extra: bool = typer.Option(
        False, "--delete-extra", help="Remove what exists only on the target (printed first)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace target files that differ even when they are newer."
    ),
    preview: bool = typer.Option(False, "--preview", help="Show every action; write nothing."),
    case_insensitive_target: bool = typer.Option(
        False,
        "--case-insensitive-target",
        help="Treat the target as ignoring case in names (local targets are probed).",
    ),
    state: Path | None = STATE_OPT,
    json_out: bool = JSON_OPT,
    sftp_password_file: Path | None = SFTP_PASSWORD_OPT,
    sftp_known_hosts: Path | None = SFTP_KNOWN_HOSTS_OPT,
    sftp_key: Path | None = SFTP_KEY_OPT,
    s3_endpoint_url: str | None = S3_ENDPOINT_OPT,
    s3_region: str | None = S3_REGION_OPT,
    retries: int = RETRIES_OPT,
    exclude: list[str] = EXCLUDE_OPT,
    bwlimit: str | None = typer.Option(
        None,
        "--bwlimit",
        help="At most RATE bytes per second over all copies: 500K, 10M, 1G (1024-based; "
        "a plain number is KiB/s, as with rsync).",
        metavar="RATE",
    ),
) -> None:
    """Copy a tree with its metadata; later runs copy only what changed.

    Examples:

      rehost files transfer /srv/app/uploads /mnt/new/uploads

      rehost files transfer /srv/app/uploads /mnt/new/uploads --delete-extra --preview

      rehost files transfer /srv/app/uploads sftp://backup@files.example:22/srv/uploads

      rehost files transfer /srv/app/uploads s3://bucket/uploads

      rehost files transfer /srv/app/data /mnt/new/data --exclude cache/ --exclude '*.tmp'

      rehost files transfer /srv/app/uploads sftp://files.example/srv/uploads --bwlimit 20M
    """
    options = TransferOptions(
        checksum=checksum,
        owners=_owner_map(owners, map_user, map_group),
        jobs=jobs,
        delete_extra=delete_extra,
        overwrite=overwrite,
        preview=preview,
        state_dir=state,
        case_insensitive=True if case_insensitive_target else None,
        remote=_remote_options(sftp_password_file, sftp_known_hosts, sftp_key, s3_endpoint_url,
                               s3_region, retries),
        exclude=tuple(exclude),
        bwlimit=parse_rate(bwlimit) if bwlimit is not None else None,
    )  # fmt: skip
    src_loc, _ = resolve_pair(src, dst)
    try:
        # The bar's totals come from a second, local walk; remote sources show counts only.
        with (
            interrupt.on_sigint(_stopping),
            _Bar(not json_out, src_loc.root if src_loc.is_local else None, options.exclude) as bar,
        ):
            rep = transfer(
                src, dst, options, progress=bar, observer=None if json_out else _Printer(preview)
            )
    except (interrupt.Interrupted, KeyboardInterrupt):
        err.print(
            "interrupted: files already in place are complete; run the same command again "
            "to finish (it removes the temporary files this run left)."
        )
        raise typer.Exit(130) from None
    if json_out:
        print_json(rep.to_json())
    else:
        _render_transfer(rep)
    if not rep.ok:
        raise typer.Exit(1)


# -------------------------------------------------------------------- verify


def _render_verify(rep: VerifyReport) -> None:
    what = "metadata and content" if rep.content else "metadata"
    checked = ", ".join(f"{n:,} {k}" for k, n in sorted(rep.checked.items()))
    out.print(f"[bold]Verify[/] ({what}): {escape(rep.source)} → {escape(rep.target)}; {checked}")
    for d in rep.differences:
        out.print(
            f"  [red]{d.what:<9}[/] {escape(display(d.path))}  [dim]{escape(d.detail)}[/]",
            soft_wrap=True,
        )
    for path, error in rep.errors:
        out.print(
            f"  [red]error[/]     {escape(display(path))}  [dim]{escape(error)}[/]", soft_wrap=True
        )
    _listed("Only on the target (not a difference)", [display(p) for p in rep.extra])
    _listed(
        "Names that differ only in case (the target ignores case; not sent, not a difference)",
        [f"{display(p)}: same name as {display(w)}" for p, w in rep.collisions],
        style="yellow",
    )
    _listed("Skipped", [f"{display(p)}: {r}" for p, r in rep.skipped])
    if rep.ok:
        out.print("[green]ok[/]: no differences")
    else:
        out.print(
            f"[bold red]{len(rep.differences):,} difference(s)[/], {len(rep.errors):,} error(s)"
        )


@files_app.command("verify")
@handle_errors
def verify_cmd(
    src: str = typer.Argument(..., help="Source tree: a path, sftp:// or s3:// URL; read only."),
    dst: str = typer.Argument(..., help="Target tree: a path, sftp:// or s3:// URL; read only."),
    content: bool = typer.Option(False, "--content", help="Compare BLAKE3 hashes of files too."),
    owners: str = OWNERS_OPT,
    map_user: list[str] = MAP_USER_OPT,
    map_group: list[str] = MAP_GROUP_OPT,
    case_insensitive_target: bool = typer.Option(
        False,
        "--case-insensitive-target",
        help="Treat the target as ignoring case in names, as transfer did (local targets "
        "are probed).",
    ),
    state: Path | None = STATE_OPT,
    json_out: bool = JSON_OPT,
    sftp_password_file: Path | None = SFTP_PASSWORD_OPT,
    sftp_known_hosts: Path | None = SFTP_KNOWN_HOSTS_OPT,
    sftp_key: Path | None = SFTP_KEY_OPT,
    s3_endpoint_url: str | None = S3_ENDPOINT_OPT,
    s3_region: str | None = S3_REGION_OPT,
    retries: int = RETRIES_OPT,
    exclude: list[str] = EXCLUDE_OPT,
) -> None:
    """Compare source and target; print every difference; exit 1 if there is any.

    Give the same --exclude patterns as the transfer.

    Example: rehost files verify /srv/app/uploads /mnt/new/uploads --content
    """
    remote = _remote_options(sftp_password_file, sftp_known_hosts, sftp_key, s3_endpoint_url,
                             s3_region, retries)  # fmt: skip
    rep = verify(src, dst, content=content, owners=_owner_map(owners, map_user, map_group),
                 state_dir=state, remote=remote,
                 case_insensitive=True if case_insensitive_target else None,
                 exclude=tuple(exclude))  # fmt: skip
    if json_out:
        print_json(rep.to_json())
    else:
        _render_verify(rep)
    if not rep.ok:
        raise typer.Exit(1)
