"""A small portable application schema for engine-parametrized tests.

users ⇄ teams form a foreign-key cycle (users.default_team_id, teams.lead_user_id),
users.manager_id is a self-reference, team_members and steps are owned
(ON DELETE CASCADE), credentials.password is a secret column.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("manager_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("default_team_id", sa.Integer, sa.ForeignKey("teams.id", use_alter=True)),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False, unique=True),
    sa.Column("lead_user_id", sa.Integer, sa.ForeignKey("users.id")),
)
team_members = sa.Table(
    "team_members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.UniqueConstraint("team_id", "user_id"),
)
environments = sa.Table(
    "environments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False, unique=True),
    sa.Column("sort_order", sa.Integer, nullable=False),
)
projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("owner_team_id", sa.Integer, sa.ForeignKey("teams.id")),
    sa.Column("budget", sa.Numeric(12, 2)),
)
steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("environment_id", sa.Integer, sa.ForeignKey("environments.id")),
    sa.UniqueConstraint("project_id", "position"),
)
credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False, unique=True),
    sa.Column("login", sa.String(80), nullable=False),
    sa.Column("password", sa.Text),
)
alembic_version = sa.Table(
    "alembic_version",
    metadata,
    sa.Column("version_num", sa.String(32), primary_key=True),
)

T0 = dt.datetime(2024, 3, 1, 9, 30, 0)


def create_schema(url: str, version: str = "abc123") -> sa.Engine:
    engine = sa.create_engine(url)
    # A fresh copy per database: create_all on MariaDB/PostgreSQL marks the
    # use_alter constraint as emitted, and a later SQLite create_all on the
    # same MetaData would then leave users.default_team_id without its FK.
    fresh = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(fresh)
    fresh.create_all(engine)
    with engine.begin() as c:
        c.execute(alembic_version.insert(), [{"version_num": version}])
    return engine


def seed_source(engine: sa.Engine) -> None:
    """Two teams, five users (manager chain, default teams), three projects with steps."""
    with engine.begin() as c:
        c.execute(
            environments.insert(),
            [
                {"id": 1, "name": "Development", "sort_order": 1},
                {"id": 2, "name": "Production", "sort_order": 2},
            ],
        )
        c.execute(
            users.insert(),
            [
                {"id": 1, "username": "alice", "display_name": "Alice A.", "created_at": T0},
                {"id": 2, "username": "bob", "display_name": "Bob B.", "created_at": T0},
                {"id": 3, "username": "carol", "display_name": "Carol C.", "created_at": T0},
                {"id": 4, "username": "dave", "display_name": "Dave D.", "created_at": T0},
                {"id": 5, "username": "erin", "display_name": "Erin É.", "created_at": T0},
            ],
        )
        c.execute(
            teams.insert(),
            [
                {"id": 1, "name": "Platform", "lead_user_id": 1},
                {"id": 2, "name": "Web", "lead_user_id": 2},
            ],
        )
        for uid, mgr, team in [(2, 1, 2), (3, 1, 1), (4, 2, 2), (5, 4, 2), (1, None, 1)]:
            c.execute(
                users.update().where(users.c.id == uid).values(manager_id=mgr, default_team_id=team)
            )
        c.execute(
            team_members.insert(),
            [
                {"team_id": 1, "user_id": 1, "role": "lead"},
                {"team_id": 1, "user_id": 3, "role": "member"},
                {"team_id": 2, "user_id": 2, "role": "lead"},
                {"team_id": 2, "user_id": 4, "role": "member"},
                {"team_id": 2, "user_id": 5, "role": "member"},
            ],
        )
        c.execute(
            projects.insert(),
            [
                {
                    "id": 1,
                    "name": "web-app",
                    "description": "Storefront",
                    "owner_team_id": 2,
                    "budget": "1200.50",
                },
                {
                    "id": 2,
                    "name": "api",
                    "description": "Public API",
                    "owner_team_id": 1,
                    "budget": None,
                },
                {
                    "id": 3,
                    "name": "billing",
                    "description": None,
                    "owner_team_id": 1,
                    "budget": "99.99",
                },
            ],
        )
        c.execute(
            steps.insert(),
            [
                {"project_id": 1, "position": 1, "name": "Build", "environment_id": None},
                {"project_id": 1, "position": 2, "name": "Deploy to dev", "environment_id": 1},
                {"project_id": 1, "position": 3, "name": "Deploy to prod", "environment_id": 2},
                {"project_id": 2, "position": 1, "name": "Build", "environment_id": None},
                {"project_id": 2, "position": 2, "name": "Deploy", "environment_id": 2},
                {"project_id": 3, "position": 1, "name": "Invoice run", "environment_id": 2},
            ],
        )
        c.execute(
            credentials.insert(),
            [
                {"name": "registry", "login": "ci", "password": "s3cr3t-registry-pw"},
                {"name": "smtp", "login": "mailer", "password": "mail-pässword"},
            ],
        )


def seed_target_overlap(engine: sa.Engine) -> None:
    """A target that already has some of the same names under other IDs."""
    with engine.begin() as c:
        c.execute(
            environments.insert(),
            [
                {"id": 10, "name": "Production", "sort_order": 5},
                {"id": 11, "name": "Staging", "sort_order": 4},
            ],
        )
        c.execute(
            users.insert(),
            [
                {"id": 20, "username": "zoe", "display_name": "Zoe Z.", "created_at": T0},
                {"id": 21, "username": "bob", "display_name": "Robert (target)", "created_at": T0},
            ],
        )
        c.execute(teams.insert(), [{"id": 30, "name": "Web", "lead_user_id": 20}])
        c.execute(team_members.insert(), [{"team_id": 30, "user_id": 20, "role": "lead"}])
        c.execute(
            projects.insert(),
            [
                {
                    "id": 40,
                    "name": "api",
                    "description": "Target's API",
                    "owner_team_id": 30,
                    "budget": "5.00",
                }
            ],
        )
        c.execute(
            steps.insert(),
            [
                {"project_id": 40, "position": 1, "name": "Compile", "environment_id": 10},
                {"project_id": 40, "position": 7, "name": "Old step", "environment_id": None},
            ],
        )


def snapshot(url: str) -> dict[str, Any]:
    """Every table's content with IDs replaced by natural keys: equal across servers."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            uname = dict(c.execute(sa.select(users.c.id, users.c.username)).all())
            tname = dict(c.execute(sa.select(teams.c.id, teams.c.name)).all())
            pname = dict(c.execute(sa.select(projects.c.id, projects.c.name)).all())
            ename = dict(c.execute(sa.select(environments.c.id, environments.c.name)).all())
            out: dict[str, Any] = {}
            out["users"] = sorted(
                (
                    r.username,
                    r.display_name,
                    uname.get(r.manager_id),
                    tname.get(r.default_team_id),
                    r.created_at,
                )
                for r in c.execute(sa.select(users))
            )
            out["teams"] = sorted(
                (r.name, uname.get(r.lead_user_id)) for r in c.execute(sa.select(teams))
            )
            out["team_members"] = sorted(
                (tname[r.team_id], uname[r.user_id], r.role)
                for r in c.execute(sa.select(team_members))
            )
            out["environments"] = sorted(
                (r.name, r.sort_order) for r in c.execute(sa.select(environments))
            )
            out["projects"] = sorted(
                (
                    r.name,
                    r.description,
                    tname.get(r.owner_team_id),
                    None if r.budget is None else str(r.budget),
                )
                for r in c.execute(sa.select(projects))
            )
            out["steps"] = sorted(
                (pname[r.project_id], r.position, r.name, ename.get(r.environment_id))
                for r in c.execute(sa.select(steps))
            )
            out["credentials"] = sorted(
                (r.name, r.login, r.password) for r in c.execute(sa.select(credentials))
            )
            return out
    finally:
        engine.dispose()
