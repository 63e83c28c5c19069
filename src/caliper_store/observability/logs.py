"""Logging: one JSON object a line off a terminal, and a request id on every line.

The request id lives in a context variable set by the web layer for each request; a filter
copies it onto every record, so lines from deep in the store (a failed read, a 500's traceback)
name the request without anyone passing it down. Nothing here adds a key, an address or an
actor id; those never reach a log call in the first place.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# Outside any request (start-up, the writer thread's batches, the forwarder).
NO_REQUEST = "-"
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)
# A request id a reverse proxy sets (nginx's $request_id is 32 hex digits) is kept when it is
# hex digits and dashes: nothing else, so no client can write an address or an IRI into the logs.
FORWARDED_REQUEST_ID = re.compile(rb"[0-9A-Fa-f-]{8,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(request_id)s %(message)s"
JSON_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}
# uvicorn adds a copy of its messages with terminal colours: not for a log collector.
JSON_LEFT_OUT = (*RESERVED_ATTRS, "color_message")
# Times in UTC, as the store writes every time it keeps.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


# The most of a database error's first line a log keeps.
ERROR_SUMMARY_CHARS = 200


def error_summary(error: BaseException) -> str:
    """An error's type and first line, for a log line.

    Drivers put the failing rows' values on later lines (psycopg's DETAIL, SQLAlchemy's
    parameters), and those can be actor ids: they stay out.
    """
    first_line = str(error).strip().split("\n", 1)[0][:ERROR_SUMMARY_CHARS]
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def new_request_id() -> str:
    """A fresh request id: 16 hex digits, unique enough for a day of any store's traffic."""
    return secrets.token_hex(8)


def request_id_from(header: bytes | None) -> str:
    """The proxy's request id when it is well-formed, else a new one."""
    if header is not None and FORWARDED_REQUEST_ID.fullmatch(header):
        return header.decode("ascii")
    return new_request_id()


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record a handler formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; give it ``request_id``."""
        record.request_id = REQUEST_ID.get()
        return True


def configure_logging(level: str, log_format: str) -> None:
    """Send every logger's records to stderr in the chosen format, with request ids.

    ``auto`` is text on a terminal and JSON otherwise (a service manager, a container, a file).
    Called by each entry point and by each server worker; calling it again replaces the handler.
    """
    is_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    formatter: logging.Formatter
    if is_json:
        formatter = JsonFormatter(
            JSON_FIELDS,
            rename_fields=JSON_RENAMED,
            reserved_attrs=JSON_LEFT_OUT,
            json_ensure_ascii=False,
        )
    else:
        formatter = logging.Formatter(TEXT_FORMAT)
    formatter.converter = time.gmtime
    formatter.default_time_format = TIME_FORMAT
    formatter.default_msec_format = "%s.%03dZ"
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers reach the root handler instead of uvicorn's own text ones.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
