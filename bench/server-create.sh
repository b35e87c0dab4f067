#!/usr/bin/env bash
# Servers end to end on one node: stratosd all-in-one (controller + agent +
# the crun container driver) on loopback, a fresh data dir, the busybox seed
# image, a 1-vCPU / 64 MiB flavor; the Nova API driven by
# bench/server_create.c (libcurl, a Keystone token, no CLI start-up cost).
#   1. create → ACTIVE latency of sequential servers (POST /servers, then
#      GET /servers/{id} every 2 ms until ACTIVE; each deleted and gone
#      before the next, untimed), p50/p95/max, one unmeasured server first
#      (it unpacks the image into the node's cache);
#   2. beside it in the same run, bare `crun run --detach` of the same rootfs
#      (unpacked once, `crun spec` + a sleep loop, the same namespaces), then
#      `crun delete --force` untimed; half of its runs before the servers,
#      half after, so drift hits both. On v1 and hybrid cgroup hosts it gets
#      what the driver gives crun to run at all (cgroup manager disabled, the
#      hybrid cgroup2 mount detached in a private mount namespace) and no
#      cgroups: it is the floor. Goal: stratos p50 <= 1.5 x bare p50 + 15 ms;
#   3. servers created concurrently on the node (all POSTs at once), time
#      until all are ACTIVE, and how many are not;
#   4. stratosd's VmRSS / VmHWM idle and with those servers running.
# Needs root, crun and busybox-static (prints SKIP and exits 0 otherwise).
#   bench/server-create.sh [builddir]          (default: build)
# Environment: BENCH_SERVERS (50 sequential), BENCH_PARALLEL (100 concurrent).
# The data dir is a temporary directory on $ST_DATA_DIR's filesystem (default
# /var/lib/stratos as root): overlayfs and fsync costs belong to the
# filesystem that holds instances. Every server, container, mount, cgroup,
# process and file it made is removed on exit, also when interrupted.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
n_seq="${BENCH_SERVERS:-50}"
n_par="${BENCH_PARALLEL:-100}"
bin="$build/bench/bench_server_create"

if [[ $EUID -ne 0 ]]; then
    echo "SKIP server-create: needs root (containers)"
    exit 0
fi
"$here/scripts/install-deps.sh" --bench
if ! command -v crun >/dev/null || [[ ! -x /bin/busybox ]]; then
    echo "SKIP server-create: crun or busybox-static missing (scripts/install-deps.sh)"
    exit 0
fi
for f in "$bin" "$build/stratosd"; do
    [[ -x "$f" ]] || {
        echo "server-create.sh: $f not found; build it with:" \
            "cmake --build $build --target stratosd bench_server_create" >&2
        exit 1
    }
done
for tool in openstack jq unshare; do
    command -v "$tool" >/dev/null || { echo "server-create.sh: $tool is missing" >&2; exit 1; }
done

data_dir="${ST_DATA_DIR:-/var/lib/stratos}"
base="$data_dir"
while [[ ! -d "$base" ]]; do
    base="$(dirname "$base")"
done
tmp="$(mktemp -d "$base/.stratos-bench-server.XXXXXX")"
data="$tmp/data"
pid=""
compute=""
token=""
# The API client, with the Keystone token (not exported: the openstack CLI
# would take OS_TOKEN for a token auth and refuse the password it also has).
api() { OS_TOKEN="$token" "$bin" "$@"; }

# The host's cgroup layout decides how crun must be run (as the driver does).
if [[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]]; then
    layout=v2
elif unified="$(findmnt -rn -t cgroup2 -o TARGET | head -1)" && [[ -n "$unified" ]]; then
    layout=hybrid
else
    layout=v1
fi
crun_flags=()
[[ $layout = v2 ]] || crun_flags=(--cgroup-manager=disabled)

# Runs a bash script (argument 1, with $1.. after it) where crun can run: on a
# hybrid host, in a private mount namespace without the cgroup2 mount.
in_crun_ns() {
    local script="$1"
    shift
    if [[ $layout = hybrid ]]; then
        unshare -m --propagation private bash -c "umount -l '$unified' && $script" bash "$@"
    else
        bash -c "$script" bash "$@"
    fi
}

