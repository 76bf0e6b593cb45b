"""The gate pages under /lti/register/<id>/…: sign-in, terms, payment, then completion.

`views.py` holds the blueprint and its routes, `forms.py` the forms. Which gate comes next, and
whether one is passed, is decided in app/domain/gates.py from stored records.
"""

from .views import bp

__all__ = ["bp"]
