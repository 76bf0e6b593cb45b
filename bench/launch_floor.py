"""The launch floor: the least a correct tool does for an LTI 1.3 launch, to compare Gatehouse with.

The floor's registration (bench/floor.py) stored the platform; here the login stores a state and
nonce and redirects to the LMS, and the launch verifies the RS256 id_token against the LMS's key
set (fetched once per worker), checks the claims, consumes the state once and redirects to the
tool. Same database settings as the floor's registration, one connection per thread.
"""

import os
import secrets
import threading
import time
from urllib.parse import urlencode

import requests
from flask import Flask, redirect, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bench import floor
from bench.floor import connect

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPES = ("LtiResourceLinkRequest", "LtiDeepLinkingRequest")
local, key_sets = threading.local(), {}
app = Flask(__name__)
app.add_url_rule("/lti/register", view_func=floor.register)  # the floor's registration


def db():
    """Return this thread's connection."""
    if not hasattr(local, "conn"):
        local.conn = connect()
    return local.conn


@app.route("/login", methods=["GET", "POST"])
def login():
    """Store a new state and nonce for the platform, and send the browser to its LMS."""
    form = request.values
    row = (
        db()
        .execute(
            "SELECT auth_url FROM platforms WHERE issuer = ? AND client_id = ?",
            (form["iss"], form["client_id"]),
        )
        .fetchone()
    )
    if row is None:
        return "unknown platform", 400
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    db().execute(
        "INSERT INTO states VALUES (?, ?, ?, ?, ?)",
        (state, nonce, form["iss"], form["client_id"], time.time() + 600),
    )
    query = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post"}
    query.update(prompt="none", client_id=form["client_id"], login_hint=form["login_hint"])
    query.update(redirect_uri=request.host_url + "launch", state=state, nonce=nonce)
    query["lti_message_hint"] = form.get("lti_message_hint", "")
    return redirect(row[0] + "?" + urlencode(query))


@app.post("/launch")
def launch():
    """Consume the state once, verify the id_token and its claims, and redirect to the tool."""
    row = (
        db()
        .execute(
            "DELETE FROM states WHERE state = ? AND expires_at > ? "
            "RETURNING nonce, issuer, client_id",
            (request.form["state"], time.time()),
        )
        .fetchone()
    )
    if row is None:
        return "unknown or used state", 401
    nonce, issuer, client_id = row
    (jwks_uri,) = (
        db()
        .execute(
            "SELECT jwks_uri FROM platforms WHERE issuer = ? AND client_id = ?", (issuer, client_id)
        )
        .fetchone()
    )
    if jwks_uri not in key_sets:
        key_sets[jwks_uri] = KeySet.import_key_set(requests.get(jwks_uri, timeout=10).json())
    try:
        claims = jwt.decode(request.form["id_token"], key_sets[jwks_uri], ["RS256"]).claims
    except (JoseError, ValueError):
        return "bad signature", 401
    aud = claims.get("aud")
    if not (
        claims.get("iss") == issuer
        and client_id in ([aud] if isinstance(aud, str) else aud or [])
        and claims.get("exp", 0) > time.time()
        and claims.get("nonce") == nonce
        and claims.get(LTI + "version") == "1.3.0"
        and claims.get(LTI + "message_type") in MESSAGE_TYPES
        and claims.get(LTI + "deployment_id")
    ):
        return "invalid claims", 401
    return redirect(os.environ["FLOOR_TOOL_URL"], code=303)
