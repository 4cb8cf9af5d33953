"""OperationOutcome resources: from our error tree, or from a plain message."""

from __future__ import annotations

from typing import Any

from parcours.errors import Issue, ParcoursError

__all__ = ["from_error", "issue_json", "operation_outcome"]


def issue_json(issue: Issue, default_code: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "severity": issue.severity,
        "code": issue.code or default_code,
        "diagnostics": issue.message,
    }
    if issue.location:
        # R4 has both: `expression` (FHIRPath) and the deprecated `location`; fill both.
        out["expression"] = [issue.location]
        out["location"] = [issue.location]
    return out


def from_error(error: ParcoursError) -> dict[str, Any]:
    issues = [issue_json(issue, error.issue_code) for issue in error.issues]
    if all(issue.message != error.message for issue in error.issues):
        # The summary (e.g. which Bundle entry failed, how many problems) comes first.
        issues.insert(
            0, {"severity": "error", "code": error.issue_code, "diagnostics": error.message}
        )
    return {"resourceType": "OperationOutcome", "issue": issues}


def operation_outcome(
    message: str, code: str = "informational", severity: str = "information"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }
