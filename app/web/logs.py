"""Structured logs: every line carries the request id; JSON lines with `[logging] format`."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a proxy's request id only when it looks like one (no log injection).
SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = g.get("request_id", "-") if has_request_context() else "-"
    return record


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def init_app(app: Flask) -> None:
    """Configure the app's loggers and the request id of each request."""
    config = app.config["GATEHOUSE"].logging
    # Every record, whichever logger made it, carries the request id.
    logging.setLogRecordFactory(_record_with_request_id)
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if config.format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logger = logging.getLogger("app")
    logger.handlers[:] = [handler]
    logger.setLevel(config.level.upper())
    logger.propagate = True  # tests and host loggers still see the records

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if SAFE_ID.match(given) else secrets.token_hex(8)

    @app.after_request
    def _echo_request_id(response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
        return response
