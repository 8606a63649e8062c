"""Settings of the app servers the telemetry tests start (gunicorn): the test
settings with the telemetry test URLs (tests/telemetry_urls.py)."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.telemetry_urls"
