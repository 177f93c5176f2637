"""The profile file (YAML): every part optional, inference fills the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rehost.errors import ProfileError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VersionSource(_Strict):
    """Where the application's schema version lives."""

    table: str | None = None
    column: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one(self) -> VersionSource:
        if bool(self.table) == bool(self.query):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


class EntityOverride(_Strict):
    """Overrides for one table."""

    key: list[str] | None = None
    owner: str | None = None
    merge: Literal["replace", "union"] | None = None
    secrets: list[str] | None = None
    layout: Literal["auto", "files", "lines"] = "auto"
    # Not an owned child even if a foreign key cascades.
    owned: bool | None = None


class SecretsConfig(_Strict):
    cipher: str = "plaintext"
    source_key: str | None = None
    target_key: str | None = None


class Profile(_Strict):
    version: VersionSource | None = None
    exclude: list[str] = Field(default_factory=list)
    entities: dict[str, EntityOverride] = Field(default_factory=dict)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    manual_steps: list[str] = Field(default_factory=list)


def parse_profile(text: str, origin: str = "profile") -> Profile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{origin} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"{origin} must be a mapping (version, exclude, entities, …).")
    entities = data.get("entities")
    if isinstance(entities, dict):
        # `steps: {}` and `steps:` (null) both mean "infer everything".
        data["entities"] = {k: (v if v is not None else {}) for k, v in entities.items()}
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}: {err['msg']}")
        raise ProfileError(f"{origin} is not a valid profile: " + "; ".join(problems)) from None


def load_profile(path: Path | str | None) -> Profile:
    if path is None:
        return Profile()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"Cannot read profile {p}: {exc.strerror}.") from None
    return parse_profile(text, origin=f"Profile {p}")
