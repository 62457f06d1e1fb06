"""The exceptions of the wmbus package: one family, so a caller can catch them all at once."""

from __future__ import annotations


class WmbusError(Exception):
    """Something about wmbusmeters or its configuration is not usable."""
