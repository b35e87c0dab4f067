#!/usr/bin/env bash
# TCP throughput between two servers on one network, through everything
# stratos puts in the path, beside the same measure without stratos, in one
# run. iperf3 (the host's binary, run inside each network namespace with
# nsenter -n), one TCP stream, -t BENCH_SECONDS (default 3), the receiver's
# figure; two rounds, interleaved, and their mean.
#   stratos:  two nodes, each a network namespace playing a host, joined by
#             a veth underlay (10.98.0.0/24): node1 runs the controller and
#             an agent, node2 an agent. Two servers in an affinity group on
#             one network (one node: veth -> bridge + nftables security
#             groups -> veth), then two in an anti-affinity group on another
#             network (two nodes: ... bridge -> VXLAN -> underlay -> VXLAN ->
#             bridge ...). Tenant MTU 1450 (VXLAN's 50 bytes under 1500).
#   bare:     two namespaces joined by one veth pair; the same with a Linux
#             bridge in a third namespace between them (no nftables, no
#             br_netfilter); the same over VXLAN between two host
#             namespaces on a veth underlay. All at MTU 1450, as the
#             tenant networks.
# Needs root, iperf3 (scripts/install-deps.sh --bench), crun, busybox-static,
# openstack, jq (exits 77 with the reason otherwise).
#   bench/net-throughput.sh [builddir]          (default: build)
# Every namespace, server, container, mount and daemon it made is removed on
# exit, also on failure or Ctrl-C.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
# shellcheck source=bench/lib/stack.bash
source "$here/bench/lib/stack.bash"
secs="${BENCH_SECONDS:-3}"

if [[ $EUID -ne 0 ]]; then
    echo "SKIP net-throughput: needs root (network namespaces, containers)"
    exit 77
fi
command -v iperf3 >/dev/null || { echo "SKIP net-throughput: iperf3 is missing (scripts/install-deps.sh --bench)"; exit 77; }
for tool in crun openstack jq ip nsenter curl; do
    command -v "$tool" >/dev/null || { echo "SKIP net-throughput: $tool is missing (scripts/install-deps.sh)"; exit 77; }
done
[[ -x /bin/busybox ]] || { echo "SKIP net-throughput: busybox-static is missing (scripts/install-deps.sh)"; exit 77; }
[[ -x "$build/stratosd" ]] || {
    echo "net-throughput.sh: $build/stratosd not found; build it with: cmake --build $build --target stratosd" >&2
    exit 1
}

data_dir="${ST_DATA_DIR:-/var/lib/stratos}"
base="$data_dir"
while [[ ! -d "$base" ]]; do base="$(dirname "$base")"; done
tmp="$(mktemp -d "$base/.stratos-bench-tput.XXXXXX")"
data="$tmp/node1"
data2="$tmp/node2"
sfx="$$"
h1="st-tp-h1-$sfx" h2="st-tp-h2-$sfx"
namespaces=()
pids=()
iperf_server=""
token=""
url=""

