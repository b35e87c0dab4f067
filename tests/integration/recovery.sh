#!/usr/bin/env bash
# Failure tests of compute, with real crun containers, judged by what the
# API and the node show:
#  1. kill -9 of stratosd (all-in-one) while 200 server creates are in
#     flight: after a restart every acknowledged server (a 202 with its id)
#     reaches ACTIVE or ERROR, none is lost (a second kill -9 comes while
#     the restarted agent brings the backlog up), the containers that ran
#     at a kill are the same processes afterwards, the node's allocations
#     count each placed server once, and no container is an orphan: each
#     one crun knows belongs to a server the API lists, and once every
#     server is deleted no container, overlay mount, cgroup, instance
#     directory or allocation is left, and (after the grace period of a
#     create in flight) the project's quota usage is zero again (checked
#     last: part 1's daemon stays up while part 2 runs, so that the grace
#     period passes meanwhile).
#  2. kill -9 of the node agent while servers run (controller and agent as
#     separate processes): the containers' processes keep running, the API
#     keeps showing ACTIVE; the restarted agent re-adopts them (same
#     processes, nothing created or started again) and operations work
#     afterwards (stop → SHUTOFF, start → ACTIVE, delete → gone, nothing
#     left on the node).
# Environment: RECOVERY_SERVERS (200), RECOVERY_KILL_AFTER (acknowledged
# creates before the kill; default random in 20..150).
source "$(dirname "$0")/lib/common.bash"

[ "$(id -u)" = 0 ] || { echo "SKIP: running containers needs root"; exit 77; }
command -v crun >/dev/null || { echo "SKIP: crun is not installed (scripts/install-deps.sh)"; exit 77; }
command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
for tool in jq curl stdbuf unshare findmnt; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
[ -x "$STRATOSD" ] || { echo "SKIP: $STRATOSD is not built"; exit 77; }
[ -x "$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" ] || { echo "SKIP: no busybox rootfs script"; exit 77; }

here=$(cd "$(dirname "$0")" && pwd)
n_servers=${RECOVERY_SERVERS:-200}
kill_after=${RECOVERY_KILL_AFTER:-$((20 + RANDOM % 131))}
[ "$kill_after" -lt "$n_servers" ] || kill_after=$((n_servers / 2))
t_start=$SECONDS
step() { echo "[$((SECONDS - t_start)) s] $*"; }

# ---- helpers ---------------------------------------------------------------

# wait_for SECONDS CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
    local n=$(($1 * 5))
    shift
    for _ in $(seq 1 "$n"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}

# A process's identity: pid and start time (a recycled pid has another).
proc_id() {
    local pid=$1 stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # fields after "comm": state ppid ... starttime is field 22 of the line
    # (the 20th after comm); a zombie is not a live process.
    read -r -a f <<<"$stat"
    [ "${f[0]}" != Z ] || return 1
    echo "$pid:${f[19]}"
}
proc_alive() { # proc_alive PID:START
    [ "$(proc_id "${1%%:*}" 2>/dev/null)" = "$1" ]
}

crun_pid() { # crun_pid CRUN_ROOT ID: the container's init, if crun calls it running
    crun --root "$1" state "$2" 2>/dev/null | jq -er 'select(.status == "running") | .pid'
}

# The API as a user's client sees it (token of the admin project).
api() { # api METHOD PATH [BODY]
    local m=$1 p=$2
    shift 2
    curl -sf -X "$m" -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
        ${1:+-d "$1"} "$COMPUTE$p"
}
servers_detail() { api GET '/servers/detail?limit=1000'; }
gone() { # gone ID: the API answers 404 for it
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $TOKEN" "$COMPUTE/servers/$1")" = 404 ]
}

# Every server the API lists, deleted through the CLI (one call), then
# waited for until the API lists none (the CLI's --wait polls each server
# in turn every 5 s: minutes for a few dozen).
delete_all_servers() {
    local ids n
    ids=$(servers_detail | jq -r '.servers[].id') || return 1
    [ -z "$ids" ] && return 0
    # shellcheck disable=SC2086
    openstack server delete $ids || return 1
    n=$(wc -l <<<"$ids")
    local deadline=$((SECONDS + 30 + n))
    while [ -n "$(servers_detail | jq -r '.servers[].id')" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "servers not deleted: $(servers_detail)" >&2; return 1; }
        sleep 0.2
    done
}

