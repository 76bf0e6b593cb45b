"""Audit log entries and signed webhook notifications for what happens to registrations."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..lti.errors import RegistrationError
from ..lti.http import SafeClient
from ..settings import Settings
from ..storage import now_iso
from .mail import EMAILED, Mailer, MailError, mailer_for

log = logging.getLogger(__name__)

NOTIFIED = frozenset(
    {
        "registration.completed",
        "registration.failed",
        "platform.activated",
        "platform.deactivated",
        "platform.awaiting_activation",
        "deployment.discovered",
    }
)
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)
SIGNATURE_HEADER = "X-Gatehouse-Signature"


@dataclass(frozen=True)
class Events:
    """The audit log and the webhook queue, as one actor writes to them.

    `actor` names who is acting: the API key, the console user, the recovery sweep, or the LMS
    admin's flow. The web layer builds one per request (app/web/context.py).
    """

    store: Any
    notifier: Notifier | None = None
    actor: str = "registration flow"

    def record(
        self,
        action: str,
        subject_type: str | None = None,
        subject_id: str | None = None,
        detail: dict | None = None,
    ) -> None:
        """Write an audit line and, for notified events, queue a signed webhook."""
        self.store.audit(self.actor, action, subject_type, subject_id, detail)
        if self.notifier and action in NOTIFIED:
            self.notifier.enqueue(
                action,
                {
                    "type": action,
                    "subject": {"type": subject_type, "id": subject_id},
                    "data": detail or {},
                },
            )


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Return the signature header value: t=<unix time>,v1=<HMAC-SHA256 of "t.body">."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


class Notifier:
    """Deliver queued events to `notifications.webhook_url` and by e-mail, retrying with back-off.

    The queue lives in the database, so a restart or another worker finishes what one began;
    each worker runs one delivery thread, woken when it queues an event. Each queued row names
    its channel: "webhook" (every notified event) or "email" (those in mail.EMAILED).
    """

    def __init__(
        self,
        store,
        url: str | None,
        secret: str | None,
        client: SafeClient | None,
        poll: float = 5.0,
        mailer: Mailer | None = None,
    ):
        self.store = store
        self.url = url
        self.secret = secret
        self.client = client
        self.mailer = mailer
        self.poll = poll
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def enqueue(self, event: str, payload: dict) -> None:
        """Queue an event and wake the delivery thread."""
        body = json.dumps({"id": None, "createdAt": now_iso(), **payload})
        if self.url:
            self.store.enqueue_notification(event, body)
        if self.mailer and event in EMAILED:
            self.store.enqueue_notification(event, body, channel="email")
        self.start()
        self._wake.set()

    def start(self) -> None:
        """Start the delivery thread once per process."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # Each thread gets its own stop flag, set once and never cleared: a thread that
                # outlives stop()'s join still ends, however soon a new one starts.
                self._stopped = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stopped,), name="gatehouse-notifier", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """End the delivery thread (before its store is closed); enqueue starts a new one.

        Return False when the thread is still finishing a delivery after `timeout`; it ends
        once that delivery is done and takes no more from the queue.
        """
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopped.set()
            self._wake.set()
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self, stopped: threading.Event) -> None:
        while not stopped.is_set():
            try:
                while not stopped.is_set() and self.deliver_due():
                    pass
            except Exception:  # keep delivering after a database hiccup
                log.exception("notification delivery failed")
            self._wake.wait(self.poll)
            if not stopped.is_set():  # a stop's wake-up is left for the thread after this one
                self._wake.clear()

    def deliver_due(self) -> int:
        """Deliver the notifications that are due; return how many were tried."""
        lease = datetime.now(UTC) + LEASE
        due = self.store.claim_notifications(now_iso(lease))
        for item in due:
            self._deliver(item)
        return len(due)

    def _post(self, item) -> str | None:
        """POST one event to the webhook; return what went wrong, or None."""
        if not (self.url and self.secret and self.client):
            return "no webhook is configured (notifications.webhook_url)"
        body = json.loads(item.payload)
        body["id"] = f"evt_{item.id}"
        # post_json serialises with json.dumps too, so these are exactly the bytes sent.
        raw = json.dumps(body).encode()
        headers = {
            SIGNATURE_HEADER: sign(self.secret, raw),
            "X-Gatehouse-Event": item.event,
            "X-Gatehouse-Delivery": str(item.id),
        }
        try:
            response = self.client.post_json(
                self.url, body, headers=headers, what="notification webhook"
            )
        except RegistrationError as exc:
            return exc.detail
        if not 200 <= response.status < 300:
            return f"HTTP {response.status}"
        return None

    def _mail(self, item) -> str | None:
        """Send one event by e-mail; return what went wrong, or None."""
        if self.mailer is None:
            return "no SMTP server is configured (notifications.email.smtp_host)"
        try:
            self.mailer.send(item.event, json.loads(item.payload).get("data") or {})
        except MailError as exc:
            return str(exc)
        return None

    def _deliver(self, item) -> None:
        error = self._mail(item) if item.channel == "email" else self._post(item)
        if error is None:
            self.store.finish_notification(item.id, delivered=True)
            self.store.audit(
                "notifier",
                "notification.delivered",
                "notification",
                str(item.id),
                {"event": item.event, "channel": item.channel, "attempts": item.attempts},
            )
            return
        if item.attempts >= MAX_ATTEMPTS:
            self.store.finish_notification(item.id, delivered=False, error=error)
            self.store.audit(
                "notifier",
                "notification.abandoned",
                "notification",
                str(item.id),
                {
                    "event": item.event,
                    "channel": item.channel,
                    "attempts": item.attempts,
                    "error": error,
                },
            )
            log.error("notification %s (%s) abandoned: %s", item.id, item.channel, error)
            return
        delay = min(5 * 2 ** (item.attempts - 1), 3600)
        retry = datetime.now(UTC) + timedelta(seconds=delay)
        self.store.finish_notification(
            item.id, delivered=False, error=error, retry_at=now_iso(retry)
        )
        self.store.audit(
            "notifier",
            "notification.retry",
            "notification",
            str(item.id),
            {
                "event": item.event,
                "channel": item.channel,
                "attempts": item.attempts,
                "error": error,
                "retryAt": now_iso(retry),
            },
        )
        log.warning(
            "notification %s (%s) failed, retried at %s: %s",
            item.id,
            item.channel,
            now_iso(retry),
            error,
        )


def owner_network(address) -> bool:
    """Allow any address an owner's webhook may live on, except metadata and non-unicast."""
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return not (
        address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def notifier_for(store, config: Settings) -> Notifier | None:
    """Return the notifier of the configured webhook and e-mail, or None without either."""
    url = config.notifications.webhook_url
    mailer = mailer_for(store, config, os.environ.get("GATEHOUSE_SMTP_PASSWORD"))
    if not url:
        return None if mailer is None else Notifier(store, None, None, None, mailer=mailer)
    outbound = config.outbound
    # The owner chose this URL, so their private network is fine; cloud metadata (link-local),
    # multicast and unspecified addresses stay refused, and timeouts and caps still apply.
    client = SafeClient(
        allow_insecure=True,
        connect_timeout=outbound.connect_timeout,
        deadline=outbound.deadline,
        max_bytes=outbound.max_response_bytes,
        is_allowed_address=owner_network,
    )
    return Notifier(store, url, os.environ["GATEHOUSE_WEBHOOK_SECRET"], client, mailer=mailer)
