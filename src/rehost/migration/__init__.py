"""Migrations: a plan file of moves, run as resumable phases with persisted state."""

from rehost.migration.core import PHASES, CheckReport, Migration, RunReport
from rehost.migration.plan import Plan, PlanError, load_plan, parse_plan

__all__ = [
    "PHASES",
    "CheckReport",
    "Migration",
    "Plan",
    "PlanError",
    "RunReport",
    "load_plan",
    "parse_plan",
]
