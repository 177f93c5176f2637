"""Natural keys that repeat in the data."""

from __future__ import annotations

from collections.abc import Iterator

from rehost.db.rows import Sql
from rehost.profile.resolve import Entity, Model


def repeated_keys(
    sql: Sql, model: Model, origins: set[str] | None
) -> Iterator[tuple[str, Entity, int, str]]:
    """(table, entity, how many key values repeat, up to three examples) for every
    entity type whose key came from one of ``origins`` (None: any) and is not unique."""
    for table in model.order:
        ent = model.entities[table]
        if not ent.key or (origins is not None and ent.key_origin not in origins):
            continue
        cols = sql.cols(ent.key)
        rows = sql.execute(
            f"SELECT {cols}, COUNT(*) FROM {sql.q(table)} GROUP BY {cols} HAVING COUNT(*) > 1"
        ).fetchall()
        if rows:
            examples = ", ".join(
                "(" + ", ".join(repr(v) for v in r[:-1]) + f") ×{r[-1]}" for r in rows[:3]
            )
            yield table, ent, len(rows), examples
