#!/usr/bin/env bash
# Container start latency: create+start through the container driver beside
# bare `crun run --detach` of the same bundle, in the same run, on the busybox
# rootfs of scripts/busybox-rootfs.sh. Needs root, crun and busybox-static
# (scripts/install-deps.sh installs them); prints SKIP and exits 0 otherwise.
#   bench/container-start.sh [builddir] [-n iterations] [--seccomp]   (default: build, 20)
# --seccomp: what the containers' seccomp filter costs crun. A wrapper put in
# front of crun (PATH) gives each `crun run` of the run, the driver's and bare
# crun's alike, in turn: the bundle as the driver wrote it (the program
# compiled once by the agent, annotation run.oci.seccomp_bpf_data), the same
# without the annotation (crun compiles linux.seccomp at every start), and no
# filter at all; it times each `crun run --detach`, and the script prints p50
# and p95 per mode. The wrapper's config.json rewrite is outside its timing
# but inside the driver's figures, which are then not those of a plain run.
# The data dir is a temporary directory under $ST_DATA_DIR's filesystem
# (default /var/lib/stratos as root): overlayfs and fsync costs belong to the
# filesystem that will hold instances.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
shift || true
seccomp=0
args=()
for a in "$@"; do
    if [[ "$a" = --seccomp ]]; then seccomp=1; else args+=("$a"); fi
done
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
if [[ $seccomp = 0 ]]; then
    "$bin" "$tmp/busybox.tar" -d "$tmp/data" "${args[@]}"
    exit 0
fi

command -v jq >/dev/null || { echo "SKIP container-start --seccomp: jq missing"; exit 0; }
mkdir "$tmp/bin"
cat >"$tmp/bin/crun" <<'WRAPPER'
#!/usr/bin/env bash
# crun for bench/container-start.sh --seccomp: each `run` gets the next
# seccomp mode and is timed into $ST_BENCH_RUNS ("mode t0 t1 status").
set -euo pipefail
bundle=""
run=0
argv=("$@")
for ((i = 0; i < ${#argv[@]}; i++)); do
    [[ "${argv[i]}" = run ]] && run=1
    [[ "${argv[i]}" = --bundle ]] && bundle="${argv[i + 1]}"
done
[[ $run = 1 && -n "$bundle" ]] || exec "$ST_BENCH_CRUN" "$@"
cfg="$bundle/config.json"
[[ -f "$cfg.orig" ]] || cp "$cfg" "$cfg.orig"
n=0
[[ -f "$ST_BENCH_RUNS" ]] && n=$(wc -l <"$ST_BENCH_RUNS")
case $((n % 3)) in
    0) mode=precompiled; cp "$cfg.orig" "$cfg" ;;
    1) mode=json; jq 'del(.annotations["run.oci.seccomp_bpf_data"])' "$cfg.orig" >"$cfg" ;;
    2) mode=none; jq 'del(.annotations["run.oci.seccomp_bpf_data"], .linux.seccomp)' "$cfg.orig" >"$cfg" ;;
esac
t0=$EPOCHREALTIME
rc=0
"$ST_BENCH_CRUN" "$@" || rc=$?
t1=$EPOCHREALTIME
echo "$mode $t0 $t1 $rc" >>"$ST_BENCH_RUNS"
exit $rc
WRAPPER
chmod 755 "$tmp/bin/crun"
ST_BENCH_CRUN="$(command -v crun)" ST_BENCH_RUNS="$tmp/runs.log" PATH="$tmp/bin:$PATH" \
    "$bin" "$tmp/busybox.tar" -d "$tmp/data" "${args[@]}" | sed 's/^/(modes mixed) /'
grep '^precompiled ' "$tmp/runs.log" >/dev/null ||
    { echo "container-start.sh: no crun run went through the wrapper" >&2; exit 1; }
echo "crun run --detach by seccomp mode (driver and bare runs alike, interleaved):"
for mode in none json precompiled; do
    awk -v m="$mode" '$1 == m && $4 == 0 { printf "%.3f\n", ($3 - $2) * 1000 }' "$tmp/runs.log" |
        sort -n | awk -v m="$mode" '
            { v[NR] = $1 }
            END {
                label["none"] = "no filter"
                label["json"] = "linux.seccomp (crun compiles)"
                label["precompiled"] = "compiled once (annotation)"
                p50 = v[int(0.50 * (NR - 1) + 1.5)]
                p95 = v[int(0.95 * (NR - 1) + 1.5)]
                printf "  %-31s p50 %6.1f ms  p95 %6.1f ms  (%d runs)\n", label[m], p50, p95, NR
            }'
done
