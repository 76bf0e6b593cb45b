"""The interface every LMS family module implements, with the generic behaviour as defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..text import N_


class Adjustments(list[str]):
    """What Gatehouse changed to suit the LMS, in order; `notable` lists those the admin must read.

    Routine adaptations (a placement the LMS does not offer, a placement made explicit) are
    recorded for the tool's owner; notable ones (a service or a whole message left out, a link
    that will open differently) keep the LMS dialog open until the admin has read them.
    """

    def __init__(self, items: tuple[str, ...] | list[str] = ()) -> None:
        super().__init__(items)
        self.notable: list[str] = []

    def note(self, text: str) -> None:
        """Record a notable adjustment."""
        self.append(text)
        self.notable.append(text)


@dataclass(frozen=True)
class Step:
    """One thing the LMS administrator does, in plain words.

    `text` may mark words the admin looks for on screen as **bold**; `with_client_id`, a
    sentence with `%(client_id)s`, follows it when the Client ID is known (left out otherwise).
    Both are marked with `N_` so the close page shows them in the admin's language.
    `action` is False for a step that only says how things stand: such a step does not keep the
    LMS dialog open.
    """

    text: str
    with_client_id: str = ""
    action: bool = True

    def render(self, client_id: str | None, translate: Callable[[str], str] = str) -> str:
        """Return the step's text, with the Client ID part when the Client ID is known."""
        text = translate(self.text)
        if client_id and self.with_client_id:
            return f"{text} {translate(self.with_client_id) % {'client_id': client_id}}"
        return text


class LMS:
    """An LMS family: how to reach it, what it needs afterwards, and how it bends the protocol.

    The defaults are the specification's behaviour; a family module overrides what its LMS does
    differently and names its source.
    """

    codes: tuple[str, ...] = ()
    name = N_("your LMS")
    # Where the admin pastes the registration URL (plain text with **bold** marks), or None.
    where_to_paste: str | None = None
    # What the admin does after a new registration, and after an update of an existing one.
    next_steps: tuple[Step, ...] = (
        Step(
            N_(
                "Your LMS may keep the tool disabled until an administrator enables or "
                "activates it in its list of external tools."
            )
        ),
    )
    next_steps_after_update: tuple[Step, ...] | None = None
    # True when the LMS shows its own review of the registration the moment its dialog gets the
    # close message: Gatehouse's page then closes at once, whatever it would say.
    shows_own_review = False
    # Where an administrator grants a service the LMS did not grant (plain text with **bold**
    # marks), or None when Gatehouse does not know.
    where_to_grant_services: str | None = None
    # True when `scopes_supported` lists everything the LMS grants; False makes Gatehouse ask
    # for its configured scopes anyway instead of intersecting with an incomplete list.
    scopes_supported_is_complete = True
    # How far the registration answer's `scope` is a claim, and how the token endpoint decides
    # (plain text with **bold** marks, for the owner's console); None when nothing is known.
    # Gatehouse learns the real grants from the token endpoint either way
    # (app/lti/service_tokens.py).
    how_services_are_granted: str | None = None

    @property
    def code(self) -> str:
        """Return the family's main `product_family_code`."""
        return self.codes[0] if self.codes else ""

    def steps(
        self,
        client_id: str | None = None,
        *,
        updated: bool = False,
        translate: Callable[[str], str] = str,
    ) -> list[str]:
        """Return the admin's next steps as text with **bold** marks, through `translate`."""
        steps = self.next_steps
        if updated and self.next_steps_after_update is not None:
            steps = self.next_steps_after_update
        return [step.render(client_id, translate) for step in steps]

    def needs_action(self, *, updated: bool = False) -> bool:
        """Return True when the admin has steps to take in the LMS after this registration."""
        steps = self.next_steps
        if updated and self.next_steps_after_update is not None:
            steps = self.next_steps_after_update
        return any(step.action for step in steps)

    def release(self, version: str) -> str:
        """Return the release to show for a version the LMS reports (as it is, by default)."""
        return version.strip()

    def fill_configuration(self, document: dict[str, Any], filled_in: list[str]) -> dict[str, Any]:
        """Return the OpenID configuration with what this LMS is known to leave out filled in.

        Called before the specification's checks; each fill-in adds a sentence to `filled_in`,
        which the close page shows among Gatehouse's adjustments.
        """
        return document

    def tool_configuration_extensions(self, canvas: dict[str, Any]) -> dict[str, Any]:
        """Return extra keys for the tool configuration object (none outside Canvas)."""
        return {}

    def message_placements(
        self,
        kind: str,
        configured: list[str] | None,
        advertised: tuple[str, ...] | None,
        adjustments: Adjustments,
    ) -> list[str] | None:
        """Return the placements to send for one message, None for none, [] to drop the message.

        The generic rule (LTI Dynamic Registration §3.3.1): keep the configured placements the
        platform advertises for this message type; without an advertised list keep none.
        """
        if configured is None:
            return None
        offered = set(advertised or ())
        kept = [p for p in configured if p in offered]
        dropped = [p for p in configured if p not in offered]
        if dropped:
            adjustments.append(
                N_(
                    "Left out the %(kind)s placements %(placements)s (the LMS does not offer "
                    "them).",
                    kind=kind,
                    placements=", ".join(dropped),
                )
            )
        return kept or None

    def message_extensions(
        self, kind: str, settings: dict[str, Any], adjustments: Adjustments
    ) -> dict[str, Any]:
        """Return this LMS's extension keys for one message (none outside Canvas)."""
        return {}

    def platform_name(self, document: dict[str, Any], host: str) -> str:
        """Name a new platform after its LMS and the host the admin works on."""
        return f"{self.name} at {host}"  # a name in the owner's console: English
