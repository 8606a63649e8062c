#!/usr/bin/env bash
# Start or stop the mongoeco MongoDB emulator for the MongoDB tests.
#
#   tests/mongo/emulator.sh start [PORT]   # prints the MONGODB_URI once it accepts connections
#   tests/mongo/emulator.sh stop  [PORT]
#
# mongoeco needs Python 3.13: its venv (.venv-mongoeco, gitignored) is built on
# first use from tests/mongo/requirements-emulator.txt. The server keeps its data
# in memory and runs in the background; its pid and log are in var/.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON313=${MONGOECO_PYTHON:-/root/.pyenv/versions/3.13.0/bin/python}
VENV=.venv-mongoeco
REQUIREMENTS=tests/mongo/requirements-emulator.txt
HOST=127.0.0.1
PORT=${2:-${MONGOECO_PORT:-8417}}
PIDFILE=var/mongoeco-$PORT.pid
LOGFILE=var/mongoeco-$PORT.log
URI="mongodb://$HOST:$PORT/?directConnection=true"

build_venv() {
    local stamp=$VENV/.installed
    if [[ -f $stamp && $stamp -nt $REQUIREMENTS ]]; then
        return
    fi
    command -v "$PYTHON313" >/dev/null || {
        echo "error: $PYTHON313 not found (mongoeco needs Python 3.13; set MONGOECO_PYTHON)" >&2
        exit 1
    }
    [[ -x $VENV/bin/python ]] || "$PYTHON313" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    touch "$stamp"
}

running() {
    [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

ping() {
    "$VENV/bin/python" - "$URI" <<'PY' >/dev/null 2>&1
import sys
from pymongo import MongoClient
with MongoClient(sys.argv[1], serverSelectionTimeoutMS=500) as client:
    client.admin.command("ping")
PY
}

start() {
    build_venv
    mkdir -p var
    if running; then
        echo "$URI"
        return
    fi
    "$VENV/bin/python" tests/mongo/emulator_server.py --host "$HOST" --port "$PORT" \
        >"$LOGFILE" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 60); do
        if ping; then
            echo "$URI"
            return
        fi
        if ! running; then
            break
        fi
        sleep 0.5
    done
    echo "error: mongoeco did not start on $HOST:$PORT; its log:" >&2
    cat "$LOGFILE" >&2
    stop
    exit 1
}

stop() {
    if running; then
        local pid
        pid=$(cat "$PIDFILE")
        kill "$pid"
        # A busy emulator finishes its current request first; then force it.
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid"
            for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        fi
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop [PORT]" >&2; exit 2 ;;
esac
