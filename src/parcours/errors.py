"""One exception tree for the whole platform.

    ParcoursError
     ├── InvalidInput          malformed request or resource          400 / ACK AE
     │    └── InvalidResource  well-formed but breaks a rule          422 / ACK AE
     ├── Unauthenticated       no or bad credentials                  401
     ├── Forbidden             authenticated but not allowed          403
     ├── NotFound              unknown resource or version            404
     ├── Gone                  logically deleted                      410
     ├── Conflict              concurrent or duplicate write          409 / ACK AR
     │    └── VersionConflict  If-Match / version mismatch            412
     ├── PreconditionFailed    conditional operation matched > 1      412
     └── Unavailable           transient failure, retry later         503 / ACK AR

Each class knows its HTTP status, its OperationOutcome issue code and its HL7 ACK code, so
the FHIR API and the HL7 listener translate errors the same way, in one place each.
Messages name the location and the rule, never a patient's name or NIR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Conflict",
    "Forbidden",
    "Gone",
    "InvalidInput",
    "InvalidResource",
    "Issue",
    "NotFound",
    "ParcoursError",
    "PreconditionFailed",
    "Unauthenticated",
    "Unavailable",
    "VersionConflict",
]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem, located by a FHIRPath expression or an HL7 location (e.g. ``PID-3``)."""

    message: str
    location: str | None = None
    code: str | None = None
    severity: str = "error"


@dataclass
class ParcoursError(Exception):
    """Base of every error the platform reports to a caller."""

    message: str
    issues: list[Issue] = field(default_factory=list)

    status = 500
    issue_code = "exception"
    ack_code = "AR"

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if not self.issues:
            self.issues = [Issue(self.message, code=self.issue_code)]

    def __str__(self) -> str:
        return self.message


class InvalidInput(ParcoursError):
    """The request or message cannot be understood (syntax, unknown parameter, bad JSON)."""

    status = 400
    issue_code = "invalid"
    ack_code = "AE"


class InvalidResource(InvalidInput):
    """The resource is well-formed but breaks a structural or profile rule."""

    status = 422
    issue_code = "processing"


class Unauthenticated(ParcoursError):
    """No credentials, or credentials that cannot be verified."""

    status = 401
    issue_code = "login"
    ack_code = "AR"


class Forbidden(ParcoursError):
    """The caller is known but the policy refuses the action."""

    status = 403
    issue_code = "forbidden"
    ack_code = "AR"


class NotFound(ParcoursError):
    """No such resource, version or route."""

    status = 404
    issue_code = "not-found"
    ack_code = "AE"


class Gone(ParcoursError):
    """The resource existed and was deleted."""

    status = 410
    issue_code = "deleted"
    ack_code = "AE"


class Conflict(ParcoursError):
    """The write clashes with the current state (concurrent update, duplicate id)."""

    status = 409
    issue_code = "conflict"
    ack_code = "AR"


class VersionConflict(Conflict):
    """The version the caller based its write on is not the current one."""

    status = 412


class PreconditionFailed(ParcoursError):
    """A conditional interaction matched more than one resource."""

    status = 412
    issue_code = "duplicate"
    ack_code = "AE"


class Unavailable(ParcoursError):
    """A transient failure (database down, lock timeout): the caller may retry."""

    status = 503
    issue_code = "transient"
    ack_code = "AR"
