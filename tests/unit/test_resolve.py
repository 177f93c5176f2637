"""Profile files and inference: reflected SQLite schema + profile → model."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from rehost.checks.findings import Finding
from rehost.db.schema import Schema, reflect
from rehost.errors import ProfileError
from rehost.profile.model import EntityOverride, Profile, load_profile, parse_profile
from rehost.profile.resolve import VERSION_TABLES, Model, resolve

_counter = itertools.count()


_schemas: dict[str, Schema] = {}


def build(tmp_path: Path, ddl: str, profile: str = "") -> Model:
    """Create the schema in a fresh SQLite file, reflect it and resolve it.

    ON DELETE actions are written as table constraints: that is what every
    SQLAlchemy version reads back on SQLite.

    Reflection is cached per DDL text: resolve() is pure, so profiles can be
    tried against one reflected schema."""
    schema = _schemas.get(ddl)
    if schema is None:
        path = tmp_path / f"db{next(_counter)}.sqlite"
        conn = sqlite3.connect(path)
        conn.executescript(f"BEGIN;{ddl};COMMIT;")
        conn.close()
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            schema = _schemas[ddl] = reflect(engine)
        finally:
            engine.dispose()
    return resolve(schema, parse_profile(profile))


def findings(model: Model, code: str) -> list[Finding]:
    return [f for f in model.findings if f.code == code]


APP = """
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    country_code TEXT REFERENCES countries(code)
);
CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT);
CREATE TABLE steps (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    name TEXT,
    UNIQUE (project_id, position),
    FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE
);
CREATE TABLE step_args (
    id INTEGER PRIMARY KEY,
    step_id INTEGER NOT NULL,
    value TEXT,
    FOREIGN KEY (step_id) REFERENCES steps(id) ON DELETE CASCADE
);
CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE, password TEXT);
CREATE TABLE teams (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE team_members (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL REFERENCES teams(id),
    user_id INTEGER NOT NULL,
    role TEXT,
    FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at TEXT, what TEXT);
CREATE TABLE alembic_version (version_num TEXT PRIMARY KEY);
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Model:
    return build(tmp_path_factory.mktemp("app"), APP)


# ------------------------------------------------------------------ keys


def test_unique_not_null_column_is_the_key(app: Model) -> None:
    p = app.entities["projects"]
    assert p.key == ("name",)
    assert p.key_origin == "unique"
    assert p.surrogate == "id"
    assert app.entities["users"].key == ("login",)


def test_unique_pair_through_a_reference_is_the_key(app: Model) -> None:
    s = app.entities["steps"]
    assert s.key == ("project_id", "position")
    assert s.key_origin == "unique"


def test_non_surrogate_primary_key_is_the_key(app: Model) -> None:
    c = app.entities["countries"]
    assert c.surrogate is None
    assert c.key == ("code",)
    assert c.key_origin == "primary key"


def test_composite_integer_primary_key_is_the_key(tmp_path: Path) -> None:
    m = build(
        tmp_path,
        "CREATE TABLE pairs (a INTEGER NOT NULL, b INTEGER NOT NULL, note TEXT, "
        "PRIMARY KEY (a, b));",
    )
    e = m.entities["pairs"]
    assert e.surrogate is None
    assert (e.key, e.key_origin) == (("a", "b"), "primary key")


def test_nullable_unique_is_not_a_key(tmp_path: Path) -> None:
    m = build(tmp_path, "CREATE TABLE tags (id INTEGER PRIMARY KEY, slug TEXT UNIQUE);")
    assert m.entities["tags"].key is None
    assert m.entities["tags"].key_origin == "none"
    [f] = findings(m, "NO_NATURAL_KEY")
    assert (f.severity, f.subject) == ("warning", "tags")
    assert "entities: {tags: {key:" in f.fix


def test_shortest_then_leftmost_unique_wins(tmp_path: Path) -> None:
    m = build(
        tmp_path,
        """
        CREATE TABLE t (
            id INTEGER PRIMARY KEY,
            a TEXT NOT NULL, b TEXT NOT NULL, c TEXT NOT NULL, d TEXT NOT NULL,
            UNIQUE (a, b), UNIQUE (d), UNIQUE (c)
        );
        """,
    )
    assert m.entities["t"].key == ("c",)


def test_unique_index_counts_like_a_unique_constraint(tmp_path: Path) -> None:
    m = build(
        tmp_path,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT NOT NULL);"
        "CREATE UNIQUE INDEX t_code ON t (code);",
    )
    assert m.entities["t"].key == ("code",)


