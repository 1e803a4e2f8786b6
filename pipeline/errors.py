"""Error types every layer can raise without importing the command line."""

from __future__ import annotations


class UserError(Exception):
    """Raised by commands for mistakes the user can fix; printed as one line."""
