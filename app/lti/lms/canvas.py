"""Canvas (Instructure): placements, display types and extensions its registration schema accepts.

Sources, all in instructure/canvas-lms:
- `lib/schemas/lti/ims/lti_tool_configuration.rb`: the registration's tool configuration schema
  (placement enum, display types, extension keys); an unknown value fails the whole
  registration with 422.
- `app/models/lti/resource_placement.rb`: the placement lists, and
  `add_extension_prefix_if_necessary` (the extension prefix only for Canvas's own placements).
- `app/models/lti/ims/registration.rb`: a message without placements gets only `link_selection`.
- `lib/schemas/internal_lti_configuration.rb`: `VALID_DISPLAY_TYPES`.
- `ui/features/developer_keys_v2/react/dynamic_registration/DynamicRegistrationModal.tsx`: when
  the tool's frame posts the close message, the modal leaves its `registering` state for
  `confirming`, Canvas's own review of the registration (`RegistrationOverlayForm`, with
  **Enable & Close**): the admin reviews there, so Gatehouse's page need not wait.
"""

from __future__ import annotations

from typing import Any

from ..constants import CANVAS_PREFIX, CANVAS_PRIVACY_LEVEL, MessageType
from ..text import N_
from .base import LMS, Adjustments, Step

# Placement names of the specification and of 1EdTech's Asset Processor, which Canvas accepts
# only without its extension prefix (resource_placement.rb, STANDARD_PLACEMENTS, and the schema's
# enum, which adds CONTENT_AREA and RICH_TEXT_EDITOR unprefixed).
STANDARD_PLACEMENTS = frozenset(
    {
        "ContentArea",
        "RichTextEditor",
        "ActivityAssetProcessor",
        "ActivityAssetProcessorContribution",
    }
)
# What Canvas turns the specification's names into (registration.rb, canvas_placement_name).
CANVAS_NAME_OF = {"ContentArea": "link_selection", "RichTextEditor": "editor_button"}
# Canvas creates only `link_selection` for a message that names no placements (registration.rb,
# `placements`; ltijs #230), so Gatehouse always names them. These are what a message gets when
# its configuration gives none: for resource links, the one Canvas would have picked anyway; for
# deep linking, content selection in modules, assignments and the rich-text editor.
# Other types (Canvas's placement-less LtiEulaRequest) are sent as configured.
DEFAULT_PLACEMENTS = {
    MessageType.RESOURCE_LINK.value: ("link_selection",),
    MessageType.DEEP_LINKING.value: ("link_selection", "assignment_selection", "editor_button"),
}
# display_type values some Canvas in use refuses, failing the whole registration with 422:
# `new_window` until a 2025 fix (canvas-lms PR #2459, the schema's VALID_DISPLAY_TYPES gained it),
# and `full_width_with_nav`, missing from the 2024 `VALID_DISPLAY_TYPES`
# (lib/schemas/internal_lti_configuration.rb). Canvas's answer does not say its version, so
# Gatehouse leaves both out for every Canvas.
UNSAFE_DISPLAY_TYPES = {
    "new_window": N_("Canvas refused it until 2025 (canvas-lms PR #2459)"),
    "full_width_with_nav": N_("Canvas releases before 2025 do not know it"),
}
MESSAGE_EXTENSIONS = {
    "visibility": "visibility",
    "default_enabled": "course_navigation/default_enabled",
    "display_type": "display_type",
    "launch_width": "launch_width",
    "launch_height": "launch_height",
}


def canvas_name(placement: str) -> str:
    """Return the Canvas placement a registration's placement name stands for."""
    bare = placement.removeprefix(CANVAS_PREFIX)
    return CANVAS_NAME_OF.get(bare, bare)


def sendable(placement: str) -> str:
    """Return the spelling of a placement Canvas's schema accepts.

    Canvas accepts its own placements with or without its prefix, but the standard ones only
    bare: a prefixed `ContentArea` fails the whole registration.
    """
    bare = placement.removeprefix(CANVAS_PREFIX)
    return bare if bare in STANDARD_PLACEMENTS else placement