cleanup() {
    set +e
    [[ -n "$token" ]] && st_bench_delete_servers "$url" "$token" in_h1
    local p d
    [[ -n "$iperf_server" ]] && kill "$iperf_server" 2>/dev/null
    for p in "${pids[@]}"; do st_bench_stop "$p"; done
    st_bench_leftovers "$tmp" "$data" "$data2"
    for d in "${namespaces[@]}"; do ip netns del "$d" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

newns() {
    ip netns add "$1"
    namespaces+=("$1")
    ip -n "$1" link set lo up
}
in_h1() { nsenter --net="/run/netns/$h1" "$@"; }

# iperf3 between two network namespaces (files): prints "Gbit/s retransmits".
iperf() {
    local srv_ns="$1" cli_ns="$2" addr="$3" out="$tmp/iperf.json"
    # bounded: a broken path must fail the run, not hang it
    nsenter --net="$srv_ns" timeout $((secs + 30)) iperf3 -s -1 >/dev/null 2>&1 &
    local spid=$!
    iperf_server=$spid
    for _ in $(seq 100); do
        nsenter --net="$srv_ns" ss -Hltn 'sport = :5201' 2>/dev/null | grep . >/dev/null && break
        sleep 0.02
    done
    if ! nsenter --net="$cli_ns" timeout $((secs + 20)) iperf3 -c "$addr" -t "$secs" -J \
        --connect-timeout 3000 >"$out" 2>&1; then
        kill "$spid" 2>/dev/null
        wait "$spid" 2>/dev/null
        echo "net-throughput.sh: iperf3 to $addr failed: $(jq -r '.error // empty' "$out" 2>/dev/null || cat "$out")" >&2
        return 1
    fi
    wait "$spid" 2>/dev/null || true
    jq -r '"\(.end.sum_received.bits_per_second / 1e9) \(.end.sum_sent.retransmits)"' "$out"
}

# ---- bare peers --------------------------------------------------------------
# veth: bA <-> bB
newns "st-tp-va-$sfx"; newns "st-tp-vb-$sfx"
ip link add tpa netns "st-tp-va-$sfx" mtu 1450 type veth peer name tpb netns "st-tp-vb-$sfx" mtu 1450
ip -n "st-tp-va-$sfx" addr add 10.77.0.1/24 dev tpa
ip -n "st-tp-vb-$sfx" addr add 10.77.0.2/24 dev tpb
ip -n "st-tp-va-$sfx" link set tpa up
ip -n "st-tp-vb-$sfx" link set tpb up

# bridge: bA - br (in a host namespace) - bB
newns "st-tp-bh-$sfx"; newns "st-tp-ba-$sfx"; newns "st-tp-bb-$sfx"
ip -n "st-tp-bh-$sfx" link add br0 mtu 1450 type bridge
ip -n "st-tp-bh-$sfx" link set br0 up
for s in a b; do
    ip link add "tp$s" netns "st-tp-b$s-$sfx" mtu 1450 type veth peer name "tph$s" netns "st-tp-bh-$sfx" mtu 1450
    ip -n "st-tp-bh-$sfx" link set "tph$s" master br0 up
    ip -n "st-tp-b$s-$sfx" addr add "10.77.1.$([[ $s = a ]] && echo 1 || echo 2)/24" dev "tp$s"
    ip -n "st-tp-b$s-$sfx" link set "tp$s" up
done
ip netns exec "st-tp-bh-$sfx" sh -c 'for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -e "$f" ] && echo 0 >"$f"; done; true'

# VXLAN: xa - bridge - vxlan (host x1) == underlay == (host x2) vxlan - bridge - xb
newns "st-tp-x1-$sfx"; newns "st-tp-x2-$sfx"; newns "st-tp-xa-$sfx"; newns "st-tp-xb-$sfx"
ip link add tpu1 netns "st-tp-x1-$sfx" type veth peer name tpu2 netns "st-tp-x2-$sfx"
for n in 1 2; do
    hx="st-tp-x$n-$sfx"
    other=$((3 - n))
    s=$([[ $n = 1 ]] && echo a || echo b)
    ip -n "$hx" addr add "10.78.0.$n/24" dev "tpu$n"
    ip -n "$hx" link set "tpu$n" up
    ip -n "$hx" link add br0 mtu 1450 type bridge
    ip -n "$hx" link set br0 up
    ip -n "$hx" link add vx77 type vxlan id 77 local "10.78.0.$n" remote "10.78.0.$other" dstport 4789 dev "tpu$n"
    ip -n "$hx" link set vx77 mtu 1450 master br0 up
    ip link add "tp$s" netns "st-tp-x$s-$sfx" mtu 1450 type veth peer name "tph$s" netns "$hx" mtu 1450
    ip -n "$hx" link set "tph$s" master br0 up
    ip -n "st-tp-x$s-$sfx" addr add "10.77.2.$n/24" dev "tp$s"
    ip -n "st-tp-x$s-$sfx" link set "tp$s" up
    ip netns exec "$hx" sh -c 'for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -e "$f" ] && echo 0 >"$f"; done; true'
done

# ---- stratos: two nodes --------------------------------------------------------
newns "$h1"; newns "$h2"
ip link add "u1-$sfx" netns "$h1" type veth peer name "u2-$sfx" netns "$h2"
ip -n "$h1" addr add 10.98.0.1/24 dev "u1-$sfx"
ip -n "$h2" addr add 10.98.0.2/24 dev "u2-$sfx"
ip -n "$h1" link set "u1-$sfx" up
ip -n "$h2" link set "u2-$sfx" up

"$here/scripts/busybox-rootfs.sh" "$tmp/busybox.tar" >/dev/null
"$build/stratosd" init --data-dir "$data" --import-image "busybox=$tmp/busybox.tar" >/dev/null 2>&1
# own sessions: a Ctrl-C reaches only this script, whose cleanup deletes the
# servers through the controller before stopping the daemons
setsid nsenter --net="/run/netns/$h1" "$build/stratosd" --data-dir "$data" --listen 10.98.0.1:0 \
    --node-name node1 --vtep 10.98.0.1 --no-access-log >"$tmp/node1.log" 2>&1 &
pids+=("$!")
for _ in $(seq 200); do grep -q 'event=stratosd_ready' "$tmp/node1.log" && break; sleep 0.05; done
port=$(grep -o 'event=stratosd_ready.* port=[0-9]*' "$tmp/node1.log" | sed 's/.*port=//')
[[ -n "$port" ]] || { cat "$tmp/node1.log" >&2; echo "net-throughput.sh: the controller did not start" >&2; exit 1; }
url="http://10.98.0.1:$port"
mkdir -p "$data2"
cp "$data/node-token" "$data2/node-token"
setsid nsenter --net="/run/netns/$h2" "$build/stratosd" --role agent --data-dir "$data2" \
    --listen 127.0.0.1:0 --controller "$url" --node-name node2 --vtep 10.98.0.2 \
    --node-token-file "$data2/node-token" >"$tmp/node2.log" 2>&1 &
pids+=("$!")

# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$url/identity/v3"
os() { in_h1 openstack "$@"; }
token="$(os token issue -f value -c id)"
for _ in $(seq 100); do
    [[ "$(os hypervisor list -f value -c 'Hypervisor Hostname' 2>/dev/null | sort | tr '\n' ' ')" = "node1 node2 " ]] && break
    sleep 0.2
done
[[ "$(os hypervisor list -f value -c 'Hypervisor Hostname' | sort | tr '\n' ' ')" = "node1 node2 " ]] ||
    { tail -20 "$tmp/node2.log" >&2; echo "net-throughput.sh: both nodes did not register" >&2; exit 1; }
os flavor create --vcpus 1 --ram 64 --disk 1 bench.tiny >/dev/null
os image set --property os_command_line="/bin/sleep 100000" busybox
for n in one two; do
    os network create "net-$n" >/dev/null
done
os subnet create --network net-one --subnet-range 10.0.11.0/24 sub-one >/dev/null
os subnet create --network net-two --subnet-range 10.0.12.0/24 sub-two >/dev/null
together="$(os server group create --policy affinity together -f value -c id)"
apart="$(os server group create --policy anti-affinity apart -f value -c id)"
for s in a b; do
    os server create --flavor bench.tiny --image busybox --network net-one --hint group="$together" "one-$s" >/dev/null
    os server create --flavor bench.tiny --image busybox --network net-two --hint group="$apart" "two-$s" >/dev/null
done
for s in one-a one-b two-a two-b; do
    for _ in $(seq 300); do
        st="$(os server show "$s" -f value -c status)"
        [[ $st = ACTIVE || $st = ERROR ]] && break
        sleep 0.2
    done
    [[ $st = ACTIVE ]] || { echo "net-throughput.sh: $s is $st" >&2; tail -20 "$tmp/node1.log" >&2; exit 1; }
done
host_of() { os server show "$1" -f value -c OS-EXT-SRV-ATTR:host; }
addr_of() { os server show "$1" -f json | jq -r '.addresses | to_entries[0].value[0]'; }
# the namespace the server's node made for it
ns_of() {
    local id
    id="$(os server show "$1" -f value -c id)"
    if [[ "$(host_of "$1")" = node1 ]]; then echo "$data/agent/netns/$id"; else echo "$data2/agent/netns/$id"; fi
}
[[ "$(host_of one-a)" = "$(host_of one-b)" ]] || { echo "net-throughput.sh: one-a and one-b are on different nodes" >&2; exit 1; }
[[ "$(host_of two-a)" != "$(host_of two-b)" ]] || { echo "net-throughput.sh: two-a and two-b are on one node" >&2; exit 1; }
for s in one-a one-b two-a two-b; do
    [[ -e "$(ns_of "$s")" ]] || { echo "net-throughput.sh: no namespace $(ns_of "$s") for $s" >&2; exit 1; }
done
one_a="$(ns_of one-a)" one_b="$(ns_of one-b)" two_a="$(ns_of two-a)" two_b="$(ns_of two-b)"
ip_one_a="$(addr_of one-a)" ip_two_a="$(addr_of two-a)"
# the first packets of the VXLAN path wait for nothing once the FDB is there
for _ in $(seq 50); do nsenter --net="$two_b" ping -c1 -W1 "$ip_two_a" >/dev/null 2>&1 && break; sleep 0.2; done

# ---- measures: two rounds, stratos and its peers interleaved, the second
# round in reverse order, so drift hits all alike --------------------------------
names=(veth one br two vx)
declare -A src=([veth]="/run/netns/st-tp-va-$sfx" [one]="$one_a" [br]="/run/netns/st-tp-ba-$sfx"
    [two]="$two_a" [vx]="/run/netns/st-tp-xa-$sfx")
declare -A dst=([veth]="/run/netns/st-tp-vb-$sfx" [one]="$one_b" [br]="/run/netns/st-tp-bb-$sfx"
    [two]="$two_b" [vx]="/run/netns/st-tp-xb-$sfx")
declare -A addr=([veth]=10.77.0.1 [one]="$ip_one_a" [br]=10.77.1.1 [two]="$ip_two_a" [vx]=10.77.2.1)
declare -A runs=() retr=()
for round in 1 2; do
    order=("${names[@]}")
    [[ $round = 2 ]] && order=(vx two br one veth)
    for k in "${order[@]}"; do
        res="$(iperf "${src[$k]}" "${dst[$k]}" "${addr[$k]}")"
        read -r g r <<<"$res"
        runs[$k]="${runs[$k]:-} $g"
        retr[$k]=$(( ${retr[$k]:-0} + r ))
    done
done

echo "net-throughput: iperf3 $(iperf3 --version | awk 'NR==1 {print $2}'), 1 TCP stream, ${secs} s a run," \
    "receiver's rate, mean of 2 interleaved runs; $(nproc) CPUs, kernel $(uname -r); MTU 1450 everywhere"
row() {
    # shellcheck disable=SC2086
    set -- "$1" ${runs[$2]} "${retr[$2]}"
    printf '  %-58s %6.2f Gbit/s  (runs %.2f, %.2f; retransmits %s)\n' "$1" \
        "$(awk -v a="$2" -v b="$3" 'BEGIN {print (a + b) / 2}')" "$2" "$3" "$4"
}
mean() { awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; print s / NF}' <<<"${runs[$1]}"; }
row "bare: two namespaces, one veth pair" veth
row "bare: veth - Linux bridge - veth" br
row "stratos, one node: two servers on one network (bridge)" one
row "bare: veth - bridge - VXLAN - veth underlay - VXLAN - ..." vx
row "stratos, two nodes: two servers on one network (VXLAN)" two
awk -v v="$(mean veth)" -v b="$(mean br)" -v o="$(mean one)" -v x="$(mean vx)" -v t="$(mean two)" 'BEGIN {
    printf "  stratos / bare, means: one node %.2f of the bare bridge (%.2f of the veth pair);" \
        " two nodes %.2f of the bare VXLAN\n", o / b, o / v, t / x }'
