"""The web layer: blueprints by audience, and the plumbing every request passes.

Blueprints, each a module or package exporting `bp` with its routes and forms: `lms` (the
registration URL and the key set), `gates` (the gate pages), `launch` (login and launch), `api`
(the bearer-key API), `console` (the owner console), `ops` (health check, landing page). No
blueprint imports another's module: what two share lives in a plumbing module here or in
app/domain.

Plumbing: `context` (settings, base URL, the use cases' Services per request), `dialog` (the
close and error pages of the LMS dialog), `api_json` (the API's envelope and JSON shapes, which
the console reuses), `security` (headers, framing, refused input), `sessions` (the frame
session cookie), `errors` (error handlers), `templating` (filters and globals), `login`
(Flask-Login, password hashes), `limits` (Flask-Limiter), `logs` (request ids), `oidc`
(Authlib's client), `workers` (the webhook and housekeeping threads).
"""
