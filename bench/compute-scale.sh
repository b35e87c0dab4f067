#!/usr/bin/env bash
# The controller with 1,000 servers: one controller process (stratosd --role
# controller: API, store, placement) and one agent process holding simulated
# nodes (--role agent --drivers sim --sim-nodes N: the sim test double, which
# runs nothing, so this needs no root). Through the Nova API (bench/
# server_create.c, libcurl, a Keystone token) it creates the servers
# concurrently and prints: the time until all are ACTIVE, the controller's
# VmRSS / VmHWM and the store's size on disk before and after, the agent's
# RSS, the latency of GET /servers/detail and GET /servers with them all
# (and the wall time of `openstack server list` for a user's view), then the
# time to delete them all through the API.
#   bench/compute-scale.sh [builddir] [servers=1000] [sim_nodes=20]
# Environment: BENCH_IN_FLIGHT (100 concurrent requests), BENCH_POLL_MS (250,
# the status poll of GET /servers/detail while waiting for ACTIVE). A sim node
# reconciles its assignments every 5 s (the agent's sim poll), so "all
# ACTIVE" includes up to that much waiting by design of the test double.
# The store lives in a temporary directory on $ST_DATA_DIR's filesystem
# (default /var/lib/stratos as root, else ~/.local/share/stratos): fsync cost
# belongs to the filesystem that holds the store. Both processes and the
# directory are removed on exit, also when interrupted.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
servers="${2:-1000}"
sim_nodes="${3:-20}"
in_flight="${BENCH_IN_FLIGHT:-100}"
poll_ms="${BENCH_POLL_MS:-250}"
bin="$build/bench/bench_server_create"

"$here/scripts/install-deps.sh" --bench
for f in "$bin" "$build/stratosd"; do
    [[ -x "$f" ]] || {
        echo "compute-scale.sh: $f not found; build it with:" \
            "cmake --build $build --target stratosd bench_server_create" >&2
        exit 1
    }
done
for tool in openstack curl sqlite3; do
    command -v "$tool" >/dev/null || { echo "compute-scale.sh: $tool is missing" >&2; exit 1; }
done

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
tmp="$(mktemp -d "$base/.stratos-bench-scale.XXXXXX")"
ctrl_pid=""
agent_pid=""
token=""
compute=""
# The API client, with the Keystone token (not exported: the openstack CLI
# would take OS_TOKEN for a token auth and refuse the password it also has).
api() { OS_TOKEN="$token" "$bin" "$@"; }

