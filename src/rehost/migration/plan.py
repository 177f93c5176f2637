"""The plan file (`rehost.yaml`): servers, what moves where and how, options.

Errors name the line and the field: pydantic's error locations are mapped back
to the YAML nodes they came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal, TypedDict, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rehost.errors import RehostError, UsageError

PLAN_FILE = "rehost.yaml"
T = TypeVar("T")


class PlanError(RehostError):
    """The plan file is missing, not YAML, or not a valid plan."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Database(_Strict):
    """A database on a server: a SQLAlchemy URL (``env:VAR`` reads it from the environment)."""

    url: str


class Share(_Strict):
    """A file share: a local path (relative to the plan file) or an sftp:// or s3:// URL,
    with what it takes to reach a remote one (secrets as ``env:VAR`` or ``file:PATH``)."""

    url: str
    sftp_password: str | None = Field(default=None, pattern=r"^(env|file):.+")
    sftp_known_hosts: str | None = None
    sftp_key: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None


class Server(_Strict):
    databases: dict[str, Database] = Field(default_factory=dict)
    shares: dict[str, Share] = Field(default_factory=dict)


def _parsed(parse: Callable[[T], object], value: T, option: str) -> T:
    """``value``, once ``parse`` (the command line's own parser) accepts it; its message
    (without the option's name, which the plan error replaces with the field) if not."""
    try:
        parse(value)
    except (UsageError, ValueError) as exc:
        raise ValueError(str(exc).removeprefix(f"{option} ")) from None
    return value


class CloneOptions(TypedDict):
    exclude: list[str]
    map_types: list[str]
    skip_objects: list[str]


class DatabaseMove(_Strict):
    """One source database into one target database."""

    from_: str = Field(alias="from")
    to: str
    method: Literal["bundle", "clone"] = "bundle"
    # bundle method
    only: list[str] = Field(default_factory=list)
    profile: str | None = None
    on_conflict: Literal["skip", "overwrite"] = "skip"
    # keep a hash of every record written in the target's rehost_ledger table, and stop
    # a later import that would overwrite records changed in the target since
    ledger: bool = True
    # clone method
    exclude: list[str] = Field(default_factory=list)
    # SRC=TARGET type choices, as 'rehost clone --map-type' takes them
    map_type: list[str] = Field(default_factory=list)
    # views, triggers, routines, sequences or all: left out, as 'rehost clone --skip-objects'
    skip_objects: list[str] = Field(default_factory=list)

    @field_validator("map_type")
    @classmethod
    def _map_types(cls, items: list[str]) -> list[str]:
        from rehost.clone.types import parse_overrides

        return _parsed(parse_overrides, items, "--map-type")

    @field_validator("skip_objects")
    @classmethod
    def _skip(cls, items: list[str]) -> list[str]:
        from rehost.clone.objects import parse_skip

        return _parsed(parse_skip, items, "--skip-objects")

    @property
    def clone_options(self) -> CloneOptions:
        """This move's choices as ``rehost.clone.clone`` and ``prepare`` take them."""
        return {
            "exclude": self.exclude,
            "map_types": self.map_type,
            "skip_objects": self.skip_objects,
        }

    @property
    def name(self) -> str:
        return f"{self.from_}>{self.to}"


class ShareMove(_Strict):
    """One source share into one target share."""

    from_: str = Field(alias="from")
    to: str
    checksum: bool = False
    verify_content: bool = False
    owners: Literal["name", "numeric", "none"] = "name"
    # --exclude patterns (rehost.files.exclude), for the transfer and its verification
    exclude: list[str] = Field(default_factory=list)
    # --bwlimit: at most this rate (500K, 10M …) for the transfer
    bwlimit: str | None = None

    @field_validator("bwlimit")
    @classmethod
    def _rate(cls, rate: str | None) -> str | None:
        from rehost.files.throttle import parse_rate

        return rate if rate is None else _parsed(parse_rate, rate, "--bwlimit")

    @field_validator("exclude")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        from rehost.files.exclude import Excludes

        return _parsed(Excludes, patterns, "--exclude")

    @property
    def name(self) -> str:
        return f"{self.from_}>{self.to}"


class Options(_Strict):
    # Where the bundle password is: env:VAR or file:PATH (never the password itself).
    password: str | None = None
    ignore_version_check: bool = False
    state_dir: str = ".rehost"
    # The state store: by default state.db in state_dir; or a PostgreSQL URL (env:VAR
    # reads it from the environment) that a team shares.
    state: str | None = None


class Hook(_Strict):
    """A shell command run in the plan's folder; its output goes to the log (scrubbed).

    ``undo`` is run by ``rehost cutover --rollback`` if ``run`` ran.
    """

    run: str
    undo: str | None = None
    timeout: float = Field(default=300, gt=0)


