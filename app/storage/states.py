"""The registration state machine and the payment order: one table each, read by the store.

Every state-changing UPDATE a store runs carries `WHERE state IN (<from-states>)` taken from
`TRANSITIONS`; a transition the table does not allow changes nothing and the store says so.
The README's table and the console's are generated from `TRANSITIONS` (`transition_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RegistrationState(StrEnum):
    """The states a registration attempt moves through."""

    PENDING = "pending"
    REGISTERING = "registering"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    # The worker stopped while the LMS was answering: whether it registered is unknown.
    UNKNOWN = "unknown"


OPEN_STATES = (RegistrationState.PENDING,)
FINAL_STATES = (
    RegistrationState.COMPLETED,
    RegistrationState.FAILED,
    RegistrationState.EXPIRED,
    RegistrationState.UNKNOWN,
)


class TransitionRefused(Exception):
    """The attempt is not in a state this transition may start from (another request moved it)."""


@dataclass(frozen=True)
class Transition:
    """A named move: from any of `sources` to `target`, and what makes it happen."""

    name: str
    sources: tuple[RegistrationState, ...]
    target: RegistrationState
    when: str


S = RegistrationState
TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        Transition(
            "claim",
            (S.PENDING,),
            S.REGISTERING,
            "every gate is passed and the registration is about to be sent to the LMS, once",
        ),
        Transition(
            "expire",
            (S.PENDING,),
            S.EXPIRED,
            "the attempt outlived `registration.expires_in` before it was sent",
        ),
        Transition(
            "fail",
            (S.PENDING, S.REGISTERING),
            S.FAILED,
            "Gatehouse or the LMS refused the registration (its configuration, a policy, the "
            "LMS's answer)",
        ),
        Transition(
            "outcome_unknown",
            (S.REGISTERING,),
            S.UNKNOWN,
            "the registration reached the LMS but no usable answer came back (or the worker "
            "stopped)",
        ),
        Transition(
            "recover",
            (S.REGISTERING,),
            S.REGISTERING,
            "a worker takes over an attempt a dead worker left in registering",
        ),
        Transition(
            "resolve",
            (S.UNKNOWN,),
            S.REGISTERING,
            "an owner types in the client ID the LMS shows, in the console",
        ),
        Transition(
            "complete",
            # From unknown too: a slow worker's answer that arrives after recovery gave up on
            # it still holds the client_id the LMS granted, and is never thrown away.
            (S.REGISTERING, S.UNKNOWN),
            S.COMPLETED,
            "the LMS's answer is stored as a platform",
        ),
    )
}
del S


def sources(name: str) -> tuple[str, ...]:
    """Return the states the named transition may start from (for `WHERE state IN (...)`)."""
    return tuple(str(state) for state in TRANSITIONS[name].sources)


def target(name: str) -> str:
    """Return the state the named transition ends in."""
    return str(TRANSITIONS[name].target)


def ending_in(state: str) -> str:
    """Return the name of the transition that ends an attempt in `state` (failed, unknown…)."""
    names = [t.name for t in TRANSITIONS.values() if t.target == state]
    if len(names) != 1:
        raise ValueError(f"no single transition ends in {state!r}")
    return names[0]


def transition_rows() -> list[tuple[str, tuple[str, ...], str, str]]:
    """Return (transition, from-states, to, when) rows: what the README and the console show."""
    return [(t.name, sources(t.name), target(t.name), t.when) for t in TRANSITIONS.values()]


def transition_table_markdown() -> str:
    """Return the transition table as the README prints it."""
    lines = ["| Transition | From | To | When |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{name}` | {', '.join(f'`{s}`' for s in froms)} | `{to}` | {when} |"
        for name, froms, to, when in transition_rows()
    ]
    return "\n".join(lines)


class PaymentStatus(StrEnum):
    """A Checkout Session's status, in the only order it may move (Stripe does not order events)."""

    OPEN = "open"
    CANCELLED = "cancelled"
    # Stripe could not be reached or refused to open a session: nothing was charged, and the
    # row (under a Gatehouse-made id, not a Stripe session) tells the waiting LMS frame so.
    UNAVAILABLE = "unavailable"
    EXPIRED = "expired"
    FAILED = "failed"
    PAID = "paid"
    # Stripe says paid, but not the amount, currency or price Gatehouse asked: never settles.
    MISMATCH = "mismatch"


# A payment only moves up this ranking (or stays, to record an amount): a late
# `checkout.session.completed` with `payment_status=unpaid` never turns paid back into open.
PAYMENT_RANK = {
    PaymentStatus.OPEN: 0,
    PaymentStatus.CANCELLED: 1,
    PaymentStatus.UNAVAILABLE: 1,
    PaymentStatus.EXPIRED: 2,
    PaymentStatus.FAILED: 2,
    PaymentStatus.PAID: 3,
    PaymentStatus.MISMATCH: 3,  # as final as paid: neither turns into the other
}


def payment_sources(status: str) -> tuple[str, ...]:
    """Return the statuses a payment may move to `status` from: lower ones, and itself."""
    rank = PAYMENT_RANK[PaymentStatus(status)]
    return tuple(str(s) for s, r in PAYMENT_RANK.items() if r < rank or s == PaymentStatus(status))
