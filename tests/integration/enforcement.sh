#!/usr/bin/env bash
# Resource enforcement, measured in the kernel and judged through the API
# with the real `openstack` CLI, against stratosd all-in-one (controller +
# agent + the crun container driver). Three claims of issue 4:
#
# 1. CPU limit. A CPU-bound loop in a server limited to 0.5 core uses
#    0.5 ± 0.1 core, measured from its cgroup's CPU time over a 3 s window.
#    Two servers, one per way of asking: a resource policy whose cpu limit is
#    half the node's MHz per core (read from `openstack hypervisor show`,
#    cpu_info.mhz; the agent turns MHz into a CFS quota), and a flavor with
#    Nova's extra specs quota:cpu_quota=50000 quota:cpu_period=100000. The
#    kernel's throttle counter (cpu.stat nr_throttled) must move too: the
#    quota, not a lack of CPU, is what held the loop.
# 2. Memory limit. A server whose command doubles a shell string until it
#    outgrows its flavor's 64 MiB (ash holds the old and the new string, so
#    the 32 → 64 MiB step needs ~96 MiB at the latest; memory+swap is limited
#    too, and the pages are anonymous, freed by the kill) is OOM-killed by the kernel (memory cgroup oom_kill ≥ 1) and
#    the user sees status ERROR with a fault (code 500) naming the limit and
#    "out of memory". ERROR rather than SHUTOFF: the workload crashed, and a
#    SHUTOFF server with power "on" would be started again (see
#    src/agent/reconcile.c).
# 3. CPU shares. Busy servers pinned to one core (`taskset -c 0` inside each
#    container: the driver sets no cpuset) split it as their shares say. The
#    issue's levels are vSphere's, 512/1024/2048 per vCPU for low/normal/high,
#    so with one vCPU each high vs low implies 4:1, not the issue's "≈ 2:1";
#    2:1 is what high vs normal (and normal vs low) imply. Rather than pick
#    one reading, three servers (high, normal, low, named by resource policies)
#    share core 0 at once and the test asserts every ratio the configured
#    shares imply, within ±20%: high/normal 2, normal/low 2, high/low 4.
#
# Fairness on a shared machine: every cgroup competes with each process in
# its parent as one nice-0 task, so on a 2-core host busy with builds a
# server gets a third of a core whatever its limit says. For the measurement
# to be about stratos and not about the neighbours, the test (and so the
# node it starts) runs in a cpu cgroup of its own with cpu.shares 10240 on v1
# hosts, standing in for a node that runs nothing else. This changes no
# limit: quotas and the shares between the servers are set by the agent
# below it; the cgroup is removed at exit. Windows that still show too
# little CPU are measured again (at most 3); going over a limit fails at once.
source "$(dirname "$0")/lib/common.bash"

[ "$(id -u)" = 0 ] || { echo "SKIP: running containers and reading their cgroups needs root"; exit 77; }
command -v crun >/dev/null || { echo "SKIP: crun is not installed (scripts/install-deps.sh)"; exit 77; }
command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
[ -x "$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" ] || { echo "SKIP: no busybox rootfs script"; exit 77; }
"${BUSYBOX:-/bin/busybox}" --list 2>/dev/null | grep -x taskset >/dev/null \
    || { echo "SKIP: busybox has no taskset applet to pin the share test to one core"; exit 77; }

data="$ST_TMP/data"
window_s=3

# ---- the node's cpu cgroup (see above) ----
boost=""
boost_parent=""
own_cpu=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3 }' /proc/self/cgroup)
if [ -n "$own_cpu" ] && [ -w "/sys/fs/cgroup/cpu${own_cpu%/}/cgroup.procs" ]; then
    boost_parent="/sys/fs/cgroup/cpu${own_cpu%/}"
    boost="$boost_parent/st-enforce-$$"
    mkdir "$boost" && echo 10240 >"$boost/cpu.shares" && echo $$ >"$boost/cgroup.procs" \
        || fail "cannot make the test's cpu cgroup $boost"
fi

# ---- cgroup reading (v1 and hybrid: cpuacct/cpu/memory hierarchies; v2: one) ----

# cg_file ID FILE: the path of FILE in the cgroup directory named ID.
cg_file() {
    local d
    while read -r d; do
        [ -e "$d/$2" ] && { echo "$d/$2"; return 0; }
    done < <(find /sys/fs/cgroup -mindepth 2 -maxdepth 9 -type d -name "$1" 2>/dev/null)
    return 1
}

