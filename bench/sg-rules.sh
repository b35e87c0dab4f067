#!/usr/bin/env bash
# What security-group rules cost through the Neutron API as a group grows:
# N rules created one by one on one group (one keep-alive connection, as a
# script or Terraform would), then a rule create and a rule delete timed in
# that N-rule group, GET of the group (which embeds every rule) and of its
# rule list, and M more rules created by several clients at once on the same
# group (how many of them failed). A controller alone (no agent), the
# project's rule quota lifted, the store in a temporary directory.
#   bench/sg-rules.sh [builddir] [rules=1000]
# Environment: BENCH_IN_FLIGHT (4 concurrent clients), BENCH_CONCURRENT (200
# rules they create), BENCH_SAMPLES (20 timed deletes). The store lives in a
# temporary directory on $ST_DATA_DIR's filesystem (default /var/lib/stratos
# as root, else ~/.local/share/stratos), removed on exit with the daemon.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
rules="${2:-1000}"
in_flight="${BENCH_IN_FLIGHT:-4}"
concurrent="${BENCH_CONCURRENT:-200}"
samples="${BENCH_SAMPLES:-20}"

[[ -x "$build/stratosd" ]] || {
    echo "sg-rules.sh: $build/stratosd not found; build it with: cmake --build $build --target stratosd" >&2
    exit 1
}
for tool in curl jq xargs; do
    command -v "$tool" >/dev/null || { echo "sg-rules.sh: $tool is missing" >&2; exit 1; }
done
((rules + samples + 1 < 30000)) || { echo "sg-rules.sh: at most 29,000 rules" >&2; exit 1; }

# shellcheck source=lib/stack.bash
source "$(dirname "$0")/lib/stack.bash"
tmp="$(st_bench_tmpdir sg)"
ctrl_pid=""

cleanup() {
    set +e
    [[ -z "$ctrl_pid" ]] || st_bench_stop "$ctrl_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$build/stratosd" init --data-dir "$tmp/ctrl" >/dev/null 2>&1
setsid "$build/stratosd" --data-dir "$tmp/ctrl" --listen 127.0.0.1:0 --role controller \
    --no-access-log >"$tmp/ctrl.log" 2>&1 &
ctrl_pid=$!
until grep 'event=stratosd_ready' "$tmp/ctrl.log" >/dev/null 2>&1; do
    kill -0 "$ctrl_pid" 2>/dev/null || { cat "$tmp/ctrl.log" >&2; exit 1; }
    sleep 0.02
done
port=$(grep -o 'event=stratosd_ready.* port=[0-9]*' "$tmp/ctrl.log" | sed 's/.*port=//')
url="http://127.0.0.1:$port"

# A Keystone token for the admin project, by password as the openstack CLI gets one.
password=$(sed -n "s/^export OS_PASSWORD='\(.*\)'$/\1/p" "$tmp/ctrl/admin-openrc")
auth=$(jq -n --arg p "$password" '{auth: {identity: {methods: ["password"], password: {user:
    {name: "admin", domain: {name: "Default"}, password: $p}}}, scope: {project:
    {name: "admin", domain: {name: "Default"}}}}}')
curl -sf -D "$tmp/auth.h" -o "$tmp/auth.json" -H 'Content-Type: application/json' \
    -d "$auth" "$url/identity/v3/auth/tokens"
token=$(tr -d '\r' <"$tmp/auth.h" | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p')
project=$(jq -r .token.project.id "$tmp/auth.json")
net="$url/network/v2.0"
api() { curl -sf -H "X-Auth-Token: $token" -H 'Content-Type: application/json' "$@"; }

api -X PUT -d '{"quota": {"security_group_rule": -1}}' "$net/quotas/$project" >/dev/null
sg=$(api -d '{"security_group": {"name": "bench"}}' "$net/security-groups" |
    jq -r .security_group.id)

# rule_body PORT: an ingress TCP rule to one port, distinct for each port.
rule_body() {
    printf '{"security_group_rule":{"security_group_id":"%s","direction":"ingress","protocol":"tcp","port_range_min":%d,"port_range_max":%d}}' \
        "$sg" "$1" "$1"
}

# curl_config PORT...: one POST per port on one connection (curl -K), each
# printing its status and time.
curl_config() {
    local p first=1
    for p in "$@"; do
        ((first)) || echo next
        first=0
        printf 'url = "%s/security-group-rules"\n' "$net"
        printf 'header = "X-Auth-Token: %s"\nheader = "Content-Type: application/json"\n' "$token"
        printf 'data = "%s"\n' "$(rule_body "$p" | sed 's/"/\\"/g')"
        echo 'output = /dev/null'
        echo 'write-out = "%{http_code} %{time_total}\n"'
        echo silent
    done
}

# stats FILE: count, total, median and max of the times (seconds) of "code time" lines.
stats() {
    sort -k2,2n "$1" | awk '{t[NR] = $2; s += $2} END {
        printf "%d in %.2f s (median %.1f ms, max %.1f ms)", NR, s, t[int((NR + 1) / 2)] * 1000,
            t[NR] * 1000}'
}

# 1. N rules, one by one, on one group
curl_config $(seq 1 "$rules") >"$tmp/create.cfg"
t0=$EPOCHREALTIME
curl -K "$tmp/create.cfg" >"$tmp/create.out"
t1=$EPOCHREALTIME
created=$(awk '$1 == 201' "$tmp/create.out" | wc -l)
# the first and the last hundred: what one more rule costs in a new group
# and once the group is big
head -n 100 "$tmp/create.out" >"$tmp/create-first.out"
tail -n 100 "$tmp/create.out" >"$tmp/create-last.out"

