"""Plain records the simulator keeps: tokens it issued, registrations it made, POSTs it saw."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Response

TOKEN_LIFETIME = 3600  # seconds; Canvas, Moodle and Brightspace all use one hour


@dataclass
class Grant:
    """One registration attempt the LMS started: its token and what the LMS pre-allocated."""

    token: str
    tool_url: str
    issued_at: float = field(default_factory=time.time)
    expires_at: float = 0.0
    used: bool = False
    update_of: Registration | None = None
    client_id: str | None = None  # pre-allocated (Moodle token `sub`, Sakai clientId)
    deployment_id: str | None = None  # pre-allocated (Sakai deploymentId)
    key: str | None = None  # Sakai's tool key, part of its URLs

    def __post_init__(self) -> None:
        if not self.expires_at:
            self.expires_at = self.issued_at + TOKEN_LIFETIME

    @property
    def expired(self) -> bool:
        """Tell whether the token's hour has passed."""
        return time.time() > self.expires_at


@dataclass
class Registration:
    """A tool registration the LMS holds (what an admin would see in its tool list)."""

    client_id: str
    deployment_id: str | None
    client_name: str
    domain: str
    registration_id: str = ""
    enabled: bool = True
    echo: dict[str, Any] = field(default_factory=dict)
    # What launches need: the tool's registration request.
    tool: dict[str, Any] = field(default_factory=dict)
    # What the LMS's token endpoint will really grant this tool (its code's rules, the admin's
    # choices), which is not always what the registration answer's `scope` says.
    scopes: tuple[str, ...] = ()
    # What the registration answer's `scope` claimed (Canvas adds openid, Moodle may list
    # lineitem it will not grant, Sakai echoes the request).
    claimed_scopes: tuple[str, ...] = ()


@dataclass
class RegistrationRecord:
    """One POST received at the registration endpoint, and how the LMS answered it."""

    token: str | None
    headers: dict[str, str]
    body: Any
    status: int
    response: dict[str, Any] | str
    client_id: str | None = None
    deployment_id: str | None = None
    accepted: bool = False


@dataclass
class Accepted:
    """A registration the profile accepted: the status and JSON body it answers with."""

    status: int
    body: dict[str, Any]
    registration: Registration


class Rejection(Exception):  # noqa: N818 - it is an answer, not a fault
    """The LMS refuses a request; carries the exact status and body that LMS would send."""

    def __init__(self, status: int, body: dict[str, Any] | str, content_type: str = "") -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        if not content_type:
            content_type = "application/json" if isinstance(body, dict) else "text/plain"
        self.content_type = content_type

    def response(self) -> Response:
        """Build the HTTP response for this rejection."""
        text = json.dumps(self.body) if isinstance(self.body, dict) else self.body
        return Response(text, status=self.status, content_type=self.content_type)
