#!/usr/bin/env bash
# The seed's VPC document, verbatim, applied with `stratos apply -f vpc.json`
# against a real controller: --dry-run writes nothing; the first apply makes
# a network, both subnets, a router with its gateway on the external network
# (SNAT on) and an interface on each subnet, as the real `openstack` CLI
# then sees them; a second apply changes nothing; a document with a subnet
# outside the VPC is refused with the field at fault.
source "$(dirname "$0")/lib/common.bash"

command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }

data="$ST_TMP/data"
"$STRATOSD" init --data-dir "$data" >/dev/null || fail "init"
st_start_daemon "$data" --role controller
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"

cat >"$ST_TMP/vpc.json" <<'EOF'
{"vpc": {"cidr": "10.0.0.0/16",
  "subnets": [{"name": "public-subnet", "cidr": "10.0.1.0/24", "type": "public", "availability_zone": "us-west-2a"},
              {"name": "private-subnet", "cidr": "10.0.2.0/24", "type": "private", "availability_zone": "us-west-2b"}],
  "internet_gateway": true, "nat_gateway": true}}
EOF

# Without an external network the internet gateway has nowhere to go.
if out=$("$STRATOS" apply -f "$ST_TMP/vpc.json" 2>&1); then fail "apply without an external network succeeded: $out"; fi
grep -q "external" <<<"$out" || fail "no hint about the external network: $out"
[ "$(openstack network list -f value -c Name | wc -l)" = 0 ] || fail "a refused apply wrote something"

openstack network create --external --provider-network-type flat --provider-physical-network external \
    public >/dev/null || fail "external network"
openstack subnet create --network public --subnet-range 172.24.4.0/24 --no-dhcp public-ext >/dev/null ||
    fail "external subnet"

"$STRATOS" apply --dry-run -f "$ST_TMP/vpc.json" >"$ST_TMP/plan.txt" 2>&1 || fail "dry run: $(cat "$ST_TMP/plan.txt")"
grep -q "private-subnet" "$ST_TMP/plan.txt" || fail "the plan does not name private-subnet: $(cat "$ST_TMP/plan.txt")"
[ "$(openstack network list -f value -c Name | sort | tr '\n' ' ')" = "public " ] || fail "the dry run wrote something"

"$STRATOS" apply -f "$ST_TMP/vpc.json" >"$ST_TMP/apply1.txt" 2>&1 || fail "apply: $(cat "$ST_TMP/apply1.txt")"
net=$(openstack network list -f json | jq -r '.[] | select(.Name != "public") | .Name')
[ -n "$net" ] || fail "no VPC network"
subnets=$(openstack subnet list --network "$net" -f json | jq -r 'map(.Name + "=" + .Subnet) | sort | join(" ")')
[ "$subnets" = "private-subnet=10.0.2.0/24 public-subnet=10.0.1.0/24" ] || fail "subnets: $subnets"
router=$(openstack router list -f value -c Name | head -1)
[ -n "$router" ] || fail "no router"
rj=$(openstack router show "$router" -f json)
[ "$(jq -r '.external_gateway_info.network_id' <<<"$rj")" = "$(openstack network show public -f value -c id)" ] ||
    fail "router gateway is not on the external network: $rj"
[ "$(jq -r '.external_gateway_info.enable_snat' <<<"$rj")" = true ] || fail "SNAT is off: $rj"
ifaces=$(openstack port list --router "$router" --device-owner network:router_interface -f json |
    jq -r '[.[]."Fixed IP Addresses"[]?.ip_address // empty] | sort | join(" ")')
[ "$ifaces" = "10.0.1.1 10.0.2.1" ] || fail "router interfaces: $ifaces"

"$STRATOS" apply -f "$ST_TMP/vpc.json" >"$ST_TMP/apply2.txt" 2>&1 || fail "second apply: $(cat "$ST_TMP/apply2.txt")"
grep -qi "created" "$ST_TMP/apply2.txt" && fail "the second apply created something: $(cat "$ST_TMP/apply2.txt")"
grep -qi "unchanged" "$ST_TMP/apply2.txt" || fail "the second apply does not say unchanged: $(cat "$ST_TMP/apply2.txt")"
[ "$(openstack subnet list -f value -c Name | wc -l)" = 3 ] || fail "the second apply changed the subnets"

sed 's/10.0.1.0\/24/10.1.1.0\/24/' "$ST_TMP/vpc.json" >"$ST_TMP/bad.json"
if out=$("$STRATOS" apply -f "$ST_TMP/bad.json" 2>&1); then fail "a subnet outside the VPC was accepted"; fi
grep -q "10.1.1.0/24" <<<"$out" || fail "the error does not name the subnet: $out"
st_stop_daemon
echo PASS
