#!/usr/bin/env bash
# Two nodes, one network: two agents, each in a network namespace of its own
# acting as a host (its own veth uplink and VTEP address on an underlay
# 10.98.0.0/24), servers of the same network placed on different nodes
# (anti-affinity) ping each other over VXLAN; a server of another network
# stays unreachable.
source "$(dirname "$0")/lib/common.bash"

[ "$(id -u)" = 0 ] || { echo "SKIP: plugging networks needs root"; exit 77; }
for c in crun openstack nsenter ip; do
    command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (scripts/install-deps.sh)"; exit 77; }
done

h1="st-n1-$$" h2="st-n2-$$"
cleanup_hosts() {
    ip netns del "$h1" 2>/dev/null || true
    ip netns del "$h2" 2>/dev/null || true
}
ip netns add "$h1" || { echo "SKIP: cannot create a network namespace"; exit 77; }
ip netns add "$h2"
ip link add "u1-$$" netns "$h1" type veth peer name "u2-$$" netns "$h2"
ip -n "$h1" addr add 10.98.0.1/24 dev "u1-$$"
ip -n "$h2" addr add 10.98.0.2/24 dev "u2-$$"
for h in "$h1" "$h2"; do
    ip -n "$h" link set lo up
    ip -n "$h" link set "$(ip -n "$h" -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1)" up
done

data="$ST_TMP/data"
"$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" "$ST_TMP/busybox.tar" >/dev/null
"$STRATOSD" init --data-dir "$data" >/dev/null

# node1: controller + agent in h1; node2: an agent in h2. nsenter (not
# `ip netns exec`) keeps the machine's mount namespace, so the agents'
# namespace files stay visible to the test.
ST_LOG="$data.log"
nsenter --net="/run/netns/$h1" "$STRATOSD" --data-dir "$data" --listen 10.98.0.1:0 \
    --node-name node1 --vtep 10.98.0.1 >"$ST_LOG" 2>&1 &
ST_PID=$!
ST_PIDS+=("$ST_PID")
for _ in $(seq 200); do grep -q 'event=stratosd_ready' "$ST_LOG" && break; sleep 0.05; done
ST_PORT=$(grep -o 'event=stratosd_ready.* port=[0-9]*' "$ST_LOG" | sed 's/.*port=//')
[ -n "$ST_PORT" ] || { cat "$ST_LOG"; fail "controller did not start"; }
ST_URL="http://10.98.0.1:$ST_PORT"

mkdir -p "$ST_TMP/node2"
cp "$data/node-token" "$ST_TMP/node2/node-token"
nsenter --net="/run/netns/$h2" "$STRATOSD" --role agent --data-dir "$ST_TMP/node2" \
    --listen 127.0.0.1:0 --controller "$ST_URL" --node-name node2 --vtep 10.98.0.2 \
    --node-token-file "$ST_TMP/node2/node-token" >"$ST_TMP/node2.log" 2>&1 &
ST_PIDS+=("$!")

in_h1() { nsenter --net="/run/netns/$h1" "$@"; }
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"
os() { in_h1 openstack "$@" || fail "openstack $*"; }
CRUN1=(crun --root "$data/agent/crun")
CRUN2=(crun --root "$ST_TMP/node2/agent/crun")

cleanup_all() {
    for id in $(in_h1 openstack server list -f value -c ID 2>/dev/null); do
        in_h1 openstack server delete --wait "$id" >/dev/null 2>&1 || true
    done
    st_cleanup
    cleanup_hosts
}
trap cleanup_all EXIT

for _ in $(seq 100); do
    [ "$(in_h1 openstack hypervisor list -f value -c 'Hypervisor Hostname' 2>/dev/null | sort | tr '\n' ' ')" = "node1 node2 " ] && break
    sleep 0.2
done
[ "$(in_h1 openstack hypervisor list -f value -c 'Hypervisor Hostname' | sort | tr '\n' ' ')" = "node1 node2 " ] ||
    { cat "$ST_TMP/node2.log"; fail "both nodes did not register"; }

os image create --file "$ST_TMP/busybox.tar" --container-format docker --disk-format raw \
    --property os_command_line="/bin/sleep 100000" busybox >/dev/null
os flavor create --vcpus 1 --ram 64 --disk 1 m1.tiny >/dev/null
os network create private >/dev/null
os subnet create --network private --subnet-range 10.0.2.0/24 private-subnet >/dev/null
os network create other >/dev/null
os subnet create --network other --subnet-range 10.0.3.0/24 other-subnet >/dev/null
group=$(in_h1 openstack server group create --policy anti-affinity spread -f value -c id)

os server create --flavor m1.tiny --image busybox --network private --hint group="$group" x >/dev/null
os server create --flavor m1.tiny --image busybox --network private --hint group="$group" y >/dev/null
for s in x y; do
    for _ in $(seq 150); do
        st=$(in_h1 openstack server show "$s" -f value -c status)
        [ "$st" = ACTIVE ] && break
        [ "$st" = ERROR ] && fail "$s: $(in_h1 openstack server show "$s" -f value -c fault)"
        sleep 0.2
    done
    [ "$st" = ACTIVE ] || fail "$s not ACTIVE"
done
hx=$(in_h1 openstack server show x -f value -c OS-EXT-SRV-ATTR:host)
hy=$(in_h1 openstack server show y -f value -c OS-EXT-SRV-ATTR:host)
[ "$hx" != "$hy" ] || fail "x and y are both on $hx"

pid_of() {
    local id p
    id=$(in_h1 openstack server show "$1" -f value -c id)
    p=$("${CRUN1[@]}" state "$id" 2>/dev/null | jq -r .pid) || true
    [ -n "$p" ] && [ "$p" != null ] || p=$("${CRUN2[@]}" state "$id" 2>/dev/null | jq -r .pid)
    echo "$p"
}
ipx=$(in_h1 openstack server show x -f json | jq -r '.addresses.private[0]')
ipy=$(in_h1 openstack server show y -f json | jq -r '.addresses.private[0]')
px=$(pid_of x); py=$(pid_of y)
ok=""
for _ in $(seq 50); do
    if nsenter -t "$px" -n ping -c1 -W1 "$ipy" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
done
[ -n "$ok" ] || { ip -n "$h1" -d link show; bridge -n "$h1" fdb show; fail "x ($hx) cannot ping y ($hy) over VXLAN"; }
nsenter -t "$py" -n ping -c1 -W1 "$ipx" >/dev/null || fail "y cannot ping x"
ip -n "$h1" -d link show type vxlan | grep "local 10.98.0.1" >/dev/null || fail "no VXLAN device with VTEP 10.98.0.1 on node1"

# another network (on either node): unreachable
os server create --flavor m1.tiny --image busybox --network other --wait z >/dev/null
[ "$(in_h1 openstack server show z -f value -c status)" = ACTIVE ] || fail "z is not ACTIVE"
ipz=$(in_h1 openstack server show z -f json | jq -r '.addresses.other[0]')
nsenter -t "$px" -n ping -c1 -W1 "$ipz" >/dev/null 2>&1 && fail "x reaches z on another network"

for s in x y z; do in_h1 openstack server delete --wait "$s" >/dev/null 2>&1 || true; done
echo PASS
