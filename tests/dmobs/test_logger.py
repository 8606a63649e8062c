"""dmobs.observability.logger: one processor chain, JSON lines, console on a terminal, LOG_FILE."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from dmobs.models import Membership, Tenant, User
from dmobs.observability.logger import build_logging_config, console_formatter, get_logger
from tests.obs_helpers import captured_json_logs

ROOT = Path(__file__).resolve().parents[2]
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture(autouse=True)
def _clean_log_context():
    yield
    structlog.contextvars.clear_contextvars()


def _ids(span) -> tuple[str, str]:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def test_structlog_line_has_every_field_and_the_current_span(tracer):
    with captured_json_logs() as lines, tracer.start_as_current_span("work") as span:
        get_logger("dmobs.test").info("did a thing", items=3)
    (line,) = [line for line in lines if line["event"] == "did a thing"]
    trace_id, span_id = _ids(span)
    assert ISO_UTC.match(line["time"])
    assert abs(datetime.fromisoformat(line["time"]) - datetime.now(UTC)).total_seconds() < 60
    assert line["level"] == "info"
    assert line["service"] == "dmobs"
    assert line["env"] == "production"  # tests run with DEBUG off
    assert line["logger"] == "dmobs.test"
    assert (line["traceId"], line["spanId"]) == (trace_id, span_id)
    assert line["items"] == 3


def test_stdlib_records_go_through_the_same_chain(tracer):
    with captured_json_logs() as lines, tracer.start_as_current_span("lib") as span:
        logging.getLogger("somelibrary.client").warning("retrying %s", "upstream")
    (line,) = [line for line in lines if line["logger"] == "somelibrary.client"]
    assert line["event"] == "retrying upstream"
    assert line["level"] == "warning"
    assert ISO_UTC.match(line["time"])
    assert {line["service"], line["env"]} == {"dmobs", "production"}
    assert (line["traceId"], line["spanId"]) == _ids(span)


def test_exceptions_are_rendered_into_the_line():
    with captured_json_logs() as lines:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            get_logger("dmobs.test").exception("failed")
    (line,) = [line for line in lines if line["event"] == "failed"]
    assert line["level"] == "error"
    assert "RuntimeError: boom" in line["exception"]


def test_outside_a_span_there_are_no_trace_fields():
    with captured_json_logs() as lines:
        get_logger("dmobs.test").info("no span here")
    (line,) = [line for line in lines if line["event"] == "no span here"]
    assert "traceId" not in line and "spanId" not in line


@pytest.mark.django_db
def test_request_lines_carry_request_user_and_tenant(client):
    user = User.objects.create_user("sarah", password="pw-123456789")
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    Membership.objects.create(user=user, tenant=tenant, role="admin")
    client.force_login(user)

    with captured_json_logs() as lines:
        response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="abc-12345678")

    assert response.status_code == 404
    assert response["X-Request-ID"] == "abc-12345678"
    (line,) = [line for line in lines if line["logger"] == "django.request"]
    assert line["event"].startswith("Not Found: /no-such-page/")
    assert line["requestId"] == "abc-12345678"
    assert line["userId"] == user.ref_id
    assert line["tenantId"] == tenant.ref_id
    # Logged by Django after the server span ended, yet it names the request's trace.
    (access,) = [line for line in lines if line["event"] == "request"]
    assert (line["traceId"], line["spanId"]) == (access["traceId"], access["spanId"])
    assert "request" not in line  # the WSGIRequest repr is dropped


@pytest.mark.django_db
def test_the_tenant_is_looked_up_only_when_no_screen_named_it(client):
    """A super admin with one membership on the Manage screen (all tenants): the
    screen says it acts in no tenant, so no membership query runs and no line
    names that membership's tenant; once the response is closed, later lines of
    the thread belong to no request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    root = User.objects.create_superuser("root", password="pw-123456789")
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    Membership.objects.create(user=root, tenant=tenant, role="admin")
    client.force_login(root)

    with captured_json_logs() as lines, CaptureQueriesContext(connection) as queries:
        response = client.get("/manage/audit")
        get_logger("dmobs.test").info("after the response")
    assert response.status_code == 200
    (access,) = [line for line in lines if line["event"] == "request"]
    assert access["userId"] == root.ref_id and "tenantId" not in access
    (after,) = [line for line in lines if line["event"] == "after the response"]
    assert "tenantId" not in after
    assert not [q for q in queries.captured_queries if "dmobs_membership" in q["sql"]]

    # Elsewhere (no screen names a tenant) the only membership still does.
    with captured_json_logs() as lines:
        client.get("/no-such-page/")
    (access,) = [line for line in lines if line["event"] == "request"]
    assert access["tenantId"] == tenant.ref_id


