"""What Gatehouse knows about each LMS family, one module per family, behind one interface.

"Where is the Canvas quirk handled?" has a one-file answer: `canvas.py`. Each module names the
LMS's own code (or, for Brightspace and Blackboard, its documentation) beside every rule. The
registration flow, the close page, the home page, the console and the README table read from
here; generic code never tests a family code itself.

`for_family(code)` returns the family for a `product_family_code` (unknown codes get `Generic`).
"""

from __future__ import annotations

from .base import LMS, Adjustments, Step
from .blackboard import Blackboard
from .brightspace import Brightspace
from .canvas import Canvas
from .generic import Generic
from .moodle import Moodle
from .sakai import Sakai

# The order the home page, the console and the README list them in.
FAMILIES: tuple[LMS, ...] = (Canvas(), Moodle(), Brightspace(), Sakai(), Blackboard())
GENERIC = Generic()
_BY_CODE = {code: family for family in FAMILIES for code in family.codes}


def for_family(code: str | None) -> LMS:
    """Return the LMS family for a `product_family_code`; Generic for unknown or missing codes."""
    return _BY_CODE.get(code or "", GENERIC)


def family_name(code: str | None) -> str:
    """Return an LMS's product name for its `product_family_code`."""
    family = _BY_CODE.get(code or "")
    if family is not None:
        return family.name
    return code or GENERIC.name


__all__ = ["FAMILIES", "GENERIC", "LMS", "Adjustments", "Step", "family_name", "for_family"]
