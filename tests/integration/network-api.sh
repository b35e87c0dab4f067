#!/usr/bin/env bash
# The Neutron API as a user meets it, judged by the real `openstack` CLI
# against a controller (no agent: this is about the API, not packets):
# a network and subnet (the Subnets column), the one default security group,
# a group with a tcp/80 rule (IP Protocol and Port Range as the CLI prints
# them), a port with an address from the subnet, an admin's external network,
# a router with a gateway and an interface, a floating IP associated with the
# port; the 409 of deleting what is in use, the name lookups, and deletes in
# reverse order. A member of another project sees none of it and may use the
# same names and CIDR. Last, quotas: set by an admin, enforced with
# Neutron's (and, for servers' ports, Nova's) refusal. (The CLI costs a
# second or two a call, so what it adds nothing to is checked with curl.)
# shellcheck source=lib/common.bash
source "$(dirname "$0")/lib/common.bash"

command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }

data="$ST_TMP/data"
"$STRATOSD" init --data-dir "$data" >/dev/null || fail "init"
st_start_daemon "$data" --role controller
# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"

# osj CMD...: prints the JSON of `openstack CMD -f json`, or fails with its output.
osj() {
    local out
    out=$(openstack "$@" -f json 2>&1) || fail "openstack $*: $out"
    printf '%s' "$out"
}
# check JSON JQ-FILTER WHAT: the filter must hold.
check() {
    jq -e "$2" <<<"$1" >/dev/null || fail "$3: $1"
}
# refused EXPECTED-TEXT CMD...: the command must fail and say EXPECTED-TEXT.
refused() {
    local want=$1 out
    shift
    if out=$(openstack "$@" 2>&1); then fail "openstack $* succeeded: $out"; fi
    grep -qF -- "$want" <<<"$out" || fail "openstack $*: want '$want' in: $out"
}

# api TOKEN PATH: GET <network>/v2.0/PATH with curl.
api() {
    curl -s -H "X-Auth-Token: $1" "$ST_URL/network/v2.0/$2"
}

# ---- discovery: the version document needs no token; the extensions are there
curl -s "$ST_URL/network/" | jq -e '.versions[0].id == "v2.0"' >/dev/null \
    || fail "versions: $(curl -s "$ST_URL/network/")"
tok=$(openstack token issue -f value -c id) || fail "token issue"
exts=$(api "$tok" extensions)
check "$exts" '[.extensions[].alias] | contains(["router", "external-net", "security-group", "extraroute"])' \
    "extension list"

# ---- a network and its subnet
net=$(osj network create private)
check "$net" '.name == "private" and .status == "ACTIVE" and .mtu == 1450
              and ."provider:network_type" == "vxlan" and ."router:external" == false' "network create"
net_id=$(jq -r .id <<<"$net")
sn=$(osj subnet create --network private --subnet-range 10.0.2.0/24 private-subnet)
check "$sn" '.cidr == "10.0.2.0/24" and .gateway_ip == "10.0.2.1" and .ip_version == 4
             and .enable_dhcp == true and .network_id == "'"$net_id"'"' "subnet create"
jq -r '.allocation_pools | tostring' <<<"$sn" | grep '10.0.2.2' >/dev/null || fail "allocation pools: $sn"
sn_id=$(jq -r .id <<<"$sn")
nets=$(osj network list)
check "$nets" 'map(select(.Name == "private"))[0].Subnets == ["'"$sn_id"'"]' "network list Subnets"
shown=$(osj network show private)
check "$shown" '.id == "'"$net_id"'" and .subnets == ["'"$sn_id"'"]' "network show"
refused "No Network found for nope" network show nope

# ---- security groups
sgs=$(osj security group list)
check "$sgs" 'map(select(.Name == "default")) | length == 1' "one default group"
web=$(osj security group create web)
check "$web" '.name == "web" and (.rules | tostring | contains("egress"))' "security group create"
rule=$(osj security group rule create --protocol tcp --dst-port 80 web)
check "$rule" '.protocol == "tcp" and .port_range_min == 80 and .port_range_max == 80
               and .direction == "ingress" and .security_group_id == "'"$(jq -r .id <<<"$web")"'"' \
    "rule create"
