#!/usr/bin/env bash
# The node's disk stays bounded, judged on the node and by the real
# `openstack` CLI against stratosd (all-in-one, crun containers):
# - a server that prints without pause keeps its console.log under
#   --console-log-max (plus at most a block), while `openstack console log
#   show` keeps showing its newest lines;
# - the image cache: an image whose last server is deleted stays while its
#   max age has not passed and Glance has it, goes at once when it is deleted
#   from Glance, goes after the max age unused; an image a server uses
#   (running or stopped) stays however old.
# The prune runs every second here (STRATOS_TEST_IMAGE_PRUNE_INTERVAL_S,
# test only; by default every 600 s).
source "$(dirname "$0")/lib/common.bash"

[ "$(id -u)" = 0 ] || { echo "SKIP: running containers needs root"; exit 77; }
command -v crun >/dev/null || { echo "SKIP: crun is not installed (scripts/install-deps.sh)"; exit 77; }
command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
[ -x "$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" ] || { echo "SKIP: no busybox rootfs script"; exit 77; }

data="$ST_TMP/data"
cap=65536
"$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" "$ST_TMP/busybox.tar" >/dev/null
"$STRATOSD" init --data-dir "$data" >/dev/null
export STRATOS_TEST_IMAGE_PRUNE_INTERVAL_S=1
max_age=10
st_start_daemon "$data" --console-log-max 64KiB --image-cache-max-age $max_age
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"

# Whatever happens, no container of this test outlives it: deleted through
# the API, else (the daemon is gone) directly.
cleanup_servers() {
    for id in $(openstack server list -f value -c ID 2>/dev/null); do
        openstack server delete --wait "$id" >/dev/null 2>&1 || true
    done
    local id m
    for id in $(ls "$data/agent/instances" 2>/dev/null); do
        crun --root "$data/agent/crun" delete --force "$id" >/dev/null 2>&1 || true
        m="$data/agent/instances/$id/bundle/rootfs"
        if grep " $m " /proc/self/mountinfo >/dev/null; then umount -l "$m" || true; fi
        find /sys/fs/cgroup -depth -type d -path "*/stratos/$id" -exec rmdir {} \; 2>/dev/null || true
    done
}
trap 'cleanup_servers; st_cleanup' EXIT

# About 6 KB/s of numbered 60-byte lines: past the cap within a dozen
# seconds, and less than half the cap between two of the agent's checks
# (every 5 s), so the file never has to hold more than cap + a block.
chatty_cmd='/bin/sh -c '\''i=0; while :; do j=0; while [ $j -lt 10 ]; do printf "chatty line %06d %040d\n" $i 0; i=$((i+1)); j=$((j+1)); done; sleep 0.1; done'\'
for name in busybox chatty; do
    props=()
    [ "$name" = chatty ] && props=(--property "os_command_line=$chatty_cmd")
    openstack image create --file "$ST_TMP/busybox.tar" --container-format docker --disk-format raw \
        "${props[@]}" "$name" >/dev/null || fail "image create $name"
done
openstack flavor create --vcpus 1 --ram 128 --disk 1 m1.tiny >/dev/null || fail "flavor create"
for s in keeper:busybox chatty:chatty; do
    openstack server create --flavor m1.tiny --image "${s#*:}" --wait "${s%%:*}" -f json >"$ST_TMP/create.json" ||
        fail "server create ${s%%:*}: $(cat "$ST_TMP/create.json")"
    [ "$(jq -r .status "$ST_TMP/create.json")" = ACTIVE ] || fail "${s%%:*} not ACTIVE: $(cat "$ST_TMP/create.json")"
done
chatty_id=$(openstack server show chatty -f value -c id)
log="$data/agent/instances/$chatty_id/console.log"
[ -f "$log" ] || fail "no console log at $log"

