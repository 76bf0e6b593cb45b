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

log = logging.getLogger(__name__)

NOTIFIED = frozenset(
    {
        "registration.completed",
        "registration.failed",
        "platform.activated",
        "platform.deactivated",
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
    """Deliver queued events to `notifications.webhook_url`, retrying with back-off.

    The queue lives in the database, so a restart or another worker finishes what one began;
    each worker runs one delivery thread, woken when it queues an event.
    """

    def __init__(self, store, url: str, secret: str, client: SafeClient, poll: float = 5.0):
        self.store = store
        self.url = url
        self.secret = secret
        self.client = client
        self.poll = poll
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def enqueue(self, event: str, payload: dict) -> None:
        """Queue an event and wake the delivery thread."""
        body = {"id": None, "createdAt": now_iso(), **payload}
        self.store.enqueue_notification(event, json.dumps(body))
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

    def _deliver(self, item) -> None:
        body = json.loads(item.payload)
        body["id"] = f"evt_{item.id}"
        # post_json serialises with json.dumps too, so these are exactly the bytes sent.
        raw = json.dumps(body).encode()
        headers = {
            SIGNATURE_HEADER: sign(self.secret, raw),
            "X-Gatehouse-Event": item.event,
            "X-Gatehouse-Delivery": str(item.id),
        }
        error = None
        try:
            response = self.client.post_json(
                self.url, body, headers=headers, what="notification webhook"
            )
            if not 200 <= response.status < 300:
                error = f"HTTP {response.status}"
        except RegistrationError as exc:
            error = exc.detail
        if error is None:
            self.store.finish_notification(item.id, delivered=True)
            self.store.audit(
                "notifier",
                "notification.delivered",
                "notification",
                str(item.id),
                {"event": item.event, "attempts": item.attempts},
            )
            return
        if item.attempts >= MAX_ATTEMPTS:
            self.store.finish_notification(item.id, delivered=False, error=error)
            self.store.audit(
                "notifier",
                "notification.abandoned",
                "notification",
                str(item.id),
                {"event": item.event, "attempts": item.attempts, "error": error},
            )
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
                "attempts": item.attempts,
                "error": error,
                "retryAt": now_iso(retry),
            },
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
    """Return the notifier of the configured webhook (settings `config`), or None without one."""
    url = config.notifications.webhook_url
    if not url:
        return None
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
    return Notifier(store, url, os.environ["GATEHOUSE_WEBHOOK_SECRET"], client)
