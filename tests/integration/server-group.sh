#!/usr/bin/env bash
# Server groups, judged by the real `openstack` CLI against one stratosd
# (all-in-one, the sim driver with one extra simulated node: two nodes that
# run nothing): `server group create --policy anti-affinity`, two servers
# created with `--hint group=<id>` land on different nodes and are the
# group's members, a third finds no valid host; two servers of an affinity
# group share a node; a bad hint is refused with 400; the stratos CLI prints
# what openstack prints; delete; three members of a soft-anti-affinity
# group: the first two on different nodes, the third placed all the same.
source "$(dirname "$0")/lib/common.bash"

command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
[ -x "$STRATOSD" ] || { echo "SKIP: $STRATOSD is not built"; exit 77; }
[ -x "$STRATOS" ] || { echo "SKIP: $STRATOS is not built"; exit 77; }

data="$ST_TMP/data"
mkdir -p "$ST_TMP/rootfs/bin"
echo "not really busybox" >"$ST_TMP/rootfs/bin/sh"
tar -C "$ST_TMP/rootfs" -cf "$ST_TMP/busybox.tar" .
"$STRATOSD" init --data-dir "$data" --import-image "busybox=$ST_TMP/busybox.tar" >/dev/null \
    || fail "init"
st_start_daemon "$data" --drivers sim --sim-nodes 1 --node-name n1 --no-network
# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"

# wait_for SECONDS CMD...: retries CMD (every 0.2 s) until it succeeds or
# SECONDS have passed.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
two_nodes_up() {
    [ "$(openstack hypervisor list -f json | jq '[.[] | select(.State == "up")] | length')" = 2 ]
}
wait_for 30 two_nodes_up || fail "two nodes up: $(openstack hypervisor list 2>&1)"

gid=$(openstack server group create --policy anti-affinity g1 -f value -c id) || fail "group create"
openstack server group show g1 -f json >"$ST_TMP/g1.json" || fail "group show by name"
[ "$(jq -r '.policies | join(",")' "$ST_TMP/g1.json")" = anti-affinity ] \
    || fail "policies: $(cat "$ST_TMP/g1.json")"
[ "$(jq -r '.id' "$ST_TMP/g1.json")" = "$gid" ] || fail "id: $(cat "$ST_TMP/g1.json")"

openstack flavor create --vcpus 1 --ram 64 --disk 1 f.sim >/dev/null || fail "flavor create"
ids=()
for n in a b; do
    id=$(openstack server create --flavor f.sim --image busybox --hint group="$gid" "$n" \
        -f value -c id) || fail "server create $n"
    ids+=("$id")
done
# all_are STATUS: every server has it; the list (with hosts) in $ST_TMP/servers.json
all_are() {
    openstack server list --long -f json >"$ST_TMP/servers.json" &&
        [ "$(jq --arg s "$1" '[.[] | select(.Status != $s)] | length' "$ST_TMP/servers.json")" = 0 ]
}
wait_for 60 all_are ACTIVE || fail "servers: $(cat "$ST_TMP/servers.json")"
ha=$(jq -r '.[] | select(.Name == "a") | .Host' "$ST_TMP/servers.json")
hb=$(jq -r '.[] | select(.Name == "b") | .Host' "$ST_TMP/servers.json")
if [ -z "$ha" ] || [ -z "$hb" ]; then fail "no hosts: '$ha' '$hb'"; fi
[ "$ha" != "$hb" ] || fail "anti-affinity: a and b are both on $ha"

members=$(openstack server group show "$gid" -f json | jq -r '.members | sort | join(" ")')
[ "$members" = "$(printf '%s\n' "${ids[@]}" | sort | tr '\n' ' ' | sed 's/ $//')" ] \
    || fail "members: '$members', want ${ids[*]}"

# The stratos CLI shows what openstack shows.
for args in "server group show g1" "server group list --long -f json"; do
    # shellcheck disable=SC2086
    diff <(openstack $args 2>&1) <("$STRATOS" $args 2>&1) >"$ST_TMP/diff" \
        || fail "stratos $args differs from openstack: $(cat "$ST_TMP/diff")"
done

# Affinity: where the first goes, the second follows (spreading would part them).
aff=$("$STRATOS" server group create --policy affinity together -f value -c id) || fail "affinity"
openstack server create --flavor f.sim --image busybox --hint group="$aff" d >/dev/null \
    || fail "server create d"
