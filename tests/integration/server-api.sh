#!/usr/bin/env bash
# Servers as a user meets them, judged by the real `openstack` CLI against a
# controller with no agent: create answers BUILD at once (or ERROR with a
# fault naming the nodes, once a placement controller finds none), list,
# show, the 400 for an unknown key pair, the 403 for a quota, the 409 for a
# wrong state, and delete. Then an agent played with curl on the internal
# API (node token): a node registers; if a placement controller places a
# server there, status reports, console output, stop and the final DELETED
# removal are checked through the CLI too. (The CLI costs about a second a
# call, so what it adds nothing to is checked with curl.)
source "$(dirname "$0")/lib/common.bash"

command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }

data="$ST_TMP/data"
mkdir -p "$ST_TMP/rootfs/bin"
echo "not really busybox" >"$ST_TMP/rootfs/bin/sh"
tar -C "$ST_TMP/rootfs" -cf "$ST_TMP/busybox.tar" .
"$STRATOSD" init --data-dir "$data" --import-image "busybox=$ST_TMP/busybox.tar" >/dev/null \
    || fail "init"
[ "$(stat -c %a "$data/node-token")" = 600 ] || fail "node-token is not mode 0600"
grep -qxE '[0-9a-f]{64}' "$data/node-token" || fail "node-token is not 64 hex characters"
before=$(cat "$data/node-token")
"$STRATOSD" init --data-dir "$data" >/dev/null || fail "second init"
[ "$(cat "$data/node-token")" = "$before" ] || fail "a second init replaced the node token"
st_start_daemon "$data" --role controller

# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"
nova="$ST_URL/compute/v2.1"

openstack flavor create --vcpus 1 --ram 256 --disk 1 f.small >/dev/null || fail "flavor create"
openstack keypair create k1 >/dev/null || fail "keypair create"

# Create: 202, readable at once; BUILD, or ERROR with a fault about the nodes
# when a placement controller runs and finds none.
out=$(openstack server create --flavor f.small --image busybox --key-name k1 \
    --property role=web demo -f json) || fail "server create: $out"
id=$(jq -r .id <<<"$out")
case "$(jq -r .status <<<"$out")" in BUILD | ERROR) ;; *) fail "create: $out" ;; esac
[ "$(jq -r .key_name <<<"$out")" = k1 ] || fail "key_name: $out"

show=$(openstack server show demo -f json) || fail "server show"
[ "$(jq -r .id <<<"$show")" = "$id" ] || fail "show id"
jq -e '(.flavor | startswith("f.small (")) and (.image | startswith("busybox ("))' <<<"$show" \
    >/dev/null || fail "show flavor/image: $show"
jq -e '.properties.role == "web" or .properties == "role='"'"'web'"'"'"' <<<"$show" >/dev/null \
    || fail "properties: $(jq -c .properties <<<"$show")"
jq -e 'has("OS-EXT-SRV-ATTR:host")' <<<"$show" >/dev/null || fail "the admin sees no host field"
status=$(jq -r .status <<<"$show")
if [ "$status" = ERROR ]; then
    jq -r '.fault.message // .fault' <<<"$show" | grep -i node >/dev/null || fail "ERROR without a fault about nodes: $show"
else
    [ "$status" = BUILD ] || fail "show status $status"
    [ "$(jq -r '."OS-EXT-STS:task_state"' <<<"$show")" = scheduling ] || fail "task_state: $show"
fi

openstack server list --long -f json | jq -e --arg id "$id" \
    'map(select(.ID == $id and .Name == "demo" and ."Flavor Name" == "f.small"
                and ."Image Name" == "busybox")) | length == 1' >/dev/null \
    || fail "server list: $(openstack server list --long -f json)"

# An unknown key pair: Nova's 400.
if out=$(openstack server create --flavor f.small --image busybox --key-name nope x 2>&1); then
    fail "unknown key_name accepted"
fi
grep -q "Invalid key_name provided. (HTTP 400)" <<<"$out" || fail "key_name message: $out"

