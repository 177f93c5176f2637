"""The demo application: a small deployment server (think Octopus Deploy) on SQLite.

`rehost demo` makes two of them: a *source* server and a *target* server that
already holds records with the same names (users ``alice`` and ``bob``, team
``Platform``, environments ``Development`` and ``Production``, project ``api``,
variable set ``API Settings``) under different ids, so that matching by natural
key, rather than by id, is what makes the import right.

The schema has what real applications have:

* a self-reference (``users.manager_id``) and a foreign-key cycle
  (``users.default_team_id`` → ``teams``, ``teams.lead_user_id`` → ``users``);
* owned children (``ON DELETE CASCADE``): a project's ``steps`` and their
  ``step_environments`` (a grandchild), a variable set's ``variables``, a user's
  ``api_keys``, and ``team_members`` (cascading from both ``teams``, declared
  first and so the owner, and ``users``);
* history that is referenced, not owned (``deployments``);
* a migration-tool version table (``alembic_version``) and a table to leave
  behind (``sessions``);
* secrets: sensitive variables keep a Fernet token, made with the server's own
  application key, in ``variables.secret_value``.

Foreign keys are written as table constraints (``FOREIGN KEY (...) REFERENCES
... ON DELETE ...``), not inline after the column: SQLAlchemy's SQLite reflection
reads ``ON DELETE`` only from that form, and lists inline foreign keys last
declared first, which would lose the cascades and make ``user_id`` the owner of
``team_members``.

The content is fixed: the same call gives the same rows, byte for byte,
including the Fernet tokens (see :func:`_encrypt`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ALEMBIC_VERSION = "3f9a1c2b7d10"

SCHEMA = """
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL PRIMARY KEY
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    email TEXT,
    is_admin BOOLEAN NOT NULL DEFAULT 0,
    manager_id INTEGER,
    default_team_id INTEGER,
    created_at TIMESTAMP NOT NULL,
    FOREIGN KEY (manager_id) REFERENCES users (id),
    FOREIGN KEY (default_team_id) REFERENCES teams (id)
);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    lead_user_id INTEGER,
    FOREIGN KEY (lead_user_id) REFERENCES users (id)
);

CREATE TABLE team_members (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    role TEXT NOT NULL DEFAULT 'member',
    UNIQUE (team_id, user_id),
    FOREIGN KEY (team_id) REFERENCES teams (id) ON DELETE CASCADE,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE TABLE environments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    sort_order INTEGER NOT NULL,
    use_guided_failure BOOLEAN NOT NULL DEFAULT 0
);

CREATE TABLE variable_sets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT
);

CREATE TABLE variables (
    id INTEGER PRIMARY KEY,
    variable_set_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    environment_id INTEGER,
    value TEXT,
    is_sensitive BOOLEAN NOT NULL DEFAULT 0,
    secret_value TEXT,
    UNIQUE (variable_set_id, name, scope),
    FOREIGN KEY (variable_set_id) REFERENCES variable_sets (id) ON DELETE CASCADE,
    FOREIGN KEY (environment_id) REFERENCES environments (id)
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    owner_team_id INTEGER,
    variable_set_id INTEGER,
    is_disabled BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    FOREIGN KEY (owner_team_id) REFERENCES teams (id),
    FOREIGN KEY (variable_set_id) REFERENCES variable_sets (id)
);

CREATE TABLE steps (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    action_type TEXT NOT NULL,
    properties JSON,
    UNIQUE (project_id, position),
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE
);