# 2. one more create, and deletes, in the N-rule group (each a fresh request,
# each followed by a create that brings the group back to size)
: >"$tmp/delete.out"
: >"$tmp/one-create.out"
ids=$(api "$net/security-group-rules?security_group_id=$sg&protocol=tcp&fields=id" |
    jq -r '.security_group_rules[].id' | shuf -n "$samples" --random-source=<(yes))
p=$((rules + 1))
for id in $ids; do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X DELETE \
        -H "X-Auth-Token: $token" "$net/security-group-rules/$id" >>"$tmp/delete.out"
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "X-Auth-Token: $token" \
        -H 'Content-Type: application/json' -d "$(rule_body $p)" \
        "$net/security-group-rules" >>"$tmp/one-create.out"
    p=$((p + 1))
done
deleted=$(awk '$1 == 204' "$tmp/delete.out" | wc -l)

# 3. reads of the big group
# median_get URL: the median time of 11 GETs, in seconds
median_get() {
    for _ in $(seq 11); do
        curl -s -o /dev/null -w '%{time_total}\n' -H "X-Auth-Token: $token" "$1"
    done | sort -n | sed -n 6p
}
get_group=$(median_get "$net/security-groups/$sg")
list_rules=$(median_get "$net/security-group-rules?security_group_id=$sg")
in_group=$(api "$net/security-groups/$sg" | jq '.security_group.security_group_rules | length')

# 4. M more rules by several clients at once, on the same group
for ((i = 0; i < in_flight; i++)); do
    curl_config $(seq $((30000 + i)) "$in_flight" $((30000 + concurrent - 1))) >"$tmp/c$i.cfg"
done
t2=$EPOCHREALTIME
for ((i = 0; i < in_flight; i++)); do echo "$tmp/c$i.cfg"; done |
    xargs -P "$in_flight" -I{} sh -c 'curl -K {} > {}.out'
t3=$EPOCHREALTIME
cat "$tmp"/c*.cfg.out >"$tmp/conc.out"
conc_ok=$(awk '$1 == 201' "$tmp/conc.out" | wc -l)
conc_failed=$(awk '$1 != 201 {printf "%s%s", s, $1; s = ","} END {print ""}' "$tmp/conc.out")
total=$(api "$net/security-groups/$sg" | jq '.security_group.security_group_rules | length')

echo "sg-rules: security-group rules through the Neutron API, one group, $rules rules" \
    "(controller alone; store on $(df -PT "$tmp" | awk 'NR==2 {print $2}'))"
awk -v a="$t0" -v b="$t1" -v n="$rules" -v c="$created" \
    'BEGIN {printf "  %d creates one by one: %d answered 201 in %.1f s (%.1f ms each)\n", n, c,
        b - a, (b - a) * 1000 / n}'
echo "    the first 100: $(stats "$tmp/create-first.out")"
echo "    the last 100:  $(stats "$tmp/create-last.out")"
echo "  rule delete in the ${rules}-rule group: $(stats "$tmp/delete.out"); $deleted answered 204"
echo "  rule create in the ${rules}-rule group: $(stats "$tmp/one-create.out")"
awk -v g="$get_group" -v l="$list_rules" -v n="$in_group" \
    'BEGIN {printf "  GET the group (%d rules embedded): %.1f ms; GET its rule list: %.1f ms (medians)\n",
        n, g * 1000, l * 1000}'
awk -v a="$t2" -v b="$t3" -v m="$concurrent" -v p="$in_flight" -v ok="$conc_ok" \
    'BEGIN {printf "  %d creates by %d clients at once on the group: %d answered 201 in %.1f s\n",
        m, p, ok, b - a}'
[[ -z "$conc_failed" ]] || echo "    the others answered: $conc_failed"
echo "  rules in the group at the end: $total"
# What the store wrote for all that, by key family (its event history, kept
# for watchers): one rule's keys stay small however big its group grows.
if command -v sqlite3 >/dev/null; then
    echo "  store history by key family (writes, bytes of key + value):"
    sqlite3 -separator ' ' "file:$tmp/ctrl/stratos.db?mode=ro" \
        "SELECT key, length(key) + coalesce(length(value), 0) FROM events" |
        awk '{split($1, p, "/"); f = "/" p[2] "/" p[3] "/"; n[f]++; b[f] += $2}
            END {for (f in n) printf "    %-32s %7d writes %12d bytes\n", f, n[f], b[f]}' |
        sort -k4,4nr | head -6
    # The quota usage's share: a counter and one claim key per rule; the
    # usage document that listed every id (to commit cc5c4a5) wrote 40.8 MB
    # for 1,000 rules, most of a create's cost.
    sqlite3 -separator ' ' "file:$tmp/ctrl/stratos.db?mode=ro" \
        "SELECT count(*), coalesce(sum(length(key) + coalesce(length(value), 0)), 0)
         FROM events WHERE key GLOB '/network/quota-*'" |
        awk '{printf "  quota usage in all (/network/quota-*): %d writes, %d bytes" \
            " (a document listing every id: 40.8 MB at 1,000 rules)\n", $1, $2}'
fi
[[ "$created" = "$rules" && "$deleted" = "$samples" ]]
