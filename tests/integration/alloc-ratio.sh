#!/usr/bin/env bash
# Allocation ratios an operator sets, judged by the real `openstack` CLI
# against one stratosd (all-in-one, the sim driver: a node of 32 vCPUs that
# runs nothing). Started with --cpu-allocation-ratio 1, the node shows
# cpu_allocation_ratio 1.0 in `hypervisor show` and refuses a 40-vCPU
# server with the scheduler's per-filter fault; restarted without the flag
# (Nova's default, 4.0) it shows 4.0 and admits the same server.
source "$(dirname "$0")/lib/common.bash"

command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
[ -x "$STRATOSD" ] || { echo "SKIP: $STRATOSD is not built"; exit 77; }

data="$ST_TMP/data"
mkdir -p "$ST_TMP/rootfs/bin"
echo "not really busybox" >"$ST_TMP/rootfs/bin/sh"
tar -C "$ST_TMP/rootfs" -cf "$ST_TMP/busybox.tar" .
"$STRATOSD" init --data-dir "$data" --import-image "busybox=$ST_TMP/busybox.tar" >/dev/null \
    || fail "init"

# A bad ratio is refused before anything starts.
out=$("$STRATOSD" --data-dir "$data" --cpu-allocation-ratio 0 2>&1) && fail "ratio 0 accepted"
grep "invalid cpu-allocation-ratio '0': expected a number above 0, at most 1000" <<<"$out" \
    >/dev/null || fail "ratio 0: $out"

st_start_daemon "$data" --drivers sim --node-name r1 --no-network --cpu-allocation-ratio 1
# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"

wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
# ratio_is R: hypervisor show r1 says cpu_allocation_ratio R (a heartbeat
# after a restart carries the new value).
ratio_is() {
    openstack hypervisor show r1 -f json >"$ST_TMP/hv.json" &&
        jq -e --argjson r "$1" '.state == "up" and .cpu_allocation_ratio == $r' "$ST_TMP/hv.json"
}
wait_for 30 ratio_is 1 || fail "hypervisor show after --cpu-allocation-ratio 1: $(cat "$ST_TMP/hv.json")"
jq -e '.vcpus == 32 and .ram_allocation_ratio == 1 and .disk_allocation_ratio == 1' \
    "$ST_TMP/hv.json" >/dev/null || fail "hypervisor show: $(cat "$ST_TMP/hv.json")"
openstack hypervisor show r1 | grep -E '^\| cpu_allocation_ratio +\| 1\.0 +\|$' >/dev/null \
    || fail "table: $(openstack hypervisor show r1)"

openstack quota set --cores 100 admin || fail "quota set"
openstack flavor create --vcpus 40 --ram 64 --disk 1 f.big >/dev/null || fail "flavor create"
# status_is NAME STATUS: the server has it; its body in $ST_TMP/NAME.json
status_is() {
    [ "$(openstack server show "$1" -f json | tee "$ST_TMP/$1.json" | jq -r .status)" = "$2" ]
}

# 40 vCPUs on 32 cores at 1.0: no valid host, and the fault says which filter.
openstack server create --flavor f.big --image busybox over >/dev/null || fail "server create over"
wait_for 60 status_is over ERROR || fail "over: $(cat "$ST_TMP/over.json")"
want="No valid host was found. 1 node; vcpus: removed 1 (needs 40 vCPUs, most free 32)."
[ "$(jq -r .fault.message "$ST_TMP/over.json")" = "$want" ] \
    || fail "fault of over: $(jq -c .fault "$ST_TMP/over.json"), want '$want'"
openstack server delete --wait over || fail "server delete over"

# Restarted with the default ratio (4.0: 128 vCPUs), the same server fits.
st_stop_daemon
st_start_daemon "$data" --drivers sim --node-name r1 --no-network
export OS_AUTH_URL="$ST_URL/identity/v3" # a new port
wait_for 30 ratio_is 4 || fail "hypervisor show after restart: $(cat "$ST_TMP/hv.json")"
openstack server create --flavor f.big --image busybox fits >/dev/null || fail "server create fits"
wait_for 60 status_is fits ACTIVE || fail "fits: $(cat "$ST_TMP/fits.json")"
[ "$(jq -r '."OS-EXT-SRV-ATTR:host"' "$ST_TMP/fits.json")" = r1 ] \
    || fail "fits' host: $(cat "$ST_TMP/fits.json")"
openstack server delete --wait fits || fail "server delete fits"
echo "PASS: cpu ratio 1.0 refused 40 vCPUs on 32 ('$want'); 4.0 after a restart admitted them"