def test_a_unique_constraint_holding_the_surrogate_id_is_not_a_natural_key(
    tmp_path: Path,
) -> None:
    m = build(
        tmp_path,
        "CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, UNIQUE (id, name));",
    )
    assert m.entities["t"].key is None or "id" not in m.entities["t"].key


def test_keyless_owned_table_is_only_an_info(app: Model) -> None:
    assert app.entities["step_args"].key is None
    [f] = [f for f in findings(app, "OWNED_WITHOUT_KEY") if f.subject == "step_args"]
    assert f.severity == "info"
    assert "step_args" not in {f.subject for f in findings(app, "NO_NATURAL_KEY")}


def test_keyless_root_tables_get_a_no_natural_key_warning(app: Model) -> None:
    keyless = {f.subject for f in findings(app, "NO_NATURAL_KEY")}
    assert keyless == {"audit_log"}  # team_members is owned: OWNED_WITHOUT_KEY
    assert all(f.severity == "warning" for f in findings(app, "NO_NATURAL_KEY"))


def test_table_without_primary_key(tmp_path: Path) -> None:
    m = build(tmp_path, "CREATE TABLE loose (a TEXT, b TEXT);")
    assert m.entities["loose"].pk == ()
    assert {f.code for f in m.findings if f.subject == "loose"} == {
        "NO_NATURAL_KEY",
        "NO_PRIMARY_KEY",
    }


# -------------------------------------------------------- references, owners


def test_references_remap_ids_but_not_natural_columns(app: Model) -> None:
    p = app.entities["projects"]
    ref = p.refs["country_code"]
    assert (ref.table, ref.ref_column, ref.nullable, ref.remap) == (
        "countries",
        "code",
        True,
        False,
    )
    s = app.entities["steps"].refs["project_id"]
    assert (s.table, s.ref_column, s.nullable, s.remap) == ("projects", "id", False, True)


def test_first_cascading_reference_is_the_owner(app: Model) -> None:
    assert app.entities["steps"].owner == "project_id"
    assert app.entities["steps"].owner_table == "projects"
    assert app.entities["step_args"].owner == "step_id"
    # team_members cascades from users only (not from teams)
    assert app.entities["team_members"].owner == "user_id"
    assert app.entities["projects"].children == ("steps",)
    assert app.entities["users"].children == ("team_members",)
    assert app.entities["steps"].fields == ("position", "name")  # no ID, no owner
    owned = {f.subject for f in findings(app, "OWNED")}
    assert owned == {"steps", "step_args", "team_members"}


def test_roots_order_and_paths(app: Model) -> None:
    assert app.roots() == [t for t in app.order if app.entities[t].owner is None]
    assert set(app.roots()) == {"audit_log", "countries", "projects", "teams", "users"}
    assert app.order.index("countries") < app.order.index("projects")
    assert app.order.index("projects") < app.order.index("steps") < app.order.index("step_args")
    assert app.descendants("projects") == ["steps", "step_args"]
    assert app.path_from_root("step_args") == ["projects", "steps", "step_args"]
    assert app.root_of("step_args") == "projects"