# cpu_ns ID: CPU time of the instance's cgroup, in ns.
cpu_ns() {
    local f
    if f=$(cg_file "$1" cpuacct.usage); then
        cat "$f"
    elif f=$(cg_file "$1" cpu.stat) && grep -q '^usage_usec ' "$f"; then
        awk '$1 == "usage_usec" { print $2 * 1000 }' "$f"
    else
        return 1
    fi
}

# throttled ID: how many CFS periods the instance was throttled in.
throttled() {
    local f
    f=$(cg_file "$1" cpu.stat) || return 1
    awk '$1 == "nr_throttled" { print $2 }' "$f"
}

now_ns() { date +%s%N; }

# ---- cleanup: no server, container, mount or cgroup of this test outlives it ----
ids=()
lim_p="" lim_f="" hog="" hi="" no="" lo=""
tok=""
api() { curl -sf -H "X-Auth-Token: $tok" "$@"; } # the CLI would cost a second a call
delete_servers() {
    [ -n "$tok" ] && [ -n "${ST_URL:-}" ] || return 0
    local id left
    for id in $(api "$nova/servers" | jq -r '.servers[].id' 2>/dev/null); do
        api -o /dev/null -X DELETE "$nova/servers/$id" || true
    done
    for _ in $(seq 150); do
        left=$(api "$nova/servers" | jq '.servers | length' 2>/dev/null || echo x)
        [ "$left" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}
# What delete should have removed; used after a failure, with the daemon gone.
backstop() {
    local id f pid
    for id in "${ids[@]}"; do
        if f=$(cg_file "$id" cgroup.procs); then
            while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$f"
            sleep 0.1
        fi
        umount -l "$data/agent/instances/$id/bundle/rootfs" 2>/dev/null || true
        find /sys/fs/cgroup -mindepth 2 -maxdepth 9 -depth -type d -name "$id" \
            -exec rmdir {} \; 2>/dev/null || true
    done
}
on_exit() {
    local rc=$?
    trap - EXIT
    if [ -n "${ST_PID:-}" ] && kill -0 "$ST_PID" 2>/dev/null; then
        delete_servers || echo "enforcement: servers were left after delete" >&2
        kill -TERM "$ST_PID" 2>/dev/null || true
        wait "$ST_PID" 2>/dev/null || true
    fi
    backstop
    st_cleanup
    if [ -n "$boost" ]; then
        echo $$ >"$boost_parent/cgroup.procs" 2>/dev/null || true
        rmdir "$boost/stratos" "$boost" 2>/dev/null || true
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---- a node, images, flavors, policies ----
"$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" "$ST_TMP/busybox.tar" >/dev/null
"$STRATOSD" init --data-dir "$data" >/dev/null
st_start_daemon "$data"
# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"
nova="$ST_URL/compute/v2.1"
tok=$(openstack token issue -f value -c id) || fail "token issue"

# The CLI costs about a second a call: independent calls run side by side.
declare -A jobs=()
spawn() { # spawn NAME cmd...: runs cmd in the background, output in $ST_TMP/NAME
    "${@:2}" >"$ST_TMP/$1" 2>&1 &
    jobs[$1]=$!
}
join() { # join NAME: waits for it; fails with its output
    wait "${jobs[$1]}" || fail "$1: $(cat "$ST_TMP/$1")"
}
image() { # image NAME COMMAND_LINE
    openstack image create --file "$ST_TMP/busybox.tar" --container-format docker \
        --disk-format raw --property os_command_line="$2" "$1" -f value -c id
}
# trap: pid 1 of a PID namespace ignores SIGTERM by default; with it, delete
# need not wait for the agent's stop grace period.
loop="trap 'exit 0' TERM; while :; do :; done"
spawn img-spin image spin "/bin/sh -c \"$loop\""
spawn img-spin0 image spin-cpu0 "taskset -c 0 /bin/sh -c \"$loop\""
spawn img-hog image hog "/bin/sh -c 'x=a; while :; do x=\"\$x\$x\"; done'"
spawn fl-small openstack flavor create --vcpus 1 --ram 64 --disk 1 e.small
spawn fl-quota openstack flavor create --vcpus 1 --ram 64 --disk 1 \
    --property quota:cpu_quota=50000 --property quota:cpu_period=100000 e.quota
host=""
for _ in 1 2 3 4 5; do
    host=$(openstack hypervisor list -f value -c "Hypervisor Hostname" | head -1)
    [ -n "$host" ] && break
    sleep 0.5
done
[ -n "$host" ] || fail "no hypervisor: the all-in-one agent did not register"
mhz=$(openstack hypervisor show "$host" -f json | jq -r '.cpu_info.mhz // empty')
[[ "$mhz" =~ ^[0-9]+$ ]] && [ "$mhz" -gt 0 ] || fail "hypervisor show gives no cpu_info.mhz: $mhz"
half_mhz=$((mhz / 2))
cat >"$ST_TMP/policies.yaml" <<EOF
metadata: {name: half-core}
resourcePolicy:
  compute:
    cpu: {limit: ${half_mhz}MHz}
---
metadata: {name: shares-high}
resourcePolicy: {compute: {cpu: {shares: high}}}
---
metadata: {name: shares-normal}
resourcePolicy: {compute: {cpu: {shares: normal}}}
---
metadata: {name: shares-low}
resourcePolicy: {compute: {cpu: {shares: low}}}
EOF
"$STRATOS" apply -f "$ST_TMP/policies.yaml" >"$ST_TMP/apply.out" 2>&1 \
    || fail "stratos apply: $(cat "$ST_TMP/apply.out")"
for n in img-spin img-spin0 img-hog fl-small fl-quota; do join "$n"; done

# server_create NAME FLAVOR IMAGE [POLICY]: in the background (bg name srv-NAME)
server_create() {
    spawn "srv-$1" openstack server create --flavor "$2" --image "$3" \
        ${4:+--property resource_policy=$4} "$1" -f value -c id
}
server_id() { # server_id NAME VAR (after server_create): VAR := its id
    join "srv-$1"
    local id
    id=$(tail -1 "$ST_TMP/srv-$1")
    ids+=("$id")
    printf -v "$2" %s "$id"
}
# wait_status ID WANT: polls the API (curl: the CLI would cost a second a look)
wait_status() {
    local s=""
    for _ in $(seq 150); do
        s=$(api "$nova/servers/$1" | jq -r .server.status || true)
        [ "$s" = "$2" ] && return 0
        [ "$s" = ERROR ] && [ "$2" != ERROR ] && break
        sleep 0.2
    done
    fail "server $1 is $s, not $2: $(api "$nova/servers/$1" | jq -c '.server | {status, fault}')"
}

# fmt A B: A/B with 3 decimals; within LO HI A B: LO <= A/B <= HI (and B > 0)
fmt() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "n/a" }'; }
within() {
    awk -v lo="$1" -v hi="$2" -v a="$3" -v b="$4" 'BEGIN { exit !(b > 0 && a / b >= lo && a / b <= hi) }'
}

# ---- 1. CPU limit of 0.5 core, and 2. the OOM kill ----
server_create lim-policy e.small spin half-core
server_create lim-flavor e.quota spin
server_create hog e.small hog
server_id lim-policy lim_p
server_id lim-flavor lim_f
server_id hog hog
wait_status "$lim_p" ACTIVE
wait_status "$lim_f" ACTIVE

ok=0
for attempt in 1 2 3; do
    t0=$(now_ns)
    p0=$(cpu_ns "$lim_p") && f0=$(cpu_ns "$lim_f") || fail "no cpu accounting cgroup for a server"
    tp0=$(throttled "$lim_p") && tf0=$(throttled "$lim_f") || fail "no cpu.stat for the servers"
    sleep "$window_s"
    p1=$(cpu_ns "$lim_p") && f1=$(cpu_ns "$lim_f") || fail "cgroups vanished"
    tp1=$(throttled "$lim_p") && tf1=$(throttled "$lim_f") || fail "cgroups vanished"
    t1=$(now_ns)
    el=$((t1 - t0))
    up=$(fmt $((p1 - p0)) "$el")
    uf=$(fmt $((f1 - f0)) "$el")
    echo "cpu limit window $attempt ($(fmt "$el" 1000000000) s):" \
        "policy ${half_mhz} of ${mhz} MHz → $up core (throttled $((tp1 - tp0))x);" \
        "flavor quota 50000/100000 → $uf core (throttled $((tf1 - tf0))x)"
    # more than the limit is never the neighbours' fault
    within 0 0.6 $((p1 - p0)) "$el" || fail "policy-limited server used $up core, above 0.5 + 0.1"
    within 0 0.6 $((f1 - f0)) "$el" || fail "quota-limited server used $uf core, above 0.5 + 0.1"
    # at least 0.4, and held there by the quota (throttled), not by neighbours
    if within 0.4 0.6 $((p1 - p0)) "$el" && within 0.4 0.6 $((f1 - f0)) "$el" \
        && [ $((tp1 - tp0)) -gt 0 ] && [ $((tf1 - tf0)) -gt 0 ]; then
        ok=1
        break
    fi
done
[ "$ok" = 1 ] || fail "CPU-bound loops limited to 0.5 core were not held at 0.5 ± 0.1 by their" \
    "quota in 3 windows (above)"

wait_status "$hog" ERROR
show=$(openstack server show hog -f json) || fail "server show hog"
echo "oom: $(jq -c '{status, fault: .fault.message}' <<<"$show")"
jq -e '.status == "ERROR" and .fault.code == 500' <<<"$show" >/dev/null \
    || fail "OOM-killed server: $(jq -c '{status, fault}' <<<"$show")"
msg=$(jq -r .fault.message <<<"$show")
grep -q "memory limit of 64 MiB" <<<"$msg" && grep -q "out of memory" <<<"$msg" \
    || fail "the fault does not say out of memory at 64 MiB: $msg"
# the kernel's side: the 64 MiB limit was in place and its OOM killer acted
if f=$(cg_file "$hog" memory.limit_in_bytes); then
    [ "$(cat "$f")" = $((64 << 20)) ] || fail "memory.limit_in_bytes is $(cat "$f"), not 64 MiB"
    kills=$(awk '$1 == "oom_kill" { print $2 }' "$(dirname "$f")/memory.oom_control")
elif f=$(cg_file "$hog" memory.max); then
    [ "$(cat "$f")" = $((64 << 20)) ] || fail "memory.max is $(cat "$f"), not 64 MiB"
    kills=$(awk '$1 == "oom_kill" { print $2 }' "$(dirname "$f")/memory.events")
else
    fail "no memory cgroup for the OOM-killed server"
fi
[ "${kills:-0}" -ge 1 ] || fail "the kernel counted no OOM kill in the server's memory cgroup"

# ---- 3. shares on one saturated core ----
# The limited loops leave first: they would take part of core 0 too.
for id in "$lim_p" "$lim_f" "$hog"; do
    api -o /dev/null -X DELETE "$nova/servers/$id" || fail "delete $id"
done
server_create sh-high e.small spin-cpu0 shares-high
server_create sh-normal e.small spin-cpu0 shares-normal
server_create sh-low e.small spin-cpu0 shares-low
for id in "$lim_p" "$lim_f" "$hog"; do
    for _ in $(seq 150); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $tok" "$nova/servers/$id")" = 404 ] \
            && break
        sleep 0.2
    done
