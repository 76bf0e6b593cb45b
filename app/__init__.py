"""Gatehouse: LTI 1.3 Dynamic Registration for a tool, as a small Flask service.

The layers, each folder's job in its own docstring: `web/` (blueprints by audience and the web
plumbing) calls `domain/` (use cases, no Flask), which calls `storage/` (the store) and `lti/`
(the protocol core). `create_app` below wires them; tests/test_hygiene.py and the import-linter
contracts in pyproject.toml keep the imports running one way.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from . import storage
from .domain import keys, sealing
from .settings import load_settings
from .web import logs, proxies

csrf = CSRFProtect()


def _top_level(folder: str) -> str:
    """Return templates/ or static/ relative to the package: inside it if installed, else beside."""
    # The checkout keeps them at the top level (the design card); the wheel maps them into app/.
    inside = os.path.join(os.path.dirname(__file__), folder)
    return folder if os.path.isdir(inside) else f"../{folder}"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings from file and environment, storage, keys, blueprints."""
    test_config = dict(test_config or {})
    app = Flask(
        __name__,
        instance_path=storage.instance_path(),
        template_folder=_top_level("templates"),
        static_folder=_top_level("static"),
    )
    from .web.templating import TemplateEnvironment

    # Before anything asks for app.jinja_env, which Flask makes on first use.
    app.jinja_environment = TemplateEnvironment
    app.config.from_mapping(
        DATABASE_URL=os.environ.get("DATABASE_URL"),
        SECRET_KEY=os.environ.get("SECRET_KEY"),
        # Seals the tool's private keys and stored secrets at rest: see app/domain/sealing.py.
        ENCRYPTION_KEY=os.environ.get(sealing.ENV),
        MAX_CONTENT_LENGTH=1024 * 1024,
        # Gate pages live in the LMS's cross-site frame: see web.sessions.FrameSessionInterface.
        SESSION_COOKIE_NAME="gatehouse_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_PARTITIONED=True,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
    )
    settings = load_settings(overrides=test_config.pop("SETTINGS", None))
    app.config.update(test_config)
    app.config["GATEHOUSE"] = settings
    logs.init_app(app)

    from .web.context import init_store

    init_store(app)
    store = app.extensions["gatehouse.store"]
    # Refuses to start when sealed secrets do not open; seals a plain database's secrets.
    try:
        sealer = sealing.Sealer.from_value(app.config["ENCRYPTION_KEY"])
        sealed = sealing.seal_at_rest(store, sealer)
    except sealing.SealError as exc:
        store.close()
        raise sealing.SealError(f"Gatehouse refuses to start: {exc}") from None
    if sealed:
        app.logger.warning("Sealed %d stored secrets with %s", sealed, sealing.ENV)
    elif not sealer.active and not (app.testing or app.debug):
        app.logger.warning(
            "%s is not set: the tool's private keys and stored secrets are kept in the clear "
            "in the database. Make a key with `%s` and set it.",
            sealing.ENV,
            sealing.NEW_KEY_COMMAND,
        )
    app.extensions["gatehouse.sealer"] = sealer
    if not app.config["SECRET_KEY"]:
        # Kept in the database so every worker and every restart agree on it.
        app.config["SECRET_KEY"] = sealer.open(
            store.get_or_create_setting(
                "secret_key", lambda: sealer.seal(secrets.token_urlsafe(48))
            )
        )
        app.logger.warning("SECRET_KEY is not set; using a key generated and kept in the database")
    store.ensure_tool_key(keys.generate_sealed(sealer))
    app.extensions["gatehouse.jwks"] = keys.KeySetCache(store, sealer)

    if settings.security.allow_insecure_platforms:
        app.logger.warning(
            "security.allow_insecure_platforms is ON: Gatehouse will contact platforms over plain "
            "http and on private and loopback addresses. Never use this in production."
        )
    proxies.init_app(app)

    # Imported here, not at the top: the CLI imports this package without serving pages.
    from .domain.terms import render_terms
    from .web import (
        api,
        console,
        errors,
        footer,
        gates,
        i18n,
        launch,
        limits,
        lms,
        login,
        oidc,
        ops,
        security,
        templating,
        workers,
    )
    from .web.sessions import FrameSessionInterface

    app.session_interface = FrameSessionInterface()
    csrf.init_app(app)
    csrf.exempt(gates.views.stripe_webhook)
    csrf.exempt(lms.register)  # the LMS itself may POST the initiation, cross-site
    csrf.exempt(launch.bp)  # the LMS POSTs logins and launches, cross-site, by design
    csrf.exempt(api.bp)  # bearer keys, no cookies
    limits.init_app(app)
    workers.init_notifications(app, store)
    workers.init_maintenance(app)
    login.init_app(app)
    oidc.init_app(app)
    if "terms" in settings.registration.gates:
        app.extensions["gatehouse.terms_html"] = render_terms(settings.gates.terms.path)
    security.init_app(app)
    i18n.init_app(app)
    templating.init_app(app)
    footer.init_app(app)
    errors.init_app(app)
    launch.init_app(app)
    app.register_blueprint(lms.bp)
    app.register_blueprint(launch.bp)
    app.register_blueprint(gates.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(console.bp)
    return app
