"""Requests in flight across workers (dmobs.foreground): what an export gives way to."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from dmobs import foreground

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_grace(monkeypatch):
    """Quiet as soon as no request is in flight: the tests wait on events, not
    time; and each test starts with a count (and file) of its own."""
    monkeypatch.setattr(foreground, "GRACE_SECONDS", 0.0)
    monkeypatch.setattr(foreground, "_process", foreground._Process())


def test_a_request_counts_while_its_view_runs_and_not_after():
    seen = []

    def view(request):
        seen.append(foreground.busy())
        return HttpResponse("ok")

    middleware = foreground.ForegroundMiddleware(view)
    assert not foreground.busy()
    middleware(RequestFactory().get("/"))
    assert seen == [True]
    assert not foreground.busy()


def test_an_export_request_stops_counting_itself():
    seen = []

    def view(request):
        foreground.background(request)
        seen.append(foreground.busy())
        foreground.background(request)  # twice is once
        return HttpResponse("ok")

    foreground.ForegroundMiddleware(view)(RequestFactory().get("/"))
    assert seen == [False]
    assert not foreground.busy()  # and the middleware did not count it off again


def test_a_failing_view_stops_counting():
    def view(request):
        raise RuntimeError("boom (injected)")

    with pytest.raises(RuntimeError):
        foreground.ForegroundMiddleware(view)(RequestFactory().get("/"))
    assert not foreground.busy()


def test_a_lost_directory_fails_no_request(tmp_path, monkeypatch):
    """The shared directory removed under a running server (a temp cleaner):
    requests are served as before, and only this worker's own count is seen."""
    monkeypatch.setenv(foreground.DIR_ENV, str(tmp_path / "gone"))
    seen = []

    def view(request):
        seen.append(foreground.busy())
        return HttpResponse("ok")

    response = foreground.ForegroundMiddleware(view)(RequestFactory().get("/"))
    assert response.status_code == 200 and seen == [True]
    assert not foreground.busy()


WORKER = """
import sys
from dmobs import foreground
foreground.started()
print("started", flush=True)
sys.stdin.readline()
foreground.finished()
print("finished", flush=True)
sys.stdin.readline()
"""


def test_a_request_in_another_worker_counts(tmp_path, monkeypatch):
    """Another process (a second gunicorn worker) with a request in flight makes
    this one busy through the shared directory, and quiet again when it ends."""
    monkeypatch.setenv(foreground.DIR_ENV, str(tmp_path))
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout.readline().strip() == "started"
        assert foreground.busy()
        worker.stdin.write("\n")
        worker.stdin.flush()
        assert worker.stdout.readline().strip() == "finished"
        assert not foreground.busy()
    finally:
        worker.stdin.close()
        worker.wait(timeout=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == [str(worker.pid)]


def test_waiting_ends_when_the_request_ends():
    """``wait_for_quiet`` returns once the last request in flight has ended."""
    release = threading.Event()
    entered = threading.Event()

    def view(request):
        entered.set()
        release.wait(30)
        return HttpResponse("ok")

    request = threading.Thread(
        target=foreground.ForegroundMiddleware(view), args=(RequestFactory().get("/"),)
    )
    request.start()
    entered.wait(30)
    waiter_done = threading.Event()
    waiter = threading.Thread(target=lambda: (foreground.wait_for_quiet(60), waiter_done.set()))
    waiter.start()
    assert not waiter_done.is_set() and foreground.busy()
    release.set()
    request.join(30)
    waiter.join(30)
    assert waiter_done.is_set()