# Quotas: over the limit is Nova's 403; quota show reads what was set.
openstack quota set --instances 1 admin || fail "quota set"
if out=$(openstack server create --flavor f.small --image busybox over 2>&1); then
    fail "quota exceeded but created"
fi
grep -q "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances (HTTP 403)" \
    <<<"$out" || fail "quota message: $out"
q=$(openstack quota show -f json) || fail "quota show"
[ "$(jq -r .instances <<<"$q")" = 1 ] && [ "$(jq -r .cores <<<"$q")" = 20 ] \
    && [ "$(jq -r .ram <<<"$q")" = 51200 ] || fail "quota show: $q"

# The rest of the Nova surface over plain HTTP.
token=$(openstack token issue -f value -c id)
project=$(curl -s "$ST_URL/identity/v3/auth/tokens" -H "X-Auth-Token: $token" \
    -H "X-Subject-Token: $token" | jq -r .token.project.id)
nv() { curl -s -o "$ST_TMP/body" -w '%{http_code}' -H "X-Auth-Token: $token" -H 'Content-Type: application/json' "$@"; }
code=$(nv "$nova/limits")
[ "$code" = 200 ] && jq -e '.limits.absolute.maxTotalInstances == 1 and .limits.absolute.totalInstancesUsed == 1' \
    "$ST_TMP/body" >/dev/null || fail "limits: $code $(cat "$ST_TMP/body")"
code=$(nv -X PUT "$nova/os-quota-sets/$project" -d '{"quota_set": {"instances": 0}}')
[ "$code" = 400 ] || fail "quota below usage gave $code"
code=$(nv -X DELETE "$nova/os-quota-sets/$project")
[ "$code" = 202 ] || fail "quota reset gave $code"
code=$(nv "$nova/os-quota-sets/$project/detail")
jq -e '.quota_set.instances == {"in_use": 1, "limit": 10, "reserved": 0}' "$ST_TMP/body" >/dev/null \
    || fail "quota detail: $code $(cat "$ST_TMP/body")"
code=$(nv -X POST "$nova/servers" -d '{"server": {"name": "x", "flavorRef": "nope", "imageRef": "nope"}}')
[ "$code" = 400 ] && jq -e '.badRequest.message == "Flavor nope could not be found."' "$ST_TMP/body" \
    >/dev/null || fail "unknown flavorRef: $code $(cat "$ST_TMP/body")"
code=$(nv -X POST "$nova/servers/$id/action" -d '{"os-start": null}')
[ "$code" = 409 ] && jq -e --arg id "$id" \
    '.conflictingRequest.message | startswith("Cannot '"'"'start'"'"' instance " + $id + " while it is in vm_state ")' \
    "$ST_TMP/body" >/dev/null || fail "start in a wrong state: $code $(cat "$ST_TMP/body")"
code=$(nv -X POST "$nova/servers/$id/action" -d '{"pause": null}')
[ "$code" = 400 ] || fail "unknown action gave $code"

# Delete: a server that never ran is gone at once.
openstack server delete --wait demo || fail "server delete"
if out=$(openstack server show demo 2>&1); then fail "deleted server still shown"; fi
grep -q "No server with a name or ID of 'demo' exists." <<<"$out" || fail "after delete: $out"
code=$(nv "$nova/servers/$id")
[ "$code" = 404 ] && jq -e --arg m "Instance $id could not be found." '.itemNotFound.message == $m' \
    "$ST_TMP/body" >/dev/null || fail "GET deleted server: $code $(cat "$ST_TMP/body")"
nv "$nova/servers" >/dev/null
[ "$(jq '.servers | length' "$ST_TMP/body")" = 0 ] || fail "list after delete: $(cat "$ST_TMP/body")"