rule_id=$(jq -r .id <<<"$rule")
rules=$(osj security group rule list web)
check "$rules" 'map(select(.ID == "'"$rule_id"'"))[0] | ."IP Protocol" == "tcp" and ."Port Range" == "80:80"' \
    "rule list"
refused "409" security group rule create --protocol tcp --dst-port 80 web

# ---- a port
port=$(osj port create --network private --security-group web p1)
port_id=$(jq -r .id <<<"$port")
pshow=$(osj port show p1)
check "$pshow" '.id == "'"$port_id"'" and .network_id == "'"$net_id"'"
                and (.fixed_ips | tostring | test("10\\.0\\.2\\.[0-9]+"))' "port show"
port_ip=$(jq -r '.fixed_ips | tostring' <<<"$pshow" | grep -oE '10\.0\.2\.[0-9]+' | head -1)
refused "409" network delete private

# ---- an external network, a router, a floating IP
pub=$(osj network create --external --provider-network-type flat \
    --provider-physical-network external public)
check "$pub" '."router:external" == true and ."provider:network_type" == "flat"' "external network"
psn=$(osj subnet create --network public --subnet-range 172.24.4.0/24 --no-dhcp public-subnet)
check "$psn" '.enable_dhcp == false' "public subnet"
r1=$(osj router create r1)
r1_id=$(jq -r .id <<<"$r1")
openstack router set --external-gateway public r1 || fail "router set --external-gateway"
r1s=$(osj router show r1)
check "$r1s" '.id == "'"$r1_id"'" and (.external_gateway_info | tostring | test("172\\.24\\.4\\."))' \
    "router gateway"
openstack router add subnet r1 private-subnet || fail "router add subnet"
check "$(api "$tok" "ports?device_id=$r1_id&device_owner=network:router_interface")" \
    '.ports[0].fixed_ips[0].ip_address == "10.0.2.1"' "router interface port"
fip=$(osj floating ip create public)
fip=$(jq -r .floating_ip_address <<<"$fip")
grep -qE '^172\.24\.4\.[0-9]+$' <<<"$fip" || fail "floating ip address: $fip"
openstack floating ip set --port p1 "$fip" || fail "floating ip set --port"
fips=$(osj floating ip list)
check "$fips" 'map(select(."Floating IP Address" == "'"$fip"'"))[0]
               | ."Fixed IP Address" == "'"$port_ip"'" and .Port == "'"$port_id"'"' "floating ip list"
refused "409" router delete r1

# ---- another project sees none of it, and may reuse the names and CIDR
openstack project create proj-b >/dev/null || fail "project create"
openstack user create --password pw-b user-b >/dev/null || fail "user create"
openstack role add --project proj-b --user user-b member || fail "role add"
member() { OS_USERNAME=user-b OS_PASSWORD=pw-b OS_PROJECT_NAME=proj-b openstack "$@"; }
out=$(member network list -f json) || fail "member network list: $out"
check "$out" '[.[].Name] == ["public"]' "member network list (only the external network)"
out=$(member security group list -f json) || fail "member security group list: $out"
check "$out" '[.[].Name] == ["default"]' "member security group list"
mtok=$(member token issue -f value -c id) || fail "member token issue"
for what in ports routers floatingips; do
    check "$(api "$mtok" "$what")" ".$what == []" "member's $what"
done
check "$(api "$mtok" subnets)" '[.subnets[].id] | index("'"$sn_id"'") == null' "member's subnets"
check "$(api "$mtok" "networks/$net_id")" '.NeutronError.type == "NetworkNotFound"' "member network show"
out=$(member network create private -f json) || fail "member network create: $out"
out=$(member subnet create --network private --subnet-range 10.0.2.0/24 private-subnet -f json) \
    || fail "member subnet create: $out"
check "$out" '.cidr == "10.0.2.0/24"' "member subnet"
if out=$(member network create --external ext2 2>&1); then fail "a member made an external network"; fi
grep -q "403" <<<"$out" || fail "member external network: $out"

