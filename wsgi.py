"""WSGI entry point: `gunicorn wsgi:app`."""

import gc

from app import create_app

app = create_app()
# What start-up made (modules, the app, its settings and templates) lives as long as the worker:
# the cyclic collector need not scan it again at every full collection while serving. Its
# garbage is collected first, so none of it is kept for good.
gc.collect()
gc.freeze()
