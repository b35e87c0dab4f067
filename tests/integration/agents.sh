#!/usr/bin/env bash
# Two node agents on one machine against one controller, judged by the real
# `openstack` CLI: two `stratosd --role agent` processes, each with its own
# --node-name and --data-dir, running the sim driver (the test double: it
# runs nothing, which is all this test needs). Both nodes appear in
# `openstack hypervisor list`; servers land on both and reach ACTIVE; the
# console log, stop and start go through the agents; an agent killed with -9
# and restarted re-adopts its servers (no second create); delete removes
# every server and its instance files.
source "$(dirname "$0")/lib/common.bash"

command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
[ -x "$STRATOSD" ] || { echo "SKIP: $STRATOSD is not built"; exit 77; }
"$STRATOSD" --help | grep -- '--node-name' >/dev/null || { echo "SKIP: stratosd has no agent flags yet"; exit 77; }

ctrl="$ST_TMP/ctrl"
mkdir -p "$ST_TMP/rootfs/bin"
echo "not really busybox" >"$ST_TMP/rootfs/bin/sh"
tar -C "$ST_TMP/rootfs" -cf "$ST_TMP/busybox.tar" .
"$STRATOSD" init --data-dir "$ctrl" --import-image "busybox=$ST_TMP/busybox.tar" >/dev/null \
    || fail "init"
# Each agent's long-poll holds one of the controller's HTTP threads while it
# waits (default: one per CPU), so the controller gets enough for both.
st_start_daemon "$ctrl" --role controller --threads 8
ctrl_url=$ST_URL
ctrl_log=$ST_LOG
for _ in $(seq 1 40); do grep -q 'event=placement_started' "$ctrl_log" && break; sleep 0.05; done
grep -q 'event=placement_started' "$ctrl_log" \
    || { echo "SKIP: stratosd --role controller does not run the placement controller yet"; exit 77; }

# start_agent NAME: a role-agent stratosd with its own data dir; sets AGENT_PID.
start_agent() {
    st_start_daemon "$ST_TMP/$1" --role agent --controller "$ctrl_url" --node-name "$1" \
        --node-token-file "$ctrl/node-token" --drivers sim
    AGENT_PID=$ST_PID
}
start_agent node-a
pid_a=$AGENT_PID
log_a=$ST_LOG
start_agent node-b
log_b=$ST_LOG
# role agent serves only the system routes
curl -sf "$ST_URL/version" | jq -e '.role == "agent"' >/dev/null || fail "agent /version"
code=$(curl -s -o /dev/null -w '%{http_code}' "$ST_URL/compute/v2.1/servers")
[ "$code" = 404 ] || fail "role agent answered the compute API ($code)"

# shellcheck disable=SC1091
source "$ctrl/admin-openrc"
export OS_AUTH_URL="$ctrl_url/identity/v3"

# wait_for SECONDS CMD...: retries CMD every 0.5 s until it succeeds.
wait_for() {
    local n=$(($1 * 2))
    shift
    for _ in $(seq 1 "$n"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    return 1
}

hypervisors_up() {
    openstack hypervisor list -f json | jq -e '
        (map(select(."Hypervisor Hostname" == "node-a" and .State == "up")) | length == 1) and
        (map(select(."Hypervisor Hostname" == "node-b" and .State == "up")) | length == 1)'
}
wait_for 30 hypervisors_up || fail "both nodes up in hypervisor list: $(openstack hypervisor list 2>&1)"
grep -q 'event=agent_node_registered node=node-a' "$log_a" || fail "node-a registration not logged"

openstack flavor create --vcpus 1 --ram 256 --disk 1 f.sim >/dev/null || fail "flavor create"
ids=()
for i in 1 2 3 4; do
    id=$(openstack server create --flavor f.sim --image busybox "sim-$i" -f value -c id) \
        || fail "server create sim-$i"
    ids+=("$id")
done

status_is() { # status_is ID STATUS
    [ "$(openstack server show "$1" -f value -c status)" = "$2" ]
}
for id in "${ids[@]}"; do
    wait_for 60 status_is "$id" ACTIVE || fail "server $id: $(openstack server show "$id" -f json)"
done

# Spread: both nodes got servers.
hosts=$(for id in "${ids[@]}"; do openstack server show "$id" -f json | jq -r '."OS-EXT-SRV-ATTR:host"'; done | sort | uniq -c)
grep -q ' node-a$' <<<"$hosts" || fail "no server on node-a: $hosts"
grep -q ' node-b$' <<<"$hosts" || fail "no server on node-b: $hosts"
show=$(openstack server show "${ids[0]}" -f json)
[ "$(jq -r '."OS-EXT-STS:power_state"' <<<"$show")" = Running ] \
    || [ "$(jq -r '."OS-EXT-STS:power_state"' <<<"$show")" = 1 ] || fail "power_state: $show"

# The console log is the agent's push of the sim driver's log.
console_has() { openstack console log show "$1" | grep "$2" >/dev/null; }
wait_for 30 console_has "${ids[0]}" "simulated instance started" \
    || fail "console log: $(openstack console log show "${ids[0]}" 2>&1)"

# Stop and start.
openstack server stop "${ids[1]}" || fail "server stop"
wait_for 30 status_is "${ids[1]}" SHUTOFF || fail "stop: $(openstack server show "${ids[1]}" -f json)"
openstack server start "${ids[1]}" || fail "server start"
wait_for 30 status_is "${ids[1]}" ACTIVE || fail "start: $(openstack server show "${ids[1]}" -f json)"

# kill -9 of agent A, then a new one on the same data dir: its servers stay
# ACTIVE and are adopted, not created again.
on_a=()
for id in "${ids[@]}"; do
    [ "$(openstack server show "$id" -f value -c OS-EXT-SRV-ATTR:host)" = node-a ] && on_a+=("$id")
done
kill -9 "$pid_a"
wait "$pid_a" 2>/dev/null || true
start_agent node-a
log_a=$ST_LOG
wait_for 30 grep -q 'event=agent_node_registered node=node-a' "$log_a" || fail "node-a re-registration"
sleep 4 # several reconcile passes
for id in "${on_a[@]}"; do
    status_is "$id" ACTIVE || fail "after the agent restart: $(openstack server show "$id" -f json)"
    sim="$ST_TMP/node-a/agent/instances/$id/sim.json"
    [ "$(jq -r .creates "$sim")" = 1 ] || fail "instance $id created again after restart: $(cat "$sim")"
done
grep -q 'action=create_start' "$log_a" && fail "the restarted agent created an instance: $(grep action= "$log_a")"

# Delete: the servers go, and so do their instance files on both nodes.
for id in "${ids[@]}"; do openstack server delete "$id" || fail "server delete $id"; done
gone() { ! openstack server show "$1" >/dev/null 2>&1; }
for id in "${ids[@]}"; do wait_for 30 gone "$id" || fail "server $id not removed"; done
left=$(find "$ST_TMP/node-a/agent/instances" "$ST_TMP/node-b/agent/instances" -name sim.json 2>/dev/null | wc -l)
[ "$left" = 0 ] || fail "$left instance(s) left on the nodes"
grep -q 'event=agent_action.*action=destroy' "$log_b" || fail "node-b did not destroy its instances"
echo "PASS: two agents, $(wc -l <<<"$hosts") node(s) used, restart re-adopted ${#on_a[@]} server(s)"
