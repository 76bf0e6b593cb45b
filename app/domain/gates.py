"""Approval gates: pages an LMS admin passes before Gatehouse completes a registration.

Each gate answers one question, "is it satisfied for this registration?", from records in
the store, so progress never depends on a cookie and a flow can move between windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..lti.text import N_
from ..settings import Settings
from ..storage import Registration
from .payments import PAID


@dataclass(frozen=True)
class Gate:
    """One gate: its name, the label of its step, and the view that handles it."""

    name: str
    label: str
    endpoint: str

    def satisfied(self, store, registration: Registration, settings: Settings) -> bool:
        """Return True when this registration has passed the gate."""
        raise AssertionError("every gate defines satisfied()")  # pragma: no cover


class SigninGate(Gate):
    """Passed once an account is bound to the registration."""

    def satisfied(self, store, registration, settings):
        return registration.account_id is not None


class TermsGate(Gate):
    """Passed once the current version of the terms was accepted for this registration."""

    def satisfied(self, store, registration, settings):
        version = settings.gates.terms.version
        return any(terms.version == version for terms in store.terms_for(registration.id))


class PaymentGate(Gate):
    """Passed once Stripe confirmed a payment (verified webhook or server-side retrieval)."""

    def satisfied(self, store, registration, settings):
        return any(p.status == PAID for p in store.payments_for(registration.id))


GATES = {
    "signin": SigninGate("signin", N_("Sign in"), "gates.signin"),
    "terms": TermsGate("terms", N_("Terms"), "gates.terms"),
    "payment": PaymentGate("payment", N_("Payment"), "gates.payment"),
}


def configured(settings: Settings) -> list[Gate]:
    """Return the gates in the configured order."""
    return [GATES[name] for name in settings.registration.gates]


def next_gate(store, registration: Registration, settings: Settings) -> Gate | None:
    """Return the first gate not yet passed, or None when all are."""
    for gate in configured(settings):
        if not gate.satisfied(store, registration, settings):
            return gate
    return None


@dataclass(frozen=True)
class Step:
    """Where a gate sits in the flow, for the step indicator."""

    number: int
    total: int
    label: str

    def __str__(self) -> str:
        return f"Step {self.number} of {self.total}: {self.label}"


def step_of(name: str, settings: Settings) -> Step:
    """Return the step indicator of a gate."""
    gates = configured(settings)
    index = [g.name for g in gates].index(name)
    return Step(index + 1, len(gates), gates[index].label)


@dataclass(frozen=True)
class StepMark:
    """One entry of the step indicator: a configured gate, passed, current or still to come."""

    label: str
    state: str  # "done", "current" or "next"


def steps_of(name: str, settings: Settings) -> list[StepMark]:
    """Return the step indicator's entries on gate `name`: exactly the configured gates, in order.

    The gates before the current one are done: a gate page is only shown for the first gate not
    yet passed (`next_gate`), so every gate before it is passed.
    """
    current = step_of(name, settings).number
    return [
        StepMark(gate.label, "done" if n < current else "current" if n == current else "next")
        for n, gate in enumerate(configured(settings), start=1)
    ]


def approvals_of(store, reg_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Return how each attempt was approved, in a fixed number of queries however many.

    Each attempt gets `account` (who passed the gates), `terms` (the latest acceptance),
    `payment` (the latest paid one), `latest_payment` (the latest in any status) and
    `completed_by` (the actor of its latest registration.completed audit line).
    """
    ids = list(dict.fromkeys(reg_ids))
    accounts = store.accounts_of(ids)
    completers = store.latest_actors("registration.completed", ids)
    found = {
        rid: {
            "account": accounts.get(rid),
            "terms": None,
            "payment": None,
            "latest_payment": None,
            "completed_by": completers.get(rid),
        }
        for rid in ids
    }
    for terms in store.terms_for(*ids):  # newest first: the first one seen is the latest
        entry = found[terms.registration_id]
        entry["terms"] = entry["terms"] or terms
    for payment in store.payments_for(*ids):
        entry = found[payment.registration_id]
        entry["latest_payment"] = entry["latest_payment"] or payment
        if payment.status == PAID:
            entry["payment"] = entry["payment"] or payment
    return found


def approval_of(store, reg_id: str) -> dict[str, Any]:
    """Return who approved an attempt, the terms they accepted, and the payment made.

    What `approvals_of` says of it, without the audit log's completer it does not show (the
    close page of every registration asks).
    """
    account = store.accounts_of([reg_id]).get(reg_id)
    terms = store.terms_for(reg_id)  # newest first
    paid = [p for p in store.payments_for(reg_id) if p.status == PAID]  # newest first
    return {
        "account": account,
        "terms": terms[0] if terms else None,
        "payment": paid[0] if paid else None,
    }