CREATE TABLE step_environments (
    step_id INTEGER NOT NULL,
    environment_id INTEGER NOT NULL,
    PRIMARY KEY (step_id, environment_id),
    FOREIGN KEY (step_id) REFERENCES steps (id) ON DELETE CASCADE,
    FOREIGN KEY (environment_id) REFERENCES environments (id)
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    UNIQUE (user_id, label),
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE TABLE deployments (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    environment_id INTEGER NOT NULL,
    release_version TEXT NOT NULL,
    deployed_by INTEGER,
    deployed_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL,
    UNIQUE (project_id, environment_id, release_version),
    FOREIGN KEY (project_id) REFERENCES projects (id),
    FOREIGN KEY (environment_id) REFERENCES environments (id),
    FOREIGN KEY (deployed_by) REFERENCES users (id)
);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER,
    token TEXT NOT NULL,
    expires_at TIMESTAMP,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
"""

DEMO_PROFILE_YAML = """\
# rehost profile for the demo deployment server.
exclude: [sessions]
entities:
  team_members: {merge: union}
  variables: {secrets: [secret_value]}
secrets:
  cipher: fernet
  source_key: env:DEMO_SOURCE_APP_KEY
  target_key: env:DEMO_TARGET_APP_KEY
manual_steps:
  - Regenerate API keys for imported users; key hashes are migrated but the keys themselves are not known to the new server.
  - Point the build agents at the new server URL.
"""

# Every Fernet token claims to be made at this moment (2024-06-01 00:00:00 UTC).
_TOKEN_TIME = 1_717_200_000

Row = tuple[Any, ...]


def generate_key() -> str:
    """A new application key (a Fernet key, as text)."""
    return Fernet.generate_key().decode()


def _encrypt(app_key: str, plaintext: str, context: str) -> str:
    """A Fernet token for ``plaintext``, the same on every call.

    ``Fernet.encrypt`` takes a random IV and the clock; the demo wants the same
    bytes each time, so the IV is an HMAC of the context and plaintext under the
    key and the time is fixed. The tokens are ordinary Fernet tokens:
    ``Fernet(app_key).decrypt(token)`` reads them. (Only for demo data: a fixed IV
    shows when two values are equal.)
    """
    fernet = Fernet(app_key)
    iv = hmac.new(app_key.encode(), f"{context}\0{plaintext}".encode(), hashlib.sha256).digest()[
        :16
    ]
    return fernet._encrypt_from_parts(plaintext.encode(), _TOKEN_TIME, iv).decode()


def _token_hash(username: str, label: str) -> str:
    """The stored hash of an API key (the key itself is never stored)."""
    return hashlib.sha256(f"API-{username}-{label}-demo".encode()).hexdigest()


def _props(**values: Any) -> str:
    return json.dumps(values, sort_keys=True)


def _insert(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Row]
) -> None:
    marks = ", ".join("?" for _ in columns)
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _build(path: Path, fill: Callable[[sqlite3.Connection], None]) -> None:
    """Create the database at ``path`` (which must not exist) and fill it."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists; the demo database must be a new file.")
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(SCHEMA)
        with conn:
            conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (ALEMBIC_VERSION,))
            fill(conn)
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:  # pragma: no cover - a bug in the data below
                raise RuntimeError(f"demo data breaks foreign keys: {problems}")
    except BaseException:
        conn.close()
        path.unlink(missing_ok=True)
        raise
    conn.close()


USER_COLUMNS = ("id", "username", "display_name", "email", "is_admin", "manager_id", "created_at")
VARIABLE_COLUMNS = (
    "id",
    "variable_set_id",
    "name",
    "scope",
    "environment_id",
    "value",
    "is_sensitive",
    "secret_value",
)
DEPLOYMENT_COLUMNS = (
    "id",
    "project_id",
    "environment_id",
    "release_version",
    "deployed_by",
    "deployed_at",
    "state",
)


def _variables(
    app_key: str,
    set_names: dict[int, str],
    env_ids: dict[str, int],
    rows: Sequence[tuple[int, int, str, str, str, bool]],
) -> list[Row]:
    """Variable rows from (id, set id, name, scope, value, sensitive).

    A sensitive value goes, encrypted, to ``secret_value`` and ``value`` is NULL;
    a plain one stays in ``value``. ``environment_id`` follows the scope.
    """
    out: list[Row] = []
    for vid, set_id, name, scope, text, sensitive in rows:
        env_id = env_ids[scope] if scope else None
        if sensitive:
            token = _encrypt(app_key, text, f"{set_names[set_id]}|{name}|{scope}")
            out.append((vid, set_id, name, scope, env_id, None, 1, token))
        else:
            out.append((vid, set_id, name, scope, env_id, text, 0, None))
    return out


# --------------------------------------------------------------------- source


