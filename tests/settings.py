"""Settings for the test suite: production-like (DEBUG off), fast hashing,
plain HTTP. DATABASE_URL picks SQLite (default) or PostgreSQL."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-7d1e9b2c4a")
os.environ.setdefault("DMOBS_HTTPS", "false")
os.environ.setdefault("AUDIT_SPOOL_DIR", tempfile.mkdtemp(prefix="dmobs-test-spool-"))
os.environ.setdefault("AUDIT_FLUSH_INTERVAL", "0.05")
# Entries written by requests land in the test's own transaction; the writer
# tests build background-thread writers explicitly.
os.environ.setdefault("AUDIT_WRITER_MODE", "inline")

from dmobs.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# DATABASE_TEST_NAME names the test database (default: "test_" + NAME), so
# several worktrees can share one PostgreSQL server with their own databases.
if os.environ.get("DATABASE_TEST_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["DATABASE_TEST_NAME"]}  # noqa: F405
