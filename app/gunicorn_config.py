"""Gunicorn settings: `gunicorn -c python:app.gunicorn_config wsgi:app` (Procfile, make run)."""

import os
import sys

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
accesslog = "-"
# %(U)s is the path without the query string: registration tokens travel in the query.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" [%({x-request-id}o)s]'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def post_worker_init(worker) -> None:
    """Print what to do next once the last first worker serves, when GATEHOUSE_BANNER asks."""
    # The last worker of the first round: by then the others have booted (or nearly), so the
    # banner is not buried under their start-up warnings; a replaced worker never repeats it.
    if os.environ.get("GATEHOUSE_BANNER") != "1" or worker.age != worker.cfg.workers:
        return
    host, port = worker.sockets[0].getsockname()[:2]
    sys.stderr.write(banner(host, port))
    sys.stderr.flush()


def banner(host: str, port: int) -> str:
    """Return the short what-to-do-next text for a server listening on host:port."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding to it
        host = "127.0.0.1"
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    # The command as typed from the working directory, e.g. .venv/bin/gatehouse.
    command = os.path.join(os.path.dirname(sys.executable), "gatehouse")
    if command.startswith(os.getcwd() + os.sep):
        command = os.path.relpath(command)
    return (
        f"\nGatehouse is ready: {base}/\n"
        "  Try a registration as an LMS would (profiles: generic, canvas, moodle, brightspace,"
        " sakai):\n"
        f"    {command} simulate --profile canvas --url {base}/lti/register\n"
        "  Create an owner account (it asks for a password), then sign in to the console:\n"
        f"    {command} user create --owner --email you@example.com\n"
        f"    {base}/console/\n\n"
    )
