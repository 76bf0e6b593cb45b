""" "Sign in with …" through an OpenID Connect provider (Authlib's Flask client)."""

from __future__ import annotations

import os

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app

EXTENSION = "gatehouse.oidc"


def init_app(app: Flask) -> None:
    """Register the identity provider of `[gates.signin.oidc]` when one is configured.

    Each app gets its own Authlib registry: a registry caches its clients for good, so a shared
    one would keep talking to the first app's provider.
    """
    config = app.config["GATEHOUSE"].gates.signin.oidc
    if not config.server_metadata_url:
        return
    oauth = OAuth(app)
    app.extensions[EXTENSION] = oauth.register(
        "idp",
        client_id=config.client_id,
        client_secret=os.environ.get("GATEHOUSE_OIDC_CLIENT_SECRET"),
        server_metadata_url=config.server_metadata_url,
        client_kwargs={"scope": config.scope, "code_challenge_method": "S256", "timeout": 10},
    )


def identity_provider():
    """Return the current app's OpenID Connect client (only when one is configured)."""
    return current_app.extensions[EXTENSION]