class ReadOnly(_Strict):
    """A built-in freeze of a source database: PostgreSQL ``default_transaction_read_only``
    (existing sessions are not terminated), SQLite: the file made read-only (chmod a-w),
    MariaDB/MySQL: ``SET GLOBAL read_only = ON`` (the whole server; needs READ_ONLY ADMIN
    or SUPER, whose holders can still write)."""

    builtin: Literal["read_only"]
    database: str


class Cutover(_Strict):
    freeze: list[ReadOnly | Hook] = Field(default_factory=list)
    switch: list[Hook] = Field(default_factory=list)


class Plan(_Strict):
    version: Literal[1] = 1
    name: str
    sources: dict[str, Server]
    targets: dict[str, Server]
    databases: list[DatabaseMove] = Field(default_factory=list)
    shares: list[ShareMove] = Field(default_factory=list)
    options: Options = Field(default_factory=Options)
    cutover: Cutover = Field(default_factory=Cutover)


# ------------------------------------------------------------------ loading


def _node_at(root: yaml.Node | None, loc: Sequence[str | int]) -> yaml.Node | None:
    """The deepest YAML node along ``loc`` (a key's own node when the key is last)."""
    node = root
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node = key if i == len(loc) - 1 else value
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _line(root: yaml.Node | None, loc: Sequence[str | int]) -> int:
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else 1


def _field(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _references(plan: Plan) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Names in the mappings that no server defines, as (location, message)."""
    moves: list[tuple[str, int, DatabaseMove | ShareMove]] = [
        *(("databases", i, d) for i, d in enumerate(plan.databases)),
        *(("shares", i, s) for i, s in enumerate(plan.shares)),
    ]
    for kind, i, move in moves:
        for attr, role, servers in (
            ("from", "source", plan.sources),
            ("to", "target", plan.targets),
        ):
            ref = move.from_ if attr == "from" else move.to
            server, _, item = ref.partition(".")
            known = sorted(f"{s}.{n}" for s, srv in servers.items() for n in getattr(srv, kind))
            if server not in servers or item not in getattr(servers[server], kind):
                yield (
                    (kind, i, attr),
                    f"'{ref}' is not a {role} {kind[:-1]}: use SERVER.NAME, one of "
                    f"{', '.join(known) or '(none defined)'}",
                )
        if (
            isinstance(move, DatabaseMove)
            and move.method == "clone"
            and (move.only or move.profile)
        ):
            yield (
                (kind, i, "method"),
                "the clone method copies whole databases: 'only' and 'profile' are for "
                "method: bundle",
            )
        if (
            isinstance(move, DatabaseMove)
            and move.method == "bundle"
            and (move.map_type or move.skip_objects)
        ):
            yield (
                (kind, i, "method"),
                "'map_type' and 'skip_objects' are for method: clone (a bundle carries "
                "records, not types, views or triggers)",
            )


def _cutover_references(plan: Plan) -> Iterator[tuple[tuple[str | int, ...], str]]:
    known = sorted(f"{s}.{n}" for s, srv in plan.sources.items() for n in srv.databases)
    for i, action in enumerate(plan.cutover.freeze):
        if isinstance(action, ReadOnly) and action.database not in known:
            yield (
                ("cutover", "freeze", i, "database"),
                f"'{action.database}' is not a source database: use SERVER.NAME, one of "
                f"{', '.join(known) or '(none defined)'}",
            )


def parse_plan(text: str, origin: str = PLAN_FILE) -> Plan:
    """Validate a plan's text; a PlanError lists every problem with its line and field."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise PlanError(f"{origin} is not valid YAML{where}: {exc}") from None
    if not isinstance(data, dict):
        raise PlanError(f"{origin} must be a mapping with name, sources, targets, … at line 1.")
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"line {_line(root, e['loc'])}: {_field(e['loc'])}: {e['msg']}" for e in exc.errors()
        ]
        raise PlanError(f"{origin} is not a valid plan:\n  " + "\n  ".join(problems)) from None
    problems = [
        f"line {_line(root, loc)}: {_field(loc)}: {msg}"
        for loc, msg in [*_references(plan), *_cutover_references(plan)]
    ]
    if problems:
        raise PlanError(f"{origin} is not a valid plan:\n  " + "\n  ".join(problems))
    return plan


def load_plan(path: Path | str) -> Plan:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(
            f"No plan file at {p}. Write one with 'rehost init', or give --plan FILE."
        ) from None
    except OSError as exc:
        raise PlanError(f"Cannot read the plan file {p}: {exc.strerror}.") from None
    return parse_plan(text, origin=str(p))