def test_owner_is_the_first_cascade_in_column_order(tmp_path: Path) -> None:
    m = build(
        tmp_path,
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE b (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE link (
            id INTEGER PRIMARY KEY,
            b_id INTEGER NOT NULL,
            a_id INTEGER NOT NULL,
            FOREIGN KEY (b_id) REFERENCES b(id) ON DELETE CASCADE,
            FOREIGN KEY (a_id) REFERENCES a(id) ON DELETE CASCADE
        );
        """,
    )
    assert m.entities["link"].owner == "b_id"


def test_self_reference_and_set_null_do_not_own(tmp_path: Path) -> None:
    m = build(
        tmp_path,
        """
        CREATE TABLE folders (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            parent_id INTEGER,
            keeper_id INTEGER,
            FOREIGN KEY (parent_id) REFERENCES folders(id) ON DELETE CASCADE,
            FOREIGN KEY (keeper_id) REFERENCES people(id) ON DELETE SET NULL
        );
        CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        """,
    )
    f = m.entities["folders"]
    assert f.owner is None
    assert set(f.refs) == {"parent_id", "keeper_id"}
    assert (f.refs["parent_id"].table, f.refs["parent_id"].remap) == ("folders", True)
    assert m.entities["people"].children == ()


def test_cascade_to_a_natural_key_column_does_not_own(tmp_path: Path) -> None:
    m = build(
        tmp_path,
        """
        CREATE TABLE countries (code TEXT PRIMARY KEY);
        CREATE TABLE cities (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            country TEXT NOT NULL,
            FOREIGN KEY (country) REFERENCES countries(code) ON DELETE CASCADE
        );
        """,
    )
    assert m.entities["cities"].owner is None  # an owner must be another table's ID


def test_cycles_of_required_references_are_errors(tmp_path: Path) -> None:
    m = build(
        tmp_path,
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                        b_id INTEGER NOT NULL REFERENCES b(id));
        CREATE TABLE b (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                        a_id INTEGER NOT NULL REFERENCES a(id));
        CREATE TABLE c (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                        d_id INTEGER REFERENCES d(id));
        CREATE TABLE d (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                        c_id INTEGER NOT NULL REFERENCES c(id));
        """,
    )
    [cycle] = findings(m, "UNBREAKABLE_CYCLE")
    assert cycle.severity == "error" and cycle.subject == "a → b"
    assert m.deferred == frozenset({("c", "d_id")})
    [deferred] = findings(m, "DEFERRED_REFERENCE")
    assert deferred.subject == "c.d_id"


# --------------------------------------------------------- secrets, versions


@pytest.mark.parametrize(
    ("column", "secret"),
    [
        ("password", True),
        ("PASSWORD", True),
        ("db_passwd", True),
        ("pwd", True),
        ("api_key", True),
        ("apikey", True),
        ("private_key", True),
        ("access_token", True),
        ("token_hash", True),
        ("client_secret", True),
        ("credentials", True),
        ("credential", True),
        ("secret", True),
        ("auth_key", True),
        ("tokens", False),
        ("passwordless", False),
        ("keyboard", False),
        ("secretary", False),
        ("description", False),
        ("password_hint_id", True),
    ],
)
def test_secret_columns_are_found_by_name(tmp_path: Path, column: str, secret: bool) -> None:
    m = build(tmp_path, f"CREATE TABLE t (id INTEGER PRIMARY KEY, {column} TEXT);")
    assert m.entities["t"].secrets == ({column: "plaintext"} if secret else {})


def test_only_text_and_bytes_columns_are_secret(tmp_path: Path) -> None:
    m = build(
        tmp_path,
        """
        CREATE TABLE tokens (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
        CREATE TABLE t (
            id INTEGER PRIMARY KEY,
            password_changed_at TIMESTAMP,
            token_count INTEGER,
            token_id INTEGER REFERENCES tokens(id),
            api_key BLOB,
            password VARCHAR(100)
        );
        """,
    )
    assert m.entities["t"].secrets == {"api_key": "plaintext", "password": "plaintext"}
    [f] = findings(m, "SECRET_COLUMNS")
    assert f.subject == "t" and "api_key, password" in f.message


@pytest.mark.parametrize("version_table", VERSION_TABLES)
def test_version_tables_are_excluded(tmp_path: Path, version_table: str) -> None:
    m = build(
        tmp_path,
        f'CREATE TABLE "{version_table}" (id INTEGER PRIMARY KEY, name TEXT);'
        "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
    )
    assert set(m.entities) == {"things"}
    assert m.excluded == (version_table,)
    assert version_table not in m.order


def test_app_model_excludes_alembic_version(app: Model) -> None:
    assert "alembic_version" not in app.entities
    assert app.excluded == ("alembic_version",)


# ------------------------------------------------------------ profile overrides


def test_profile_key_through_a_reference(tmp_path: Path) -> None:
    m = build(tmp_path, APP, "entities:\n  steps: {key: [project_id, name]}\n")
    s = m.entities["steps"]
    assert (s.key, s.key_origin) == (("project_id", "name"), "profile")
    [f] = findings(m, "NULLABLE_KEY")  # name may be NULL
    assert f.subject == "steps" and "name" in f.message


def test_profile_key_on_a_keyless_table_silences_the_warning(tmp_path: Path) -> None:
    m = build(tmp_path, APP, "entities:\n  audit_log: {key: [at, what]}\n")
    assert m.entities["audit_log"].key == ("at", "what")
    assert "audit_log" not in {f.subject for f in findings(m, "NO_NATURAL_KEY")}


def test_profile_owner_and_union_merge(tmp_path: Path) -> None:
    m = build(tmp_path, APP, "entities:\n  team_members: {owner: team_id, merge: union}\n")
    tm = m.entities["team_members"]
    assert (tm.owner, tm.owner_table, tm.merge) == ("team_id", "teams", "union")
    assert m.entities["teams"].children == ("team_members",)
    assert m.entities["users"].children == ()
    [f] = [f for f in findings(m, "OWNED") if f.subject == "team_members"]
    assert "merged (union)" in f.message


def test_owned_false_keeps_a_cascading_table_a_root(tmp_path: Path) -> None:
    m = build(tmp_path, APP, "entities:\n  steps: {owned: false}\n")
    assert m.entities["steps"].owner is None
    assert m.entities["projects"].children == ()
    assert "steps" in m.roots()
    assert m.entities["step_args"].owner_table == "steps"


def test_union_merge_needs_an_owner(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="merge: union' on table teams, which has no owner"):
        build(tmp_path, APP, "entities:\n  teams: {merge: union}\n")


def test_owner_must_be_a_reference_to_an_id(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"projects\.country_code .* not a foreign key"):
        build(tmp_path, APP, "entities:\n  projects: {owner: country_code}\n")
    with pytest.raises(ProfileError, match=r"steps\.position .* not a foreign key"):
        build(tmp_path, APP, "entities:\n  steps: {owner: position}\n")


def test_ownership_loops_are_refused(tmp_path: Path) -> None:
    ddl = """
    CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER,
                    FOREIGN KEY (b_id) REFERENCES b(id) ON DELETE CASCADE);
    CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER,
                    FOREIGN KEY (a_id) REFERENCES a(id) ON DELETE CASCADE);
    """
    with pytest.raises(ProfileError, match="Ownership loops"):
        build(tmp_path, ddl)
    m = build(tmp_path, ddl, "entities:\n  a: {owned: false}\n")
    assert m.entities["a"].owner is None and m.entities["b"].owner == "a_id"


def test_secrets_list_replaces_inference(tmp_path: Path) -> None:
    m = build(tmp_path, APP, "entities:\n  users: {secrets: []}\n")
    assert m.entities["users"].secrets == {}
    assert findings(m, "SECRET_COLUMNS") == []
    m = build(tmp_path, APP, "entities:\n  projects: {secrets: [description]}\n")
    assert m.entities["projects"].secrets == {"description": "profile"}
    assert m.entities["users"].secrets == {"password": "plaintext"}


def test_exclude_drops_a_table_and_flags_references_to_it(tmp_path: Path) -> None:
    m = build(tmp_path, APP, "exclude: [countries, audit_log]\n")
    assert "countries" not in m.entities and "audit_log" not in m.entities
    assert m.excluded == ("alembic_version", "audit_log", "countries")
    assert "country_code" not in m.entities["projects"].refs
    [f] = findings(m, "REFERENCE_TO_EXCLUDED")
    assert (f.severity, f.subject) == ("warning", "projects.country_code")  # nullable
    m = build(tmp_path, APP, "exclude: [projects]\n")
    [f] = findings(m, "REFERENCE_TO_EXCLUDED")
    assert (f.severity, f.subject) == ("error", "steps.project_id")  # NOT NULL


def test_layout_override(tmp_path: Path) -> None:
    m = build(tmp_path, APP, "entities:\n  audit_log: {layout: lines}\n")
    assert m.entities["audit_log"].layout == "lines"
    assert m.entities["projects"].layout == "auto"


# ------------------------------------------------- profiles naming what is not there


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("exclude: [audit]\n", "excludes table 'audit', which does not exist"),
        ("entities:\n  project: {key: [name]}\n", "table 'project' under 'entities'"),
        (
            "entities:\n  projects: {key: [title]}\n",
            "key for table 'projects' names column 'title'",
        ),
        (
            "entities:\n  steps: {owner: proj_id}\n",
            "owner for table 'steps' names column 'proj_id'",
        ),
        ("entities:\n  users: {secrets: [pw]}\n", "secrets for table 'users' names column 'pw'"),
        (
            "exclude: [teams]\nentities:\n  teams: {key: [name]}\n",
            "'teams' is both excluded and described",
        ),
    ],
)
def test_profile_naming_what_does_not_exist_is_an_error(
    tmp_path: Path, profile: str, message: str
) -> None:
    with pytest.raises(ProfileError, match=message):
        build(tmp_path, APP, profile)