done
server_id sh-high hi
server_id sh-normal no
server_id sh-low lo
for id in "$hi" "$no" "$lo"; do
    wait_status "$id" ACTIVE
    f=$(cg_file "$id" cgroup.procs) || fail "no cgroup for $id"
    for _ in $(seq 50); do [ -n "$(cat "$f")" ] && break; sleep 0.1; done # cgroupfs sizes are 0
    while read -r pid; do
        cpus=$(awk '/^Cpus_allowed_list:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [ -z "$cpus" ] || [ "$cpus" = 0 ] || fail "process $pid of $id may run on CPUs $cpus, not 0 only"
    done <"$f"
done

ok=0
for attempt in 1 2 3; do
    t0=$(now_ns)
    h0=$(cpu_ns "$hi") && n0=$(cpu_ns "$no") && l0=$(cpu_ns "$lo") || fail "no cpu accounting cgroup"
    sleep "$window_s"
    h1=$(cpu_ns "$hi") && n1=$(cpu_ns "$no") && l1=$(cpu_ns "$lo") || fail "cgroups vanished"
    t1=$(now_ns)
    el=$((t1 - t0))
    dh=$((h1 - h0)) dn=$((n1 - n0)) dl=$((l1 - l0))
    sum=$((dh + dn + dl))
    echo "shares window $attempt ($(fmt "$el" 1000000000) s), core 0: high $(fmt $dh "$el")," \
        "normal $(fmt $dn "$el"), low $(fmt $dl "$el") core (total $(fmt $sum "$el"));" \
        "high/normal $(fmt $dh $dn), normal/low $(fmt $dn $dl), high/low $(fmt $dh $dl)"
    within 0 1.1 "$sum" "$el" || fail "servers pinned to one core used $(fmt $sum "$el") cores"
    within 0.5 1.1 "$sum" "$el" || continue # core 0 was busy with other work: measure again
    if within 1.6 2.4 $dh $dn && within 1.6 2.4 $dn $dl && within 3.2 4.8 $dh $dl; then
        ok=1
        break
    fi
done
[ "$ok" = 1 ] || fail "shares 2048:1024:512 (high:normal:low) did not split core 0 4:2:1 ±20%," \
    "with at least half of it theirs, in 3 windows (above)"

# ---- nothing left behind ----
delete_servers || fail "servers left after delete"
for id in "${ids[@]}"; do
    grep -q "$id" /proc/self/mountinfo && fail "a mount of $id is left"
    [ -z "$(find /sys/fs/cgroup -mindepth 2 -maxdepth 9 -type d -name "$id" 2>/dev/null)" ] \
        || fail "a cgroup of $id is left"
done
st_stop_daemon
echo PASS
