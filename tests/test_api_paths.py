"""What the README promises about the API's paths: /admin is mirrored under /api (the hosted
service's SDK paths) except registration attempts, because /api/registrations/<id> is the
pre-approval flow's pending registration, a different resource."""

from datetime import UTC, datetime, timedelta

from app.domain import apikeys
from app.storage import now_iso

BASE = "https://localhost"


def rules_by_path(app):
    """Return {path: methods} for every /admin and /api route, with placeholders unnamed."""
    paths = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/admin/", "/api/")):
            path = "/".join("<>" if part.startswith("<") else part for part in rule.rule.split("/"))
            paths.setdefault(path, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return paths


def test_every_admin_path_but_the_attempts_is_also_served_under_api(app):
    paths = rules_by_path(app)
    admin = {path: methods for path, methods in paths.items() if path.startswith("/admin/")}
    attempts = {path for path in admin if path.startswith("/admin/registrations")}
    assert attempts == {"/admin/registrations", "/admin/registrations/<>"}
    assert {"/admin/platforms", "/admin/invitations", "/admin/settings"} <= set(admin)
    for path, methods in admin.items():
        if path in attempts:
            continue
        mirrored = "/api/" + path.removeprefix("/admin/")
        assert paths.get(mirrored) == methods, path
    # Under /api, "registrations" is only the pending registration and its completion.
    assert {path for path in paths if path.startswith("/api/registrations")} == {
        "/api/registrations/<>",
        "/api/registrations/<>/complete",
    }


def test_api_registrations_is_the_pending_registration_and_admin_the_attempt(app):
    store = app.extensions["gatehouse.store"]
    _record, key = apikeys.create(store, "tests")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    earlier = now_iso(datetime.now(UTC) - timedelta(minutes=1))
    expired = store.create_registration("https://lms.example/openid", earlier)

    # Under /api the id names the hosted service's resource: gone once it cannot complete.
    gone = client.get(f"/api/registrations/{expired.id}", base_url=BASE, headers=headers)
    assert gone.status_code == 410
    assert gone.get_json()["details"]["message"] == "REGISTRATION_GONE"
    # Under /admin it names the attempt, readable in any state.
    attempt = client.get(f"/admin/registrations/{expired.id}", base_url=BASE, headers=headers)
    assert attempt.status_code == 200 and attempt.get_json()["state"] == "expired"
    listed = client.get("/admin/registrations", base_url=BASE, headers=headers).get_json()
    assert [r["id"] for r in listed["registrations"]] == [expired.id]
    # No list of attempts under /api, where it would name a second resource.
    assert client.get("/api/registrations", base_url=BASE, headers=headers).status_code == 404
