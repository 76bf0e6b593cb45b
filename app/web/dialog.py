"""The pages that end the LMS's registration dialog: the close page and the error page.

Shared by the registration URL (app/web/lms.py) and the gates (app/web/gates/).
"""

from __future__ import annotations

from flask import current_app, render_template

from ..domain.gates import approval_of
from ..lti import lms as lms_families
from ..lti.errors import RegistrationError
from .context import get_store
from .footer import for_registration
from .i18n import page_locale, translate
from .security import allow_framing


def render_error(
    error: RegistrationError,
    *,
    in_flow: bool = True,
    template: str = "register/error.html",
    family: str | None = None,
):
    """Render a readable error page for the admin, with a way back to the LMS.

    `family` (the LMS's product_family_code, when Gatehouse has read it) names the LMS in the
    page's plain words (app/web/error_words.py).
    """
    if in_flow:
        allow_framing()
    return render_template(template, error=translated(error.as_dict()), family=family), error.status


def translated(error: dict) -> dict:
    """Return a stored or raised error's words in the page's language (app/web/i18n.py).

    A detail with no translation (most name what the LMS sent) stays English and says so:
    `detail_lang` is "en" on a page in another language, for the template's `lang`.
    """
    words = {key: translate(error.get(key)) for key in ("title", "detail", "hint")}
    english = words["detail"] == error.get("detail") and page_locale() != "en"
    return error | words | {"detail_lang": "en" if english else None}


def render_close(registration, platform=None):
    """Render the page that closes the LMS dialog, from the stored outcome (refresh-safe).

    `platform` is the attempt's platform as the request that completed it just stored it, which
    saves reading it again.
    """
    store = get_store()
    for_registration(registration.id)
    if platform is None or platform.id != registration.platform_id:
        platform = store.get_platform(registration.platform_id)
    requested = ((registration.request or {}).get("scope") or "").split()
    withheld = [s for s in requested if s not in platform.scopes]
    family = lms_families.for_family(registration.product_family_code)
    updated = not registration.platform_created
    notable = set(registration.notable_adjustments)
    allow_framing()
    return render_template(
        "register/close.html",
        registration=registration,
        platform=platform,
        withheld=withheld,
        notable_adjustments=[a for a in registration.adjustments if a in notable],
        routine_adjustments=[a for a in registration.adjustments if a not in notable],
        # An LMS removes its dialog the moment the close message arrives (Moodle's
        # toolconfigure page does), so a page with something to act on waits for "Done";
        # an LMS that shows its own review next (Canvas) gets the message at once.
        hold=not family.shows_own_review
        and bool(withheld or notable or family.needs_action(updated=updated)),
        updated=updated,
        lms=family,
        family=registration.product_family_code,
        family_name=translate(lms_families.family_name(registration.product_family_code)),
        owner_told=current_app.extensions.get("gatehouse.notifier") is not None,
        deployments=store.list_deployments(platform.id),
        approval=approval_of(store, registration.id),
    )
