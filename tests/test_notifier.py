"""The webhook notifier's delivery thread: a stop is final for the thread it stops."""

import json
import threading
import time
from types import SimpleNamespace

from app.domain.events import Notifier


class SlowWebhook:
    """An owner's webhook that holds the first delivery until released (the test's outbound
    client: the thread's life is under test here, not HTTP, which test_api covers)."""

    def __init__(self):
        self.release = threading.Event()
        self.posted = []

    def post_json(self, url, body, headers=None, what=None):
        self.posted.append(body["type"])
        if len(self.posted) == 1:
            self.release.wait(10)
        return SimpleNamespace(status=200)

    def wait_for(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.posted) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.posted


def test_a_stop_whose_join_times_out_still_ends_the_thread_after_its_delivery(store):
    webhook = SlowWebhook()
    notifier = Notifier(store, "https://owner.example/hook", "secret", webhook, poll=0.05)
    try:
        notifier.enqueue("registration.completed", {"type": "registration.completed"})
        assert webhook.wait_for(1) == ["registration.completed"]
        stopped_thread = notifier._thread

        assert notifier.stop(timeout=0.1) is False  # still inside the slow delivery
        # Queued behind the stop (as another worker would): the stopped thread must not take it.
        store.enqueue_notification("platform.activated", json.dumps({"type": "platform.activated"}))
        webhook.release.set()
        stopped_thread.join(5)

        assert not stopped_thread.is_alive()
        time.sleep(0.2)  # several polls: nothing is delivered once the thread has ended
        assert webhook.posted == ["registration.completed"]

        # The next event starts a fresh thread, which delivers what is waiting.
        notifier.enqueue("platform.deactivated", {"type": "platform.deactivated"})
        assert sorted(webhook.wait_for(3)) == [
            "platform.activated",
            "platform.deactivated",
            "registration.completed",
        ]
        assert notifier.stop() is True
    finally:
        webhook.release.set()
        notifier.stop()
