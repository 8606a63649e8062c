#!/usr/bin/env bash
# Run the MongoDB tests (tests/mongo) with the audit alias on MongoDB.
#
#   MONGODB_URI=mongodb://host:27017 tests/mongo/run.sh   # against that server
#   tests/mongo/run.sh                                     # starts the mongoeco emulator
#
# Extra arguments go to pytest. The default database stays DATABASE_URL (SQLite when unset).
set -euo pipefail
cd "$(dirname "$0")/../.."

started=""
if [[ -z ${MONGODB_URI:-} ]]; then
    port=${MONGOECO_PORT:-8417}
    MONGODB_URI=$(tests/mongo/emulator.sh start "$port")
    started=$port
    trap 'tests/mongo/emulator.sh stop "$started"' EXIT
    echo "== mongoeco emulator at $MONGODB_URI"
fi
export MONGODB_URI
DJANGO_SETTINGS_MODULE=tests.settings_mongo .venv/bin/python -m pytest tests/mongo "$@"
