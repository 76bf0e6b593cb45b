"""Operator-facing routes: the health check and the landing page."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template

from .context import base_url, get_store, settings

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """Answer 200 when the database is reachable, 503 otherwise."""
    store = get_store()
    try:
        ok = store.ping()
    except store.Error:
        current_app.logger.exception("health check: database unreachable")
        ok = False
    if not ok:
        return jsonify(status="error", detail="database unreachable"), 503
    return jsonify(status="ok")


@bp.get("/")
def index():
    """Show what this service is and the one URL an LMS administrator needs."""
    return render_template(
        "index.html",
        tool=settings().tool,
        registration_url=base_url() + "/lti/register",
    )
