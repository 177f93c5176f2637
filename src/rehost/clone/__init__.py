"""Whole-database copy across engines: schema, rows, sequences, then verify."""

from rehost.clone.run import CloneBlocked, CloneResult, TargetNotEmpty, clone, prepare

__all__ = ["CloneBlocked", "CloneResult", "TargetNotEmpty", "clone", "prepare"]
