# Helpers sourced by the integration tests: locating the build, temp dirs
# that are removed on exit, and starting/stopping a real stratosd.
set -euo pipefail
# Under pipefail, `cmd | grep -q` fails at random: grep exits at its first
# match and cmd's next write or sendfile (even one at end of file) gets
# SIGPIPE. The tests write `cmd | grep PATTERN >/dev/null`, which reads all.

ST_BUILD_DIR=${ST_BUILD_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build}
STRATOSD="$ST_BUILD_DIR/stratosd"
STRATOS="$ST_BUILD_DIR/stratos"
ST_TMP=$(mktemp -d /tmp/st-it-XXXXXX)
ST_PIDS=()

st_cleanup() {
    for pid in "${ST_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$ST_TMP"
}
trap st_cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# st_start_daemon DATA_DIR [extra flags...]: starts stratosd on an ephemeral
# port, waits until it listens; sets ST_PID, ST_PORT, ST_URL, ST_LOG.
st_start_daemon() {
    local dir=$1
    shift
    ST_LOG="$dir.log"
    "$STRATOSD" --data-dir "$dir" --listen 127.0.0.1:0 "$@" >"$ST_LOG" 2>&1 &
    ST_PID=$!
    ST_PIDS+=("$ST_PID")
    for _ in $(seq 1 200); do
        if grep -q 'event=stratosd_ready' "$ST_LOG"; then
            ST_PORT=$(grep -o 'event=stratosd_ready.* port=[0-9]*' "$ST_LOG" | sed 's/.*port=//')
            ST_URL="http://127.0.0.1:$ST_PORT"
            return 0
        fi
        kill -0 "$ST_PID" 2>/dev/null || { cat "$ST_LOG" >&2; fail "stratosd exited early"; }
        sleep 0.05
    done
    cat "$ST_LOG" >&2
    fail "stratosd did not become ready"
}

# st_stop_daemon: SIGTERM and wait; fails if it does not exit cleanly.
st_stop_daemon() {
    kill -TERM "$ST_PID"
    local rc=0
    wait "$ST_PID" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$ST_LOG" >&2; fail "stratosd exited with $rc after SIGTERM"; }
}
