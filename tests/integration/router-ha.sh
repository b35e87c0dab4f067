#!/usr/bin/env bash
# A router moves off a dead network node: a controller and two l3 agents,
# each agent in a network namespace of its own acting as a host (own VTEP,
# own br-ex), all three on one underlay bridge. A router with an external
# gateway and an interface on a private subnet runs on one node; that node
# dies (kill -9 of its agent, its underlay link cut); once its lease expires
# the controller rebinds the router to the other node (event
# router_rescheduled), whose agent builds the qrouter namespace, and a
# server there reaches the router's internal address and, through its
# gateway, the external network again. The dead node then comes back: it
# removes its stale router namespace and does not get the router back.
# The lease is the agents' default 30 s (there is no flag for it), so the
# test takes about a minute.
source "$(dirname "$0")/lib/common.bash"

[ "$(id -u)" = 0 ] || { echo "SKIP: plugging networks needs root"; exit 77; }
for c in crun openstack nsenter ip jq; do
    command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (scripts/install-deps.sh)"; exit 77; }
done

hc="st-rhc-$$" h1="st-rh1-$$" h2="st-rh2-$$"
n1="$ST_TMP/node1" n2="$ST_TMP/node2"

# Everything the agents may have left if the test stops half way: their
# containers and router/instance namespaces (all under ST_TMP, ours), then
# the three host namespaces, which take every device with them.
cleanup_hosts() {
    local d id f
    for d in "$n1" "$n2"; do
        [ -d "$d/agent/crun" ] || continue
        for id in $(crun --root "$d/agent/crun" list -q 2>/dev/null); do
            crun --root "$d/agent/crun" delete -f "$id" >/dev/null 2>&1 || true
        done
        for f in "$d"/agent/netns/*; do
            [ -e "$f" ] || continue
            umount "$f" 2>/dev/null || true
            rm -f "$f"
        done
    done
    for h in "$hc" "$h1" "$h2"; do ip netns del "$h" 2>/dev/null || true; done
}

ip netns add "$hc" || { echo "SKIP: cannot create a network namespace"; exit 77; }
ip netns add "$h1"
ip netns add "$h2"
ip -n "$hc" link add ul type bridge
ip -n "$hc" addr add 10.98.0.100/24 dev ul
ip -n "$hc" link set ul up
ip -n "$hc" link set lo up
for i in 1 2; do
    h="st-rh$i-$$"
    ip link add "u$i-$$" netns "$h" type veth peer name "p$i" netns "$hc"
    ip -n "$hc" link set "p$i" master ul up
    ip -n "$h" addr add "10.98.0.$i/24" dev "u$i-$$"
    ip -n "$h" link set "u$i-$$" up
    ip -n "$h" link set lo up
done

in_c() { nsenter --net="/run/netns/$hc" "$@"; }
os() { in_c openstack "$@" || fail "openstack $*"; }
cleanup_all() {
    # servers and router go through the API while both agents run, so the
    # agents take down what they built; what is left goes by force
    if [ -n "${OS_AUTH_URL:-}" ]; then
        for id in $(in_c openstack server list -f value -c ID 2>/dev/null); do
            in_c openstack server delete --wait "$id" >/dev/null 2>&1 || true
        done
    fi
    for pid in "${ST_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    cleanup_hosts
    st_cleanup
}
trap cleanup_all EXIT

data="$ST_TMP/data"
"$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" "$ST_TMP/busybox.tar" >/dev/null
"$STRATOSD" init --data-dir "$data" >/dev/null
ST_LOG="$data.log"
# nsenter itself, not in_c: $! of a backgrounded shell function is a subshell,
# and killing that would leave the controller running
nsenter --net="/run/netns/$hc" "$STRATOSD" --role controller --data-dir "$data" \
    --listen 10.98.0.100:0 >"$ST_LOG" 2>&1 &
ST_PIDS+=("$!")
for _ in $(seq 200); do grep 'event=stratosd_ready' "$ST_LOG" >/dev/null && break; sleep 0.05; done
ST_PORT=$(grep -o 'event=stratosd_ready.* port=[0-9]*' "$ST_LOG" | sed 's/.*port=//')
[ -n "$ST_PORT" ] || { cat "$ST_LOG"; fail "controller did not start"; }
ST_URL="http://10.98.0.100:$ST_PORT"

# start_agent I: node I in namespace hI (its default external bridge br-ex
# makes it l3); sets AGENT_PID_I
start_agent() {
    local i=$1 d="$ST_TMP/node$1"
    mkdir -p "$d"
    cp "$data/node-token" "$d/node-token"
    nsenter --net="/run/netns/st-rh$i-$$" "$STRATOSD" --role agent --data-dir "$d" \
        --listen 127.0.0.1:0 --controller "$ST_URL" --node-name "node$i" --vtep "10.98.0.$i" \
        --node-token-file "$d/node-token" >>"$d.log" 2>&1 &
    ST_PIDS+=("$!")
    eval "AGENT_PID_$i=$!"
}
start_agent 1
start_agent 2

source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"
for _ in $(seq 100); do
    [ "$(in_c openstack hypervisor list -f value -c 'Hypervisor Hostname' 2>/dev/null | sort | tr '\n' ' ')" = "node1 node2 " ] && break
    sleep 0.2
done
[ "$(in_c openstack hypervisor list -f value -c 'Hypervisor Hostname' | sort | tr '\n' ' ')" = "node1 node2 " ] ||
    { cat "$n1.log" "$n2.log"; fail "both nodes did not register"; }

# no command: the driver's idle shell, which stops at SIGTERM at once
os image create --file "$ST_TMP/busybox.tar" --container-format docker --disk-format raw busybox >/dev/null
os flavor create --vcpus 1 --ram 64 --disk 1 m1.tiny >/dev/null
os network create private >/dev/null
os subnet create --network private --subnet-range 10.0.2.0/24 private-subnet >/dev/null
os network create --external --provider-network-type flat --provider-physical-network external public >/dev/null
os subnet create --network public --subnet-range 172.24.4.0/24 --no-dhcp public-subnet >/dev/null
rid=$(in_c openstack router create r1 -f value -c id) || fail "router create"
os router set --external-gateway public r1
os router add subnet r1 private-subnet
group=$(in_c openstack server group create --policy anti-affinity spread -f value -c id)
os server create --flavor m1.tiny --image busybox --network private --hint group="$group" x >/dev/null
os server create --flavor m1.tiny --image busybox --network private --hint group="$group" y >/dev/null
for _ in $(seq 150); do
    st=$(in_c openstack server list -f value -c Status | sort | tr '\n' ' ')
    [ "$st" = "ACTIVE ACTIVE " ] && break
    [[ $st == *ERROR* ]] && fail "a server failed: $(in_c openstack server list --long -f json)"
    sleep 0.2
done
[ "$st" = "ACTIVE ACTIVE " ] || fail "x and y are not ACTIVE: $st"

# Which node runs the router: the one whose agent made its namespace.
qr="qrouter-$rid"
for _ in $(seq 100); do
    [ -e "$n1/agent/netns/$qr" ] || [ -e "$n2/agent/netns/$qr" ] && break
    sleep 0.1
done
if [ -e "$n1/agent/netns/$qr" ]; then dead=1 live=2; elif [ -e "$n2/agent/netns/$qr" ]; then dead=2 live=1; else
    cat "$n1.log" "$n2.log"; fail "no node built $qr"
fi
[ -e "$ST_TMP/node$live/agent/netns/$qr" ] && fail "$qr on both nodes"

# The server on the node that survives: its container's pid, for probes.
in_c openstack server list --long -f json >"$ST_TMP/servers.json" || fail "server list"
survivor=$(jq -r --arg h "node$live" '.[] | select(.Host == $h) | .Name' "$ST_TMP/servers.json")
sid=$(jq -r --arg h "node$live" '.[] | select(.Host == $h) | .ID' "$ST_TMP/servers.json")
[ -n "$survivor" ] || fail "no server on node$live: $(cat "$ST_TMP/servers.json")"
spid=$(crun --root "$ST_TMP/node$live/agent/crun" state "$sid" | jq -r .pid)
[ -n "$spid" ] && [ "$spid" != null ] || fail "no container for $survivor"
reaches() { # reaches ADDR: a ping from the surviving server, retried for ~10 s
    for _ in $(seq 20); do
        nsenter -t "$spid" -n ping -c1 -W1 "$1" >/dev/null 2>&1 && return 0
        sleep 0.3
    done
    return 1
}
reaches 10.0.2.1 || fail "$survivor (node$live) does not reach the router on node$dead before the failure"
reaches 172.24.4.1 || fail "$survivor does not reach the external network through the router"

# node$dead dies: its agent is killed and its underlay link cut, so
# neither its heartbeats nor its stale router answer any more.
t0=$(date +%s%N)
eval "kill -9 \$AGENT_PID_$dead; wait \$AGENT_PID_$dead 2>/dev/null || true"
ip -n "$hc" link set "p$dead" down
moved=""
for _ in $(seq 500); do # lease (30 s) + a controller tick
    [ -e "$ST_TMP/node$live/agent/netns/$qr" ] && { moved=1; break; }
    sleep 0.1
done
[ -n "$moved" ] || { tail -20 "$ST_LOG"; fail "$qr did not move to node$live"; }
echo "router rebuilt on node$live $(( ($(date +%s%N) - t0) / 1000000 )) ms after node$dead died"
grep "event=router_rescheduled id=$rid from=node$dead to=node$live" "$ST_LOG" >/dev/null ||
    fail "no router_rescheduled event: $(grep router_ "$ST_LOG")"
reaches 10.0.2.1 || fail "$survivor does not reach the router's internal address after the move"
reaches 172.24.4.1 || fail "$survivor does not reach the external network after the move"
echo "$survivor reaches 10.0.2.1 and 172.24.4.1 through the router on node$live"

# node$dead comes back: it removes its stale namespace, the router stays.
ip -n "$hc" link set "p$dead" up
start_agent "$dead"
gone=""
for _ in $(seq 150); do
    [ -e "$ST_TMP/node$dead/agent/netns/$qr" ] || { gone=1; break; }
    sleep 0.1
done
[ -n "$gone" ] || fail "node$dead kept its stale $qr"
sleep 3 # several controller ticks: nothing may move back
[ -e "$ST_TMP/node$live/agent/netns/$qr" ] || fail "$qr left node$live when node$dead returned"
[ "$(grep -c "event=router_rescheduled id=$rid" "$ST_LOG")" = 1 ] ||
    fail "the router moved again: $(grep router_rescheduled "$ST_LOG")"
# (No ping here: until its agent removes it, the stale router of a node that
# returns with its kernel state answers over VXLAN, and node$live's bridge
# may learn the router's MAC there; that data-plane glitch is the agents'.)

os server delete x y # both at once, then wait for both
for _ in $(seq 150); do
    [ -z "$(in_c openstack server list -f value -c ID)" ] && break
    sleep 0.2
done
[ -z "$(in_c openstack server list -f value -c ID)" ] || fail "x and y were not deleted"
os router remove subnet r1 private-subnet
os router delete r1
for _ in $(seq 100); do
    [ -e "$n1/agent/netns/$qr" ] || [ -e "$n2/agent/netns/$qr" ] || break
    sleep 0.1
done
[ -e "$n1/agent/netns/$qr" ] || [ -e "$n2/agent/netns/$qr" ] && fail "$qr left after the router was deleted"
echo PASS
