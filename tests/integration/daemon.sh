#!/usr/bin/env bash
# The foundation as a user meets it: stratosd init (idempotent), serving
# /version and /healthz over real HTTP, the stratos CLI's version and status,
# errors in the right shape, graceful shutdown, and a durable restart.
source "$(dirname "$0")/lib/common.bash"

data="$ST_TMP/data"

# Running before init is refused with a hint.
out=$("$STRATOSD" --data-dir "$data" --listen 127.0.0.1:0 2>&1) && fail "ran without init"
grep -q "stratosd init" <<<"$out" || fail "no init hint in: $out"

"$STRATOSD" init --data-dir "$data" | grep "data dir ready" >/dev/null || fail "init did not report"
"$STRATOSD" init --data-dir "$data" >/dev/null || fail "second init failed"
[ "$(stat -c %a "$data")" = 700 ] || fail "data dir mode is not 0700"

st_start_daemon "$data"

ver=$(curl -sf "$ST_URL/version")
[ "$(jq -r .name <<<"$ver")" = stratos ] || fail "/version: $ver"
health=$(curl -sf "$ST_URL/healthz")
[ "$(jq -r .status <<<"$health")" = ok ] || fail "/healthz: $health"

# Every response carries a request id.
curl -si "$ST_URL/version" | grep -i '^x-openstack-request-id: req-' >/dev/null || fail "no request id"

# Unknown route: 404 in the error shape; wrong method: 405.
code=$(curl -s -o "$ST_TMP/body" -w '%{http_code}' "$ST_URL/no/such/thing")
[ "$code" = 404 ] || fail "unknown route gave $code"
jq -e '.error.code == 404' "$ST_TMP/body" >/dev/null || fail "404 body: $(cat "$ST_TMP/body")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$ST_URL/version")
[ "$code" = 405 ] || fail "wrong method gave $code"

# The CLI against it.
export STRATOS_URL="$ST_URL"
"$STRATOS" version | grep stratos >/dev/null || fail "stratos version"
"$STRATOS" status >"$ST_TMP/status" || fail "stratos status exit $?: $(cat "$ST_TMP/status")"
grep -q ok "$ST_TMP/status" || fail "status output: $(cat "$ST_TMP/status")"
[ "$("$STRATOS" status -f value -c status)" = ok ] || fail "status -f value -c status"

st_stop_daemon
grep -q 'event=stratosd_stopped' "$ST_LOG" || fail "no clean stop logged"

# Down: the CLI says so and exits non-zero.
if out=$("$STRATOS" status 2>&1); then fail "status succeeded with stratosd down"; fi
grep -qi "cannot reach" <<<"$out" || fail "down message: $out"

# Restart on the same data dir: the cluster record (written once by init)
# survives, so /healthz is healthy again.
st_start_daemon "$data"
[ "$(curl -sf "$ST_URL/healthz" | jq -r .status)" = ok ] || fail "healthz after restart"
kill -9 "$ST_PID"; wait "$ST_PID" 2>/dev/null || true
st_start_daemon "$data"
[ "$(curl -sf "$ST_URL/healthz" | jq -r .status)" = ok ] || fail "healthz after kill -9"
st_stop_daemon
echo "PASS"
