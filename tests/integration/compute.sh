#!/usr/bin/env bash
# Compute end to end, judged by the real `openstack` CLI against stratosd
# (all-in-one: controller + agent + the crun container driver): image upload,
# flavor, keypair, server create --wait → ACTIVE, list/show, console log,
# stop/start, delete — and on the node, the container's process in its own
# namespaces while ACTIVE and gone after delete.
source "$(dirname "$0")/lib/common.bash"

[ "$(id -u)" = 0 ] || { echo "SKIP: running containers needs root"; exit 77; }
command -v crun >/dev/null || { echo "SKIP: crun is not installed (scripts/install-deps.sh)"; exit 77; }
command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
[ -x "$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" ] || { echo "SKIP: no busybox rootfs script"; exit 77; }

data="$ST_TMP/data"
"$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" "$ST_TMP/busybox.tar" >/dev/null
"$STRATOSD" init --data-dir "$data" >/dev/null
st_start_daemon "$data"
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"

# Whatever happens, no container of this test outlives it.
cleanup_servers() {
    for id in $(openstack server list -f value -c ID 2>/dev/null); do
        openstack server delete --wait "$id" >/dev/null 2>&1 || true
    done
}
trap 'cleanup_servers; st_cleanup' EXIT

openstack image create --file "$ST_TMP/busybox.tar" --container-format docker --disk-format raw busybox \
    >/dev/null || fail "image create"
openstack image show busybox -f value -c status | grep -x active >/dev/null || fail "image not active"
openstack flavor create --vcpus 1 --ram 128 --disk 1 m1.tiny >/dev/null || fail "flavor create"
openstack keypair create k1 >"$ST_TMP/k1.pem" || fail "keypair create"
printf '#!/bin/sh\necho hello-from-user-data\n' >"$ST_TMP/ud.sh"

openstack server create --flavor m1.tiny --image busybox --key-name k1 --user-data "$ST_TMP/ud.sh" \
    --wait demo -f json >"$ST_TMP/create.json" || fail "server create --wait: $(cat "$ST_TMP/create.json")"
[ "$(jq -r .status "$ST_TMP/create.json")" = ACTIVE ] || fail "not ACTIVE: $(cat "$ST_TMP/create.json")"
id=$(jq -r .id "$ST_TMP/create.json")

openstack server list -f value -c Name -c Status | grep -x "demo ACTIVE" >/dev/null || fail "server list"
openstack server show demo -f value -c key_name | grep -x k1 >/dev/null || fail "server show key_name"

# On the node: the container's init runs in its own namespaces.
pid=$(openstack server show demo -f json | jq -r '.["OS-EXT-SRV-ATTR:instance_name"] // empty')
pid=$(pgrep -f "stratos.*$id" | head -1 || true)
state_pid=$(crun --root "$data/agent/crun" state "$id" 2>/dev/null | jq -r .pid || true)
[ -n "$state_pid" ] && [ "$state_pid" != null ] || state_pid=$(crun state "$id" 2>/dev/null | jq -r .pid || true)
[ -n "$state_pid" ] && [ "$state_pid" != null ] || fail "no crun container for $id"
for ns in pid mnt uts net ipc; do
    [ "$(readlink /proc/$state_pid/ns/$ns)" != "$(readlink /proc/self/ns/$ns)" ] || fail "$ns namespace shared with the host"
done
[ "$(nsenter -t "$state_pid" -u hostname)" = demo ] || fail "hostname is not the server name"

# Console log: the user_data script's output.
for _ in $(seq 50); do
    openstack console log show demo | grep hello-from-user-data >/dev/null && break
    sleep 0.2
done
openstack console log show demo | grep hello-from-user-data >/dev/null || fail "console log lacks user_data output"

openstack server stop demo
for _ in $(seq 100); do [ "$(openstack server show demo -f value -c status)" = SHUTOFF ] && break; sleep 0.2; done
[ "$(openstack server show demo -f value -c status)" = SHUTOFF ] || fail "stop"
kill -0 "$state_pid" 2>/dev/null && fail "process still runs after stop"
openstack server start demo
for _ in $(seq 100); do [ "$(openstack server show demo -f value -c status)" = ACTIVE ] && break; sleep 0.2; done
[ "$(openstack server show demo -f value -c status)" = ACTIVE ] || fail "start"

openstack server delete --wait demo || fail "server delete"
if openstack server show demo >/dev/null 2>&1; then fail "server still shown after delete"; fi
grep -q "$id" /proc/self/mountinfo && fail "a mount of $id is left"
[ -z "$(find /sys/fs/cgroup -name "*$id*" 2>/dev/null)" ] || fail "a cgroup of $id is left"
st_stop_daemon
echo PASS
