#!/usr/bin/env bash
# HTTP GET throughput of stratos's API server against nginx serving the same
# bytes as a static file, both on loopback, measured with wrk in one run.
#   bench/api-get.sh [builddir]          (default: build)
# Environment: BENCH_SECONDS (10), BENCH_THREADS (2), BENCH_CONNECTIONS (64)
# for wrk; BENCH_SERVER_THREADS for stratos's pool (default: its own).
# Serves with $BUILD/stratosd when it is built (access log on, as deployed),
# else with $BUILD/bench/bench_api_server (the same server, system routes only).
# Goal: stratos answers at least 50% of nginx's requests per second.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
seconds="${BENCH_SECONDS:-10}"
wrk_threads="${BENCH_THREADS:-2}"
conns="${BENCH_CONNECTIONS:-64}"

"$here/scripts/install-deps.sh" --bench
for tool in wrk nginx curl; do
    command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || {
        echo "api-get.sh: $tool is missing" >&2
        exit 1
    }
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

tmp="$(mktemp -d /tmp/stratos-bench-api.XXXXXX)"
st_pid=""
ng_pid=""
cleanup() {
    [[ -n "$st_pid" ]] && kill "$st_pid" 2>/dev/null && wait "$st_pid" 2>/dev/null
    [[ -n "$ng_pid" ]] && kill "$ng_pid" 2>/dev/null && wait "$ng_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for "port=N" in a log line of the server and prints N.
wait_port() {
    local log="$1" pid="$2"
    for _ in $(seq 200); do
        local p
        p="$(grep -o 'port=[0-9]*' "$log" 2>/dev/null | head -1 | cut -d= -f2)" || true
        [[ -n "$p" && "$p" != 0 ]] && { echo "$p"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "api-get.sh: the server did not start; its log:" >&2
    cat "$log" >&2
    return 1
}

# --- stratos ----------------------------------------------------------------
st_log="$tmp/stratos.log"
if [[ -x "$build/stratosd" ]]; then
    server="stratosd"
    args=(--data-dir "$tmp/data" --listen 127.0.0.1:0)
    [[ -n "${BENCH_SERVER_THREADS:-}" ]] && args+=(--threads "$BENCH_SERVER_THREADS")
    "$build/stratosd" init --data-dir "$tmp/data" >"$tmp/init.log" 2>&1
    "$build/stratosd" "${args[@]}" 2>"$st_log" >/dev/null &
elif [[ -x "$build/bench/bench_api_server" ]]; then
    server="bench_api_server"
    "$build/bench/bench_api_server" 127.0.0.1:0 "${BENCH_SERVER_THREADS:-0}" 2>"$st_log" &
else
    echo "api-get.sh: neither $build/stratosd nor $build/bench/bench_api_server is built" >&2
    exit 1
fi
st_pid=$!
st_port="$(wait_port "$st_log" "$st_pid")"
url="http://127.0.0.1:$st_port/version"

# --- nginx: the same bytes as a static file ------------------------------------
mkdir -p "$tmp/www" "$tmp/nginx/logs"
curl -sf "$url" >"$tmp/www/version"
# nginx's workers run as another user when started by root: let them read
chmod a+rx "$tmp" "$tmp/www"
chmod a+r "$tmp/www/version"
body_len="$(stat -c %s "$tmp/www/version")"
ng_started=""
for _ in $(seq 20); do
    ng_port=$((20000 + RANDOM % 40000))
    cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$ng_port;
        root $tmp/www;
        location = /version { }
    }
}
EOF
    "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" &
    ng_pid=$!
    for _ in $(seq 100); do
        if curl -sf "http://127.0.0.1:$ng_port/version" >/dev/null 2>&1; then
            ng_started=1
            break
        fi
        kill -0 "$ng_pid" 2>/dev/null || break
        sleep 0.05
    done
    [[ -n "$ng_started" ]] && break
    kill "$ng_pid" 2>/dev/null && wait "$ng_pid" 2>/dev/null || true
    ng_pid=""
done
if [[ -z "$ng_started" ]]; then
    echo "api-get.sh: nginx did not start; its log:" >&2
    cat "$tmp/nginx/logs/error.log" >&2
    exit 1
fi
cmp -s "$tmp/www/version" <(curl -sf "http://127.0.0.1:$ng_port/version") || {
    echo "api-get.sh: nginx does not serve the same bytes" >&2
    exit 1
}

# --- measure ------------------------------------------------------------------
# Prints the requests per second of one wrk run; fails on errors or non-2xx.
measure() {
    local name="$1" target="$2" out
    wrk -t"$wrk_threads" -c"$conns" -d1s "$target" >/dev/null # warm-up
    out="$(wrk -t"$wrk_threads" -c"$conns" -d"${seconds}s" --latency "$target")"
    echo "$out" >"$tmp/wrk-$name.txt"
    if grep -q -E "Non-2xx|Socket errors" <<<"$out"; then
        echo "api-get.sh: $name: errors during the run:" >&2
        echo "$out" >&2
        return 1
    fi
    awk '/Requests\/sec/ {print $2}' <<<"$out"
}

echo "api-get: GET /version ($body_len bytes), wrk -t$wrk_threads -c$conns -d${seconds}s," \
    "$(nproc) CPUs, server: $server"
st_rps="$(measure stratos "$url")"
ng_rps="$(measure nginx "http://127.0.0.1:$ng_port/version")"
st_p99="$(awk '$1 == "99%" {print $2}' "$tmp/wrk-stratos.txt")"
ng_p99="$(awk '$1 == "99%" {print $2}' "$tmp/wrk-nginx.txt")"
ratio="$(awk -v a="$st_rps" -v b="$ng_rps" 'BEGIN {printf "%.1f", 100 * a / b}')"
printf "stratos  %12.0f req/s  p99 %s\n" "$st_rps" "$st_p99"
printf "nginx    %12.0f req/s  p99 %s\n" "$ng_rps" "$ng_p99"
echo "ratio    ${ratio}% of nginx (goal >= 50%)"
log_lines="$(grep -c 'event=http_request' "$st_log" || true)"
echo "stratos access log lines: $log_lines"
