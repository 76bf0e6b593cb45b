"""Any LMS Gatehouse has no specific knowledge of: the specification's behaviour, as in base.py."""

from __future__ import annotations

from .base import LMS


class Generic(LMS):
    """An LMS without a family module (an unknown `product_family_code`, or none)."""
