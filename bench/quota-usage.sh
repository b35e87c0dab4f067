#!/usr/bin/env bash
# What a project's compute quota usage costs the store: N servers created and
# then deleted through the Nova API in one project (a controller alone, no
# agent: the servers are never placed, so each delete removes its server at
# once and nothing runs on the host), then the store's event history
# (SQLite's `events` table, kept for watchers; nothing is compacted below
# 100,000 revisions) is summed by key family: how many writes and how many
# bytes (key + value) the quota keys (/compute/quota-usage/ and
# /compute/quota-claims/) cost, beside the servers' own documents for scale.
# A per-project usage document that lists every server grows with each
# create, so its history grows as N^2; counters plus one claim key per server
# stay a constant size per create and release. The figure of the former
# document (at commit 654cbf3, measured with this script) is printed beside.
#   bench/quota-usage.sh [builddir] [servers=1000]
# Environment: BENCH_IN_FLIGHT (4 concurrent requests). The store lives in a
# temporary directory on $ST_DATA_DIR's filesystem (default /var/lib/stratos
# as root, else ~/.local/share/stratos), removed on exit with the daemon.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
servers="${2:-1000}"
in_flight="${BENCH_IN_FLIGHT:-4}"

[[ -x "$build/stratosd" ]] || {
    echo "quota-usage.sh: $build/stratosd not found; build it with: cmake --build $build --target stratosd" >&2
    exit 1
}
for tool in curl jq sqlite3 xargs; do
    command -v "$tool" >/dev/null || { echo "quota-usage.sh: $tool is missing" >&2; exit 1; }
done

# shellcheck source=lib/stack.bash
source "$(dirname "$0")/lib/stack.bash"
tmp="$(st_bench_tmpdir quota)"
ctrl_pid=""

cleanup() {
    set +e
    [[ -z "$ctrl_pid" ]] || st_bench_stop "$ctrl_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/rootfs/bin"
echo '#!/bin/sh' >"$tmp/rootfs/bin/sh"
tar -C "$tmp/rootfs" -cf "$tmp/img.tar" .
"$build/stratosd" init --data-dir "$tmp/ctrl" --import-image "img=$tmp/img.tar" >/dev/null 2>&1
setsid "$build/stratosd" --data-dir "$tmp/ctrl" --listen 127.0.0.1:0 --role controller \
    --no-access-log >"$tmp/ctrl.log" 2>&1 &
ctrl_pid=$!
until grep -q 'event=stratosd_ready' "$tmp/ctrl.log" 2>/dev/null; do
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
compute="$url/compute/v2.1"
api() { curl -sf -H "X-Auth-Token: $token" -H 'Content-Type: application/json' "$@"; }

flavor=$(api -d '{"flavor": {"name": "bench.quota", "vcpus": 1, "ram": 64, "disk": 1}}' \
    "$compute/flavors" | jq -r .flavor.id)
image=$(api "$url/image/v2/images" | jq -r '.images[] | select(.name == "img") | .id')
api -X PUT -d '{"quota_set": {"instances": -1, "cores": -1, "ram": -1}}' \
    "$compute/os-quota-sets/$project" >/dev/null

export token compute flavor image
create_one() {
    curl -sf -o /dev/null -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
        -d "{\"server\": {\"name\": \"q-$1\", \"flavorRef\": \"$flavor\", \"imageRef\": \"$image\"}}" \
        "$compute/servers"
}
delete_one() {
    curl -sf -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$compute/servers/$1"
}
export -f create_one delete_one

t0=$EPOCHREALTIME
seq "$servers" | xargs -P "$in_flight" -I{} bash -c 'create_one {}'
t1=$EPOCHREALTIME
used=$(api "$compute/limits" | jq -r .limits.absolute.totalInstancesUsed)
api "$compute/servers?limit=100000" | jq -r '.servers[].id' >"$tmp/ids"
listed=$(wc -l <"$tmp/ids")
t2=$EPOCHREALTIME
xargs -P "$in_flight" -I{} bash -c 'delete_one {}' <"$tmp/ids"
t3=$EPOCHREALTIME
left=$(api "$compute/limits" | jq -r .limits.absolute.totalInstancesUsed)

# The store's history by key family: the first two parts of the key
# ("/compute/quota-usage/", "/compute/servers/", ...).
history=$(sqlite3 -separator ' ' "file:$tmp/ctrl/stratos.db?mode=ro" \
    "SELECT key, length(key) + coalesce(length(value), 0) FROM events" |
    awk '{split($1, p, "/"); f = "/" p[2] "/" p[3] "/"; n[f]++; b[f] += $2}
        END {for (f in n) printf "%s|%d|%d\n", f, n[f], b[f]}' | sort -t'|' -k3,3nr)
quota=$(awk -F'|' '$1 ~ /^\/compute\/quota-(usage|claims)\/$/ {n += $2; b += $3}
    END {printf "%d writes, %d bytes (%.2f MiB)", n, b, b / 1048576}' <<<"$history")

echo "quota-usage: $servers servers created then deleted in one project through the Nova API" \
    "($in_flight requests in flight; store on $(df -PT "$tmp" | awk 'NR==2 {print $2}'))"
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v n="$servers" -v l="$listed" \
    'BEGIN {printf "  creates: %d in %.1f s; deletes: %d in %.1f s\n", n, b - a, l, d - c}'
echo "  usage with them: $used instances; after deleting them all: $left"
echo "  store history of the quota keys: $quota"
echo "    (the former usage document listing every server, at commit 654cbf3: 2000 writes,"
echo "    79132001 bytes (75.47 MiB) for 1000 servers)"
echo "  store history by key family (writes, bytes of key + value):"
awk -F'|' '{printf "    %-28s %7d writes %12d bytes\n", $1, $2, $3}' <<<"$history" | head -8
[[ "$used" = "$servers" && "$left" = 0 ]]
