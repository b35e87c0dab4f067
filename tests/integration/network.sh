#!/usr/bin/env bash
# Networking end to end with real packets between real containers, judged by
# the real `openstack` CLI: servers on one network reach each other; servers
# on another network, or of another project with the same CIDR, do not; a
# security group that allows only tcp/80 lets 80 in and keeps 22 out, and
# removing its rule closes 80 within one reconcile; a private subnet's
# egress reaches the host side through the router's SNAT; a floating IP
# reaches a server from the host side; the seed's own server create line.
#
# The whole test runs in a network namespace of its own, which plays the
# host: its bridges, VXLAN devices, nftables tables and router namespaces
# never touch the machine's, and vanish with it.
source "$(dirname "$0")/lib/common.bash"

[ "$(id -u)" = 0 ] || { echo "SKIP: plugging networks needs root"; exit 77; }
for c in crun openstack nsenter ip nc python3; do
    command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (scripts/install-deps.sh)"; exit 77; }
done

if [ -z "${ST_NET_HOST_NS:-}" ]; then
    ns="st-net-$$"
    ip netns add "$ns" || { echo "SKIP: cannot create a network namespace"; exit 77; }
    ip netns exec "$ns" ip link set lo up
    rc=0
    # nsenter, not `ip netns exec`: that one mounts a fresh /sys, which hides
    # the cgroup hierarchies the container driver needs
    ST_NET_HOST_NS="$ns" nsenter --net="/run/netns/$ns" bash "$0" "$@" || rc=$?
    ip netns del "$ns"
    exit "$rc"
fi

data="$ST_TMP/data"
"$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" "$ST_TMP/busybox.tar" >/dev/null
"$STRATOSD" init --data-dir "$data" >/dev/null
st_start_daemon "$data" --external-bridge br-ex
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"
CRUN=(crun --root "$data/agent/crun")

cleanup_servers() {
    for p in admin demo2; do
        if [ "$p" = demo2 ]; then
            [ -f "$ST_TMP/demo2-openrc" ] || continue
            source "$ST_TMP/demo2-openrc"
            export OS_AUTH_URL="$ST_URL/identity/v3"
        fi
        for id in $(openstack server list -f value -c ID 2>/dev/null); do
            openstack server delete --wait "$id" >/dev/null 2>&1 || true
        done
    done
}
trap 'cleanup_servers; st_cleanup' EXIT

os() { openstack "$@" || fail "openstack $*"; }

# the network namespace of a server's container, for running probes in it
netns_of() {
    local id
    id=$(openstack server show "$1" -f value -c id)
    local pid
    pid=$("${CRUN[@]}" state "$id" | jq -r .pid)
    [ -n "$pid" ] && [ "$pid" != null ] || fail "no container for $1 ($id): $("${CRUN[@]}" list 2>&1)"
    echo "$pid"
}
in_server() { local pid=$1; shift; nsenter -t "$pid" -n "$@"; }
addr_of() { openstack server show "$1" -f json | jq -r ".addresses[\"$2\"][0]"; }

wait_active() {
    local name=$1 st
    for _ in $(seq 150); do
        st=$(openstack server show "$name" -f value -c status)
        [ "$st" = ACTIVE ] && return 0
        [ "$st" = ERROR ] && fail "$name: $(openstack server show "$name" -f value -c fault)"
        sleep 0.2
    done
    fail "$name did not become ACTIVE"
}

os image create --public --file "$ST_TMP/busybox.tar" --container-format docker --disk-format raw busybox >/dev/null
os flavor create --vcpus 1 --ram 64 --disk 1 m1.tiny >/dev/null
os network create private >/dev/null
os subnet create --network private --subnet-range 10.0.2.0/24 private-subnet >/dev/null
os network create other >/dev/null
os subnet create --network other --subnet-range 10.0.3.0/24 --dns-nameserver 192.0.2.53 other-subnet >/dev/null
os security group create web >/dev/null
os security group rule create --protocol tcp --dst-port 80 web -f json >"$ST_TMP/rule.json"
rule=$(jq -r .id "$ST_TMP/rule.json")

