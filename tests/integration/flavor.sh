#!/usr/bin/env bash
# Flavors, keypairs, hypervisors and resource policies as a user meets them,
# judged by the real `openstack` CLI: flavor create/list/show/set/delete, a
# duplicate (409 with Nova's message), a member refused (403); keypairs
# imported (fingerprint equal to `ssh-keygen -l -E md5`) and generated (the
# private key is one `ssh-keygen -y` reads back into the same public key);
# the admin views of the nodes; the version document and a refused
# microversion; the resource policy API with the seed's document, over curl.
source "$(dirname "$0")/lib/common.bash"

command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
command -v ssh-keygen >/dev/null || { echo "SKIP: ssh-keygen (openssh-client) is not installed"; exit 77; }

data="$ST_TMP/data"
"$STRATOSD" init --data-dir "$data" >/dev/null
st_start_daemon "$data"
# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"
nova="$ST_URL/compute/v2.1"

# The version document needs no token and advertises 2.1 only.
curl -s "$nova" | jq -e '.version.id == "v2.1" and .version.version == "2.1" and .version.min_version == "2.1"' \
    >/dev/null || fail "version document: $(curl -s "$nova")"
curl -s "$ST_URL/compute" | jq -e '.versions[0].id == "v2.1"' >/dev/null || fail "versions list"

# ---- flavors ----
openstack flavor create --vcpus 2 --ram 4096 --disk 20 m1.medium -f json >"$ST_TMP/f.json" || fail "flavor create"
jq -e '.name == "m1.medium" and .vcpus == 2 and .ram == 4096 and .disk == 20' "$ST_TMP/f.json" >/dev/null \
    || fail "flavor create output: $(cat "$ST_TMP/f.json")"
fid=$(jq -r .id "$ST_TMP/f.json")
openstack flavor create --id tiny-1 --vcpus 1 --ram 512 --disk 1 m1.tiny >/dev/null || fail "flavor create with an id"
openstack flavor list -f value -c Name | sort | tr '\n' ' ' | grep -x 'm1.medium m1.tiny ' >/dev/null || fail "flavor list: $(openstack flavor list)"
openstack flavor show m1.medium -f value -c id | grep -x "$fid" >/dev/null || fail "flavor show by name"

openstack flavor set --property quota:cpu_shares=2048 --property hw:cpu_policy=shared m1.medium || fail "flavor set"
openstack flavor show m1.medium -f json | jq -e '.properties["quota:cpu_shares"] == "2048"' >/dev/null \
    || fail "flavor properties: $(openstack flavor show m1.medium -f json)"
openstack flavor unset --property hw:cpu_policy m1.medium || fail "flavor unset"
openstack flavor show m1.medium -f json | jq -e '.properties | has("hw:cpu_policy") | not' >/dev/null \
    || fail "flavor unset left the property"
# a value stratos reads is checked when it is set
if out=$(openstack flavor set --property quota:cpu_shares=lots m1.medium 2>&1); then fail "bad cpu_shares accepted"; fi
grep -q "is not an integer" <<<"$out" || fail "bad cpu_shares message: $out"

if out=$(openstack flavor create --vcpus 1 --ram 1 --disk 1 m1.medium 2>&1); then fail "duplicate flavor accepted"; fi
grep -q "409" <<<"$out" && grep -q "Flavor with name m1.medium already exists." <<<"$out" || fail "duplicate message: $out"
if out=$(openstack flavor create --id tiny-1 --vcpus 1 --ram 1 --disk 1 other 2>&1); then fail "duplicate id accepted"; fi
grep -q "Flavor with ID tiny-1 already exists." <<<"$out" || fail "duplicate id message: $out"