class Canvas(LMS):
    """Canvas by Instructure."""

    codes = ("canvas",)
    name = "Canvas"
    where_to_paste = N_(
        "**Admin → Developer Keys → + Developer Key → LTI Registration** (newer Canvas: "
        "**Apps → Manage → Register App**), then paste the URL."
    )
    next_steps = (
        Step(N_("In the Canvas dialog, review the settings and click **Enable & Close**.")),
        Step(
            N_("Under **Admin → Developer Keys**, switch the new key **On**."),
            with_client_id=N_("Its Client ID is `%(client_id)s`."),
        ),
        Step(
            N_(
                "Install the app where it should appear: **Settings → Apps → + App → By Client "
                "ID**."
            )
        ),
    )

    # DynamicRegistrationModal.tsx (module docstring): the close message opens Canvas's review.
    shows_own_review = True
    # The review's scope list (RegistrationOverlayForm) and the developer key's scopes
    # (ui/features/developer_keys_v2), as in the module docstring's sources.
    where_to_grant_services = N_(
        "In the review Canvas shows next, or later under **Admin → Developer Keys** (the key's "
        "scopes)"
    )

    how_services_are_granted = (
        "Canvas's answer adds `openid` to the scopes, which is no service; its token endpoint "
        "refuses a whole request naming any scope the developer key lacks "
        "(lib/canvas/oauth/grant_types/client_credentials.rb), and an admin can turn scopes "
        "off in the key after registering."
    )

    def tool_configuration_extensions(self, canvas: dict[str, Any]) -> dict[str, Any]:
        """Return Canvas's privacy level, tool id and vendor (lti_tool_configuration.rb)."""
        extensions: dict[str, Any] = {}
        if "privacy_level" in canvas:
            extensions[CANVAS_PRIVACY_LEVEL] = canvas["privacy_level"]
        for key in ("tool_id", "vendor"):
            if key in canvas:
                extensions[CANVAS_PREFIX + key] = canvas[key]
        return extensions

    def message_placements(
        self,
        kind: str,
        configured: list[str] | None,
        advertised: tuple[str, ...] | None,
        adjustments: Adjustments,
    ) -> list[str] | None:
        """Return explicit placements Canvas accepts, or [] to leave the message out."""
        if kind not in DEFAULT_PLACEMENTS:
            return super().message_placements(kind, configured, advertised, adjustments)
        if configured is not None and not configured:
            adjustments.note(
                N_(
                    "Left out the %(kind)s message: its placements list is empty, and Canvas "
                    "would otherwise add it to link_selection.",
                    kind=kind,
                )
            )
            return []
        offered = None if advertised is None else {canvas_name(p) for p in advertised}

        def accepted(placement: str) -> bool:
            # The specification's two names are in the schema's enum whatever Canvas advertises.
            return (
                offered is None
                or canvas_name(placement) in offered
                or placement.removeprefix(CANVAS_PREFIX) in CANVAS_NAME_OF
            )

        if configured:
            kept = [sendable(p) for p in configured if accepted(p)]
            dropped = [p for p in configured if not accepted(p)]
            if dropped:
                adjustments.append(
                    N_(
                        "Left out the %(kind)s placements %(placements)s (Canvas does not "
                        "offer them).",
                        kind=kind,
                        placements=", ".join(dropped),
                    )
                )
            if kept:
                return list(dict.fromkeys(kept))
        # instructure/canvas-lms app/models/lti/ims/registration.rb: a message without
        # placements gets only link_selection, so Gatehouse names the usual ones itself.
        defaults = [p for p in DEFAULT_PLACEMENTS[kind] if offered is None or p in offered]
        if not defaults:
            adjustments.note(
                N_(
                    "Left out the %(kind)s message: Canvas offers none of its placements "
                    "(%(placements)s).",
                    kind=kind,
                    placements=", ".join(DEFAULT_PLACEMENTS[kind]),
                )
            )
            return []
        if configured is None:
            placed = N_(
                "Placed the %(kind)s message in %(placements)s: Canvas needs placements named, "
                "and the tool's settings name none.",
                kind=kind,
                placements=", ".join(defaults),
            )
        else:
            placed = N_(
                "Placed the %(kind)s message in %(placements)s: Canvas needs placements named, "
                "and Canvas offers none of those the tool's settings name.",
                kind=kind,
                placements=", ".join(defaults),
            )
        adjustments.append(placed)
        return defaults

    def message_extensions(
        self, kind: str, settings: dict[str, Any], adjustments: Adjustments
    ) -> dict[str, Any]:
        """Return the message's Canvas extensions, without display types Canvas may refuse."""
        out: dict[str, Any] = {}
        for key, value in settings.items():
            if value is None:
                continue
            if key == "display_type" and value in UNSAFE_DISPLAY_TYPES:
                adjustments.note(
                    N_(
                        "Left out display_type %(value)s on the %(kind)s message: %(why)s, and "
                        "refusing it fails the whole registration, so the link opens in "
                        "Canvas's default display.",
                        value=value,
                        kind=kind,
                        why=UNSAFE_DISPLAY_TYPES[value],
                    )
                )
                continue
            out[CANVAS_PREFIX + MESSAGE_EXTENSIONS[key]] = value
        return out

    def platform_name(self, document: dict[str, Any], host: str) -> str:
        """Name the platform after the Canvas account (the configuration's account_name)."""
        account = document.get(CANVAS_PREFIX + "account_name")
        if isinstance(account, str) and account.strip():
            return f"{account.strip()} (Canvas, {host})"
        return super().platform_name(document, host)
