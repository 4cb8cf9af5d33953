"""HL7 errors: a located problem (ERR segment) and the exceptions that carry them."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "APPLICATION_ERROR",
    "DATA_TYPE_ERROR",
    "DUPLICATE_KEY",
    "REQUIRED_FIELD_MISSING",
    "SEGMENT_SEQUENCE_ERROR",
    "TABLE_VALUE_NOT_FOUND",
    "UNKNOWN_KEY",
    "UNSUPPORTED_EVENT",
    "UNSUPPORTED_MESSAGE_TYPE",
    "UNSUPPORTED_VERSION",
    "Hl7Error",
    "Problem",
]

# HL7 table 0357 (message error condition codes) and their standard texts.
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT = "201"
UNSUPPORTED_VERSION = "203"
UNKNOWN_KEY = "204"
DUPLICATE_KEY = "205"
APPLICATION_ERROR = "207"

TEXTS = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One ERR segment: where (``PID^1^5``), which 0357 code, why, and how bad (E/W/I).

    ``text`` is shown to hospital IT staff and stored in the inbox: it names the field and
    the rule, never a patient's name or NIR.
    """

    code: str
    text: str
    location: str = ""
    severity: str = "E"

    def describe(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.text} (HL7 0357 {self.code})"


@dataclass
class Hl7Error(Exception):
    """The message cannot be (fully) applied; ``ack_code`` is AE (content) or AR (reject)."""

    ack_code: str
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(p.describe() for p in self.problems) or self.ack_code

    def __str__(self) -> str:
        return self.message

    @classmethod
    def content(cls, code: str, text: str, location: str = "") -> Hl7Error:
        """AE: the message is wrong; resending it unchanged will not help."""
        return cls("AE", [Problem(code, text, location)])

    @classmethod
    def reject(cls, code: str, text: str, location: str = "") -> Hl7Error:
        """AR: header-level refusal (type, version) or a transient failure of ours."""
        return cls("AR", [Problem(code, text, location)])
