#!/usr/bin/env bash
# The cost of authentication on the HTTP GET benchmark: the same handler
# (/version's) served public and behind X-Auth-Token (token validation through
# the identity service's cache + the policy engine), measured with wrk in one
# run, and the ratio printed.
#   bench/api-auth.sh [builddir]          (default: build)
# Environment: BENCH_SECONDS (10), BENCH_THREADS (2), BENCH_CONNECTIONS (64).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
seconds="${BENCH_SECONDS:-10}"
wrk_threads="${BENCH_THREADS:-2}"
conns="${BENCH_CONNECTIONS:-64}"
"$here/scripts/install-deps.sh" --bench

tmp="$(mktemp -d /tmp/stratos-bench-auth.XXXXXX)"
pid=""
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$build/bench/bench_api_auth_server" "$tmp" >"$tmp/out" 2>"$tmp/log" &
pid=$!
for _ in $(seq 200); do
    port="$(grep -o 'port=[0-9]*' "$tmp/log" 2>/dev/null | head -1 | cut -d= -f2)" || true
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/log" >&2; exit 1; }
    sleep 0.05
done
token="$(sed -n 's/^token=//p' "$tmp/out")"
base="http://127.0.0.1:$port"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/bench/version")" = 401 ]] || {
    echo "api-auth.sh: /bench/version answered without a token" >&2
    exit 1
}
printf 'wrk.headers["X-Auth-Token"] = "%s"\n' "$token" >"$tmp/token.lua"

measure() {
    local name="$1" url="$2" out
    shift 2
    wrk -t"$wrk_threads" -c"$conns" -d1s "$@" "$url" >/dev/null
    out="$(wrk -t"$wrk_threads" -c"$conns" -d"${seconds}s" "$@" "$url")"
    if grep -q -E "Non-2xx|Socket errors" <<<"$out"; then
        echo "api-auth.sh: $name: errors during the run:" >&2
        echo "$out" >&2
        return 1
    fi
    awk '/Requests\/sec/ {print $2}' <<<"$out"
}

echo "api-auth: GET /version public vs. with X-Auth-Token, wrk -t$wrk_threads -c$conns -d${seconds}s, $(nproc) CPUs"
# Alternating runs, so a change in the machine's load hits both alike.
o1="$(measure public "$base/version")"
a1="$(measure token "$base/bench/version" -s "$tmp/token.lua")"
a2="$(measure token "$base/bench/version" -s "$tmp/token.lua")"
o2="$(measure public "$base/version")"
open_rps="$(awk -v x="$o1" -v y="$o2" 'BEGIN {print (x + y) / 2}')"
auth_rps="$(awk -v x="$a1" -v y="$a2" 'BEGIN {print (x + y) / 2}')"
printf "public       %12.0f req/s\n" "$open_rps"
printf "with token   %12.0f req/s\n" "$auth_rps"
awk -v a="$auth_rps" -v b="$open_rps" 'BEGIN {printf "ratio        %.1f%% (authentication costs %.1f%% of throughput)\n", 100*a/b, 100 - 100*a/b}'
