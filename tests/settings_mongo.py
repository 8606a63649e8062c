"""Settings for the MongoDB tests (tests/mongo/): the audit alias on MongoDB.

    MONGODB_URI=mongodb://127.0.0.1:27017 DJANGO_SETTINGS_MODULE=tests.settings_mongo \\
        .venv/bin/python -m pytest tests/mongo

``MONGODB_URI`` names a server (a real MongoDB, or the emulator that
``tests/mongo/emulator.sh start`` prints); the tests use the database
``MONGODB_TEST_DB`` (default ``dmobs_mongo``) on it, and pytest-django creates
and drops ``test_<that name>``. The default database stays relational
(``DATABASE_URL``, SQLite when unset), as in production.
"""

import os
from urllib.parse import urlsplit, urlunsplit

MONGODB_URI = os.environ.get("MONGODB_URI", "")

if MONGODB_URI and not os.environ.get("AUDIT_DATABASE_URL"):
    parts = urlsplit(MONGODB_URI)
    os.environ["AUDIT_DATABASE_URL"] = urlunsplit(
        parts._replace(path="/" + os.environ.get("MONGODB_TEST_DB", "dmobs_mongo"))
    )

from tests.settings import *  # noqa: E402,F403