# ---- a member of a project ----
openstack project create proj-a >/dev/null || fail "project create"
openstack user create --password pw-a user-a >/dev/null || fail "user create"
openstack role add --project proj-a --user user-a member || fail "role add"
member() { OS_USERNAME=user-a OS_PASSWORD=pw-a OS_PROJECT_NAME=proj-a openstack "$@"; }
out=$(member flavor list -f value -c Name 2>&1) || fail "member flavor list: $out"
grep -qx m1.medium <<<"$out" || fail "a member cannot list flavors: $out"
if out=$(member flavor create --vcpus 1 --ram 1 --disk 1 mine 2>&1); then fail "a member created a flavor"; fi
grep -q "403" <<<"$out" || fail "member flavor create: $out"
if out=$(member hypervisor list 2>&1); then fail "a member listed hypervisors"; fi
grep -q "403" <<<"$out" || fail "member hypervisor list: $out"

# ---- keypairs ----
ssh-keygen -q -t ed25519 -N '' -C it@stratos -f "$ST_TMP/x"
openstack keypair create --public-key "$ST_TMP/x.pub" k1 -f json >"$ST_TMP/k1.json" || fail "keypair import"
want=$(ssh-keygen -l -E md5 -f "$ST_TMP/x.pub" | awk '{print $2}' | sed 's/^MD5://')
[ "$(jq -r .fingerprint "$ST_TMP/k1.json")" = "$want" ] || fail "fingerprint $(jq -r .fingerprint "$ST_TMP/k1.json") != ssh-keygen's $want"

openstack keypair create k2 >"$ST_TMP/k2.pem" || fail "keypair generate"
chmod 600 "$ST_TMP/k2.pem"
head -1 "$ST_TMP/k2.pem" | grep -x -- '-----BEGIN OPENSSH PRIVATE KEY-----' >/dev/null || fail "private key format: $(head -1 "$ST_TMP/k2.pem")"
derived=$(ssh-keygen -y -f "$ST_TMP/k2.pem" | awk '{print $1, $2}') || fail "ssh-keygen cannot read the private key"
shown=$(curl -s -H "X-Auth-Token: $(openstack token issue -f value -c id)" "$nova/os-keypairs/k2" | jq -r .keypair.public_key | awk '{print $1, $2}')
[ "$derived" = "$shown" ] || fail "generated public key '$shown' is not the private key's '$derived'"

openstack keypair list -f value -c Name | sort | tr '\n' ' ' | grep -x 'k1 k2 ' >/dev/null || fail "keypair list: $(openstack keypair list)"
if out=$(openstack keypair create --public-key "$ST_TMP/x.pub" k1 2>&1); then fail "duplicate keypair accepted"; fi
grep -q "Key pair 'k1' already exists." <<<"$out" || fail "duplicate keypair message: $out"
echo "ssh-ed25519 AAAAnotakey" >"$ST_TMP/bad.pub"
if out=$(openstack keypair create --public-key "$ST_TMP/bad.pub" k3 2>&1); then fail "a broken key accepted"; fi
grep -q "Keypair data is invalid" <<<"$out" || fail "broken key message: $out"
# keypairs are the user's: user-a sees none of the admin's
[ -z "$(member keypair list -f value -c Name)" ] || fail "user-a sees the admin's keypairs"
openstack keypair delete k2 || fail "keypair delete"
openstack keypair list -f value -c Name | grep -x k1 >/dev/null || fail "keypair list after delete"
if openstack keypair show k2 >/dev/null 2>&1; then fail "deleted keypair still shown"; fi

# ---- hypervisors and services (admin) ----
hosts=$(openstack hypervisor list -f value -c "Hypervisor Hostname") || fail "hypervisor list"
if [ -n "$hosts" ]; then # the all-in-one daemon's own node, when its agent runs
    openstack hypervisor show "$(head -1 <<<"$hosts")" -f json | jq -e '.state == "up" and .vcpus > 0' >/dev/null \
        || fail "hypervisor show: $(openstack hypervisor show "$(head -1 <<<"$hosts")" 2>&1)"
fi
openstack compute service list >/dev/null || fail "compute service list"

# ---- microversions ----
tok=$(openstack token issue -f value -c id)
code=$(curl -s -o "$ST_TMP/mv" -w '%{http_code}' -H "X-Auth-Token: $tok" -H 'X-OpenStack-Nova-API-Version: 2.79' "$nova/flavors")
[ "$code" = 406 ] || fail "microversion 2.79 gave $code"
jq -e '.computeFault.message == "Version 2.79 is not supported by the API. Minimum is 2.1 and maximum is 2.1."' \
    "$ST_TMP/mv" >/dev/null || fail "406 body: $(cat "$ST_TMP/mv")"
