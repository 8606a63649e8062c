"""gunicorn settings.

- Tracing is configured in each worker after fork: the batch span processor's
  thread does not survive a fork.
- Metrics: with ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its
  metric values to files there and ``/metrics`` adds them up. The directory is
  emptied when the master starts (old workers' counters would otherwise be
  added again) and each dead worker is marked, so its live gauges (in-flight
  requests, queue depth) stop counting.
- gunicorn's own log lines go through the same JSON chain as the app's, at
  ``LOG_LEVEL``; its access line is dropped (``dmobs.request`` writes one line
  per request, without the query string, none for probes and scrapes).
- Workers are threaded (``gthread``), so a long export neither stalls the
  requests behind it nor gets cut by the worker timeout: a sync worker serves
  one request at a time and is killed when one outlasts ``timeout`` (a
  290,000-row export stopped at 95,001 lines), while a gthread worker's main
  thread keeps reporting alive as its threads stream. ``timeout`` then only
  catches a worker whose main loop is stuck.
- Requests in flight are counted across workers in a directory the master
  makes before forking (``dmobs.foreground``: an export gives way to them); a
  dead worker's file is removed, the directory when the master exits.
- DJANGO_SETTINGS_MODULE defaults to ``dmobs.settings`` here too (post_fork
  configures tracing, which reads settings, before the app module is loaded).
- Garbage collection: once a worker has loaded the app, everything it holds
  then (Django, the URLconfs, templates, the SDKs: ~130,000 objects) is moved
  out of the collector's sight with ``gc.freeze()``, and the youngest generation
  is collected every 20,000 allocations instead of 700. A request allocates
  tens of thousands of short-lived objects; a full collection that walked the
  frozen ones added 20-100 ms to one request in twenty (the list's p95).
  Reference counting still frees almost everything at once; cycles are still
  collected, just less often.
"""

import gc
import glob
import os
import shutil
import tempfile

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmobs.settings")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = None
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()


def _logconfig() -> dict:
    from dmobs.observability.logger import build_logging_config

    return build_logging_config(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        log_file=os.environ.get("LOG_FILE") or None,
        service=os.environ.get("OTEL_SERVICE_NAME", "dmobs"),
        env=os.environ.get("DMOBS_ENV", "production"),
        debug=False,
    )


logconfig_dict = _logconfig()


def on_starting(server):
    os.environ["DMOBS_FOREGROUND_DIR"] = tempfile.mkdtemp(prefix="dmobs-foreground-")
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, "*.db")):
            os.remove(path)


def post_fork(server, worker):
    from dmobs.observability.tracing import configure_tracing

    configure_tracing()


GC_YOUNG_THRESHOLD = 20_000


def post_worker_init(worker):
    # The app is loaded (and its views imported here): what exists now lives as
    # long as the worker.
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def child_exit(server, worker):
    try:
        os.remove(os.path.join(os.environ["DMOBS_FOREGROUND_DIR"], str(worker.pid)))
    except (KeyError, OSError):
        pass  # the worker never served a request
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    shutil.rmtree(os.environ.get("DMOBS_FOREGROUND_DIR", ""), ignore_errors=True)
