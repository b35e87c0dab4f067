#!/usr/bin/env bash
# stratosd's footprint: time from exec to answering /healthz on an existing
# data dir (goal < 100 ms; beside it, the time for the same check against a
# bare `python3 -m http.server`-free baseline: curl's own cost on a closed
# port), the startup time stratosd logs itself, and idle RSS (goal <= 15 MiB).
#   bench/daemon-footprint.sh [builddir]   (default: build)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
tmp="$(mktemp -d /tmp/stratos-bench-fp.XXXXXX)"
pid=""
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 40000))
"$build/stratosd" init --data-dir "$tmp/data" --listen "127.0.0.1:$port" >/dev/null 2>&1

runs=10
total_ms=0
for i in $(seq $runs); do
    t0=$(date +%s%N)
    "$build/stratosd" --data-dir "$tmp/data" --listen "127.0.0.1:$port" 2>"$tmp/log" &
    pid=$!
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.001; done
    t1=$(date +%s%N)
    total_ms=$(awk -v a="$total_ms" -v d="$(( (t1 - t0) / 1000 ))" 'BEGIN {print a + d / 1000}')
    if [[ $i -lt $runs ]]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
done
self_ms="$(grep 'event=stratosd_listening' "$tmp/log" | grep -o 'startup_ms=[0-9.]*' | cut -d= -f2)"
ready_ms="$(grep 'event=stratosd_ready' "$tmp/log" | grep -o 'startup_ms=[0-9.]*' | cut -d= -f2)"
# The floor of this measure: exec and curl polling a process that answers at once.
t0=$(date +%s%N)
for _ in $(seq $runs); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null; done
t1=$(date +%s%N)
curl_ms=$(awk -v d="$(( (t1 - t0) / 1000 ))" -v n=$runs 'BEGIN {printf "%.1f", d / 1000 / n}')

sleep 2
rss_kib="$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")"
echo "stratosd footprint ($(nproc) CPUs)"
printf "exec to healthy /healthz   %6.1f ms  (mean of %d; one curl alone: %s ms; goal < 100 ms)\n" \
    "$(awk -v t="$total_ms" -v n=$runs 'BEGIN {print t / n}')" "$runs" "$curl_ms"
printf "startup as logged          %6s ms  (process start to listening)\n" "$self_ms"
printf "all roles ready            %6s ms  (controller, agent and its drivers probed)\n" "$ready_ms"
printf "idle RSS                   %6.1f MiB (goal <= 15 MiB)\n" "$(awk -v k="$rss_kib" 'BEGIN {print k / 1024}')"
