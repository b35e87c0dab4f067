# Shared by the benchmarks that run a real stratosd (net-plug.sh,
# fw-apply.sh, net-throughput.sh, quota-usage.sh, sg-rules.sh): a temporary
# directory on the disk stratos keeps its data on, the host namespace they
# run in, and the cleanup that leaves nothing behind after a run or an
# interruption. Sourced; the caller has `set -euo pipefail`.

# st_bench_tmpdir NAME: prints a new directory .stratos-bench-NAME.XXXXXX on
# the filesystem of stratos's data dir ($ST_DATA_DIR, else /var/lib/stratos
# for root, else $XDG_DATA_HOME/stratos), beside its nearest existing
# ancestor: fsync costs are that disk's, not /tmp's.
st_bench_tmpdir() {
    local data_dir base
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
    mktemp -d "$base/.stratos-bench-$1.XXXXXX"
}

# st_bench_host_ns NAME-PREFIX WHAT SKIP-RC SCRIPT ARGS...: in the outer run
# (ST_BENCH_HOST_NS unset) makes a fresh network namespace to play the host,
# runs SCRIPT inside it (nsenter, not `ip netns exec`, which mounts a fresh
# /sys and hides the cgroup hierarchies the container driver needs), passes
# a signal on, removes the namespace and exits with the inner run's status.
# In the inner run it returns at once.
st_bench_host_ns() {
    local prefix=$1 what=$2 skip_rc=$3 script=$4
    shift 4
    [[ -z "${ST_BENCH_HOST_NS:-}" ]] || return 0
    local ns="$prefix-$$"
    ip netns add "$ns" || { echo "SKIP $what: cannot create a network namespace"; exit "$skip_rc"; }
    # shellcheck disable=SC2064
    trap "ip netns del '$ns' 2>/dev/null || true" EXIT
    ip -n "$ns" link set lo up
    ST_BENCH_HOST_NS="$ns" nsenter --net="/run/netns/$ns" bash "$script" "$@" &
    local inner=$! rc=0
    # shellcheck disable=SC2064
    trap "kill -TERM $inner 2>/dev/null || true" INT TERM
    while kill -0 "$inner" 2>/dev/null; do
        rc=0
        wait "$inner" || rc=$?
    done
    exit "$rc"
}

# st_bench_delete_servers URL TOKEN [COMMAND-PREFIX...]: deletes every server
# through the API, as a user would, and waits until they are gone (or the
# API is: then nothing more can be deleted through it).
st_bench_delete_servers() {
    local url=$1 token=$2 id left
    shift 2
    for id in $("$@" curl -sf -H "X-Auth-Token: $token" "$url/compute/v2.1/servers" | jq -r '.servers[].id'); do
        "$@" curl -sf -X DELETE -H "X-Auth-Token: $token" "$url/compute/v2.1/servers/$id" >/dev/null
    done
    for _ in $(seq 300); do
        left="$("$@" curl -sf -H "X-Auth-Token: $token" "$url/compute/v2.1/servers" | jq '.servers | length')" || break
        [[ "$left" = 0 ]] && break
        sleep 0.1
    done
}

# st_bench_stop PID: SIGTERM, up to 10 s, then SIGKILL.
st_bench_stop() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# st_bench_leftovers TMP DATA-DIR...: whatever an interruption left of the
# agents' instances (crun containers, their cgroups), then every mount under
# TMP, then TMP itself.
st_bench_leftovers() {
    local tmp=$1 data root ids id inst
    shift
    for data in "$@"; do
        root="$data/agent/crun"
        if [[ -d "$root" ]]; then
            mapfile -t ids < <(crun --root "$root" list -q 2>/dev/null || true)
            for id in "${ids[@]}"; do
                crun --root "$root" delete --force "$id" >/dev/null 2>&1 ||
                    crun --root "$root" --cgroup-manager=disabled delete --force "$id" >/dev/null 2>&1 || true
            done
        fi
        [[ -d "$data/agent/instances" ]] || continue
        for inst in "$data/agent/instances"/*/; do
            [[ -d "$inst" ]] || continue
            find /sys/fs/cgroup -mindepth 2 -maxdepth 8 -depth -type d \
                -path "*/stratos/$(basename "$inst")*" -exec rmdir {} + 2>/dev/null
        done
    done
    grep -o " $tmp/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$tmp"
}
