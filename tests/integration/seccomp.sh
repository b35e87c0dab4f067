#!/usr/bin/env bash
# The containers' default seccomp filter (Docker's profile), judged from inside
# real servers run by crun: a probe in user_data prints, on the console, the
# kernel's seccomp mode, whether `unshare -U` (a new user namespace, which the
# profile refuses without CAP_SYS_ADMIN) works, and that ordinary work does.
#  - a server of a plain flavor is filtered: unshare -U fails with
#    "Operation not permitted", sh/ls/sleep work; its image carries the
#    property stratos:seccomp=unconfined, which changes nothing (users make
#    images);
#  - a flavor with the admin's extra spec stratos:seccomp=unconfined runs
#    without a filter: the same unshare -U succeeds;
#  - the API refuses any other value of stratos:seccomp;
#  - the filter comes precompiled: the confined server's config.json carries
#    the BPF program (annotation run.oci.seccomp_bpf_data, which crun loads as
#    is) beside the linux.seccomp it was compiled from, and the agent
#    compiled it once (log event seccomp_compiled).
source "$(dirname "$0")/lib/common.bash"

[ "$(id -u)" = 0 ] || { echo "SKIP: running containers needs root"; exit 77; }
command -v crun >/dev/null || { echo "SKIP: crun is not installed (scripts/install-deps.sh)"; exit 77; }
command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
[ -x "$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" ] || { echo "SKIP: no busybox rootfs script"; exit 77; }
# The unconfined half needs user namespaces that a process without
# capabilities may create; some kernels forbid them whatever seccomp says.
unshare -U true 2>/dev/null || { echo "SKIP: this kernel refuses new user namespaces (unshare -U)"; exit 77; }

data="$ST_TMP/data"
"$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" "$ST_TMP/busybox.tar" >/dev/null
"$STRATOSD" init --data-dir "$data" >/dev/null
st_start_daemon "$data"
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"

cleanup_servers() {
    for id in $(openstack server list -f value -c ID 2>/dev/null); do
        openstack server delete --wait "$id" >/dev/null 2>&1 || true
    done
}
trap 'cleanup_servers; st_cleanup' EXIT

# Each openstack command costs a second or two: the test keeps to few.
openstack image create --file "$ST_TMP/busybox.tar" --container-format docker --disk-format raw \
    --property stratos:seccomp=unconfined busybox >/dev/null || fail "image create"
openstack flavor create --vcpus 1 --ram 128 --disk 1 m1.tiny >/dev/null || fail "flavor create"
openstack flavor create --vcpus 1 --ram 128 --disk 1 --property stratos:seccomp=unconfined m1.open \
    -f json >"$ST_TMP/open.flavor" || fail "flavor create with stratos:seccomp=unconfined"
jq -r '.properties["stratos:seccomp"]' "$ST_TMP/open.flavor" | grep -x unconfined >/dev/null ||
    fail "m1.open does not show stratos:seccomp=unconfined: $(cat "$ST_TMP/open.flavor")"
if openstack flavor set --property stratos:seccomp=off m1.tiny >"$ST_TMP/bad.out" 2>&1; then
    fail "the API took stratos:seccomp=off"
fi
grep "stratos:seccomp" "$ST_TMP/bad.out" >/dev/null || fail "refusal does not name the spec: $(cat "$ST_TMP/bad.out")"

cat >"$ST_TMP/probe.sh" <<'EOF'
#!/bin/sh
echo "probe-mode: $(grep '^Seccomp:' /proc/self/status | tr -d ' \t')"
if unshare -U true 2>/tmp/unshare.err; then
    echo "probe-unshare: allowed"
else
    echo "probe-unshare: refused: $(cat /tmp/unshare.err)"
fi
ls / >/dev/null && sleep 0.1 && echo "probe-work: $(echo ok | cat)"
EOF

# boot NAME FLAVOR IMAGE: a server running the probe, ACTIVE.
boot() {
    openstack server create --flavor "$2" --image "$3" --user-data "$ST_TMP/probe.sh" --wait "$1" \
        -f json >"$ST_TMP/$1.json" || fail "server create $1: $(cat "$ST_TMP/$1.json")"
    [ "$(jq -r .status "$ST_TMP/$1.json")" = ACTIVE ] || fail "$1 is not ACTIVE: $(cat "$ST_TMP/$1.json")"
}

# console NAME: the console once the probe has finished.
console() {
    for _ in $(seq 100); do
        openstack console log show "$1" >"$ST_TMP/$1.log" 2>/dev/null || true
        grep "^probe-work:" "$ST_TMP/$1.log" >/dev/null && return 0
        sleep 0.1
    done
    fail "$1: the probe did not finish; console: $(cat "$ST_TMP/$1.log")"
}

# expect NAME PATTERN WHAT
expect() {
    grep -E "$2" "$ST_TMP/$1.log" >/dev/null || fail "$1: $3; console:
$(cat "$ST_TMP/$1.log")"
}

boot confined m1.tiny busybox
boot open m1.open busybox
console confined
console open

expect confined '^probe-mode: Seccomp:2$' "the kernel reports no seccomp filter"
expect confined '^probe-unshare: refused: .*Operation not permitted' "unshare -U was not refused with EPERM"
expect confined '^probe-work: ok$' "ordinary commands failed under the filter"
expect open '^probe-mode: Seccomp:0$' "a filter is loaded despite stratos:seccomp=unconfined"
expect open '^probe-unshare: allowed$' "unshare -U failed without the filter"
expect open '^probe-work: ok$' "ordinary commands failed"

bundle_config() { echo "$data/agent/instances/$(jq -r .id "$ST_TMP/$1.json")/bundle/config.json"; }
jq -e '(.annotations["run.oci.seccomp_bpf_data"] | length) > 1000 and .linux.seccomp != null' \
    "$(bundle_config confined)" >/dev/null ||
    fail "confined: config.json lacks the compiled program or the profile: $(jq -c '.annotations' "$(bundle_config confined)")"
jq -e '.annotations["run.oci.seccomp_bpf_data"] == null and .linux.seccomp == null' \
    "$(bundle_config open)" >/dev/null || fail "open: config.json carries a seccomp filter"
[ "$(grep -c 'event=seccomp_compiled' "$ST_LOG")" = 1 ] ||
    fail "the agent did not compile the profile exactly once: $(grep seccomp "$ST_LOG")"

openstack server delete --wait confined open || fail "server delete"
trap st_cleanup EXIT # nothing left to delete
st_stop_daemon
echo PASS