# A server that keeps running (busybox's init would want a tty).
props=(--property os_command_line="/bin/sleep 100000")
os image set "${props[@]}" busybox

t0=$(date +%s%N)
os server create --flavor m1.tiny --image busybox --network private a >/dev/null
os server create --flavor m1.tiny --image busybox --network private b >/dev/null
os server create --flavor m1.tiny --image busybox --network other c >/dev/null
os server create --flavor m1.tiny --image busybox --network private --security-group web w >/dev/null
for s in a b c w; do wait_active "$s"; done
echo "four servers ACTIVE in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

a_ip=$(addr_of a private); b_ip=$(addr_of b private); c_ip=$(addr_of c other); w_ip=$(addr_of w private)
[[ $a_ip == 10.0.2.* && $b_ip == 10.0.2.* && $w_ip == 10.0.2.* && $c_ip == 10.0.3.* ]] ||
    fail "addresses: a=$a_ip b=$b_ip w=$w_ip c=$c_ip"
pa=$(netns_of a); pb=$(netns_of b); pw=$(netns_of w)
[ "$(in_server "$pa" ip -4 -o addr show eth0 | awk '{print $4}')" = "$a_ip/24" ] || fail "a's eth0 lacks $a_ip/24"

# The subnet's DNS servers are the instance's resolver, as DHCP would say.
pc=$(netns_of c)
nsenter -t "$pc" -m cat /etc/resolv.conf | grep -x "nameserver 192.0.2.53" >/dev/null ||
    fail "c's /etc/resolv.conf: $(nsenter -t "$pc" -m cat /etc/resolv.conf 2>&1)"

# Same network, same (default) group: they reach each other.
in_server "$pa" ping -c1 -W2 "$b_ip" >/dev/null || fail "a cannot ping b on the same network"
in_server "$pb" ping -c1 -W2 "$a_ip" >/dev/null || fail "b cannot ping a"
# A subnet's host routes reach the running servers (as DHCP would give them).
os subnet set --host-route destination=10.77.0.0/16,gateway=10.0.2.1 private-subnet
for _ in $(seq 50); do in_server "$pa" ip route | grep "10.77.0.0/16 via 10.0.2.1" >/dev/null && break; sleep 0.1; done
in_server "$pa" ip route | grep "10.77.0.0/16 via 10.0.2.1" >/dev/null || fail "host route not applied: $(in_server "$pa" ip route)"
# Another network without a router: nothing.
in_server "$pa" ping -c1 -W1 "$c_ip" >/dev/null 2>&1 && fail "a reaches c on another network"

# Another project, the same CIDR: isolated.
os project create demo2 >/dev/null
os user create --project demo2 --password secret2 demo2 >/dev/null
os role add --project demo2 --user demo2 member
sed -e 's/OS_USERNAME=.*/OS_USERNAME=demo2/' -e 's/OS_PASSWORD=.*/OS_PASSWORD=secret2/' \
    -e 's/OS_PROJECT_NAME=.*/OS_PROJECT_NAME=demo2/' "$data/admin-openrc" >"$ST_TMP/demo2-openrc"
(
    source "$ST_TMP/demo2-openrc"
    export OS_AUTH_URL="$ST_URL/identity/v3"
    os network create private >/dev/null
    os subnet create --network private --subnet-range 10.0.2.0/24 private-subnet >/dev/null
    net=$(openstack network show private -f value -c id)
    os server create --flavor m1.tiny --image busybox --nic "net-id=$net,v4-fixed-ip=10.0.2.50" d >/dev/null
    wait_active d
    [ "$(addr_of d private)" = 10.0.2.50 ] || fail "d did not get 10.0.2.50"
)
in_server "$pa" ping -c1 -W1 10.0.2.50 >/dev/null 2>&1 && fail "a reaches another project's server"

