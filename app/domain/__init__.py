"""Use cases: what Gatehouse does, with no Flask anywhere below this folder.

Registration (its steps, completing, failing, resolving), the gates, launches, payments, terms,
who may register, accounts, API keys, the tool's keys, events and notifications, housekeeping,
export and import, and service tokens. Each use case takes what it needs as parameters (the
store, the settings, an outbound client, the event log) or one `Services` bundle
(app/domain/services.py) that the web layer builds per request in one place
(app/web/context.py). The store (app/storage) and the protocol core (app/lti) are below; the
blueprints (app/web) are above, and nothing here imports them.
"""
