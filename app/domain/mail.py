"""E-mail to the tool's owner through the SMTP server of `[notifications.email]`.

The notifier (app/domain/events.py) queues e-mails in the database beside webhook deliveries and
sends them from its thread, so a slow or failing SMTP server delays nothing in a request and a
failure is retried and logged the same way.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

from ..settings import Settings

# The events worth an e-mail: someone waits for the owner.
EMAILED = frozenset({"platform.awaiting_activation"})


class MailError(Exception):
    """The SMTP server could not be reached or refused the message; the notifier retries."""


@dataclass(frozen=True)
class Mailer:
    """Send owner e-mails through one SMTP server, with a timeout on every step."""

    host: str
    port: int
    security: str  # "starttls", "ssl" or "none"
    sender: str
    tool_name: str
    to: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    # The owners' addresses when `to` is empty (read at sending time: accounts change).
    owners: Callable[[], list[str]] = list

    def recipients(self) -> list[str]:
        """Return who gets the owner's e-mails: `to`, else every owner account's address."""
        return list(self.to) or self.owners()

    def send(self, event: str, data: dict) -> None:
        """Send the e-mail for one event; raise MailError when it cannot be sent now."""
        recipients = self.recipients()
        if not recipients:
            raise MailError(
                "no recipient: set notifications.email.to or make an owner account "
                "(gatehouse user create --owner)"
            )
        message = compose(event, data, self.tool_name)
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        try:
            if self.security == "ssl":
                server: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with server:
                if self.security == "starttls":
                    server.starttls(context=ssl.create_default_context())
                if self.username:
                    server.login(self.username, self.password or "")
                server.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP {self.host}:{self.port}: {exc}") from exc


def compose(event: str, data: dict, tool_name: str) -> EmailMessage:
    """Return the e-mail (without sender and recipients) telling the owner about `event`."""
    message = EmailMessage()
    # The name comes from the LMS (Canvas's account name): one line, or the header is refused.
    lms = " ".join(str(data.get("name") or data.get("url") or "An LMS").split())
    if event == "platform.awaiting_activation" and data.get("reason") == "launch":
        if data.get("deploymentId"):
            what = f"deployment {data['deploymentId']} of {lms}, which is not approved yet"
        else:
            what = f"{lms}, whose registration is not active yet"
        message["Subject"] = f"{tool_name}: someone is waiting for you to activate {lms}"
        text = (
            f"Someone tried to open {tool_name} from {what}. They were told that the tool is "
            "being set up for their school and that you have been told.\n\n"
            f"Activate it in one click: {data.get('consoleUrl')}\n"
        )
    else:
        message["Subject"] = f"{tool_name}: {lms} registered the tool and awaits activation"
        text = (
            f"{lms} ({data.get('url')}, client ID {data.get('clientId')}) registered "
            f"{tool_name}. Nobody can open the tool from it until you activate the "
            "registration.\n\n"
            f"Activate it in one click: {data.get('consoleUrl')}\n"
        )
    message.set_content(
        text + "\n(Gatehouse sends this once per registration, and at most once an "
        "hour per LMS while launches are refused.)\n"
    )
    return message


def mailer_for(store, config: Settings, password: str | None) -> Mailer | None:
    """Return the mailer of `[notifications.email]`, or None when no SMTP host is set."""
    email = config.notifications.email
    if not email.smtp_host:
        return None
    default_port = {"ssl": 465, "starttls": 587}.get(email.security, 25)
    return Mailer(
        host=email.smtp_host,
        port=email.smtp_port or default_port,
        security=email.security,
        sender=email.sender or "",
        tool_name=config.tool.name,
        to=email.to,
        username=email.username,
        password=password,
        timeout=email.timeout,
        owners=store.owner_emails,
    )
