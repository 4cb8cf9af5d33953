"""A page is made of sections; one the user's role may not read says so instead of failing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from parcours.web.gateway import UiError

__all__ = ["Section", "section"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Section(Generic[T]):
    value: T | None
    # Shown instead of the content: the policy's refusal or the engine's error, in French.
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def section(load: Callable[[], T]) -> Section[T]:
    try:
        return Section(load())
    except UiError as error:
        if error.status == 403:
            return Section(None, "Votre rôle ne donne pas accès à ces informations.")
        return Section(None, f"Ces informations n’ont pas pu être lues ({error.message}).")
