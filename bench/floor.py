"""The floor: a Dynamic Registration doing only the unavoidable work, to compare Gatehouse with."""

import os
import sqlite3
from contextlib import closing

import requests
from flask import Flask, request

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
CLOSE = "<script>parent.postMessage({subject: 'org.imsglobal.lti.close'}, '*')</script>"
# What a launch needs of a registration (bench/launch_floor.py), and the logins awaiting theirs.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS platforms (issuer, client_id, deployment_id, auth_url, jwks_uri, "
    "UNIQUE (issuer, client_id)); CREATE TABLE IF NOT EXISTS states (state PRIMARY KEY, nonce, "
    "issuer, client_id, expires_at)"
)
app = Flask(__name__)


def connect(path: str | None = None):
    """Open the database the way Gatehouse does: WAL, synchronous NORMAL, a busy timeout.

    The file is made before the workers start (bench/servers.py): switching a new file to WAL
    needs it to itself, and SQLite answers "locked" at once, busy timeout or not, to a second
    connection doing the same, so two workers' first registrations could fail.
    """
    path = path or os.environ["FLOOR_DATABASE"]
    conn = sqlite3.connect(path, isolation_level=None, timeout=15)
    conn.executescript(f"PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; {SCHEMA}")
    return conn


@app.get("/lti/register")
def register():
    """GET the platform's configuration, POST the registration, insert one row, close."""
    config = requests.get(request.args["openid_configuration"], timeout=10).json()
    tool = request.host_url.rstrip("/")
    body = {
        "application_type": "web",
        "response_types": ["id_token"],
        "client_name": "Floor",
        "grant_types": ["implicit", "client_credentials"],
        "redirect_uris": [tool + "/launch"],
        "initiate_login_uri": tool + "/login",
        "jwks_uri": tool + "/keys",
        "token_endpoint_auth_method": "private_key_jwt",
        TOOL_CONFIGURATION: {
            "domain": request.host,
            "target_link_uri": tool + "/launch",
            "claims": ["iss"],
            "messages": [{"type": "LtiResourceLinkRequest"}],
        },
    }
    answer = requests.post(
        config["registration_endpoint"],
        json=body,
        timeout=10,
        headers={"Authorization": "Bearer " + request.args["registration_token"]},
    )
    granted = answer.raise_for_status() or answer.json()
    with closing(connect()) as conn:
        conn.execute(
            "INSERT INTO platforms VALUES (?, ?, ?, ?, ?)",
            (
                config["issuer"],
                granted["client_id"],
                granted[TOOL_CONFIGURATION]["deployment_id"],
                config["authorization_endpoint"],
                config["jwks_uri"],
            ),
        )
    return CLOSE
