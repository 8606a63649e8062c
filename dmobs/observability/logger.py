"""Structured logging: one structlog processor chain for structlog and stdlib.

Every line is one JSON object with ``time`` (ISO-8601 UTC), ``level``,
``event``, ``service``, ``env``, ``traceId`` and ``spanId`` (from the current
OpenTelemetry span), plus the request's ``requestId`` (bound by the request
middleware with ``structlog.contextvars``) and ``userId``/``tenantId`` (read
from the request when the line is written). On a terminal in development the
same chain ends in the console renderer instead.

``LOG_LEVEL`` is the level of every logger: the root, Django's, gunicorn's.
The servers' own access lines (gunicorn's ``gunicorn.access``, runserver's
``django.server``) are dropped: ``dmobs.request`` writes one line per request,
with the path but not the query string, and none for probes and scrapes.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import structlog
from django.utils.functional import empty
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


# The request a thread is serving (set by dmobs.observability.middleware.RequestContextMiddleware,
# cleared on request_started and request_finished).
CURRENT_REQUEST: ContextVar[Any] = ContextVar("dmobs_current_request", default=None)

# Session key holding the signed-in user's only tenant, written at sign-in
# (dmobs.signals.remember_tenant_at_login), so telemetry never queries for it.
TENANT_SESSION_KEY = "_dmobs_tenant_ref"


def loaded_user(request: Any) -> Any:
    """``request.user`` if it is already loaded, else None (never loads it).

    ``AuthenticationMiddleware`` puts a lazy object there; evaluating it reads
    the session and the user from the database. Telemetry must not be the
    one to do that (it would query on every request, and fail with the
    database down), so only a user the request itself loaded is used.
    """
    user = getattr(request, "__dict__", {}).get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is empty:
        return None
    return wrapped


def request_identity(request: Any) -> tuple[str | None, str | None]:
    """(user ref, tenant ref) of a request, from what it has loaded: no queries.

    The tenant: the one a view named (the screens set ``request.audit_tenant_ref``,
    ``""`` when they read several tenants), else the signed-in user's only
    tenant, remembered in the session at sign-in.
    """
    user = loaded_user(request)
    user_ref = None
    if user is not None and getattr(user, "is_authenticated", False):
        user_ref = getattr(user, "ref_id", None)
    tenant_ref = getattr(request, "audit_tenant_ref", None)
    if tenant_ref is None and user_ref:
        session = getattr(request, "session", None)
        cache = getattr(session, "_session_cache", None)  # only a session already read
        if isinstance(cache, dict):
            tenant_ref = cache.get(TENANT_SESSION_KEY)
    return user_ref, tenant_ref or None


def add_request_identity(_logger: Any, _name: str, event_dict: dict) -> dict:
    """``userId`` and ``tenantId`` of the current request, when known without a query."""
    request = CURRENT_REQUEST.get()
    if request is None:
        return event_dict
    user_ref, tenant_ref = request_identity(request)
    if user_ref:
        event_dict.setdefault("userId", user_ref)
    if tenant_ref:
        event_dict.setdefault("tenantId", tenant_ref)
    return event_dict


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
        add_request_identity,
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
    # Loggers that default below LOG_LEVEL are raised to it; never lowered.
    floor = logging.getLevelName(str(level).upper())
    if not isinstance(floor, int):
        raise ValueError(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}"
        )

    def at_least(name: str) -> str:
        return logging.getLevelName(max(floor, logging.getLevelName(name)))

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "dmobs.observability.logger.json_formatter"},
            "console": {"()": "dmobs.observability.logger.console_formatter"},
        },
        "filters": {"no_access_lines": {"()": "dmobs.observability.logger.DropServerAccessLines"}},
        "handlers": {
            **handlers,
            # For the servers' access loggers: their lines go nowhere.
            "discard": {"class": "logging.NullHandler"},
        },
        "root": {"handlers": list(handlers), "level": logging.getLevelName(floor)},
        "loggers": {
            # Django's defaults give "django" and "django.server" handlers of
            # their own (plain text); send them through the same chain instead.
            "django": {"level": logging.getLevelName(floor), "handlers": [], "propagate": True},
            # runserver's access line duplicates ours (with the query string);
            # its other lines (a broken pipe, an error) pass.
            "django.server": {
                "level": logging.getLevelName(floor),
                "handlers": [],
                "filters": ["no_access_lines"],
                "propagate": True,
            },
            # SQL of every query is DEBUG; keep it out unless asked for.
            "django.db.backends": {"level": at_least("INFO")},
            # gunicorn's own loggers go to the root handlers (same chain)...
            "gunicorn.error": {
                "level": logging.getLevelName(floor),
                "handlers": [],
                "propagate": True,
            },
            # ...but for its access line, which duplicates ours.
            "gunicorn.access": {"level": "CRITICAL", "handlers": ["discard"], "propagate": False},
        },
    }


class DropServerAccessLines(logging.Filter):
    """Drop runserver's per-request line (it has ``status_code`` in ``extra``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not hasattr(record, "status_code")


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