stop() {
    local p="$1"
    [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p"
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}
cleanup() {
    set +e
    # The sim driver runs nothing on the host: its instances are small files
    # under the agent's data dir, removed with it.
    stop "$agent_pid"
    stop "$ctrl_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_log FILE PID EVENT: until EVENT is logged (or the process died).
wait_log() {
    until grep -q "event=$3" "$1" 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || { cat "$1" >&2; exit 1; }
        sleep 0.02
    done
}
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
store_kib() {
    local total=0 f
    for f in "$tmp/ctrl/stratos.db" "$tmp/ctrl/stratos.db-wal" "$tmp/ctrl/stratos.db-shm"; do
        [[ -f "$f" ]] && total=$((total + $(stat -c %s "$f")))
    done
    echo $((total / 1024))
}

# Any image does for the sim driver: a tiny rootfs tarball.
mkdir -p "$tmp/rootfs/bin"
echo '#!/bin/sh' >"$tmp/rootfs/bin/sh"
tar -C "$tmp/rootfs" -cf "$tmp/img.tar" .
"$build/stratosd" init --data-dir "$tmp/ctrl" --import-image "simimg=$tmp/img.tar" >/dev/null 2>&1
# Own sessions, so a Ctrl-C reaches only this script, which then stops them.
setsid "$build/stratosd" --data-dir "$tmp/ctrl" --listen 127.0.0.1:0 --role controller \
    --no-access-log >"$tmp/ctrl.log" 2>&1 &
ctrl_pid=$!
wait_log "$tmp/ctrl.log" "$ctrl_pid" stratosd_ready
port=$(grep -o 'event=stratosd_ready.* port=[0-9]*' "$tmp/ctrl.log" | sed 's/.*port=//')
url="http://127.0.0.1:$port"
setsid "$build/stratosd" --role agent --data-dir "$tmp/agent" --listen 127.0.0.1:0 \
    --controller "$url" --node-name bench --node-token-file "$tmp/ctrl/node-token" \
    --drivers sim --sim-nodes "$sim_nodes" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
wait_log "$tmp/agent.log" "$agent_pid" agent_registered

# shellcheck disable=SC1091
source "$tmp/ctrl/admin-openrc"
export OS_AUTH_URL="$url/identity/v3"
token="$(openstack token issue -f value -c id)"
compute="$url/compute/v2.1"
flavor="$(openstack flavor create --vcpus 1 --ram 64 --disk 1 bench.sim -f value -c id)"
image="$(openstack image show simimg -f value -c id)"
openstack quota set --instances -1 --cores -1 --ram -1 "$OS_PROJECT_NAME"
nodes=$(curl -sf -H "X-Auth-Token: $token" "$compute/os-hypervisors" | grep -o '"hypervisor_hostname"' | wc -l)

sleep 2
rss0=$(status_kib "$ctrl_pid" VmRSS)
hwm0=$(status_kib "$ctrl_pid" VmHWM)
store0=$(store_kib)
list0="$(api "$compute" get /servers/detail 20)"

par_rc=0
par_line="$(api -c "$in_flight" -p "$poll_ms" -w 600 "$compute" par "$servers" "$flavor" "$image")" ||
    par_rc=$?
sleep 1
rss1=$(status_kib "$ctrl_pid" VmRSS)
hwm1=$(status_kib "$ctrl_pid" VmHWM)
store1=$(store_kib)
# What fills the store: its event history (kept for watchers) by key prefix.
history="$(sqlite3 "file:$tmp/ctrl/stratos.db?mode=ro" \
    "SELECT rtrim(key, '0123456789abcdef-') AS p, count(*), sum(length(value)) / 1024 AS kib
     FROM events GROUP BY p ORDER BY kib DESC LIMIT 3" 2>/dev/null |
    awk -F'|' '{printf "%s%s %d KiB in %d writes", (NR > 1 ? "; " : ""), $1, $3, $2}')" || true
agent_rss=$(status_kib "$agent_pid" VmRSS)
agent_hwm=$(status_kib "$agent_pid" VmHWM)
detail="$(api "$compute" get /servers/detail 20)"
brief="$(api "$compute" get /servers 20)"
t0=$EPOCHREALTIME
rows=$(openstack server list --limit -1 -f value -c ID | wc -l)
t1=$EPOCHREALTIME
del_rc=0
del_line="$(api -c "$in_flight" -p "$poll_ms" -w 600 "$compute" delete-all)" || del_rc=$?
rss2=$(status_kib "$ctrl_pid" VmRSS)
store2=$(store_kib)

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
secs() { awk -v v="$1" 'BEGIN {printf "%.2f", v / 1000}'; }
echo "compute-scale: $(nproc) CPUs; controller (--role controller) + one agent process with" \
    "$nodes nodes (1 + $sim_nodes simulated); store on $(df -PT "$tmp" | awk 'NR==2 {print $2}')"
echo "$(field "$par_line" n) servers (1 vCPU, 64 MiB) created through the API," \
    "$(field "$par_line" in_flight) requests in flight:"
echo "  all POSTs answered in $(secs "$(field "$par_line" posted_ms)") s;" \
    "all ACTIVE after $(secs "$(field "$par_line" all_done_ms)") s (status polled every" \
    "$(field "$par_line" poll_ms) ms; sim nodes reconcile every 5 s)"
echo "  not ACTIVE: $(field "$par_line" not_active) (ERROR $(field "$par_line" error)," \
    "POST errors $(field "$par_line" post_errors))"
printf '  controller  VmRSS %7d KiB before  %7d KiB with them (VmHWM %d -> %d KiB)\n' \
    "$rss0" "$rss1" "$hwm0" "$hwm1"
printf '  store       %7d KiB before  %7d KiB with them  (stratos.db + -wal + -shm)\n' \
    "$store0" "$store1"
echo "  store history, largest: ${history:-(unavailable)}"
printf '  agent       VmRSS %7d KiB  VmHWM %7d KiB  (%d nodes, %s servers)\n' "$agent_rss" \
    "$agent_hwm" "$nodes" "$(field "$par_line" active)"
printf '  GET /servers/detail  p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms  (%d KiB; empty: p50 %.1f ms)\n' \
    "$(field "$detail" p50_ms)" "$(field "$detail" p95_ms)" "$(field "$detail" max_ms)" \
    "$(( $(field "$detail" bytes) / 1024 ))" "$(field "$list0" p50_ms)"
printf '  GET /servers         p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms  (%d KiB)\n' \
    "$(field "$brief" p50_ms)" "$(field "$brief" p95_ms)" "$(field "$brief" max_ms)" \
    "$(( $(field "$brief" bytes) / 1024 ))"
awk -v a="$t0" -v b="$t1" -v r="$rows" \
    'BEGIN {printf "  openstack server list --limit -1: %d rows in %.2f s (the CLI included)\n", r, b - a}'
echo "  delete all through the API: $(secs "$(field "$del_line" ms)") s, left $(field "$del_line" left);" \
    "controller VmRSS after: $rss2 KiB; store $store2 KiB"
[[ $par_rc -eq 0 && $del_rc -eq 0 ]]
