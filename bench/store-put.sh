#!/usr/bin/env bash
# Runs bench_store_put from a build directory, in a temporary directory on the
# filesystem that holds (or would hold) the store: fsync cost is a property of
# the filesystem, so measuring in /tmp (often tmpfs) would say nothing.
#   bench/store-put.sh [builddir]      (default: build)
# Extra arguments go to the benchmark (-n puts -t threads -r runs); the data
# dir is $ST_DATA_DIR, else /var/lib/stratos as root, else ~/.local/share/stratos.
# When etcd is installed (and ST_BENCH_ETCD is not 0), a throwaway one-member
# etcd with its data in the same temporary directory gets the same puts
# through the etcd backend (-u etcd://...), so both stores pay the same disk.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
shift || true
[[ "$build" = /* ]] || build="$here/$build"
bin="$build/bench/bench_store_put"
if [[ ! -x "$bin" ]]; then
    echo "store-put.sh: $bin not found; build it with: cmake --build $build --target bench_store_put" >&2
    exit 1
fi

if [[ -n "${ST_DATA_DIR:-}" ]]; then
    data_dir="$ST_DATA_DIR"
elif [[ $EUID -eq 0 ]]; then
    data_dir=/var/lib/stratos
else
    data_dir="${XDG_DATA_HOME:-$HOME/.local/share}/stratos"
fi
# the nearest existing ancestor is on the filesystem the data dir will be on
base="$data_dir"
while [[ ! -d "$base" ]]; do
    base="$(dirname "$base")"
done

tmp="$(mktemp -d "$base/.stratos-bench-store.XXXXXX")"
etcd_pid=
cleanup() {
    if [[ -n "$etcd_pid" ]]; then
        kill "$etcd_pid" 2>/dev/null || true
        wait "$etcd_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
echo "filesystem: $(df -PT "$tmp" | awk 'NR==2 {print $2 " on " $1 " (" $7 ")"}')"

url_args=()
if [[ "${ST_BENCH_ETCD:-1}" != 0 ]] && command -v etcd >/dev/null; then
    port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    client="http://127.0.0.1:$(port)"
    peer="http://127.0.0.1:$(port)"
    etcd --name bench --data-dir "$tmp/etcd" --listen-client-urls "$client" \
        --advertise-client-urls "$client" --listen-peer-urls "$peer" \
        --initial-advertise-peer-urls "$peer" --initial-cluster "bench=$peer" \
        --logger zap --log-level error >"$tmp/etcd.log" 2>&1 &
    etcd_pid=$!
    for _ in $(seq 1 100); do
        curl -sf -X POST "$client/v3/kv/range" -d '{"key": "AA=="}' >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "etcd: $(etcd --version | head -1), one member, data in the same directory"
    url_args=(-u "etcd://${client#http://}")
fi
"$bin" -d "$tmp" "${url_args[@]}" "$@"