@pytest.mark.django_db
def test_each_request_starts_with_a_clean_context(client):
    structlog.contextvars.bind_contextvars(userId="left-over-from-elsewhere")
    with captured_json_logs() as lines:
        response = client.get("/missing/", HTTP_X_REQUEST_ID="bad id with spaces")
    (line,) = [line for line in lines if line["logger"] == "django.request"]
    assert "userId" not in line and "tenantId" not in line
    # A malformed incoming id is replaced by a generated one.
    assert re.fullmatch(r"[0-9a-f]{32}", line["requestId"])
    assert response["X-Request-ID"] == line["requestId"]


def test_console_renderer_is_chosen_only_for_a_terminal_in_debug(capsys):
    def stdout_formatter(**kwargs):
        config = build_logging_config(
            level="INFO", log_file=None, service="dmobs", env="development", **kwargs
        )
        return config["handlers"]["stdout"]["formatter"]

    # capsys makes stdout a pipe, as under gunicorn or in a container.
    assert stdout_formatter(debug=True) == "json"
    assert stdout_formatter(debug=False) == "json"
    assert stdout_formatter(debug=True, console=True) == "console"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    rendered = console_formatter().format(record)
    assert "hello there" in rendered and not rendered.lstrip().startswith("{")


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.pop("LOG_FILE", None)
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", **extra)
    return env


CHILD = textwrap.dedent(
    """
    import logging, django
    django.setup()
    from dmobs.observability.logger import get_logger
    get_logger("dmobs.child").info("from structlog", n=1)
    logging.getLogger("django.child").error("from stdlib")
    """
)


def test_log_file_gets_json_lines_as_stdout_does(tmp_path):
    log_file = tmp_path / "logs" / "app.log"
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env=_child_env(LOG_FILE=str(log_file), OTEL_SERVICE_NAME="dmobs-child"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    from_file = [json.loads(line) for line in log_file.read_text().splitlines()]
    from_stdout = [json.loads(line) for line in result.stdout.splitlines()]
    for lines in (from_file, from_stdout):
        events = {line["event"]: line for line in lines}
        assert events["from structlog"]["n"] == 1
        assert events["from stdlib"]["level"] == "error"
        assert {line["service"] for line in lines} == {"dmobs-child"}


def test_a_terminal_in_development_gets_the_console_renderer():
    main, child = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=ROOT,
            env=_child_env(DEBUG="true"),
            stdout=child,
            stderr=subprocess.PIPE,
        )
        os.close(child)
        output = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed: the child exited
                break
            if not chunk:
                break
            output += chunk
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        proc.stderr.close()
    finally:
        os.close(main)
    text = output.decode()
    assert "from structlog" in text and "from stdlib" in text
    assert not any(line.lstrip().startswith("{") for line in text.splitlines() if line.strip())


@pytest.mark.django_db
def test_access_log_line_can_be_turned_off(client, settings):
    with captured_json_logs() as lines:
        client.get("/accounts/login/")
    assert [line["status"] for line in lines if line["event"] == "request"] == [200]
    settings.DMOBS_ACCESS_LOG = False
    with captured_json_logs() as lines:
        client.get("/accounts/login/")
    assert not [line for line in lines if line["event"] == "request"]


LEVELS_CHILD = textwrap.dedent(
    """
    import logging, django
    django.setup()
    from dmobs.observability.logger import get_logger
    for name in ("django", "django.request", "django.server", "django.db.backends",
                 "gunicorn.error", "gunicorn.access", "dmobs.child", "some.library"):
        logging.getLogger(name).info("info from %s", name)
        logging.getLogger(name).warning("warning from %s", name)
    get_logger("dmobs.child").info("structlog info")
    # runserver's access line (it passes the status code as extra) and another of its lines
    logging.getLogger("django.server").warning(
        '"GET /x?q=secret HTTP/1.1" 404 10', extra={"request": None, "status_code": 404}
    )
    logging.getLogger("django.server").error("a broken pipe from a client")
    """
)


@pytest.mark.parametrize("level", ["WARNING", "INFO"])
def test_log_level_governs_every_logger_and_server_access_lines_are_dropped(level):
    result = subprocess.run(
        [sys.executable, "-c", LEVELS_CHILD],
        cwd=ROOT,
        env=_child_env(LOG_LEVEL=level),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    events = [line["event"] for line in lines]
    names = ("django", "django.request", "django.server", "django.db.backends", "gunicorn.error")
    for name in (*names, "dmobs.child", "some.library"):
        assert f"warning from {name}" in events
        assert (f"info from {name}" in events) == (level == "INFO"), (name, events)
    assert ("structlog info" in events) == (level == "INFO")
    # gunicorn's access line (and runserver's) never appear.
    assert not any("gunicorn.access" in e for e in events)
    assert not any("secret" in e for e in events)
    assert "a broken pipe from a client" in events


def test_an_unknown_log_level_is_a_clear_error():
    with pytest.raises(ValueError, match="LOG_LEVEL must be"):
        build_logging_config(level="LOUD", log_file=None, service="s", env="e", debug=False)