def _fill_source(conn: sqlite3.Connection, app_key: str) -> None:
    # Users first without their default team (teams do not exist yet): the cycle
    # users.default_team_id -> teams -> teams.lead_user_id -> users is closed below.
    # Managers come before the people they manage (users.manager_id).
    _insert(
        conn,
        "users",
        USER_COLUMNS,
        [
            (1, "alice", "Alice Anderson", "alice@example.com", 1, None, "2023-01-09 09:00:00"),
            (2, "bob", "Bob Baker", "bob@example.com", 0, 1, "2023-01-10 10:15:00"),
            (3, "carol", "Carol Chen", "carol@example.com", 0, 1, "2023-01-16 08:30:00"),
            (4, "dave", "Dave Dubois", "dave@example.com", 0, 2, "2023-02-01 09:05:00"),
            (5, "erin", "Erin Evans", "erin@example.com", 0, 2, "2023-03-13 11:20:00"),
            (6, "frank", "Frank Fischer", "frank@example.com", 0, 3, "2023-04-03 14:00:00"),
            (7, "grace", "Grace Garcia", "grace@example.com", 1, 1, "2023-05-22 09:45:00"),
            (8, "heidi", "Heidi Hansen", None, 0, 7, "2024-02-05 13:10:00"),
        ],
    )
    _insert(
        conn,
        "teams",
        ("id", "name", "description", "lead_user_id"),
        [
            (1, "Platform", "Build agents, infrastructure and the deployment server itself.", 7),
            (2, "Web", "The customer-facing web application.", 2),
            (3, "Data", "Pipelines, the warehouse and reporting.", 3),
        ],
    )
    conn.executemany(
        "UPDATE users SET default_team_id = ? WHERE id = ?",
        [(1, 1), (2, 2), (3, 3), (2, 4), (2, 5), (3, 6), (1, 7), (1, 8)],
    )
    _insert(
        conn,
        "team_members",
        ("id", "team_id", "user_id", "role"),
        [
            (1, 1, 7, "lead"),
            (2, 1, 1, "member"),
            (3, 1, 8, "member"),
            (4, 2, 2, "lead"),
            (5, 2, 4, "member"),
            (6, 2, 5, "member"),
            (7, 2, 1, "viewer"),
            (8, 3, 3, "lead"),
            (9, 3, 6, "member"),
            (10, 3, 8, "viewer"),
        ],
    )
    envs = {"Development": 1, "Test": 2, "Staging": 3, "Production": 4}
    _insert(
        conn,
        "environments",
        ("id", "name", "sort_order", "use_guided_failure"),
        [
            (1, "Development", 1, 0),
            (2, "Test", 2, 0),
            (3, "Staging", 3, 1),
            (4, "Production", 4, 1),
        ],
    )
    set_names = {1: "Web App Settings", 2: "API Settings", 3: "Shared Infrastructure"}
    _insert(
        conn,
        "variable_sets",
        ("id", "name", "description"),
        [
            (1, set_names[1], "Settings for the web front end."),
            (2, set_names[2], "Settings for the public API and its database."),
            (3, set_names[3], "Cloud account and mail relay shared by back-end projects."),
        ],
    )
    _insert(
        conn,
        "variables",
        VARIABLE_COLUMNS,
        _variables(
            app_key,
            set_names,
            envs,
            [
                (1, 1, "SiteUrl", "Development", "https://dev.web.example.com", False),
                (2, 1, "SiteUrl", "Production", "https://www.example.com", False),
                (3, 1, "CdnApiToken", "", "cdn-7f3e9a1b5c2d", True),
                (4, 1, "FeatureFlags", "", '{"new_checkout": true, "dark_mode": false}', False),
                (5, 2, "ApiBaseUrl", "", "https://api.example.com", False),
                (6, 2, "DatabasePassword", "Staging", "stg-Tr0ub4dor&3", True),
                (7, 2, "DatabasePassword", "Production", "prod-Xk9#mQ2v!Lw8", True),
                (8, 2, "LogLevel", "", "Information", False),
                (9, 2, "LogLevel", "Development", "Debug", False),
                (10, 3, "AwsRegion", "", "eu-west-1", False),
                (11, 3, "AwsSecretAccessKey", "", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
                (12, 3, "SmtpPassword", "Production", "smtp-9d8c7b6a", True),
            ],
        ),
    )
    _insert(
        conn,
        "projects",
        (
            "id",
            "name",
            "description",
            "owner_team_id",
            "variable_set_id",
            "is_disabled",
            "created_at",
        ),
        [
            (1, "web-app", "The storefront (React front end).", 2, 1, 0, "2023-02-14 10:00:00"),
            (2, "api", "The public REST API.", 1, 2, 0, "2023-02-20 15:30:00"),
            (
                3,
                "billing",
                "Invoices and payment provider webhooks.",
                1,
                3,
                0,
                "2023-06-05 09:00:00",
            ),
            (
                4,
                "data-pipeline",
                "Nightly loads into the warehouse.",
                3,
                3,
                1,
                "2023-09-18 16:45:00",
            ),
        ],
    )
    pkg = "Octopus.TentaclePackage"
    script = "Octopus.Script"
    _insert(
        conn,
        "steps",
        ("id", "project_id", "position", "name", "action_type", "properties"),
        [
            # web-app
            (
                1,
                1,
                1,
                "Build front end",
                script,
                _props(script="npm ci && npm run build", shell="bash"),
            ),
            (2, 1, 2, "Deploy static site", pkg, _props(package="web-app", target_roles=["web"])),
            (3, 1, 3, "Purge CDN cache", script, _props(script="./purge-cdn.sh #{CdnApiToken}")),
            (
                4,
                1,
                4,
                "Smoke test",
                script,
                _props(script="curl -fsS #{SiteUrl}/health", timeout=60),
            ),
            # api
            (5, 2, 1, "Run database migrations", script, _props(script="alembic upgrade head")),
            (6, 2, 2, "Deploy API package", pkg, _props(package="api", target_roles=["api"])),
            (7, 2, 3, "Warm up caches", script, _props(script="./warmup.sh", retries=3)),
            (
                8,
                2,
                4,
                "Approve production release",
                "Octopus.Manual",
                _props(instructions="Check the error budget.", responsible_team="Platform"),
            ),
            (
                9,
                2,
                5,
                "Switch load balancer",
                script,
                _props(script="./swap-slots.sh", target_roles=["lb"]),
            ),
            # billing
            (
                10,
                3,
                1,
                "Deploy billing service",
                pkg,
                _props(package="billing", target_roles=["billing"]),
            ),
            (11, 3, 2, "Register webhooks", script, _props(script="./register-webhooks.sh")),
            (
                12,
                3,
                3,
                "Notify finance",
                "Octopus.Email",
                _props(
                    subject="Billing #{Octopus.Release.Number} deployed", to="finance@example.com"
                ),
            ),
            # data-pipeline
            (13, 4, 1, "Deploy DAGs", pkg, _props(package="dags", target_roles=["airflow"])),
            (
                14,
                4,
                2,
                "Create warehouse schemas",
                script,
                _props(script="dbt run-operation create_schemas"),
            ),
            (
                15,
                4,
                3,
                "Run dbt models",
                script,
                _props(script="dbt run --target #{Octopus.Environment.Name}"),
            ),
            (16, 4, 4, "Run dbt tests", script, _props(script="dbt test", fail_on_warning=True)),
            (17, 4, 5, "Refresh dashboards", script, _props(script="./refresh-dashboards.sh")),
            (
                18,
                4,
                6,
                "Post to #data",
                "Octopus.Slack",
                _props(channel="#data", message="Pipeline #{Octopus.Release.Number} is live"),
            ),
        ],
    )
    _insert(
        conn,
        "step_environments",
        ("step_id", "environment_id"),
        [
            (3, 3),  # web-app: purge the CDN in Staging and Production only
            (3, 4),
            (8, 4),  # api: manual approval in Production only
            (9, 3),  # api: load balancer swap in Staging and Production
            (9, 4),
            (12, 4),  # billing: tell finance about production deployments
            (17, 3),  # data-pipeline: dashboards exist in Staging and Production
            (17, 4),
        ],
    )
    _insert(
        conn,
        "api_keys",
        ("id", "user_id", "label", "token_hash"),
        [
            (1, 1, "cli", _token_hash("alice", "cli")),
            (2, 2, "ci", _token_hash("bob", "ci")),
            (3, 2, "laptop", _token_hash("bob", "laptop")),
            (4, 3, "airflow", _token_hash("carol", "airflow")),
            (5, 7, "terraform", _token_hash("grace", "terraform")),
        ],
    )
    _insert(
        conn,
        "deployments",
        DEPLOYMENT_COLUMNS,
        [
            (1, 1, 1, "1.4.0", 4, "2024-03-04 10:12:00", "Success"),
            (2, 1, 2, "1.4.0", 4, "2024-03-04 15:40:00", "Success"),
            (3, 1, 3, "1.4.0", 2, "2024-03-05 09:05:00", "Success"),
            (4, 1, 4, "1.4.0", 2, "2024-03-06 18:30:00", "Success"),
            (5, 1, 1, "1.5.0", 5, "2024-03-18 11:00:00", "Success"),
            (6, 1, 2, "1.5.0", 5, "2024-03-18 16:20:00", "Success"),
            (7, 1, 3, "1.5.0", 2, "2024-03-19 10:45:00", "Failed"),
            (8, 2, 1, "2.3.0", 7, "2024-03-01 09:30:00", "Success"),
            (9, 2, 2, "2.3.0", 7, "2024-03-01 14:00:00", "Success"),
            (10, 2, 3, "2.3.0", 1, "2024-03-02 10:10:00", "Success"),
            (11, 2, 4, "2.3.0", 1, "2024-03-04 19:00:00", "Success"),
            (12, 2, 1, "2.4.0", 7, "2024-03-20 08:55:00", "Success"),
            (13, 3, 1, "0.9.1", 1, "2024-03-07 13:15:00", "Success"),
            (14, 3, 2, "0.9.1", 1, "2024-03-08 09:40:00", "Success"),
            (15, 3, 3, "0.9.1", 7, "2024-03-11 17:25:00", "Cancelled"),
            (16, 4, 1, "3.0.0", 6, "2024-02-26 22:00:00", "Success"),
            (17, 4, 2, "3.0.0", 6, "2024-02-27 22:00:00", "Success"),
            (18, 4, 3, "3.0.0", 3, "2024-02-28 22:00:00", "Success"),
            (19, 4, 4, "3.0.0", 3, "2024-03-01 22:00:00", "Success"),
            (20, 4, 1, "3.1.0", None, "2024-03-15 22:00:00", "Success"),
        ],
    )
    _insert(
        conn,
        "sessions",
        ("id", "user_id", "token", "expires_at"),
        [
            (1, 1, "sess-6c1f0e2a9b7d4e31", "2024-03-21 09:00:00"),
            (2, 2, "sess-b83d5a0c2f9e7146", "2024-03-21 12:30:00"),
        ],
    )


def create_source(path: Path, app_key: str) -> None:
    """Create the source server's database at ``path`` (a new file).

    4 projects (web-app, api, billing, data-pipeline), 8 users, teams Platform,
    Web and Data, 4 environments, 3 variable sets whose sensitive variables are
    Fernet-encrypted with ``app_key``, API keys, 20 deployments and 2 sessions.
    """
    _build(path, lambda conn: _fill_source(conn, app_key))


# --------------------------------------------------------------------- target


def _fill_target(conn: sqlite3.Connection, app_key: str) -> None:
    # Same names as the source, other ids: target user 1 is oscar (source: alice),
    # alice is 2 and bob is 3 here.
    _insert(
        conn,
        "users",
        USER_COLUMNS,
        [
            (1, "oscar", "Oscar Ortiz", "oscar@newco.example", 1, None, "2024-01-08 08:00:00"),
            (
                2,
                "alice",
                "Alice Anderson-Wright",
                "alice@newco.example",
                1,
                1,
                "2024-01-08 08:20:00",
            ),
            (3, "bob", "Robert Baker", "bob@newco.example", 0, 2, "2024-01-09 09:00:00"),
            (4, "ivan", "Ivan Ivanov", "ivan@newco.example", 0, 1, "2024-01-15 10:30:00"),
            (5, "judy", "Judy Jones", None, 0, 2, "2024-02-12 11:45:00"),
        ],
    )
    # Team 1 is Security here (source: Platform); Platform is 2 (source: Web).
    _insert(
        conn,
        "teams",
        ("id", "name", "description", "lead_user_id"),
        [
            (1, "Security", "Audits, secrets management and access reviews.", 1),
            (2, "Platform", "Servers, agents and networking.", 2),
        ],
    )
    conn.executemany(
        "UPDATE users SET default_team_id = ? WHERE id = ?",
        [(1, 1), (2, 2), (2, 3), (1, 4), (2, 5)],
    )
    _insert(
        conn,
        "team_members",
        ("id", "team_id", "user_id", "role"),
        [
            (100, 1, 1, "lead"),
            (101, 1, 4, "member"),
            (102, 2, 2, "lead"),
            (103, 2, 3, "member"),
            (104, 2, 5, "member"),
        ],
    )
    # Inserted in another order: Production is 1 here (source: Development).
    envs = {"Production": 1, "Development": 2}
    _insert(
        conn,
        "environments",
        ("id", "name", "sort_order", "use_guided_failure"),
        [(1, "Production", 2, 1), (2, "Development", 1, 0)],
    )
    set_names = {100: "API Settings", 101: "Security Tooling"}
    _insert(
        conn,
        "variable_sets",
        ("id", "name", "description"),
        [
            (100, set_names[100], "API configuration (set up by hand on the new server)."),
            (101, set_names[101], "Credentials for the scanners."),
        ],
    )
    _insert(
        conn,
        "variables",
        VARIABLE_COLUMNS,
        _variables(
            app_key,
            set_names,
            envs,
            [
                (100, 100, "ApiBaseUrl", "", "https://api.newco.example", False),
                (101, 100, "DatabasePassword", "Production", "newco-prod-Zq7!rT4p", True),
                (102, 100, "LegacyMode", "", "true", False),
                (103, 101, "ScannerToken", "", "scan-0a1b2c3d4e5f", True),
                (104, 101, "ScanSchedule", "Production", "0 3 * * *", False),
            ],
        ),
    )
    _insert(
        conn,
        "projects",
        (
            "id",
            "name",
            "description",
            "owner_team_id",
            "variable_set_id",
            "is_disabled",
            "created_at",
        ),
        [
            # Project 1 is api here (source: web-app); 2 is security-scanner (source: api).
            (1, "api", "Public API (pilot on the new server).", 2, 100, 0, "2024-01-20 10:00:00"),
            (
                2,
                "security-scanner",
                "Weekly dependency and image scans.",
                1,
                101,
                0,
                "2024-01-22 14:00:00",
            ),
        ],
    )
    pkg = "Octopus.TentaclePackage"
    script = "Octopus.Script"
    _insert(
        conn,
        "steps",
        ("id", "project_id", "position", "name", "action_type", "properties"),
        [
            (
                100,
                1,
                1,
                "Deploy API package",
                pkg,
                _props(package="api", target_roles=["api", "canary"]),
            ),
            (101, 1, 2, "Run smoke tests", script, _props(script="pytest smoke/", timeout=300)),
            (
                102,
                1,
                3,
                "Notify #ops",
                "Octopus.Slack",
                _props(channel="#ops", message="API deployed"),
            ),
            (
                103,
                2,
                1,
                "Scan images",
                script,
                _props(script="trivy image --exit-code 1 api:latest"),
            ),
            (104, 2, 2, "Upload report", script, _props(script="./upload-report.sh")),
        ],
    )
    _insert(
        conn,
        "step_environments",
        ("step_id", "environment_id"),
        [(101, 1), (102, 1), (104, 1)],
    )
    _insert(
        conn,
        "api_keys",
        ("id", "user_id", "label", "token_hash"),
        [
            # bob's "ci" key exists on both servers, with different hashes.
            (100, 3, "ci", _token_hash("robert", "ci")),
            (101, 1, "admin", _token_hash("oscar", "admin")),
        ],
    )
    _insert(
        conn,
        "deployments",
        DEPLOYMENT_COLUMNS,
        [
            (100, 1, 2, "2.2.0", 3, "2024-02-01 10:00:00", "Success"),
            # api 2.3.0 to Production: on both servers, deployed at another time.
            (101, 1, 1, "2.3.0", 2, "2024-03-05 07:30:00", "Success"),
            (102, 2, 1, "1.0.0", 4, "2024-02-10 03:00:00", "Success"),
        ],
    )
    _insert(
        conn,
        "sessions",
        ("id", "user_id", "token", "expires_at"),
        [(1, 1, "sess-0f4e8d2c6b1a9357", "2024-03-22 08:00:00")],
    )


def create_target(path: Path, app_key: str) -> None:
    """Create the target server's database at ``path`` (a new file).

    It already holds users (alice and bob among them, under other ids and display
    names), teams Platform and Security, environments Development and Production,
    project api (other steps) and security-scanner, and variable sets API Settings
    and Security Tooling with secrets encrypted with ``app_key``.
    """
    _build(path, lambda conn: _fill_target(conn, app_key))