# ---- an agent played with curl on the internal API ----
node_token=$(cat "$data/node-token")
internal="$ST_URL/internal/v1"
ni() { curl -s -o "$ST_TMP/ibody" -w '%{http_code}' -H "X-Node-Token: $node_token" "$@"; }
# Keystone tokens do not open it, nor does the node token open Nova.
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $token" "$internal/nodes/it-node/servers")
[ "$code" = 401 ] || fail "Keystone token on the internal API gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $node_token" "$nova/servers")
[ "$code" = 401 ] || fail "node token on Nova gave $code"
code=$(ni -X PUT "$internal/nodes/it-node" -d '{"drivers": ["container"], "capacity":
    {"vcpus": 4, "cpu_mhz": 2000, "memory_mb": 8192, "disk_gb": 100}}')
[ "$code" = 200 ] || fail "node register gave $code: $(cat "$ST_TMP/ibody")"
code=$(ni "$internal/nodes/it-node/servers?after=0")
[ "$code" = 200 ] || fail "assignments gave $code"
rev=$(jq -r .revision "$ST_TMP/ibody")

flavor_id=$(jq -r '.flavor | capture("\\((?<id>[^)]*)\\)$").id' <<<"$show")
image_id=$(jq -r '.image | capture("\\((?<id>[^)]*)\\)$").id' <<<"$show")
code=$(nv -X POST "$nova/servers" -d "{\"server\": {\"name\": \"placed\", \"flavorRef\":
    \"$flavor_id\", \"imageRef\": \"$image_id\", \"key_name\": \"k1\"}}")
[ "$code" = 202 ] || fail "second create gave $code"
sid=$(jq -r .server.id "$ST_TMP/body")
# Wait (up to 5 s) for a placement controller to assign it to the node.
code=$(ni "$internal/nodes/it-node/servers?after=$rev&wait=5")
[ "$code" = 200 ] || fail "long-poll gave $code"
if [ "$(jq -r --arg id "$sid" '[.servers[] | select(.id == $id)] | length' "$ST_TMP/ibody")" = 1 ]; then
    jq -e '.servers[0].spec.public_key | startswith("ssh-ed25519 ")' "$ST_TMP/ibody" >/dev/null \
        || fail "assigned document lacks the public key"
    ni -X PUT "$internal/servers/$sid/status" -d '{"state": "ACTIVE", "power_state": 1}' >/dev/null
    printf 'line one\nline two\nline three\n' >"$ST_TMP/console"
    code=$(ni -X PUT "$internal/servers/$sid/console" -H 'Content-Type: text/plain' \
        --data-binary "@$ST_TMP/console")
    [ "$code" = 204 ] || fail "console put gave $code"
    [ "$(openstack console log show placed)" = "$(cat "$ST_TMP/console")" ] || fail "console log show"
    openstack server stop placed || fail "server stop"
    nv "$nova/servers/$sid" >/dev/null
    jq -e '.server.status == "ACTIVE" and .server["OS-EXT-STS:task_state"] == "powering-off"
           and .server["OS-EXT-SRV-ATTR:host"] == "it-node"
           and .server["OS-SRV-USG:launched_at"] != null' "$ST_TMP/body" >/dev/null \
        || fail "after stop: $(cat "$ST_TMP/body")"
    ni -X PUT "$internal/servers/$sid/status" -d '{"state": "SHUTOFF", "power_state": 4}' >/dev/null
    [ "$(openstack server show placed -f value -c status)" = SHUTOFF ] || fail "not SHUTOFF"
    openstack server delete placed || fail "delete placed"
    nv "$nova/servers/$sid" >/dev/null
    jq -e '.server["OS-EXT-STS:task_state"] == "deleting"' "$ST_TMP/body" >/dev/null \
        || fail "not deleting: $(cat "$ST_TMP/body")"
    code=$(ni -X PUT "$internal/servers/$sid/status" -d '{"state": "DELETED"}')
    [ "$code" = 204 ] || fail "DELETED report gave $code"
    [ "$(nv "$nova/servers/$sid")" = 404 ] || fail "placed server survived DELETED"
    echo "agent simulation: placed, reported, console, stopped, deleted"
else
    echo "note: no placement controller placed the server within 5 s; agent simulation skipped"
    [ "$(nv -X DELETE "$nova/servers/$sid")" = 204 ] || fail "delete unplaced"
fi

st_stop_daemon
echo "PASS server-api"
