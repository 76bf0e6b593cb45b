"""The bearer-key API under /api and /admin, with the hosted service's paths and JSON shapes.

`blueprint.py` holds the blueprint and what every API request passes (the key, the envelope);
each other module adds its routes to it: platforms, deployments, invitations and settings
(`platforms.py`), pending registrations (`registrations.py`), attempts (`attempts.py`), service
tokens and deep linking (`services.py`), and the OpenAPI document (`openapi.py`). The JSON they
share with the console is in app/web/api_json.py.
"""

from . import attempts, openapi, platforms, registrations, services  # noqa: F401 - their routes
from .blueprint import bp

__all__ = ["bp"]
