"""FHIRPath conditions of a pathway (inclusion, transitions, exits), with ``fhirpathpy``.

Every condition is evaluated on the Patient resource, with these environment variables:

``%patient``      the Patient (also the focus)
``%today``        the engine clock's date (Europe/Paris), ``%now`` its instant (UTC)
``%enrolledOn``   the enrolment's date; ``%elapsedDays`` whole days since enrolment
``%step``         the current step id
``%done``         ids of the tasks completed in this enrolment (``%done contains 'call'``)
``%answers``      the latest answers of each form: ``%answers.recontactCall.reached``

fhirpathpy recovers silently from syntax errors, so the syntax is checked here with its own
ANTLR grammar and an error listener that records them (a definition is refused, with the
location, rather than a condition quietly evaluating to nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import fhirpathpy
from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.ErrorListener import ErrorListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from parcours.errors import InvalidInput

__all__ = ["ENVIRONMENT", "holds", "problems", "sample_environment"]

ENVIRONMENT = ("patient", "today", "now", "enrolledOn", "elapsedDays", "step", "done", "answers")


class _Collect(ErrorListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.errors: list[str] = []

    def syntaxError(
        self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        self.errors.append(f"column {column + 1}: {msg}")


def _syntax_errors(expression: str) -> list[str]:
    listener = _Collect()
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    parser.expression()
    token = parser.getCurrentToken()
    if not listener.errors and token.type != Token.EOF:
        listener.errors.append(f"column {token.column + 1}: unexpected {token.text!r}")
    return listener.errors


def sample_environment(forms: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Values of the right shape for every variable, to try a condition at load time."""
    answers = {form: dict.fromkeys(items) for form, items in (forms or {}).items()}
    return {
        "patient": {"resourceType": "Patient"},
        "today": "2025-01-01",
        "now": "2025-01-01T00:00:00Z",
        "enrolledOn": "2025-01-01",
        "elapsedDays": 0,
        "step": "",
        "done": [],
        "answers": answers,
    }


def problems(expression: str, environment: Mapping[str, Any]) -> list[str]:
    """What is wrong with a condition: syntax, then a trial run on ``environment``."""
    errors = _syntax_errors(expression)
    if errors:
        return [f"FHIRPath syntax error at {e}" for e in errors]
    try:
        _compiled(expression)(environment["patient"], dict(environment))
    except Exception as exc:  # fhirpathpy raises bare ValueError/KeyError/TypeError
        return [f"FHIRPath expression cannot be evaluated: {exc}"]
    return []


@lru_cache(maxsize=2048)
def _compiled(expression: str) -> Callable[[Any, Any], list[Any]]:
    compiled: Callable[[Any, Any], list[Any]] = fhirpathpy.compile(expression)
    return compiled


def holds(expression: str, environment: Mapping[str, Any]) -> bool:
    """True when the expression evaluates to exactly ``true`` (empty or false: not met)."""
    try:
        result = _compiled(expression)(environment["patient"], dict(environment))
    except Exception as exc:
        raise InvalidInput(f"the condition {expression!r} failed: {exc}") from exc
    return result == [True]
