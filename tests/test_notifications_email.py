"""E-mail to the tool's owner: a real SMTP server (aiosmtpd) on loopback receives what is sent.

A registration stored inactive, and a launch refused because of one, queue an e-mail beside the
webhook; the notifier's thread sends it through `[notifications.email]`, retrying when the
server is down.
"""

import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from support.postgres import run_sql

from app.settings import ConfigError
from app.testing import LoopbackServer, free_port

OWNER = "owner@tool.example"
SENDER = "gatehouse@tool.example"


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(
            (envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 OK"

    def wait(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


def email_settings(port, **extra):
    return {
        "notifications": {
            "email": {
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "security": "none",
                "sender": SENDER,
                **extra,
            }
        }
    }


def test_a_registration_awaiting_activation_is_e_mailed_with_the_console_link(
    make_app, simulator, smtp
):
    app = make_app(email_settings(smtp.port, to=[OWNER]))
    store = app.extensions["gatehouse.store"]
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("moodle")
        report = sim.register(server.url + "/lti/register")
        assert report.ok, report.render()
        ((recipients, message),) = smtp.wait(1)
        base_url = server.url
    platform = store.find_platform(sim.issuer, report.client_id)
    assert recipients == [OWNER]
    assert message["From"] == SENDER and message["To"] == OWNER
    assert "awaits activation" in message["Subject"]
    body = message.get_content()
    assert f"Activate it in one click: {base_url}/console/platforms/{platform.id}" in body
    assert report.client_id in body
    # The worker records the delivery once the SMTP server has answered: a moment after the
    # message arrived.
    deadline = time.monotonic() + 10
    while not (delivered := store.list_audit(action="notification.delivered")[0]):
        assert time.monotonic() < deadline, "the delivery was never recorded"
        time.sleep(0.05)
    assert [(e.detail["event"], e.detail["channel"]) for e in delivered] == [
        ("platform.awaiting_activation", "email")
    ]


def test_without_to_the_owner_accounts_get_the_e_mail(make_app, simulator, smtp):
    app = make_app(email_settings(smtp.port))
    store = app.extensions["gatehouse.store"]
    owner = store.create_account("boss@tool.example", "Boss")
    store.set_owner(owner.id, True)
    store.create_account("admin@school.example", "Not an owner")
    with LoopbackServer(app, "localhost") as server:
        assert simulator("generic").register(server.url + "/lti/register").ok
        ((recipients, _message),) = smtp.wait(1)
    assert recipients == ["boss@tool.example"]


def test_an_active_registration_sends_no_e_mail(make_app, simulator, smtp):
    app = make_app(
        {**email_settings(smtp.port, to=[OWNER]), "registration": {"auto_activate": True}}
    )
    with LoopbackServer(app, "localhost") as server:
        assert simulator("generic").register(server.url + "/lti/register").ok
        time.sleep(0.5)
    assert smtp.messages == []


def test_a_launch_of_an_inactive_platform_e_mails_the_owner_once_an_hour(make_app, simulator, smtp):
    app = make_app(email_settings(smtp.port, to=[OWNER]))
    with LoopbackServer(app, "localhost") as server:
        sim = simulator("generic")
        report = sim.register(server.url + "/lti/register")
        smtp.wait(1)
        first = sim.launch(report.client_id)
        assert "being set up for your school" in first.text
        assert "Its provider has been told" in first.text
        second = sim.launch(report.client_id)
        assert "being set up for your school" in second.text
        messages = smtp.wait(2)
        time.sleep(0.5)  # a second launch e-mail would arrive meanwhile
    assert len(smtp.messages) == 2
    _recipients, launched = messages[1]
    assert "someone is waiting for you to activate" in launched["Subject"]
    assert "/console/platforms/" in launched.get_content()


def test_an_smtp_server_that_is_down_is_retried_and_logged(make_app, simulator, smtp, caplog):
    down = free_port()
    app = make_app(email_settings(down, to=[OWNER], timeout=2))
    store = app.extensions["gatehouse.store"]
    notifier = app.extensions["gatehouse.notifier"]
    with LoopbackServer(app, "localhost") as server:
        assert simulator("generic").register(server.url + "/lti/register").ok
        deadline = time.monotonic() + 10
        while not store.list_audit(action="notification.retry")[0]:
            assert time.monotonic() < deadline, "the failed e-mail was not scheduled again"
            time.sleep(0.05)
    (retry,) = store.list_audit(action="notification.retry")[0]
    assert retry.detail["channel"] == "email" and f"127.0.0.1:{down}" in retry.detail["error"]
    assert any(
        "notification" in r.getMessage() and "email" in r.getMessage() for r in caplog.records
    )

    # The server is back (here: the test's own, on its port); the next attempt delivers.
    notifier.stop()
    notifier.mailer = type(notifier.mailer)(**{**notifier.mailer.__dict__, "port": smtp.port})
    run_sql(
        store,
        "UPDATE notifications SET next_attempt_at = '2000-01-01T00:00:00Z' "
        "WHERE delivered_at IS NULL",
    )
    assert notifier.deliver_due() == 1
    assert len(smtp.wait(1)) == 1


@pytest.mark.parametrize(
    ("email", "env", "message"),
    [
        ({"smtp_host": "smtp.example"}, {}, "notifications.email.sender"),
        ({"smtp_host": "smtp.example", "sender": "not an address"}, {}, "sender"),
        (
            {"smtp_host": "smtp.example", "sender": SENDER, "username": "u"},
            {},
            "GATEHOUSE_SMTP_PASSWORD",
        ),
        ({"smtp_host": "smtp.example", "sender": SENDER, "security": "tls"}, {}, "security"),
        ({"smtp_host": "smtp.example", "sender": SENDER, "to": ["nobody"]}, {}, "to[0]"),
    ],
)
def test_bad_e_mail_settings_are_refused_naming_the_key(make_app, monkeypatch, email, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        make_app({"notifications": {"email": email}})
