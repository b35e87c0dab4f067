#!/usr/bin/env bash
# Runs bench_store_put from a build directory, in a temporary directory on the
# filesystem that holds (or would hold) the store: fsync cost is a property of
# the filesystem, so measuring in /tmp (often tmpfs) would say nothing.
#   bench/store-put.sh [builddir]      (default: build)
# Extra arguments go to the benchmark (-n puts -t threads -r runs); the data
# dir is $ST_DATA_DIR, else /var/lib/stratos as root, else ~/.local/share/stratos.
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
trap 'rm -rf "$tmp"' EXIT
echo "filesystem: $(df -PT "$tmp" | awk 'NR==2 {print $2 " on " $1 " (" $7 ")"}')"
"$bin" -d "$tmp" "$@"
