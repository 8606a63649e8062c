#!/bin/sh
# The app container's entrypoint: migrate, then run the command (gunicorn).
#
# The default database is migrated first. When AUDIT_DATABASE_URL names another
# database (PostgreSQL, or MongoDB as the platform's Node services use), the
# `audit` alias is migrated too: on MongoDB that creates audit_logs' list and
# text indexes (migration dmobs.0003), without which every screen scans the
# collection. Both run with Django's system checks on, as a deploy should.
set -eu

python manage.py migrate --no-input
if [ -n "${AUDIT_DATABASE_URL:-}" ] && [ "${AUDIT_DATABASE_URL}" != "${DATABASE_URL:-}" ]; then
    python manage.py migrate --database audit --no-input
fi
exec "$@"