# ---- deletes, in reverse
openstack floating ip unset --port "$fip" || fail "floating ip unset"
openstack floating ip delete "$fip" || fail "floating ip delete"
openstack router remove subnet r1 private-subnet || fail "router remove subnet"
openstack router unset --external-gateway r1 || fail "router unset --external-gateway"
check "$(api "$tok" "routers/$r1_id")" '.router.external_gateway_info == null' "gateway removed"
openstack router delete r1 || fail "router delete"
openstack port delete p1 || fail "port delete"
openstack security group rule delete "$rule_id" || fail "rule delete"
openstack security group delete web || fail "security group delete"
openstack subnet delete private-subnet || fail "subnet delete"
openstack network delete private || fail "network delete"
openstack subnet delete public-subnet || fail "public subnet delete"
openstack network delete public || fail "public network delete"
check "$(api "$tok" networks)" '.networks == []' "networks left"
check "$(api "$tok" security-groups)" '[.security_groups[].name] == ["default"]' "groups left"

# ---- quotas: an admin sets proj-b's, its member meets them (Neutron's 409
# in the CLI's output), a delete makes room; servers' ports count too (Nova's
# 403); a member cannot set quotas; a reset is the defaults again
pb=$(curl -s -H "X-Auth-Token: $tok" -H "X-Subject-Token: $mtok" "$ST_URL/identity/v3/auth/tokens" \
    | jq -r .token.project.id)
openstack quota set --networks 2 --ports 1 proj-b || fail "quota set"
check "$(osj quota show proj-b)" '.networks == 2 and .ports == 1 and .subnets == 100' "quota show"
check "$(api "$tok" quotas)" '.quotas | map(select(.project_id == "'"$pb"'"))[0].network == 2' \
    "the projects with quotas set"
# proj-b has "private" already: one more network, then the limit
out=$(member network create q-net -f json) || fail "network create under the quota: $out"
if out=$(member network create q-over 2>&1); then fail "network create over the quota: $out"; fi
grep -F "Quota exceeded for resources: ['network']." <<<"$out" >/dev/null || fail "over quota: $out"
check "$(osj quota list --network --detail --project proj-b)" \
    'map(select(.Resource == "networks"))[0] | ."In Use" == 2 and .Limit == 2' "quota usage"
member network delete q-net || fail "network delete"
out=$(member network create q-net2 -f json) || fail "network create after a delete: $out"
check "$(api "$mtok" "quotas/$pb")" '.quota.network == 2 and .quota.port == 1' "member's quota"
mkdir -p "$ST_TMP/rootfs/bin"
echo "not really busybox" >"$ST_TMP/rootfs/bin/sh"
tar -C "$ST_TMP/rootfs" -cf "$ST_TMP/busybox.tar" .
openstack image create --file "$ST_TMP/busybox.tar" --container-format docker --disk-format raw \
    --public q-img >/dev/null || fail "image create"
openstack flavor create --vcpus 1 --ram 64 --disk 1 q.tiny >/dev/null || fail "flavor create"
out=$(member server create --flavor q.tiny --image q-img --network private q-s1 -f json) \
    || fail "server create within the port quota: $out"
if out=$(member server create --flavor q.tiny --image q-img --network private q-s2 2>&1); then
    fail "server create over the port quota: $out"
fi
grep -F "Maximum number of ports exceeded" <<<"$out" | grep 403 >/dev/null \
    || fail "server over the port quota: $out"
check "$(api "$mtok" "quotas/$pb/details")" '.quota.port.used == 1' "a server's port counts"
# a member may not change quotas: the CLI is refused, and so is the API
if out=$(member quota set --networks 5 "$pb" 2>&1); then fail "a member set a quota: $out"; fi
grep 403 <<<"$out" >/dev/null || fail "member quota set: $out"
code=$(curl -s -o "$ST_TMP/q.json" -w '%{http_code}' -X PUT -H "X-Auth-Token: $mtok" \
    -H "Content-Type: application/json" -d '{"quota": {"network": 5}}' \
    "$ST_URL/network/v2.0/quotas/$pb")
[ "$code" = 403 ] || fail "member PUT quota: $code $(cat "$ST_TMP/q.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "X-Auth-Token: $tok" \
    "$ST_URL/network/v2.0/quotas/$pb")
[ "$code" = 204 ] || fail "quota reset: $code"
check "$(osj quota show proj-b)" '.networks == 100 and .ports == 500' "quota show after reset"

st_stop_daemon
echo PASS
