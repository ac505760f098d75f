#!/usr/bin/env bash
# Runs a command with what the tests need: the Pub/Sub emulator on a free port (stopped on exit,
# whatever happens) and PostgreSQL on 127.0.0.1:5432. Missing pieces are named, not skipped.
set -euo pipefail

fail() { echo "tests/services.sh: $*" >&2; exit 1; }

command -v gcloud >/dev/null || fail "gcloud is not installed. Install the Google Cloud CLI and its Pub/Sub emulator: 'gcloud components install pubsub-emulator beta' (or the Debian package google-cloud-cli-pubsub-emulator)."
command -v java >/dev/null || fail "java is not installed; the Pub/Sub emulator needs a Java runtime (apt-get install default-jre-headless)."

PG_URL="${NETLOG_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
.venv/bin/python - "$PG_URL" <<'PY' || fail "PostgreSQL is not answering at ${PG_URL}. Start it (pg_ctlcluster <version> main start) or set NETLOG_TEST_PG_URL to a database the tests may write to."
import sys, sqlalchemy
sqlalchemy.create_engine(sys.argv[1]).connect().close()
PY
export NETLOG_TEST_PG_URL="$PG_URL"

PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG=$(mktemp -t pubsub-emulator.XXXXXX.log)
DATA=$(mktemp -d -t pubsub-emulator.XXXXXX)
# setsid gives the emulator (gcloud + its java child) a process group of its own to kill.
setsid gcloud beta emulators pubsub start --host-port="127.0.0.1:${PORT}" --project=test-project \
    --data-dir="$DATA" >"$LOG" 2>&1 &
EMULATOR=$!
stop_emulator() {
    kill -TERM -- "-$EMULATOR" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$EMULATOR" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$EMULATOR" 2>/dev/null || true
    rm -rf "$DATA" "$LOG"
}
trap stop_emulator EXIT

for _ in $(seq 300); do
    if curl -fsS "http://127.0.0.1:${PORT}/" >/dev/null 2>&1; then break; fi
    kill -0 "$EMULATOR" 2>/dev/null || { cat "$LOG" >&2; fail "the Pub/Sub emulator exited at start (log above). Is the 'pubsub-emulator' gcloud component installed?"; }
    sleep 0.1
done
curl -fsS "http://127.0.0.1:${PORT}/" >/dev/null 2>&1 || { cat "$LOG" >&2; fail "the Pub/Sub emulator did not answer on port ${PORT} within 30 s."; }

export PUBSUB_EMULATOR_HOST="127.0.0.1:${PORT}"
echo "services: Pub/Sub emulator at ${PUBSUB_EMULATOR_HOST}, PostgreSQL at ${PG_URL}"
"$@"
