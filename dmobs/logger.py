"""Structured logging: one structlog processor chain for structlog and stdlib.

Every line is one JSON object with ``time`` (ISO-8601 UTC), ``level``,
``event``, ``service``, ``env``, ``traceId`` and ``spanId`` (from the current
OpenTelemetry span), plus whatever the request middleware bound with
``structlog.contextvars`` (``requestId``, ``tenantId``, ``userId``). On a
terminal in development the same chain ends in the console renderer instead.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import structlog
from opentelemetry import trace

_STATIC: dict[str, str] = {"service": "dmobs", "env": "development"}


def add_static_fields(_logger: Any, _name: str, event_dict: dict) -> dict:
    event_dict.setdefault("service", _STATIC["service"])
    event_dict.setdefault("env", _STATIC["env"])
    return event_dict


def add_trace_ids(_logger: Any, _name: str, event_dict: dict) -> dict:
    """The current span's ids; else those the request middleware bound.

    Django logs 4xx/5xx responses (and runserver its access line) after the
    server span has ended; the ids bound for the request still name its trace.
    """
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["traceId"] = format(ctx.trace_id, "032x")
        event_dict["spanId"] = format(ctx.span_id, "016x")
    return event_dict


# The request a thread is serving (set by dmobs.middleware.RequestContextMiddleware):
# the tenant of its log lines is looked up only when a line is written.
CURRENT_REQUEST: ContextVar[Any] = ContextVar("dmobs_current_request", default=None)
_resolving = ContextVar("dmobs_resolving_tenant", default=False)


def add_request_tenant(_logger: Any, _name: str, event_dict: dict) -> dict:
    """``tenantId`` of the current request, when no bound value gave one.

    Resolved on the first line that needs it (a screen usually names its tenant
    first, so no query is made), then cached on the request. The lookup itself
    may log (database instrumentation): those lines go without it.
    """
    if "tenantId" in event_dict or _resolving.get():
        return event_dict
    request = CURRENT_REQUEST.get()
    if request is None:
        return event_dict
    from dmobs.tracing import tenant_ref_for_request

    token = _resolving.set(True)
    try:
        ref = tenant_ref_for_request(request)
    finally:
        _resolving.reset(token)
    if ref:
        event_dict["tenantId"] = ref
    return event_dict


def forget_request(**_kwargs: Any) -> None:
    """``request_finished`` receiver: the response is closed (Django's own lines
    about it are written), so later lines of this thread belong to no request."""
    CURRENT_REQUEST.set(None)


def drop_django_objects(_logger: Any, _name: str, event_dict: dict) -> dict:
    """Django passes the request (or a socket) and a local time string as
    ``extra``; the line already has requestId and time, and their reprs are noise."""
    if "request" in event_dict and not isinstance(event_dict["request"], str | int | float):
        del event_dict["request"]
    event_dict.pop("server_time", None)
    return event_dict


def shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        add_request_tenant,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        add_static_fields,
        add_trace_ids,
        structlog.processors.StackInfoRenderer(),
    ]


def json_formatter() -> logging.Formatter:
    """The machine format: one JSON object per line (stdout in production, LOG_FILE)."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=[
            *shared_processors(),
            structlog.stdlib.ExtraAdder(),
            drop_django_objects,
        ],
    )


def console_formatter() -> logging.Formatter:
    """The same chain, rendered for a person at a terminal."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(),
        ],
        foreign_pre_chain=[
            *shared_processors(),
            structlog.stdlib.ExtraAdder(),
            drop_django_objects,
        ],
    )


def configure_structlog(*, service: str, env: str) -> None:
    """Point structlog at stdlib logging, so both end in the same handlers."""
    _STATIC.update(service=service, env=env)
    structlog.configure(
        processors=[
            *shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def build_logging_config(
    *,
    level: str,
    log_file: str | None,
    service: str,
    env: str,
    debug: bool,
    console: bool | None = None,
) -> dict:
    """Configure structlog and return the stdlib ``LOGGING`` dict for Django.

    Called once from settings (process start). stdlib records from Django and
    libraries go through the same ``ProcessorFormatter`` chain as structlog's
    own. ``console`` (default: DEBUG and stdout is a terminal) picks the
    console renderer for stdout; the file always gets JSON, since a shipper
    reads it.
    """
    configure_structlog(service=service, env=env)
    if console is None:
        console = debug and sys.stdout.isatty()
    handlers: dict[str, dict] = {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "console" if console else "json",
        }
    }
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        # WatchedFileHandler reopens the file after logrotate moves it.
        handlers["file"] = {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": log_file,
            "formatter": "json",
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "dmobs.logger.json_formatter"},
            "console": {"()": "dmobs.logger.console_formatter"},
        },
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": {
            # Django's defaults give "django" and "django.server" handlers of
            # their own (plain text); send them through the same chain instead.
            "django": {"level": "INFO", "handlers": [], "propagate": True},
            "django.server": {"level": "INFO", "handlers": [], "propagate": True},
            # SQL of every query is DEBUG; keep it out unless asked for.
            "django.db.backends": {"level": "INFO"},
            # gunicorn's own loggers go to the root handlers (same chain).
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
    }


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
