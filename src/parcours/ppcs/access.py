"""The access policy's read check, for the PPCS's own reads (the document and what it names)."""

from __future__ import annotations

from parcours.security.guard import check_read
from parcours.security.guard import scope as caller

__all__ = ["caller", "check_read"]