# The node's view, for the orphan checks: the containers crun knows (ids),
# the instance directories, mounts and cgroups named after ids.
crun_ids() { crun --root "$1" list -q 2>/dev/null | sort; }
mounts_under() { grep -F " $1/" /proc/self/mountinfo || true; }
cgroups_of() { # cgroups_of ID...: the stratos cgroups named after them
    [ $# -gt 0 ] || return 0
    find /sys/fs/cgroup -type d -path '*stratos*' 2>/dev/null | grep -F -f <(printf '/%s\n' "$@") || true
}

# ---- cleanup: every server and container, also when a check fails ----------

ENDPOINTS=() # "COMPUTE_URL TOKEN" of each daemon serving the API now
CRUN_ROOTS=()
KNOWN_IDS=()
force_cleanup() {
    set +e
    # RECOVERY_KEEP_LOGS=DIR keeps the daemons' logs (debugging).
    [ -n "${RECOVERY_KEEP_LOGS:-}" ] && mkdir -p "$RECOVERY_KEEP_LOGS" &&
        cp "$ST_TMP"/*.log "$RECOVERY_KEEP_LOGS"/ 2>/dev/null
    # Through the API first, as a user would, while a daemon still serves it.
    for ep in "${ENDPOINTS[@]}"; do
        read -r COMPUTE TOKEN <<<"$ep"
        curl -sf -o /dev/null "$COMPUTE/" 2>/dev/null && delete_all_servers >/dev/null 2>&1
    done
    for pid in "${ST_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
    # Whatever is left: containers (crun refuses the hybrid cgroup layout
    # outside a mount namespace without the cgroup2 mount), mounts, cgroups.
    local unified flags=()
    unified=$(findmnt -rn -t cgroup2 -o TARGET | head -1)
    [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || flags=(--cgroup-manager=disabled)
    for root in "${CRUN_ROOTS[@]}"; do
        [ -d "$root" ] || continue
        for id in $(crun_ids "$root"); do
            pid=$(crun --root "$root" state "$id" 2>/dev/null | jq -r '.pid // empty')
            [ -n "$pid" ] && [ "$pid" != 0 ] && kill -9 "$pid" 2>/dev/null
            if [ -n "$unified" ] && [ "$unified" != /sys/fs/cgroup ]; then
                unshare -m --propagation private sh -c \
                    "umount -l '$unified'; crun --root '$root' ${flags[*]} delete --force '$id'"
            else
                crun --root "$root" "${flags[@]}" delete --force "$id"
            fi
            KNOWN_IDS+=("$id")
        done >/dev/null 2>&1
    done
    grep -o " $ST_TMP/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    for d in "$ST_TMP"/*/agent/instances/*/; do
        [ -d "$d" ] && KNOWN_IDS+=("$(basename "$d")")
    done
    for id in "${KNOWN_IDS[@]}"; do
        find /sys/fs/cgroup -depth -type d -path "*stratos*" -name "$id*" -exec rmdir {} + 2>/dev/null
    done
    st_cleanup
}
trap force_cleanup EXIT

"$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" "$ST_TMP/busybox.tar" >/dev/null

# login DATA_DIR URL: admin credentials, a token and the compute endpoint.
login() {
    # shellcheck disable=SC1091
    source "$1/admin-openrc"
    export OS_AUTH_URL="$2/identity/v3"
    TOKEN=$(openstack token issue -f value -c id) || fail "token issue"
    COMPUTE="$2/compute/v2.1"
}

# ============================================================================
# 1. kill -9 of stratosd (all-in-one) during concurrent creates
# ============================================================================
data="$ST_TMP/aio"
"$STRATOSD" init --data-dir "$data" --import-image "busybox=$ST_TMP/busybox.tar" >/dev/null \
    || fail "init"
CRUN_ROOTS+=("$data/agent/crun")
start_aio() {
    [ -f "$data.log" ] && mv "$data.log" "$data.killed-$SECONDS.log"
    st_start_daemon "$data"
    aio_pid=$ST_PID aio_url=$ST_URL aio_log=$ST_LOG
    wait_for 30 grep -q 'event=agent_registered' "$aio_log" || fail "agent registration: $(cat "$aio_log")"
}
start_aio
login "$data" "$aio_url"
ENDPOINTS+=("$COMPUTE $TOKEN")
node_name=$(grep -o 'event=agent_node_registered node=[^ ]*' "$aio_log" | head -1 | sed 's/.*node=//')

openstack quota set --instances 300 --cores 400 --ram 100000 admin || fail "quota set"
flavor=$(openstack flavor create --vcpus 1 --ram 32 --disk 0 rec.tiny -f value -c id) || fail "flavor create"
image=$(openstack image show busybox -f value -c id) || fail "image show"
# A 2-CPU node admits 2 × 4.0 (the default cpu allocation ratio) one-vCPU
# servers; idle busybox shells need far less, so the node's ratio is raised
# to admit them all (no public API sets it: the internal one, as an agent).
ratio=$(( (n_servers + $(nproc) - 1) / $(nproc) + 1 ))
curl -sf -X PUT -H "X-Node-Token: $(cat "$data/node-token")" -H 'Content-Type: application/json' \
    -d "{\"allocation_ratio\": {\"cpu\": $ratio, \"memory\": 1.0, \"disk\": 1.0}}" \
    "$aio_url/internal/v1/nodes/$node_name" >/dev/null || fail "raising the node's cpu ratio"

out="$ST_TMP/creates"
OS_TOKEN=$TOKEN "$here/lib/create-many.sh" "$COMPUTE" "$flavor" "$image" "$n_servers" \
    "$n_servers" "$out" crash &
many_pid=$!
acked() {
    local n
    n=$(grep -c '^202 ' "$out/progress" 2>/dev/null || true)
    echo "${n:-0}"
}
step "firing $n_servers creates, kill -9 after $kill_after acknowledged"
t_fire=$SECONDS
# Woken by each answer as it is written (tail -f follows with inotify), not
# by polling: on a busy 2-CPU machine a poll loop lags by dozens of answers.
until [ -f "$out/progress" ] || ! kill -0 "$many_pid" 2>/dev/null; do sleep 0.005; done
# (a process substitution: a pipeline would also wait for tail to end)
n=0
while [ "$n" -lt "$kill_after" ] && read -r code _; do
    [ "$code" != 202 ] || n=$((n + 1))
done < <(tail -n +1 -f --pid="$many_pid" "$out/progress" 2>/dev/null)
kill -9 "$aio_pid"
wait "$aio_pid" 2>/dev/null || true
t_kill=$SECONDS
n_acked_at_kill=$(acked)
step "stratosd killed with $n_acked_at_kill acknowledged"
wait "$many_pid" || fail "create-many.sh failed"
# What runs after a kill: these processes must still be the same ones after
# recovery (re-adopted, not recreated).
declare -A running
running_ids=()
record_running() {
    local id pid
    for id in $(crun_ids "$data/agent/crun"); do
        [ -z "${running[$id]:-}" ] || continue
        pid=$(crun_pid "$data/agent/crun" "$id") || continue
        running[$id]=$(proc_id "$pid") || continue
        running_ids+=("$id")
    done
}
record_running

[ -s "$out/results" ] || fail "create-many.sh recorded nothing"
# Acknowledged: a 202 with the server's id (a 202 whose body the kill cut
# off told the client nothing it could use; counted apart).
mapfile -t acked_ids < <(awk '$2 == 202 && length($3) == 36 {print $3}' "$out/results")
n_acked=${#acked_ids[@]}
n_cut=$(awk '$2 == 202 && length($3) != 36' "$out/results" | wc -l)
n_unanswered=$(awk '$2 == "000"' "$out/results" | wc -l)
[ "$n_acked" -ge "$kill_after" ] || fail "only $n_acked creates acknowledged (wanted $kill_after before the kill)"
[ "$n_unanswered" -gt 0 ] || fail "the kill came after every create was answered: nothing was in flight"
other=$(awk '$2 != 202 && $2 != "000" {print $2}' "$out/results" | sort | uniq -c)
[ -z "$other" ] || fail "creates answered with errors before the kill: $other"

step "$n_acked acknowledged, ${#running_ids[@]} containers running; restarting stratosd"
start_aio
# A second kill -9 while the restarted agent brings the backlog up, after a
# random share of it: some containers half made (overlay mounted, crun run
# under way), some running but never reported.
n_before=$(ls "$data/agent/crun" 2>/dev/null | wc -l)
second_after=$((n_before + 1 + RANDOM % (n_acked * 2 / 3 + 1)))
until [ "$(ls "$data/agent/crun" 2>/dev/null | wc -l)" -ge "$second_after" ]; do
    kill -0 "$aio_pid" || fail "stratosd died after the restart: $(tail -5 "$aio_log")"
    sleep 0.01
done
kill -9 "$aio_pid"
wait "$aio_pid" 2>/dev/null || true
sleep 0.5 # a crun run under way at the kill finishes on its own
record_running
step "second kill -9 with $(ls "$data/agent/crun" | wc -l) containers made," \
    "${#running_ids[@]} running; restarting stratosd"
start_aio
t_restart=$SECONDS
COMPUTE="$aio_url/compute/v2.1"
export OS_AUTH_URL="$aio_url/identity/v3"
ENDPOINTS=("$COMPUTE $TOKEN")

# Every acknowledged server is listed (none lost) and, within a deadline
# proportional to their number, every listed server is ACTIVE or ERROR.
deadline=$((SECONDS + 30 + n_acked / 2))
while :; do
    detail=$(servers_detail) || fail "GET /servers/detail after the restart"
    listed=$(jq -r '.servers[].id' <<<"$detail" | sort)
    for id in "${acked_ids[@]}"; do
        grep -qx "$id" <<<"$listed" || fail "acknowledged server $id is lost (not in /servers/detail)"
    done
    pending=$(jq -r '[.servers[] | select(.status != "ACTIVE" and .status != "ERROR")] | length' <<<"$detail")
    [ "$pending" = 0 ] && break
    [ "$SECONDS" -lt "$deadline" ] || fail "$pending server(s) neither ACTIVE nor ERROR after" \
        "$((SECONDS - t_restart)) s: $(jq -c '[.servers[] | select(.status != "ACTIVE" and .status != "ERROR") | {id, status}]' <<<"$detail")"
    sleep 1
done
t_settled=$((SECONDS - t_restart))
step "settled"
n_listed=$(wc -l <<<"$listed")
n_active=$(jq '[.servers[] | select(.status == "ACTIVE")] | length' <<<"$detail")
n_error=$(jq '[.servers[] | select(.status == "ERROR")] | length' <<<"$detail")
if [ "$n_error" -gt 0 ]; then
    echo "servers in ERROR (faults):"
    jq -r '.servers[] | select(.status == "ERROR") | "  \(.id) \(.fault.message // "-")"' <<<"$detail" |
        sort -k2 | uniq -c -f1 | head -20
fi

# The node and the API, each read once: container → running pid, server → status.
declare -A crun_running=() api_status=()
while read -r id pid; do
    [ -n "$id" ] && crun_running[$id]=$pid
done < <(crun --root "$data/agent/crun" list -f json 2>/dev/null |
    jq -r '.[] | select(.status == "running") | "\(.id) \(.pid)"')
while read -r id st; do
    api_status[$id]=$st
done < <(jq -r '.servers[] | "\(.id) \(.status)"' <<<"$detail")

# Re-adopted, not recreated: what ran at a kill is the same process, ACTIVE.
for id in "${running_ids[@]}"; do
    proc_alive "${running[$id]}" || fail "container $id was running at a kill (${running[$id]})" \
        "and is now another process or none (${crun_running[$id]:-none})"
    [ "${api_status[$id]:-}" = ACTIVE ] || fail "server $id ran at a kill but is ${api_status[$id]:-not listed}"
done
# No orphan: every container crun knows and every instance directory belong
# to a server the API lists; every ACTIVE server has its running container.
for id in $(crun_ids "$data/agent/crun"); do
    [ -n "${api_status[$id]:-}" ] || fail "orphan container $id (no such server)"
done
for d in "$data"/agent/instances/*/; do
    [ -d "$d" ] || continue
    [ -n "${api_status[$(basename "$d")]:-}" ] || fail "orphan instance directory $d"
done
for id in "${!api_status[@]}"; do
    [ "${api_status[$id]}" != ACTIVE ] || [ -n "${crun_running[$id]:-}" ] \
        || fail "ACTIVE server $id has no running container"
done

# The scheduler's books after the crashes: the node holds exactly the
# servers that have a host (none lost, none counted twice).
hyp() { api GET /os-hypervisors/detail | jq -c --arg n "$node_name" \
    '.hypervisors[] | select(.hypervisor_hostname == $n) | {running_vms, vcpus_used, memory_mb_used}'; }
n_hosted=$(jq '[.servers[] | select(."OS-EXT-SRV-ATTR:host" != null)] | length' <<<"$detail")
[ "$(hyp | jq .running_vms)" = "$n_hosted" ] || fail "node allocations $(hyp) for $n_hosted placed servers"

step "no orphan; deleting all"
# Delete everything: then nothing of any of them is left on the node.
t_del=$SECONDS
mapfile -t all_ids <<<"$listed"
delete_all_servers || fail "deleting the servers"
t_deleted=$((SECONDS - t_del))
[ -z "$(servers_detail | jq -r '.servers[].id')" ] || fail "servers left after delete: $(servers_detail)"
[ -z "$(crun_ids "$data/agent/crun")" ] || fail "containers left: $(crun_ids "$data/agent/crun" | head)"
[ -z "$(mounts_under "$data")" ] || fail "mounts left: $(mounts_under "$data" | head)"
[ -z "$(cgroups_of "${all_ids[@]}")" ] || fail "cgroups left: $(cgroups_of "${all_ids[@]}" | head)"
[ -z "$(ls -A "$data/agent/instances" 2>/dev/null)" ] || fail "instance dirs left: $(ls "$data/agent/instances" | head)"
for id in "${running_ids[@]}"; do
    proc_alive "${running[$id]}" && fail "process of $id (${running[$id]}) outlived its server"
done
[ "$(hyp)" = '{"running_vms":0,"vcpus_used":0,"memory_mb_used":0}' ] \
    || fail "allocations left on the node after deleting every server: $(hyp)"
aio_token=$TOKEN aio_compute=$COMPUTE

# ============================================================================
# 2. kill -9 of the agent while its servers run (the all-in-one daemon of
#    part 1 runs beside it, waiting for the quota's grace period to pass)
# ============================================================================
t2=$SECONDS
ctrl="$ST_TMP/ctrl"
node="$ST_TMP/node-r"
"$STRATOSD" init --data-dir "$ctrl" --import-image "busybox=$ST_TMP/busybox.tar" >/dev/null \
    || fail "init"
# The agent's long-poll holds one HTTP thread of the controller.
st_start_daemon "$ctrl" --role controller --threads 8
ctrl_pid=$ST_PID ctrl_url=$ST_URL
CRUN_ROOTS+=("$node/agent/crun")

start_agent() {
    [ -f "$node.log" ] && mv "$node.log" "$node.killed.log" # keep the killed one's log
    st_start_daemon "$node" --role agent --controller "$ctrl_url" --node-name node-r \
        --node-token-file "$ctrl/node-token" --drivers container
    agent_pid=$ST_PID agent_log=$ST_LOG
    wait_for 30 grep -q 'event=agent_node_registered node=node-r' "$agent_log" \
        || fail "agent registration: $(cat "$agent_log")"
}
start_agent
login "$ctrl" "$ctrl_url"
ENDPOINTS+=("$COMPUTE $TOKEN")

openstack flavor create --vcpus 1 --ram 32 --disk 0 rec.tiny >/dev/null || fail "flavor create"
ids=()
for i in 1 2 3; do
    id=$(openstack server create --flavor rec.tiny --image busybox "agent-kill-$i" -f value -c id) \
        || fail "server create agent-kill-$i"
    ids+=("$id")
done
# (the API through curl: the CLI takes a second or two to start)
status_is() { [ "$(api GET "/servers/$1" | jq -r .server.status)" = "$2" ]; }
show() { api GET "/servers/$1" | jq -c '.server | {id, status, fault, "OS-EXT-STS:task_state"}'; }
for id in "${ids[@]}"; do
    wait_for 60 status_is "$id" ACTIVE || fail "server $id not ACTIVE: $(show "$id")"
done
declare -A procs
for id in "${ids[@]}"; do
    pid=$(crun_pid "$node/agent/crun" "$id") || fail "no running crun container for $id"
    procs[$id]=$(proc_id "$pid") || fail "container $id: no process $pid"
done

step "3 servers ACTIVE; kill -9 of the agent"
kill -9 "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
sleep 1 # time for anything that would die with the agent to die
for id in "${ids[@]}"; do
    proc_alive "${procs[$id]}" || fail "container $id (${procs[$id]}) died with the agent"
    status_is "$id" ACTIVE || fail "server $id not ACTIVE with its agent dead"
done

step "agent restarted"
start_agent
# Re-adopted: several reconcile passes later, still the same processes,
# still ACTIVE, and the new agent ran no create or start.
sleep 4
for id in "${ids[@]}"; do
    proc_alive "${procs[$id]}" || fail "container $id recreated or killed by the new agent" \
        "(was ${procs[$id]}, now $(crun_pid "$node/agent/crun" "$id" || echo none))"
    status_is "$id" ACTIVE || fail "server $id after the agent restart: $(show "$id")"
done
grep -E 'event=agent_action .*action=(create_start|start|reboot)' "$agent_log" \
    && fail "the restarted agent created or started an adopted instance"

step "re-adopted; stop, start, delete"
# Operations on adopted instances: stop, start, delete.
openstack server stop "${ids[0]}" || fail "server stop"
wait_for 30 status_is "${ids[0]}" SHUTOFF || fail "stop after re-adoption: $(show "${ids[0]}")"
proc_alive "${procs[${ids[0]}]}" && fail "stopped server's process still runs"
openstack server start "${ids[0]}" || fail "server start"
wait_for 30 status_is "${ids[0]}" ACTIVE || fail "start after re-adoption: $(show "${ids[0]}")"
openstack server delete "${ids[1]}" || fail "server delete"
wait_for 30 gone "${ids[1]}" || fail "deleted server still shown: $(show "${ids[1]}")"
openstack server show "${ids[1]}" >/dev/null 2>&1 && fail "the CLI still shows the deleted server"
proc_alive "${procs[${ids[1]}]}" && fail "deleted server's process still runs"
crun_ids "$node/agent/crun" | grep -x "${ids[1]}" >/dev/null && fail "deleted server's container still known to crun"

delete_all_servers || fail "deleting the servers"
[ -z "$(servers_detail | jq -r '.servers[].id')" ] || fail "servers left: $(servers_detail)"
for id in "${ids[@]}"; do
    proc_alive "${procs[$id]}" && fail "process of $id (${procs[$id]}) outlived its server"
done
[ -z "$(crun_ids "$node/agent/crun")" ] || fail "containers left: $(crun_ids "$node/agent/crun")"
[ -z "$(mounts_under "$node")" ] || fail "mounts left: $(mounts_under "$node")"
[ -z "$(cgroups_of "${ids[@]}")" ] || fail "cgroups left: $(cgroups_of "${ids[@]}")"
[ -z "$(ls -A "$node/agent/instances" 2>/dev/null)" ] || fail "instance dirs left: $(ls "$node/agent/instances")"
t_agent=$((SECONDS - t2))

kill -TERM "$agent_pid"
wait "$agent_pid" || fail "agent exited with $? after SIGTERM"
kill -TERM "$ctrl_pid"
wait "$ctrl_pid" || fail "controller exited with $? after SIGTERM"
ENDPOINTS=("${ENDPOINTS[@]:0:1}") # the all-in-one daemon's only

# ============================================================================
# 3. (part 1, end) the project's quota usage, once the crash's leftovers are past their
#    grace period (a reservation without its server is taken for a create
#    in flight for 30 s): nothing, as no server is left
# ============================================================================
TOKEN=$aio_token COMPUTE=$aio_compute
usage() { api GET /limits | jq -c '.limits.absolute | {totalInstancesUsed, totalCoresUsed, totalRAMUsed}'; }
zero='{"totalInstancesUsed":0,"totalCoresUsed":0,"totalRAMUsed":0}'
quota_free() { [ "$(usage)" = "$zero" ]; }
left=$((t_kill + 45 - SECONDS))
wait_for $((left > 1 ? left : 1)) quota_free || fail "quota usage with no server left," \
    "$((SECONDS - t_kill)) s after the kill: $(usage)"
kill -TERM "$aio_pid"
wait "$aio_pid" || fail "stratosd exited with $? after SIGTERM"
ENDPOINTS=()

echo "PASS: stratosd kill -9 after $n_acked_at_kill of $n_servers creates acknowledged, a second" \
    "during recovery: $n_acked acknowledged, $n_unanswered not answered, $n_cut cut, $n_listed listed," \
    "none lost; ${#running_ids[@]} running at the kills re-adopted; $n_active ACTIVE + $n_error ERROR" \
    "${t_settled} s after the last restart (creates fired $((t_restart - t_fire)) s before); all" \
    "deleted in ${t_deleted} s, nothing left; agent kill -9: 3 servers re-adopted (same processes)," \
    "stop/start/delete after (${t_agent} s); total $((SECONDS - t_start)) s"
