#!/usr/bin/env bash
# Container start latency: create+start through the container driver beside
# bare `crun run --detach` of the same bundle, in the same run, on the busybox
# rootfs of scripts/busybox-rootfs.sh. Needs root, crun and busybox-static
# (scripts/install-deps.sh installs them); prints SKIP and exits 0 otherwise.
#   bench/container-start.sh [builddir] [-n iterations]     (default: build, 20)
# The data dir is a temporary directory under $ST_DATA_DIR's filesystem
# (default /var/lib/stratos as root): overlayfs and fsync costs belong to the
# filesystem that will hold instances.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
shift || true
[[ "$build" = /* ]] || build="$here/$build"
bin="$build/bench/bench_container_start"

if [[ $EUID -ne 0 ]]; then
    echo "SKIP container-start: needs root (containers)"
    exit 0
fi
if ! command -v crun >/dev/null || [[ ! -x /bin/busybox ]]; then
    echo "SKIP container-start: crun or busybox-static missing (scripts/install-deps.sh)"
    exit 0
fi
if [[ ! -x "$bin" ]]; then
    echo "container-start.sh: $bin not found; build it with: cmake --build $build --target bench_container_start" >&2
    exit 1
fi

data_dir="${ST_DATA_DIR:-/var/lib/stratos}"
base="$data_dir"
while [[ ! -d "$base" ]]; do
    base="$(dirname "$base")"
done
tmp="$(mktemp -d "$base/.stratos-bench-container.XXXXXX")"
cleanup() {
    # an interrupted run may leave overlays mounted under the data dir
    { grep -o " $tmp/[^ ]*" /proc/self/mountinfo || true; } | while read -r m; do
        umount -l "$m" || true
    done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

"$here/scripts/busybox-rootfs.sh" "$tmp/busybox.tar" >/dev/null
mkdir "$tmp/data"
echo "filesystem: $(df -PT "$tmp" | awk 'NR==2 {print $2 " on " $1 " (" $7 ")"}')"
"$bin" "$tmp/busybox.tar" -d "$tmp/data" "$@"
