""""Sign in with …" through an OpenID Connect provider (Authlib's Flask client)."""

from __future__ import annotations

import os

from authlib.integrations.flask_client import OAuth
from flask import Flask

oauth = OAuth()


def init_app(app: Flask) -> None:
    """Register the identity provider of `[gates.signin.oidc]` when one is configured."""
    oauth.init_app(app)
    config = app.config["GATEHOUSE"]["gates"]["signin"]["oidc"]
    if not config["server_metadata_url"]:
        return
    oauth.register(
        "idp",
        client_id=config["client_id"],
        client_secret=os.environ.get("GATEHOUSE_OIDC_CLIENT_SECRET"),
        server_metadata_url=config["server_metadata_url"],
        client_kwargs={"scope": config["scope"], "code_challenge_method": "S256", "timeout": 10},
        overwrite=True,
    )