# the stratos CLI sends the same hint, and --nic with a fixed address
openstack network create netg >/dev/null || fail "network create"
openstack subnet create --network netg --subnet-range 10.8.0.0/24 subg >/dev/null || fail "subnet"
"$STRATOS" server create --flavor f.sim --image busybox --hint group="$aff" \
    --nic net-id=netg,v4-fixed-ip=10.8.0.77 e >/dev/null || fail "stratos server create e"
[ "$(openstack server show e -f json | jq -r '.addresses.netg[0]')" = 10.8.0.77 ] ||
    fail "e's address: $(openstack server show e -f json | jq -c .addresses)"
wait_for 60 all_are ACTIVE || fail "servers: $(cat "$ST_TMP/servers.json")"
hd=$(jq -r '.[] | select(.Name == "d") | .Host' "$ST_TMP/servers.json")
he=$(jq -r '.[] | select(.Name == "e") | .Host' "$ST_TMP/servers.json")
if [ -z "$hd" ] || [ "$hd" != "$he" ]; then fail "affinity: d on '$hd', e on '$he'"; fi

# No third node: the third member finds no valid host.
openstack server create --flavor f.sim --image busybox --hint group="$gid" c >/dev/null \
    || fail "server create c"
c_is() { [ "$(openstack server show c -f json | tee "$ST_TMP/c.json" | jq -r .status)" = "$1" ]; }
wait_for 60 c_is ERROR || fail "c: $(cat "$ST_TMP/c.json")"
jq -r .fault.message "$ST_TMP/c.json" | grep "anti-affinity" >/dev/null || fail "fault of c: $(cat "$ST_TMP/c.json")"

# A hint naming no group of the project is a 400, as Nova answers it.
out=$(openstack server create --flavor f.sim --image busybox \
    --hint group=6a1b9d7e-0000-4000-8000-000000000000 x 2>&1) && fail "bad hint accepted: $out"
grep -q "Instance group 6a1b9d7e-0000-4000-8000-000000000000 could not be found. (HTTP 400)" \
    <<<"$out" || fail "bad hint: $out"
out=$("$STRATOS" server group create --policy soft-anti-affinity g2 -f value -c policies 2>&1) \
    || fail "soft-anti-affinity: $out"
[ "$out" = "['soft-anti-affinity']" ] || fail "soft-anti-affinity: $out"

# Deleting a member drops it; deleting the group (members or not) works.
openstack server delete --wait c || fail "server delete c"
[ "$(openstack server group show g1 -f json | jq '.members | length')" = 2 ] \
    || fail "members after delete: $(openstack server group show g1 -f json)"
openstack server group delete g1 || fail "group delete"
"$STRATOS" server group delete g2 together || fail "stratos group delete"
[ -z "$(openstack server group list -f value -c ID)" ] || fail "groups left: $(openstack server group list)"

# Soft-anti-affinity is a preference: n1 holds a, d and e, the simulated
# node b, so spreading alone would put s1 and s2 both on the simulated
# node; the weigher parts them, and a third member, with no node left
# free of the group, still runs (where the hard policy gave c ERROR).
# (openstack needs microversion 2.15 for the soft policies; the stratos CLI sends it)
soft=$("$STRATOS" server group create --policy soft-anti-affinity g3 -f value -c id) \
    || fail "soft-anti-affinity group"
for n in s1 s2 s3; do
    openstack server create --flavor f.sim --image busybox --hint group="$soft" "$n" >/dev/null \
        || fail "server create $n"
    wait_for 60 all_are ACTIVE || fail "$n: $(cat "$ST_TMP/servers.json")"
done
host_of() { jq -r --arg n "$1" '.[] | select(.Name == $n) | .Host' "$ST_TMP/servers.json"; }
hs1=$(host_of s1)
hs2=$(host_of s2)
hs3=$(host_of s3)
if [ -z "$hs1" ] || [ -z "$hs2" ] || [ "$hs1" = "$hs2" ]; then
    fail "soft-anti-affinity: s1 on '$hs1', s2 on '$hs2'"
fi
[ -n "$hs3" ] || fail "soft-anti-affinity: s3 has no host"
echo "PASS: anti-affinity placed a on $ha and b on $hb, c found no valid host; affinity put d and e on $hd"
echo "PASS: soft-anti-affinity placed s1 on $hs1, s2 on $hs2 and s3 (no node free of it) on $hs3"
