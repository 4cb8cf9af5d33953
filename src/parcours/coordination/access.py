"""The access policy at the moments of a coordination write (``tx.access``; None passes)."""

from __future__ import annotations

from parcours.security.guard import before_write, check_read, check_written

__all__ = ["before_write", "check_read", "check_written"]
