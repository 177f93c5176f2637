"""Views, triggers and routines in a clone: the pure parts (DEFINER, order, retries, plan)."""

from __future__ import annotations

import pytest

from rehost.clone.objects import (
    SrcObject,
    creation_order,
    mentions,
    parse_skip,
    retry_all,
    strip_definer,
)
from rehost.clone.plan import plan_clone


def obj(kind: str, name: str, table: str | None = None, sql: str = "") -> SrcObject:
    return SrcObject(kind, name, (sql or f"CREATE {kind} {name}",), f"DROP {kind} {name}", table)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER "
            "VIEW `v` AS select `a`.`n` AS `n` from `a`",
            "CREATE ALGORITHM=UNDEFINED VIEW `v` AS select `a`.`n` AS `n` from `a`",
        ),
        (
            "CREATE DEFINER=`app`@`%` SQL SECURITY INVOKER VIEW `v` AS select 1 AS `1`",
            "CREATE SQL SECURITY INVOKER VIEW `v` AS select 1 AS `1`",
        ),
        (
            "CREATE DEFINER=`root`@`127.0.0.1` trigger ta before insert on a for each row "
            "set new.n = 'DEFINER=`x`@`y`'",
            "CREATE trigger ta before insert on a for each row set new.n = 'DEFINER=`x`@`y`'",
        ),
        (
            "CREATE DEFINER='we''ird'@'h' PROCEDURE `p`()\nselect 1",
            "CREATE PROCEDURE `p`()\nselect 1",
        ),
        (
            "CREATE DEFINER=CURRENT_USER EVENT `e` ON SCHEDULE EVERY 1 DAY DO delete from a",
            "CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO delete from a",
        ),
        ("CREATE VIEW va AS SELECT n FROM a", "CREATE VIEW va AS SELECT n FROM a"),
        (
            "CREATE DEFINER=`event`@`%` TRIGGER t BEFORE INSERT ON a FOR EACH ROW SET @x = 1",
            "CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW SET @x = 1",
        ),
    ],
)
def test_strip_definer_touches_only_the_head(given, expected):
    assert strip_definer(given) == expected


def test_parse_skip():
    assert parse_skip(["views, triggers"]) == {"views", "triggers"}
    assert parse_skip(["all"]) == {"views", "triggers", "routines", "sequences"}
    assert parse_skip([]) == set()
    with pytest.raises(ValueError, match="tables"):
        parse_skip(["views", "tables"])


def test_creation_order_puts_what_others_use_first():
    given = [
        obj("trigger", "t", "a"),
        obj("event", "e"),
        obj("view", "v2"),
        obj("materialized view", "m"),
        obj("function", "f()"),
        obj("view", "v1"),
        obj("sequence", "s"),
    ]
    names = [o.name for o in creation_order(given)]
    assert names == ["s", "f()", "v2", "v1", "m", "t", "e"]


def test_retry_all_creates_a_view_on_a_view_whatever_the_order():
    made: list[str] = []
    needs = {"top": "middle", "middle": "base", "base": None, "orphan": "gone"}

    def create(o: SrcObject) -> str | None:
        wanted = needs[o.name]
        if wanted is not None and wanted not in made:
            return f"relation {wanted} does not exist"
        made.append(o.name)
        return None

    failed = retry_all([obj("view", n) for n in ("top", "middle", "orphan", "base")], create)
    assert made == ["base", "middle", "top"]
    assert {o.name: m for o, m in failed.items()} == {"orphan": "relation gone does not exist"}


def test_mentions_finds_whole_names_only():
    sql = 'CREATE VIEW v AS SELECT * FROM "tag" JOIN tags_extra USING (id)'
    assert mentions(sql, {"tag", "tags", "extra", "v2"}) == ["tag"]
    assert mentions("select `Item`.x from `Item`", {"item"}) == ["item"]


def test_plan_refuses_objects_across_engines_unless_skipped():
    objects = [obj("view", "v"), obj("trigger", "t", "a"), obj("function", "f()")]
    plan = plan_clone({}, "sqlite", "postgresql", objects=objects)
    assert [(f.code, f.severity, f.subject) for f in plan.errors] == [
        ("clone-object-engine", "error", "view v"),
        ("clone-object-engine", "error", "trigger t on a"),
        ("clone-object-engine", "error", "function f()"),
    ]
    assert "--skip-objects views" in plan.errors[0].fix
    assert plan.objects == []

    plan = plan_clone({}, "sqlite", "postgresql", objects=objects, skip={"views", "triggers"})
    assert [f.subject for f in plan.errors] == ["function f()"]
    skipped = [f for f in plan.findings if f.code == "clone-object-skipped"]
    assert [(f.severity, f.subject) for f in skipped] == [
        ("warning", "view v"),
        ("warning", "trigger t on a"),
    ]
    assert "recreate by hand" in skipped[0].message
    assert [o.name for o in plan.not_cloned] == ["v", "t"]


def test_plan_same_engine_keeps_objects_and_leaves_triggers_with_their_table():
    objects = [obj("view", "v"), obj("trigger", "t", "gone"), obj("trigger", "u", "kept")]
    plan = plan_clone({}, "mysql", "mysql", objects=objects, left_out={"gone"})
    assert [o.name for o in plan.objects] == ["v", "u"]
    assert [(f.code, f.severity, f.subject) for f in plan.findings] == [
        ("clone-object-outside", "info", "trigger t on gone")
    ]
    plan = plan_clone({}, "mysql", "mysql", objects=objects, skip={"triggers"})
    assert [o.name for o in plan.objects] == ["v"]
    assert [o.name for o in plan.not_cloned] == ["t", "u"]


def test_plan_refuses_an_object_whose_definition_the_source_hides():
    hidden = SrcObject("procedure", "p", (), "DROP PROCEDURE p")
    plan = plan_clone({}, "mysql", "mysql", objects=[hidden])
    assert [(f.code, f.subject) for f in plan.errors] == [
        ("clone-object-unreadable", "procedure p")
    ]
    assert "--skip-objects routines" in plan.errors[0].fix
    plan = plan_clone({}, "mysql", "mysql", objects=[hidden], skip={"routines"})
    assert plan.errors == [] and plan.not_cloned == [hidden]