# Deletes every crun container under a state root (what is left after an
# interruption: the API delete below normally leaves nothing).
crun_purge() {
    local root="$1" ids
    [[ -d "$root" ]] || return 0
    mapfile -t ids < <(crun --root "$root" list -q 2>/dev/null || true)
    [[ ${#ids[@]} -gt 0 ]] || return 0
    # shellcheck disable=SC2016
    in_crun_ns 'r=$1; shift; for id; do crun --root "$r" '"${crun_flags[*]}"' delete --force "$id"; done' \
        "$root" "${ids[@]}" || true
}

cleanup() {
    set +e
    # Servers through the API, as a user would (delete, then wait until gone).
    if [[ -n "$pid" && -n "$token" ]] && kill -0 "$pid" 2>/dev/null; then
        api -w 60 "$compute" delete-all >/dev/null
    fi
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    # Whatever an interruption left: containers, their cgroups, mounts.
    crun_purge "$data/agent/crun"
    crun_purge "$tmp/bare/state"
    if [[ -d "$data/agent/instances" ]]; then
        for d in "$data/agent/instances"/*/; do
            [[ -d "$d" ]] || continue
            find /sys/fs/cgroup -mindepth 2 -maxdepth 8 -depth -type d -path "*/stratos/$(basename "$d")*" \
                -exec rmdir {} + 2>/dev/null
        done
    fi
    grep -o " $tmp/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m"
    done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$here/scripts/busybox-rootfs.sh" "$tmp/busybox.tar" >/dev/null

# --- bare crun: the same rootfs, unpacked once ------------------------------
mkdir -p "$tmp/bare/bundle/rootfs" "$tmp/bare/state"
tar -C "$tmp/bare/bundle/rootfs" -xf "$tmp/busybox.tar"
(cd "$tmp/bare/bundle" && crun spec)
# shellcheck disable=SC2016
jq '.process.terminal = false
    | .process.args = ["/bin/sh", "-c", "trap \"exit 0\" TERM; while :; do sleep 3600 & wait $!; done"]
    | .root.readonly = false
    | .linux.namespaces += [{"type": "cgroup"}]' \
    "$tmp/bare/bundle/config.json" >"$tmp/bare/config.json"
mv "$tmp/bare/config.json" "$tmp/bare/bundle/config.json"

# bare_runs N TAG: N times crun run --detach (timed, in ms, one per line on
# $tmp/bare.ms), checked running, then deleted (untimed).
bare_runs() {
    # shellcheck disable=SC2016
    in_crun_ns '
        n=$1 tag=$2 root=$3 bundle=$4 out=$5; shift 5
        for i in $(seq "$n"); do
            id="bare-$tag-$i"
            t0=$EPOCHREALTIME
            crun --root "$root" "$@" run --detach --bundle "$bundle" "$id" </dev/null >/dev/null
            t1=$EPOCHREALTIME
            [[ "$(crun --root "$root" state "$id" | jq -r .status)" = running ]] || {
                echo "bare crun: $id is not running" >&2; exit 1; }
            crun --root "$root" "$@" delete --force "$id"
            echo "$t0 $t1" | awk "{printf \"%.3f\\n\", (\$2 - \$1) * 1000}" >>"$out"
        done' "$1" "$2" "$tmp/bare/state" "$tmp/bare/bundle" "$tmp/bare.ms" "${crun_flags[@]}"
}

# --- stratosd ---------------------------------------------------------------
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
"$build/stratosd" init --data-dir "$data" --import-image "busybox=$tmp/busybox.tar" >/dev/null 2>&1
# Its own session, so a Ctrl-C reaches only this script, whose cleanup
# deletes the servers through the daemon before stopping it. No access log:
# the 2 ms status polls are the benchmark's, not a client's load.
setsid "$build/stratosd" --data-dir "$data" --listen 127.0.0.1:0 --no-access-log \
    >"$tmp/stratosd.log" 2>&1 &
pid=$!
until grep -q 'event=agent_registered' "$tmp/stratosd.log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/stratosd.log" >&2; exit 1; }
    sleep 0.02
done
port=$(grep -o 'event=stratosd_ready.* port=[0-9]*' "$tmp/stratosd.log" | sed 's/.*port=//')
url="http://127.0.0.1:$port"
sleep 1
rss_start=$(status_kib "$pid" VmRSS)
node=$(grep -o 'event=agent_node_registered node=[^ ]*' "$tmp/stratosd.log" | head -1 | sed 's/.*node=//')
# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$url/identity/v3"
token="$(openstack token issue -f value -c id)"
compute="$url/compute/v2.1"
flavor="$(openstack flavor create --vcpus 1 --ram 64 --disk 1 bench.tiny -f value -c id)"
image="$(openstack image show busybox -f value -c id)"
openstack quota set --instances -1 --cores -1 --ram -1 "$OS_PROJECT_NAME"

sleep 1
rss_idle=$(status_kib "$pid" VmRSS)
hwm_idle=$(status_kib "$pid" VmHWM)
thr_idle=$(status_kib "$pid" Threads)

# --- 1 + 2: sequential creates beside bare crun -------------------------------
: >"$tmp/bare.ms"
bare_runs $((n_seq / 2)) a
seq_rc=0
seq_line="$(api "$compute" seq "$n_seq" "$flavor" "$image")" || seq_rc=$?
# The driver's share (create + start, as the agent logs it), the first
# server's (image unpack) left out.
drv_p50=$(grep -o 'event=agent_action .* action=create_start ms=[0-9.]*' "$tmp/stratosd.log" |
    sed 's/.*ms=//' | tail -n +2 | sort -n | awk '{v[NR] = $1} END {print NR ? v[int((NR - 1) / 2) + 1] : "?"}')
bare_runs $((n_seq - n_seq / 2)) b
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
read -r bare_p50 bare_p95 bare_max < <(sort -n "$tmp/bare.ms" | awk '{v[NR] = $1}
    END {printf "%.1f %.1f %.1f\n", v[int((50 * (NR - 1) + 50) / 100) + 1],
         v[int((95 * (NR - 1) + 50) / 100) + 1], v[NR]}')

# --- 3 + 4: concurrent creates, RSS -----------------------------------------
# A 2-CPU node admits 2 x 4.0 (the default cpu allocation ratio) one-vCPU
# servers; idle busybox shells need far less, so the node's ratio is raised
# to fit them, through the internal API (no public API sets it yet).
cpus=$(nproc)
ratio=$(( (n_par + cpus - 1) / cpus + 1 ))
curl -sf -X PUT -H "X-Node-Token: $(cat "$data/node-token")" -H 'Content-Type: application/json' \
    -d "{\"allocation_ratio\": {\"cpu\": $ratio, \"memory\": 1.0, \"disk\": 1.0}}" \
    "$url/internal/v1/nodes/$node" >/dev/null
par_rc=0
par_line="$(api -w 300 "$compute" par "$n_par" "$flavor" "$image")" || par_rc=$?
rss_full=$(status_kib "$pid" VmRSS)
hwm_full=$(status_kib "$pid" VmHWM)
thr_full=$(status_kib "$pid" Threads)
running=$(crun --root "$data/agent/crun" list -q 2>/dev/null | wc -l)
del_rc=0
del_line="$(api -w 300 "$compute" delete-all)" || del_rc=$?
rss_after=$(status_kib "$pid" VmRSS)

echo "server-create: $(nproc) CPUs, cgroup layout $layout, $(crun --version | head -1)," \
    "filesystem $(df -PT "$tmp" | awk 'NR==2 {print $2}')"
echo "create -> ACTIVE, $(field "$seq_line" n) sequential servers (1 vCPU, 64 MiB, busybox;" \
    "status polled every $(field "$seq_line" poll_ms) ms):"
printf '  stratos     p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms  (errors %s; first, unpacking the image: %s ms)\n' \
    "$(field "$seq_line" p50_ms)" "$(field "$seq_line" p95_ms)" "$(field "$seq_line" max_ms)" \
    "$(field "$seq_line" errors)" "$(field "$seq_line" first_ms)"
printf '  bare crun   p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms  (crun run --detach, %d runs)\n' \
    "$bare_p50" "$bare_p95" "$bare_max" "$(wc -l <"$tmp/bare.ms")"
awk -v s="$(field "$seq_line" p50_ms)" -v b="$bare_p50" 'BEGIN {
    g = 1.5 * b + 15
    printf "  ratio %.2f; goal stratos p50 <= 1.5 x bare p50 + 15 ms = %.1f ms: %s\n",
        s / b, g, s <= g ? "met" : "NOT met" }'
echo "  of which the agent's create+start through the driver (its log): p50 $drv_p50 ms"
echo "  delete -> gone (untimed above): p50 $(field "$seq_line" delete_p50_ms) ms"
echo "$(field "$par_line" n) servers created concurrently on one node (cpu allocation ratio $ratio):"
printf '  all POSTs answered in %.2f s; all ACTIVE after %.2f s; not ACTIVE: %s (ERROR %s, POST errors %s)\n' \
    "$(awk -v v="$(field "$par_line" posted_ms)" 'BEGIN {print v / 1000}')" \
    "$(awk -v v="$(field "$par_line" all_done_ms)" 'BEGIN {print v / 1000}')" \
    "$(field "$par_line" not_active)" "$(field "$par_line" error)" "$(field "$par_line" post_errors)"
echo "  crun containers running on the node: $running; deleting all: $(field "$del_line" ms) ms," \
    "left $(field "$del_line" left)"
echo "stratosd memory (controller + agent, one process):"
printf '  started, no request VmRSS %6d KiB\n' "$rss_start"
printf '  idle after setup    VmRSS %6d KiB  VmHWM %6d KiB  threads %d  (token, flavor, image, quota)\n' \
    "$rss_idle" "$hwm_idle" "$thr_idle"
printf '  with %3d servers    VmRSS %6d KiB  VmHWM %6d KiB  threads %d\n' "$n_par" "$rss_full" \
    "$hwm_full" "$thr_full"
printf '  after deleting them VmRSS %6d KiB\n' "$rss_after"
[[ $seq_rc -eq 0 && $par_rc -eq 0 && $del_rc -eq 0 ]]