# Security group web: tcp/80 in, nothing else.
in_server "$pw" nc -lk 80 </dev/null >"$ST_TMP/w80.out" 2>&1 &
l80=$!
in_server "$pw" nc -lk 22 </dev/null >/dev/null 2>&1 &
l22=$!
ST_PIDS+=("$l80" "$l22")
sleep 0.3
in_server "$pa" nc -z -w2 "$w_ip" 80 || fail "tcp/80 to w is not allowed"
in_server "$pa" nc -z -w2 "$w_ip" 22 && fail "tcp/22 to w is allowed"
in_server "$pa" ping -c1 -W1 "$w_ip" >/dev/null 2>&1 && fail "icmp to w is allowed"
# A connection the rule let in, held open across its removal.
mkfifo "$ST_TMP/held"
in_server "$pa" nc "$w_ip" 80 <"$ST_TMP/held" >/dev/null 2>&1 &
ST_PIDS+=("$!")
exec 7>"$ST_TMP/held"
echo before-removal >&7
for _ in $(seq 50); do grep before-removal "$ST_TMP/w80.out" >/dev/null && break; sleep 0.1; done
grep before-removal "$ST_TMP/w80.out" >/dev/null || fail "a held connection to w:80 carries nothing"
t0=$(date +%s%N)
os security group rule delete "$rule"
closed=""
for _ in $(seq 50); do
    if ! in_server "$pa" nc -z -w1 "$w_ip" 80; then closed=1; break; fi
    sleep 0.1
done
[ -n "$closed" ] || fail "tcp/80 still open after the rule was removed"
echo "rule removal closed tcp/80 in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
# ... and the established one is cut too (its conntrack entries deleted),
# as Neutron does: what it sends now never arrives.
echo after-removal >&7
sleep 1
grep after-removal "$ST_TMP/w80.out" >/dev/null && fail "a connection established before the rule was removed still gets through"
exec 7>&-

# Repair: the agent restarts (kill -9 of stratosd) after someone removed a
# port's veth and the firewall, and left a stale device: it puts back what
# is missing and removes what is not its own any more.
b_port=$(openstack port list --server b -f value -c ID | head -1)
b_if="stp-$(echo "$b_port" | tr -d - | cut -c1-10)"
ip link show "$b_if" >/dev/null || fail "no host veth $b_if for b's port"
ip link add stbr-999999 type bridge
kill -9 "$ST_PID"; wait "$ST_PID" 2>/dev/null || true
ip link del "$b_if"
nft delete table inet stratos
in_server "$pa" ping -c1 -W1 "$b_ip" >/dev/null 2>&1 && fail "b still reachable without its veth"
st_start_daemon "$data" --external-bridge br-ex
export OS_AUTH_URL="$ST_URL/identity/v3"   # a new ephemeral port
t0=$(date +%s%N)
ok=""
for _ in $(seq 100); do
    if in_server "$pa" ping -c1 -W1 "$b_ip" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
done
[ -n "$ok" ] || fail "b's port was not repaired after the agent restarted"
echo "port repaired $(( ($(date +%s%N) - t0) / 1000000 )) ms after the restart"
nft list table inet stratos >/dev/null || fail "the firewall was not restored"
for _ in $(seq 50); do ip link show stbr-999999 >/dev/null 2>&1 || break; sleep 0.1; done
ip link show stbr-999999 >/dev/null 2>&1 && fail "a stale bridge was not removed"
[ "$(netns_of b)" = "$pb" ] || fail "b's container was restarted instead of re-adopted"
in_server "$pa" nc -z -w2 "$w_ip" 22 && fail "tcp/22 to w is allowed after the restart"

# An address comes back with another MAC: b goes, b2 gets its address and
# announces itself (gratuitous ARP), so a, which still has b's MAC in its
# ARP cache, reaches b2 at once rather than after the entry ages out.
in_server "$pa" ping -c1 -W1 "$b_ip" >/dev/null || fail "a cannot ping b before the swap"
os server delete --wait b
os server create --flavor m1.tiny --image busybox --network private b2 >/dev/null
wait_active b2
[ "$(addr_of b2 private)" = "$b_ip" ] || fail "b2 did not reuse b's address $b_ip"
ok=""
for _ in $(seq 3); do
    if in_server "$pa" ping -c1 -W1 "$b_ip" >/dev/null 2>&1; then ok=1; break; fi