curl -s -D "$ST_TMP/h" -o /dev/null -H "X-Auth-Token: $tok" -H 'OpenStack-API-Version: compute 2.1' "$nova/flavors"
grep -qi '^OpenStack-API-Version: compute 2.1' "$ST_TMP/h" || fail "no microversion echo: $(cat "$ST_TMP/h")"

# ---- resource policies (the seed's document, verbatim, as YAML) ----
cat >"$ST_TMP/policy.yaml" <<'EOF'
resourcePolicy:
  compute:
    cpu: {reservation: 2GHz, limit: 4GHz, shares: normal}
    memory: {reservation: 4GB, limit: 8GB}
  storage: {type: SSD, size: 100GB, iops: 3000}
  network: {bandwidth: 1Gbps, latency: <10ms}
EOF
rp="$ST_URL/stratos/v1/resource-policies"
put_policy() { curl -s -o "$ST_TMP/rp.json" -w '%{http_code}' -X PUT -H "X-Auth-Token: $1" "${@:3}" "$rp/$2"; }
code=$(put_policy "$tok" gold -H 'Content-Type: application/yaml' --data-binary @"$ST_TMP/policy.yaml")
[ "$code" = 201 ] || fail "policy create gave $code: $(cat "$ST_TMP/rp.json")"
jq -e '.resource_policy.resources.compute.cpu == {"reservation_mhz": 2000, "limit_mhz": 4000, "shares": "normal"}
       and .resource_policy.resources.compute.memory == {"reservation_mb": 4096, "limit_mb": 8192}
       and .resource_policy.not_enforced == ["storage", "network"]
       and .resource_policy.resourcePolicy.storage.iops == 3000
       and .resource_policy.resourcePolicy.network.latency == "<10ms"' "$ST_TMP/rp.json" >/dev/null \
    || fail "policy body: $(cat "$ST_TMP/rp.json")"
# applying it again is harmless
code=$(put_policy "$tok" gold -H 'Content-Type: application/yaml' --data-binary @"$ST_TMP/policy.yaml")
[ "$code" = 200 ] || fail "policy re-apply gave $code"
code=$(put_policy "$tok" bad -H 'Content-Type: application/json' -d '{"resourcePolicy": {"compute": {"cpu": {"limit": "4GB"}}}}')
[ "$code" = 400 ] || fail "bad unit gave $code"
jq -e '.error.message == "resourcePolicy.compute.cpu.limit: unknown unit '"'"'GB'"'"' (use MHz or GHz)"' "$ST_TMP/rp.json" >/dev/null \
    || fail "bad unit message: $(cat "$ST_TMP/rp.json")"
curl -s -H "X-Auth-Token: $tok" "$rp" | jq -e '[.resource_policies[].name] == ["gold"]' >/dev/null || fail "policy list"
# a flavor names it; a member of another project does not see it
openstack flavor set --property stratos:resource_policy=gold m1.medium || fail "flavor names a policy"
mtok=$(member token issue -f value -c id)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $mtok" "$rp/gold")
[ "$code" = 404 ] || fail "another project's policy gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "X-Auth-Token: $tok" "$rp/gold")
[ "$code" = 204 ] || fail "policy delete gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $tok" "$rp/gold")
[ "$code" = 404 ] || fail "deleted policy gave $code"

# ---- deletes ----
openstack flavor delete m1.medium tiny-1 || fail "flavor delete"
[ -z "$(openstack flavor list -f value -c Name)" ] || fail "flavors left after delete"
if openstack flavor show m1.medium >/dev/null 2>&1; then fail "deleted flavor still shown"; fi
# the name is free again
openstack flavor create --vcpus 1 --ram 512 --disk 1 m1.medium >/dev/null || fail "flavor name not freed"

st_stop_daemon
echo PASS