# ---- the console log stays bounded ----
largest=0
for _ in $(seq 24); do # 12 s: past half the cap twice
    size=$(stat -c %s "$log")
    [ "$size" -gt "$largest" ] && largest=$size
    sleep 0.5
done
echo "console.log: largest $largest bytes seen (cap $cap)"
[ "$largest" -le $((cap + 4096)) ] || fail "console.log reached $largest bytes, over the cap $cap + a block"
head -c 4096 "$log" | grep 'chatty line 000000 ' >/dev/null && fail "the oldest lines were never dropped"
# the newest whole line on the node reaches `openstack console log show`
line_re='^chatty line [0-9]{6} 0{40}$'
newest=$(grep -a -E "$line_re" "$log" | tail -n 1 | awk '{print $3}')
[ -n "$newest" ] || fail "no whole line in console.log"
shown=""
for _ in $(seq 60); do
    shown=$(openstack console log show chatty --lines 5 | grep -E "$line_re" | tail -n 1 | awk '{print $3}')
    [ -n "$shown" ] && [ "$((10#$shown))" -ge "$((10#$newest))" ] && break
    sleep 0.25
done
[ -n "$shown" ] && [ "$((10#$shown))" -ge "$((10#$newest))" ] ||
    fail "console log show ends at line '$shown', the node had $newest"
[ "$(openstack console log show chatty --lines 3 | awk 'END {print NR}')" = 3 ] ||
    fail "console log show --lines 3 is not 3 lines"

# ---- the image cache ----
img_dir() { echo "$data/agent/images/$(openstack image show "$1" -f value -c id)"; }
chatty_img=$(img_dir chatty)
busybox_img=$(img_dir busybox)
for d in "$chatty_img" "$busybox_img"; do
    [ -d "$d/rootfs" ] && [ -f "$d.blob" ] || fail "image not cached at $d"
done
openstack server stop keeper || fail "stop keeper"
stopped_at=$(date +%s)
for _ in $(seq 100); do [ "$(openstack server show keeper -f value -c status)" = SHUTOFF ] && break; sleep 0.2; done
[ "$(openstack server show keeper -f value -c status)" = SHUTOFF ] || fail "keeper did not stop"

# Its last server deleted, an image stays (younger than the max age, and
# Glance has it) until it is deleted from Glance: then it goes at once.
openstack server delete --wait chatty || fail "delete chatty"
deleted_at=$(date +%s)
sleep 2 # two prune passes
[ -d "$chatty_img/rootfs" ] || fail "the chatty image went before its max age"
openstack image delete chatty || fail "image delete"
for _ in $(seq 40); do [ -e "$chatty_img" ] || break; sleep 0.1; done
[ -e "$chatty_img" ] && fail "the image deleted from Glance is still cached at $chatty_img"
[ -e "$chatty_img.blob" ] && fail "the file of the deleted image is still cached"
[ $(($(date +%s) - deleted_at)) -lt $max_age ] ||
    fail "too slow to tell a Glance deletion from the max age (raise max_age)"

# A stopped server's image stays past the max age; once the server is
# deleted, it goes after the max age.
while [ "$(date +%s)" -le $((stopped_at + max_age + 2)) ]; do sleep 0.5; done
[ -d "$busybox_img/rootfs" ] || fail "the image of a stopped server was removed"
openstack server delete --wait keeper || fail "delete keeper"
for _ in $(seq $((max_age * 10 + 50))); do [ -e "$busybox_img" ] || break; sleep 0.1; done
[ -e "$busybox_img" ] && fail "the image unused past its max age is still cached at $busybox_img"
[ -e "$busybox_img.blob" ] && fail "the file of the unused image is still cached"
grep 'event=image_pruned.*reason=deleted' "$ST_LOG" >/dev/null || fail "no image_pruned reason=deleted in the log"
grep 'event=image_pruned.*reason=unused' "$ST_LOG" >/dev/null || fail "no image_pruned reason=unused in the log"
st_stop_daemon
echo PASS
