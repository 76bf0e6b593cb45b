"""Gatehouse with one extra route, `GET /bench/ok` answering "ok", to compare `/lti/keys` with.

The bare route runs through everything Gatehouse puts around every request (proxy fix, request
ids, security headers, logging), so the comparison isolates what the key-set view itself costs.
"""

from app import create_app

app = create_app()


@app.get("/bench/ok")
def ok():
    """Answer "ok" and do nothing else."""
    return "ok"
