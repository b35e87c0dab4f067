#!/usr/bin/env bash
# Control-plane scale with simulated nodes: one controller (stratosd --role
# controller) and one agent process registering N simulated nodes
# (--drivers sim --sim-nodes N, the sim test double: nothing runs). Prints
# the time until every node is registered, the heartbeat write load on the
# store (revisions per second over a window, which with no other activity
# is the heartbeats plus nothing; expected (N+1) / (lease / 3) = (N+1)/10 s),
# the controller's CPU and RSS during that window, the agent's RSS and
# threads, and the store file's size; optionally servers placed on the sim
# nodes (create → ACTIVE through the whole control plane).
#   bench/sim-scale.sh [builddir] [nodes=1000] [window_s=30] [servers=0]
# (KEEP=1 keeps the temporary dir with both daemons' logs.)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
nodes="${2:-1000}"
window="${3:-30}"
servers="${4:-0}"
tmp="$(mktemp -d /tmp/stratos-bench-sim.XXXXXX)"
ctrl_pid=""
agent_pid=""
cleanup() {
    [[ -n "$agent_pid" ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    [[ -n "$ctrl_pid" ]] && kill "$ctrl_pid" 2>/dev/null && wait "$ctrl_pid" 2>/dev/null
    [[ -n "${KEEP:-}" ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

"$build/stratosd" init --data-dir "$tmp/ctrl" >/dev/null 2>&1
"$build/stratosd" --data-dir "$tmp/ctrl" --listen 127.0.0.1:0 --role controller --threads 8 \
    --no-access-log >"$tmp/ctrl.log" 2>&1 &
ctrl_pid=$!
until grep -q 'event=stratosd_ready' "$tmp/ctrl.log" 2>/dev/null; do
    kill -0 "$ctrl_pid" 2>/dev/null || { cat "$tmp/ctrl.log" >&2; exit 1; }
    sleep 0.02
done
port=$(grep -o 'event=stratosd_ready.* port=[0-9]*' "$tmp/ctrl.log" | sed 's/.*port=//')
url="http://127.0.0.1:$port"
token="$(cat "$tmp/ctrl/node-token")"

revision() {
    curl -sf -H "X-Node-Token: $token" "$url/internal/v1/nodes/bench-probe/servers?after=0" |
        sed 's/.*"revision":\([0-9]*\).*/\1/'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

rev0=$(revision)
rss_before=$(rss_kib "$ctrl_pid")
t0=$(date +%s%N)
"$build/stratosd" --role agent --data-dir "$tmp/agent" --listen 127.0.0.1:0 --controller "$url" \
    --node-name bench --node-token-file "$tmp/ctrl/node-token" --drivers sim --sim-nodes "$nodes" \
    >"$tmp/agent.log" 2>&1 &
agent_pid=$!
until grep -q 'event=agent_registered' "$tmp/agent.log" 2>/dev/null; do
    kill -0 "$agent_pid" 2>/dev/null || { cat "$tmp/agent.log" >&2; exit 1; }
    sleep 0.01
done
t1=$(date +%s%N)
agent_ms=$(grep -o 'event=agent_registered nodes=[0-9]* ms=[0-9.]*' "$tmp/agent.log" | sed 's/.*ms=//')
total=$((nodes + 1))
rev1=$(revision)

# Steady state: heartbeats only (and the simulated nodes' polls, which read).
sleep 2
ra=$(revision)
ca=$(cpu_ticks "$ctrl_pid")
ta=$(date +%s%N)
sleep "$window"
rb=$(revision)
cb=$(cpu_ticks "$ctrl_pid")
tb=$(date +%s%N)
hz=$(getconf CLK_TCK)
secs=$(awk -v a="$ta" -v b="$tb" 'BEGIN {print (b - a) / 1e9}')
writes=$(awk -v a="$ra" -v b="$rb" -v s="$secs" 'BEGIN {printf "%.1f", (b - a) / s}')
cpu=$(awk -v a="$ca" -v b="$cb" -v s="$secs" -v hz="$hz" 'BEGIN {printf "%.1f", 100 * (b - a) / hz / s}')
hb_errors=$(grep -c 'event=agent_heartbeat_failed' "$tmp/agent.log" || true)

printf 'sim-scale: %d simulated nodes + 1 in one agent process, lease 30 s\n' "$nodes"
printf '  register all %d nodes:   %.0f ms (agent clock), %.0f ms from exec\n' "$total" \
    "$agent_ms" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e6}')"
printf '  store writes at registration: %d\n' "$((rev1 - rev0))"
printf '  heartbeat write load:    %s writes/s on the store over %.0f s (expected %.1f/s)\n' \
    "$writes" "$secs" "$(awk -v n="$total" 'BEGIN {print n / 10}')"
printf '  controller CPU:          %s%% of one core (heartbeats + %d nodes polling every 5 s)\n' \
    "$cpu" "$nodes"
printf '  controller RSS:          %d KiB before, %d KiB with %d nodes (peak %d KiB)\n' \
    "$rss_before" "$(rss_kib "$ctrl_pid")" "$total" "$(hwm_kib "$ctrl_pid")"
printf '  agent RSS:               %d KiB, %d threads\n' "$(rss_kib "$agent_pid")" \
    "$(awk '/^Threads/ {print $2}' "/proc/$agent_pid/status")"
printf '  store file:              %d KiB\n' "$(( $(stat -c %s "$tmp/ctrl/stratos.db") / 1024 ))"
printf '  heartbeat failures:      %d\n' "$hb_errors"

if [[ "$servers" -gt 0 ]] && command -v openstack >/dev/null && command -v jq >/dev/null; then
    # shellcheck disable=SC1091
    source "$tmp/ctrl/admin-openrc"
    export OS_AUTH_URL="$url/identity/v3"
    mkdir -p "$tmp/rootfs/bin" && echo x >"$tmp/rootfs/bin/sh"
    tar -C "$tmp/rootfs" -cf "$tmp/img.tar" .
    openstack image create --file "$tmp/img.tar" --container-format docker --disk-format raw \
        simimg >/dev/null
    openstack flavor create --vcpus 1 --ram 128 --disk 1 f.sim >/dev/null
    openstack quota set --instances "$servers" --cores "$servers" --ram $((servers * 128)) admin \
        >/dev/null
    s0=$(date +%s%N)
    c0=$(cpu_ticks "$ctrl_pid")
    pids=()
    for i in $(seq 1 "$servers"); do # 8 CLI processes at a time
        openstack server create --flavor f.sim --image simimg "s$i" >/dev/null &
        pids+=($!)
        if [[ ${#pids[@]} -eq 8 || $i -eq $servers ]]; then
            wait "${pids[@]}"
            pids=()
        fi
    done
    s1=$(date +%s%N)
    until [[ $(openstack server list -f json --limit -1 | jq '[.[] | select(.Status == "ACTIVE")] | length') \
        -ge "$servers" ]]; do sleep 0.5; done
    s2=$(date +%s%N)
    c1=$(cpu_ticks "$ctrl_pid")
    printf '  %d servers on sim nodes (8 CLI processes at a time): created in %.1f s, all ACTIVE\n' \
        "$servers" "$(awk -v a="$s0" -v b="$s1" 'BEGIN {print (b - a) / 1e9}')"
    printf '    after %.1f s; controller CPU %.1f s meanwhile; controller RSS %d KiB\n' \
        "$(awk -v a="$s0" -v b="$s2" 'BEGIN {print (b - a) / 1e9}')" \
        "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN {print (b - a) / hz}')" "$(rss_kib "$ctrl_pid")"
fi