def test_unknown_column_error_lists_the_columns(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as err:
        build(tmp_path, APP, "entities:\n  users: {key: [email]}\n")
    assert "Columns of users: id, login, password" in str(err.value)


# ------------------------------------------------------------ the profile file


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("entitys: {}\n", "entitys: Extra inputs are not permitted"),
        ("entities:\n  projects: {kye: [name]}\n", "entities.projects.kye: Extra inputs"),
        ("secrets: {cipher: fernet, key: x}\n", "secrets.key: Extra inputs"),
        ("version: {table: t, query: 'SELECT 1'}\n", "exactly one of 'table' or 'query'"),
        ("version: {column: v}\n", "exactly one of 'table' or 'query'"),
        ("entities:\n  steps: {merge: append}\n", "entities.steps.merge"),
        ("entities:\n  steps: {layout: csv}\n", "entities.steps.layout"),
        ("exclude: audit_log\n", "exclude"),
    ],
)
def test_invalid_profiles_are_refused_with_the_field_named(text: str, where: str) -> None:
    with pytest.raises(ProfileError, match="not a valid profile") as err:
        parse_profile(text)
    assert where in str(err.value)


def test_profile_must_be_a_yaml_mapping() -> None:
    with pytest.raises(ProfileError, match="must be a mapping"):
        parse_profile("- a\n- b\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        parse_profile("entities: {projects: [\n")


def test_empty_profile_and_empty_entity_entries_mean_infer() -> None:
    assert parse_profile("") == Profile()
    p = parse_profile("entities:\n  steps:\n  projects: {}\n")
    assert p.entities == {"steps": EntityOverride(), "projects": EntityOverride()}
    assert p.secrets.cipher == "plaintext"


def test_full_profile_parses(tmp_path: Path) -> None:
    f = tmp_path / "profile.yaml"
    f.write_text(
        """
version: {table: django_migrations}
exclude: [django_session]
entities:
  steps: {owner: project_id, key: [project_id, position]}
  team_members: {owner: team_id, merge: union}
  connections: {key: [name], secrets: [password]}
secrets:
  cipher: fernet
  source_key: env:SOURCE_APP_KEY
  target_key: env:TARGET_APP_KEY
manual_steps:
  - Regenerate tokens.
""",
        encoding="utf-8",
    )
    p = load_profile(f)
    assert p.version is not None and p.version.table == "django_migrations"
    assert p.exclude == ["django_session"]
    assert p.entities["steps"].key == ["project_id", "position"]
    assert p.entities["team_members"].merge == "union"
    assert p.entities["connections"].secrets == ["password"]
    assert p.secrets.source_key == "env:SOURCE_APP_KEY"
    assert p.manual_steps == ["Regenerate tokens."]


def test_load_profile(tmp_path: Path) -> None:
    assert load_profile(None) == Profile()
    with pytest.raises(ProfileError, match=r"Cannot read profile .*nope\.yaml"):
        load_profile(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("exclude: [a]\nbogus: 1\n")
    with pytest.raises(ProfileError, match=r"Profile .*bad\.yaml is not a valid profile: bogus"):
        load_profile(bad)


# ------------------------------------------------------------ the model as JSON


def test_model_json_round_trip(app: Model) -> None:
    data = app.to_json()
    again = Model.from_json(data)
    assert again.to_json() == data
    assert again.entities == app.entities
    assert again.order == app.order
    assert sorted(data["entities"]) == list(data["entities"])
    assert data["entities"]["steps"]["owner"] == "project_id"
    assert data["entities"]["steps"]["references"]["project_id"]["remap"] is True