done
[ -n "$ok" ] || { in_server "$pa" ip neigh; fail "a does not reach b2 at b's old address (stale ARP)"; }

# Router: SNAT out of the private subnet, a floating IP in.
os network create --external --provider-network-type flat --provider-physical-network external public >/dev/null
os subnet create --network public --subnet-range 172.24.4.0/24 --no-dhcp public-subnet >/dev/null
os router create r1 >/dev/null
os router set --external-gateway public r1
os router add subnet r1 private-subnet
gw_ip=$(openstack router show r1 -f json | jq -r '.external_gateway_info.external_fixed_ips[0].ip_address')
[[ $gw_ip == 172.24.4.* ]] || fail "router gateway address: $gw_ip"
for _ in $(seq 50); do ip -4 addr show br-ex 2>/dev/null | grep 172.24.4.1/24 >/dev/null && break; sleep 0.1; done
ip -4 addr show br-ex | grep 172.24.4.1/24 >/dev/null || fail "br-ex lacks the external gateway address"

# the host side sees the router's address, not the server's (SNAT)
python3 - "$ST_TMP/peer" <<'EOF' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("172.24.4.1", 9999)); s.listen(1); s.settimeout(20)
c, addr = s.accept(); open(sys.argv[1], "w").write(addr[0]); c.close()
EOF
peer_pid=$!
ST_PIDS+=("$peer_pid")
ok=""
for _ in $(seq 50); do
    if in_server "$pa" nc -z -w1 172.24.4.1 9999 2>/dev/null; then ok=1; break; fi
    sleep 0.2
done
[ -n "$ok" ] || fail "a cannot reach the host side through the router"
wait "$peer_pid" || true
[ "$(cat "$ST_TMP/peer")" = "$gw_ip" ] || fail "egress was not SNATed to $gw_ip (seen $(cat "$ST_TMP/peer"))"

os security group rule create --protocol tcp --dst-port 80 web >/dev/null
os floating ip create public -f json >"$ST_TMP/fip.json"
fip=$(jq -r .floating_ip_address "$ST_TMP/fip.json")
wport=$(openstack port list --server w -f value -c ID | head -1)
os floating ip set --port "$wport" "$fip"
ok=""
for _ in $(seq 50); do
    if nc -z -w1 "$fip" 80; then ok=1; break; fi
    sleep 0.2
done
[ -n "$ok" ] || fail "the floating IP $fip does not reach w:80 from the host"
echo "floating ip $fip reaches w:80"
openstack server show w -f json | jq -e --arg f "$fip" '.addresses.private | index($f)' >/dev/null ||
    fail "server show w does not list the floating IP: $(openstack server show w -f json | jq -c .addresses)"

# The seed's line, verbatim names.
os flavor create --vcpus 1 --ram 64 --disk 1 m1.medium >/dev/null
os image create --file "$ST_TMP/busybox.tar" --container-format docker --disk-format raw \
    --property os_command_line="/bin/sleep 100000" ubuntu-20.04 >/dev/null
os keypair create my-keypair >/dev/null
openstack server create --flavor m1.medium --image ubuntu-20.04 --key-name my-keypair \
    --security-group default --network private web-server-01 >/dev/null || fail "the seed's server create"
wait_active web-server-01
[[ $(addr_of web-server-01 private) == 10.0.2.* ]] || fail "web-server-01 has no address on private"

# Deleting servers releases their ports; the network can then go.
os floating ip delete "$fip"
for s in a b2 c w web-server-01; do os server delete --wait "$s"; done
os router remove subnet r1 private-subnet
os router delete r1
os network delete other
(
    source "$ST_TMP/demo2-openrc"
    export OS_AUTH_URL="$ST_URL/identity/v3"
    os server delete --wait d
    os network delete private
)
[ -z "$(ip -o link show | grep -E 'stp-|str-|stg-')" ] || { ip -o link show; fail "port devices left after delete"; }
st_stop_daemon
echo PASS
