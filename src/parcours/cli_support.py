"""What every `parcours …` command group needs: the settings, and a platform to run on."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from parcours.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from parcours.platform import Platform

__all__ = ["on_platform", "settings_or_exit"]


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise SystemExit(f"parcours: configuration error: {exc}") from None


def on_platform(action: Callable[[Platform], int], label: str) -> int:
    """Run ``action`` on the platform of the settings (schema checked), with the exit codes of
    the command line: 2 for a schema behind, 1 for a refused operation."""
    from parcours.errors import ParcoursError
    from parcours.platform import build_platform
    from parcours.store.schema_version import SchemaBehind, ensure_schema

    platform = build_platform(settings_or_exit())
    try:
        ensure_schema(platform.store.engine)
        return action(platform)
    except SchemaBehind as exc:
        print(f"parcours: {exc}", file=sys.stderr)
        return 2
    except ParcoursError as exc:
        print(f"parcours {label}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        platform.close()
