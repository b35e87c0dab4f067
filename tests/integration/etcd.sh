#!/usr/bin/env bash
# Two controllers on one etcd (`--store etcd://...`), judged by the real
# `openstack` CLI: a real etcd on loopback ports, `stratosd init --store`
# bootstrapping it once (a second init writes nothing), two `--role
# controller` daemons with their own data dirs and one sim-driver agent on
# the first. A project, user, role and flavor made through one controller
# are seen (and logged in with) through the other; a server created through
# the second becomes ACTIVE on the first's node and both list it; the first
# killed with -9, the second keeps serving and the first comes back; etcd
# killed, requests fail with a 503 that names etcd, and once etcd is back
# both controllers recover on their own (a server created afterwards goes
# ACTIVE, so the watches resumed). Last, identity across the controllers: a
# token revoked through A is refused by B, a custom role's rules changed
# through A are enforced by B, a member reads its own project (project
# show, quota show; quota set is refused by Nova's policy), and with etcd
# down a password login is the store's 503, not "requires authentication".
source "$(dirname "$0")/lib/common.bash"

command -v etcd >/dev/null \
    || { echo "SKIP: etcd is not installed (scripts/install-deps.sh installs etcd-server)"; exit 77; }
command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
[ -x "$STRATOSD" ] || { echo "SKIP: $STRATOSD is not built"; exit 77; }
"$STRATOSD" --help | grep -- '--store' >/dev/null || { echo "SKIP: stratosd has no --store"; exit 77; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
etcd_port=$(free_port)
peer_port=$(free_port)
etcd_url="http://127.0.0.1:$etcd_port"
store="etcd://127.0.0.1:$etcd_port"

# start_etcd: a one-member etcd in $ST_TMP/etcd (kept across restarts).
start_etcd() {
    etcd --name st --data-dir "$ST_TMP/etcd" \
        --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "st=http://127.0.0.1:$peer_port" \
        --heartbeat-interval 10 --election-timeout 100 \
        --logger zap --log-level warn >>"$ST_TMP/etcd.log" 2>&1 &
    ETCD_PID=$!
    ST_PIDS+=("$ETCD_PID")
    for _ in $(seq 1 200); do
        curl -sf -X POST "$etcd_url/v3/kv/range" -d '{"key": "AA=="}' >/dev/null 2>&1 && return 0
        kill -0 "$ETCD_PID" 2>/dev/null || { cat "$ST_TMP/etcd.log" >&2; fail "etcd exited"; }
        sleep 0.05
    done
    cat "$ST_TMP/etcd.log" >&2
    fail "etcd did not start"
}
etcd_revision() {
    curl -sf -X POST "$etcd_url/v3/kv/range" -d '{"key": "AA=="}' | jq -r .header.revision
}

# wait_for SECONDS CMD...: retries CMD every 0.5 s until it succeeds.
wait_for() {
    local n=$(($1 * 2))
    shift
    for _ in $(seq 1 "$n"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    return 1
}

start_etcd

# ---- init: once into etcd; the second controller's init writes nothing ----
mkdir -p "$ST_TMP/rootfs/bin"
echo "not really busybox" >"$ST_TMP/rootfs/bin/sh"
tar -C "$ST_TMP/rootfs" -cf "$ST_TMP/busybox.tar" .
a="$ST_TMP/ctrl-a"
b="$ST_TMP/ctrl-b"
"$STRATOSD" init --data-dir "$a" --store "$store" --import-image "busybox=$ST_TMP/busybox.tar" \
    >/dev/null 2>&1 || fail "init a"
[ -f "$a/admin-openrc" ] && [ ! -e "$a/stratos.db" ] || fail "init a: $(ls "$a")"
# one node token for the cluster: every controller takes agents with it
mkdir -m 700 "$b"
cp -p "$a/node-token" "$b/node-token"
rev=$(etcd_revision)
out=$("$STRATOSD" init --data-dir "$b" --store "$store" 2>&1) || fail "init b: $out"
[ "$(etcd_revision)" = "$rev" ] || fail "a second init wrote to etcd ($rev → $(etcd_revision))"
[ ! -e "$b/stratos.db" ] || fail "init b made a SQLite store"
out=$("$STRATOSD" --data-dir "$ST_TMP/nope" --store "$store" 2>&1) && fail "ran uninitialised"
grep -- "run 'stratosd init --data-dir $ST_TMP/nope --store $store'" <<<"$out" >/dev/null \
    || fail "uninitialised data dir: $out"

# ---- two controllers, one agent ----
port_a=$(free_port)
st_start_daemon "$a" --role controller --store "$store" --threads 8 --listen "127.0.0.1:$port_a"
url_a=$ST_URL
pid_a=$ST_PID
st_start_daemon "$b" --role controller --store "$store" --threads 8
url_b=$ST_URL
log_b=$ST_LOG
st_start_daemon "$ST_TMP/node-a" --role agent --controller "$url_a" --node-name node-a \
    --node-token-file "$a/node-token" --drivers sim

# shellcheck disable=SC1091
source "$a/admin-openrc"
oa() { OS_AUTH_URL="$url_a/identity/v3" openstack "$@"; }
ob() { OS_AUTH_URL="$url_b/identity/v3" openstack "$@"; }

# ---- identity and flavors: written through A, read through B ----
oa project create p1 >/dev/null || fail "project create"
oa user create --project p1 --password s3cret-pw u1 >/dev/null || fail "user create"
oa role add --project p1 --user u1 member || fail "role add"
oa flavor create --vcpus 1 --ram 256 --disk 1 f.small >/dev/null || fail "flavor create"
ob project show p1 -f json | jq -e '.name == "p1"' >/dev/null || fail "B: project p1"
ob flavor show f.small -f json | jq -e '.ram == 256 and .vcpus == 1' >/dev/null \
    || fail "B: flavor f.small: $(ob flavor show f.small 2>&1)"
ob role assignment list --user u1 --project p1 --names -f json \
    | jq -e 'map(select(.Role == "member")) | length == 1' >/dev/null || fail "B: u1's role"
# u1 logs in through B; a token A issued is good at B
OS_USERNAME=u1 OS_PASSWORD=s3cret-pw OS_PROJECT_NAME=p1 ob token issue -f value -c id >/dev/null \
    || fail "u1 cannot log in through B"
token=$(oa token issue -f value -c id)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $token" "$url_b/compute/v2.1/flavors")
[ "$code" = 200 ] || fail "A's token at B: $code"

# ---- a server created through B runs on A's node; both list it ----
node_up() {
    ob hypervisor list -f json | jq -e 'map(select(."Hypervisor Hostname" == "node-a" and .State == "up")) | length == 1'
}
wait_for 30 node_up || fail "node-a up through B: $(ob hypervisor list 2>&1)"
ob server create --flavor f.small --image busybox s1 >/dev/null || fail "server create through B"
active() { [ "$(ob server show "$1" -f value -c status)" = ACTIVE ]; }
wait_for 60 active s1 || fail "s1 not ACTIVE: $(ob server show s1 2>&1)"
oa server list -f json | jq -e 'map(select(.Name == "s1" and .Status == "ACTIVE")) | length == 1' \
    >/dev/null || fail "A's list: $(oa server list 2>&1)"
ob server show s1 -f json | jq -e '."OS-EXT-SRV-ATTR:host" == "node-a"' >/dev/null \
    || fail "s1's host: $(ob server show s1 -f json | jq -c '."OS-EXT-SRV-ATTR:host"')"

# ---- A killed with -9: B keeps serving; A comes back on its port ----
kill -9 "$pid_a"
{ wait "$pid_a" || true; } 2>/dev/null
ob server list -f json | jq -e 'map(select(.Name == "s1")) | length == 1' >/dev/null \
    || fail "B's list with A dead"
ob flavor create --vcpus 1 --ram 128 --disk 1 f.tiny >/dev/null || fail "B: flavor create with A dead"
mv "$a.log" "$a.log.1" # st_start_daemon waits for "ready" in a fresh log
: >"$a.log"
st_start_daemon "$a" --role controller --store "$store" --threads 8 --listen "127.0.0.1:$port_a"
oa flavor show f.tiny -f json | jq -e '.ram == 128' >/dev/null || fail "A back: f.tiny"

# ---- etcd down: clear failures; back: both controllers recover ----
kill -9 "$ETCD_PID"
{ wait "$ETCD_PID" || true; } 2>/dev/null
code=$(curl -s -o "$ST_TMP/health" -w '%{http_code}' "$url_b/healthz")
[ "$code" = 503 ] && jq -e '.checks.store | contains("etcd at '"$etcd_url"'")' "$ST_TMP/health" \
    >/dev/null || fail "B's /healthz with etcd down: $code $(cat "$ST_TMP/health")"
# (a password login answers 503 as well: see the identity section below)
code=$(curl -s -o "$ST_TMP/body" -w '%{http_code}' -H "X-Auth-Token: $token" \
    "$url_b/compute/v2.1/flavors")
[ "$code" = 503 ] && grep -F "etcd at $etcd_url" "$ST_TMP/body" >/dev/null \
    || fail "B's flavor list with etcd down: $code $(cat "$ST_TMP/body")"
start_etcd
wait_for 20 ob flavor list || fail "B after etcd came back: $(ob flavor list 2>&1)"
oa flavor show f.small >/dev/null || fail "A after etcd came back"
wait_for 30 node_up || fail "node-a up after etcd came back: $(ob hypervisor list 2>&1)"
oa server create --flavor f.small --image busybox s2 >/dev/null || fail "server create after etcd"
wait_for 60 active s2 || fail "s2 not ACTIVE after etcd came back: $(ob server show s2 2>&1)"
grep 'event=store_watch_resumed' "$log_b" >/dev/null || fail "B's watch stream did not log its resumption"

ob server delete --wait s1 s2 || fail "server delete"
[ "$(oa server list -f value | wc -l)" = 0 ] || fail "servers left: $(oa server list 2>&1)"
# ---- identity across the controllers ----
u1() { OS_USERNAME=u1 OS_PASSWORD=s3cret-pw OS_PROJECT_NAME=p1 "$@"; }
# with_token TOKEN ENDPOINT ARGS...: the openstack CLI with a token in hand
with_token() {
    local tok=$1 endpoint=$2
    shift 2
    env -u OS_USERNAME -u OS_PASSWORD -u OS_PROJECT_NAME -u OS_USER_DOMAIN_NAME \
        -u OS_PROJECT_DOMAIN_NAME \
        openstack --os-auth-type admin_token --os-token "$tok" --os-endpoint "$endpoint" "$@"
}
code_at_b() {
    curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $1" "$url_b/compute/v2.1/flavors"
}
# wait_code SECONDS TOKEN CODE: B answers CODE for TOKEN within SECONDS
wait_code() {
    local n=$(($1 * 20))
    for _ in $(seq 1 "$n"); do
        [ "$(code_at_b "$2")" = "$3" ] && return 0
        sleep 0.05
    done
    return 1
}

# a token revoked through A: B, which has validated (and cached) it,
# refuses it within seconds
tok=$(u1 oa token issue -f value -c id)
with_token "$tok" "$url_b/compute/v2.1" flavor list >/dev/null || fail "u1's token at B"
oa token revoke "$tok" || fail "token revoke through A"
t0=$(date +%s%N)
wait_code 5 "$tok" 401 || fail "B still accepts a token revoked through A: $(code_at_b "$tok")"
echo "B refused the token revoked through A after $((($(date +%s%N) - t0) / 1000000)) ms"
out=$(with_token "$tok" "$url_b/compute/v2.1" flavor list 2>&1) && fail "B: CLI with a revoked token"
grep "The request you have made requires authentication" <<<"$out" >/dev/null \
    || fail "B: CLI with a revoked token: $out"

# a custom role's rules changed through A: B enforces the new ones
admin_tok=$(oa token issue -f value -c id)
role_rules() { # METHOD PATH BODY (through A)
    curl -sf -X "$1" -H "X-Auth-Token: $admin_tok" -H 'Content-Type: application/json' -d "$3" \
        "$url_a/identity/v3/$2"
}
role_id=$(role_rules POST roles \
    '{"role": {"name": "flavor-lister", "rules": {"allow": ["compute:flavor:list"]}}}' \
    | jq -r .role.id)
oa user create --project p1 --password s3cret-pw u2 >/dev/null || fail "user create u2"
oa role add --project p1 --user u2 flavor-lister || fail "role add flavor-lister"
tok2=$(OS_USERNAME=u2 OS_PASSWORD=s3cret-pw OS_PROJECT_NAME=p1 ob token issue -f value -c id) \
    || fail "u2 cannot log in through B"
wait_code 5 "$tok2" 200 || fail "B: flavor-lister cannot list flavors: $(code_at_b "$tok2")"
role_rules PATCH "roles/$role_id" '{"role": {"rules": {"allow": ["compute:flavor:show"]}}}' \
    >/dev/null || fail "role rules update through A"
wait_code 5 "$tok2" 403 || fail "B: the role's new rules are not enforced: $(code_at_b "$tok2")"

# a member reads its own project, as Keystone's identity:get_project: the
# CLI's project show, and quota show of its project; changing quotas stays
# an admin's (Nova's policy answers, not a failed project lookup)
p1_id=$(oa project show p1 -f value -c id)
u1 ob project show p1 -f json | jq -e --arg id "$p1_id" '.id == $id and .name == "p1"' \
    >/dev/null || fail "u1: project show p1: $(u1 ob project show p1 2>&1)"
u1 ob quota show "$p1_id" -f json | jq -e --arg id "$p1_id" '.project == $id and .instances > 0' \
    >/dev/null || fail "u1: quota show: $(u1 ob quota show "$p1_id" 2>&1)"
out=$(u1 ob quota set --instances 5 "$p1_id" 2>&1) && fail "u1 set its quotas"
grep "compute:quota:update (HTTP 403)" <<<"$out" >/dev/null || fail "u1: quota set: $out"
out=$(u1 ob project show admin 2>&1) && fail "u1 read another project: $out"
u1 ob project list -f value -c Name | grep -x p1 >/dev/null || fail "u1: project list"
[ "$(u1 ob project list -f value | wc -l)" = 1 ] || fail "u1 lists other projects"

# etcd down: a password login is the store's 503, not a wrong password
kill -9 "$ETCD_PID"
{ wait "$ETCD_PID" || true; } 2>/dev/null
out=$(u1 ob token issue 2>&1) && fail "login with etcd down"
echo "login with etcd down: $out"
grep "requires authentication" <<<"$out" >/dev/null && fail "login with etcd down: $out"
grep "HTTP 503" <<<"$out" >/dev/null || fail "login with etcd down: $out"
body='{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "u1",
  "domain": {"name": "Default"}, "password": "s3cret-pw"}}}}}'
code=$(curl -s -o "$ST_TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$body" "$url_b/identity/v3/auth/tokens")
[ "$code" = 503 ] && grep -F "etcd at $etcd_url" "$ST_TMP/body" >/dev/null \
    || fail "login with etcd down: $code $(cat "$ST_TMP/body")"
start_etcd
wait_for 20 u1 ob token issue || fail "login after etcd came back: $(u1 ob token issue 2>&1)"

echo "PASS: two controllers on one etcd"
