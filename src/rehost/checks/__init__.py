"""Validation rules and their findings."""

from rehost.checks.findings import Finding, Severity, errors_in

__all__ = ["Finding", "Severity", "errors_in"]
