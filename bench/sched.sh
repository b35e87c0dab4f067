#!/usr/bin/env bash
# Runs bench_sched from a build directory: the scheduler over in-memory
# snapshots of 100 / 1,000 / 10,000 simulated nodes, then placements end to
# end through the placement controller on a durable SQLite store, in a
# temporary directory on the filesystem that holds (or would hold) the
# store — fsync cost is a property of the filesystem, so /tmp (often tmpfs)
# would say nothing.
#   bench/sched.sh [builddir]      (default: build)
# Extra arguments go to the benchmark (-t seconds per case, -N nodes,
# -s servers); the data dir is $ST_DATA_DIR, else /var/lib/stratos as root,
# else ~/.local/share/stratos.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
shift || true
[[ "$build" = /* ]] || build="$here/$build"
bin="$build/bench/bench_sched"
if [[ ! -x "$bin" ]]; then
    echo "sched.sh: $bin not found; build it with: cmake --build $build --target bench_sched" >&2
    exit 1
fi

if [[ -n "${ST_DATA_DIR:-}" ]]; then
    data_dir="$ST_DATA_DIR"
elif [[ $EUID -eq 0 ]]; then
    data_dir=/var/lib/stratos
else
    data_dir="${XDG_DATA_HOME:-$HOME/.local/share}/stratos"
fi
base="$data_dir"
while [[ ! -d "$base" ]]; do
    base="$(dirname "$base")"
done

tmp="$(mktemp -d "$base/.stratos-bench-sched.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "cpu: $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "filesystem: $(df -PT "$tmp" | awk 'NR==2 {print $2 " on " $1 " (" $7 ")"}')"
"$bin" -d "$tmp" "$@"
