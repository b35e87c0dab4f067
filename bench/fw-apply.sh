#!/usr/bin/env bash
# Security-group change time, two ways, in one run:
#   1. bench/fw_apply.c: 1,000 rules on 100 ports rendered and applied into a
#      fresh network namespace, then one rule changed and render + apply of
#      the change timed (p50/p95 over BENCH_CHANGES, default 20), beside
#      `nft -f` of the identical text (the nft CLI is the peer), and, for
#      scale, the changed chain alone;
#   2. end to end through the API: stratosd all-in-one in a network namespace
#      of its own (the host), one server on a network in a group of
#      BENCH_RULES (default 1,000) rules, each with a port and a remote prefix
#      of its own (created through the Neutron API); then BENCH_CHANGES times, DELETE
#      /v2.0/security-group-rules/{id} (Python's http.client, a Keystone
#      token) until the nftables commit (NEWGEN on a netlink socket in the
#      host namespace) after which `nft list chain` no longer shows the rule:
#      API call -> the agent has applied it.
#      Beside it, the agent's own apply time (its debug log, netplan_applied).
# Part 2 needs crun, busybox-static, openstack, jq, python3 and stratosd
# built; without them it says SKIP and part 1 still runs. Needs root and nft
# (exits 77 with the reason otherwise).
#   bench/fw-apply.sh [builddir]          (default: build)
# Namespaces, servers, containers, mounts and the daemon are removed on exit,
# also on failure or Ctrl-C.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
# shellcheck source=bench/lib/stack.bash
source "$here/bench/lib/stack.bash"
n_changes="${BENCH_CHANGES:-20}"
n_rules="${BENCH_RULES:-1000}"

if [[ -z "${ST_BENCH_HOST_NS:-}" ]]; then
    if [[ $EUID -ne 0 ]]; then
        echo "SKIP fw-apply: needs root (network namespaces, nftables)"
        exit 77
    fi
    for tool in nft ip nsenter; do
        command -v "$tool" >/dev/null || { echo "SKIP fw-apply: $tool is missing (scripts/install-deps.sh)"; exit 77; }
    done
    bin="$build/bench/bench_fw_apply"
    [[ -x "$bin" ]] || {
        echo "fw-apply.sh: $bin not found; build it with: cmake --build $build --target bench_fw_apply" >&2
        exit 1
    }
    "$bin" -n "$n_changes"

    missing=""
    for tool in crun openstack jq python3 setsid curl; do
        command -v "$tool" >/dev/null || missing="$missing $tool"
    done
    [[ -x /bin/busybox ]] || missing="$missing busybox-static"
    [[ -x "$build/stratosd" ]] || missing="$missing $build/stratosd"
    if [[ -n "$missing" ]]; then
        echo "SKIP fw-apply end to end: missing$missing"
        exit 0
    fi
    # part 2 in a fresh network namespace playing the host
    st_bench_host_ns st-bfw "fw-apply end to end" 0 "$0" "$@"
fi

# ---- part 2, inside the host namespace ---------------------------------------
data_dir="${ST_DATA_DIR:-/var/lib/stratos}"
base="$data_dir"
while [[ ! -d "$base" ]]; do base="$(dirname "$base")"; done
tmp="$(mktemp -d "$base/.stratos-bench-fw.XXXXXX")"
data="$tmp/data"
pid=""
token=""
url=""

cleanup() {
    set +e
    if [[ -n "$pid" && -n "$token" ]] && kill -0 "$pid" 2>/dev/null; then
        st_bench_delete_servers "$url" "$token"
    fi
    [[ -n "$pid" ]] && st_bench_stop "$pid"
    st_bench_leftovers "$tmp" "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$here/scripts/busybox-rootfs.sh" "$tmp/busybox.tar" >/dev/null
"$build/stratosd" init --data-dir "$data" --import-image "busybox=$tmp/busybox.tar" >/dev/null 2>&1
# debug: the agent logs each apply of its network view with its duration
setsid "$build/stratosd" --data-dir "$data" --listen 127.0.0.1:0 --no-access-log --log-level debug \
    >"$tmp/stratosd.log" 2>&1 &
pid=$!
until grep -q 'event=agent_registered' "$tmp/stratosd.log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/stratosd.log" >&2; exit 1; }
    sleep 0.02
done
port=$(grep -o 'event=stratosd_ready.* port=[0-9]*' "$tmp/stratosd.log" | sed 's/.*port=//')
url="http://127.0.0.1:$port"
# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$url/identity/v3"
token="$(openstack token issue -f value -c id)"
openstack flavor create --vcpus 1 --ram 64 --disk 1 bench.tiny >/dev/null
openstack image set --property os_command_line="/bin/sleep 100000" busybox
openstack network create bench-net >/dev/null
openstack subnet create --network bench-net --subnet-range 10.0.9.0/24 bench-subnet >/dev/null
gid="$(openstack security group create bench -f value -c id)"
# 1,000 rules are over Neutron's default rule quota (100): lift it
openstack quota set --secgroup-rules -1 "$(openstack token issue -f value -c project_id)" >/dev/null

cat >"$tmp/rules.py" <<'EOF'
import http.client, json, re, socket, struct, subprocess, sys, threading, time
from urllib.parse import urlsplit

url, token, gid, mode = sys.argv[1:5]
u = urlsplit(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

def req(method, path, body=None):
    h = {"X-Auth-Token": token, "Accept": "application/json"}
    data = None
    if body is not None:
        data, h["Content-Type"] = json.dumps(body), "application/json"
    c.request(method, "/network/v2.0" + path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    return r.status, (json.loads(raw) if raw else None)

def listing():
    return subprocess.run(["nft", "list", "chain", "inet", "stratos", "sg-%s-ingress" % gid],
                          capture_output=True, text=True).stdout

if mode == "create":
    # rules with a port and a remote prefix of their own: none merges
    n = int(sys.argv[5])
    t0 = time.monotonic()
    for i in range(n):
        code, doc = req("POST", "/security-group-rules", {"security_group_rule": {
            "security_group_id": gid, "direction": "ingress", "ethertype": "IPv4",
            "protocol": "udp" if i % 2 else "tcp", "port_range_min": 20000 + i,
            "port_range_max": 20000 + i,
            "remote_ip_prefix": "10.%d.%d.0/24" % (100 + i // 256, i % 256)}})
        if code != 201:
            raise SystemExit("POST /security-group-rules: %d %s" % (code, doc))
    print("%.1f" % ((time.monotonic() - t0) * 1000.0))
elif mode == "wait":
    # until the kernel holds every rule of the group
    n = int(sys.argv[5])
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        if len(re.findall(r"dport 2\d{4} accept", listing())) == n:
            sys.exit(0)
        time.sleep(0.1)
    raise SystemExit("the group's %d rules did not reach the kernel" % n)
elif mode == "delete":
    # Each nftables commit ends with a NEWGEN message to the multicast group
    # NFNLGRP_NFTABLES: a thread stamps them as they come. After a DELETE,
    # each commit is checked with one listing; the first commit after which
    # the rule is gone is the end.
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
    nl.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: a full reload is chatty
    nl.bind((0, 1 << (7 - 1)))  # NFNLGRP_NFTABLES
    gens, cv = [], threading.Condition()
    def watch():
        while True:
            try:
                data = nl.recv(1 << 20)
            except OSError:
                continue  # ENOBUFS: some messages lost, the next commit's NEWGEN still comes
            now, off = time.monotonic(), 0
            while off + 16 <= len(data):
                length, typ = struct.unpack_from("=IH", data, off)
                if typ == (10 << 8 | 15):  # NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWGEN
                    with cv:
                        gens.append(now)
                        cv.notify_all()
                off += (length + 3) & ~3 if length else len(data)
    threading.Thread(target=watch, daemon=True).start()

    k = int(sys.argv[5])
    code, doc = req("GET", "/security-group-rules?security_group_id=" + gid)
    rules = sorted((r for r in doc["security_group_rules"] if r["port_range_min"]),
                   key=lambda r: r["port_range_min"])[:k]
    e2e, api, commits = [], [], []
    for r in rules:
        gone = "dport %d accept" % r["port_range_min"]
        if gone not in listing():
            raise SystemExit("rule %s (%s) is not in the kernel before its delete" % (r["id"], gone))
        with cv:
            seen = len(gens)
        t0 = time.monotonic()
        code, _ = req("DELETE", "/security-group-rules/" + r["id"])
        api.append((time.monotonic() - t0) * 1000.0)
        if code != 204:
            raise SystemExit("DELETE /security-group-rules/%s: %d" % (r["id"], code))
        done, n = None, 0
        while done is None:
            with cv:
                if not cv.wait_for(lambda: len(gens) > seen, timeout=60):
                    raise SystemExit("no nftables commit within 60 s of deleting %s" % r["id"])
                at, seen = gens[seen], seen + 1
            n += 1
            if at >= t0 and gone not in listing():
                done = at
        e2e.append((done - t0) * 1000.0)
        commits.append(n)
        time.sleep(0.3)  # let the agent settle: each change meets an idle node
    pct = lambda v, p: sorted(v)[(p * (len(v) - 1) + 50) // 100]
    print("%.1f %.1f %.1f %.1f %.1f %d" % (pct(e2e, 50), pct(e2e, 95), max(e2e), pct(api, 50),
                                          pct(api, 95), max(commits)))
EOF

create_ms="$(python3 "$tmp/rules.py" "$url" "$token" "$gid" create "$n_rules")"
openstack server create --flavor bench.tiny --image busybox --network bench-net --security-group bench \
    fw-target >/dev/null
for _ in $(seq 300); do
    st="$(openstack server show fw-target -f value -c status)"
    [[ $st = ACTIVE || $st = ERROR ]] && break
    sleep 0.2
done
[[ $st = ACTIVE ]] || { echo "fw-apply.sh: the server is $st" >&2; tail -20 "$tmp/stratosd.log" >&2; exit 1; }
python3 "$tmp/rules.py" "$url" "$token" "$gid" wait "$n_rules"
sleep 1
mark=$(wc -l <"$tmp/stratosd.log")
read -r e50 e95 emax a50 a95 commits < <(python3 "$tmp/rules.py" "$url" "$token" "$gid" delete "$n_changes") ||
    { echo "fw-apply.sh: failed; the end of stratosd's log:" >&2; tail -30 "$tmp/stratosd.log" >&2; exit 1; }
read -r n_applied ap50 ap95 < <(tail -n +"$((mark + 1))" "$tmp/stratosd.log" |
    grep -o 'event=netplan_applied .*ms=[0-9.]*' | sed 's/.*ms=//' | sort -n |
    awk '{v[NR] = $1} END {if (NR) printf "%d %.1f %.1f\n", NR, v[int((50 * (NR - 1) + 50) / 100) + 1],
         v[int((95 * (NR - 1) + 50) / 100) + 1]; else print "0 ? ?"}')
echo "fw-apply end to end: stratosd all-in-one, 1 server on a network, its group of $n_rules rules"
echo "  (made through the API in $(awk -v v="$create_ms" 'BEGIN {printf "%.1f", v / 1000}') s, one by one);" \
    "$n_changes rule deletes, 0.3 s apart"
printf '  DELETE /v2.0/security-group-rules/{id} answered   p50 %7.1f ms  p95 %7.1f ms\n' "$a50" "$a95"
printf '  DELETE sent -> the nftables commit without it    p50 %7.1f ms  p95 %7.1f ms  max %7.1f ms\n' \
    "$e50" "$e95" "$emax"
printf '    (commits seen from netlink, each checked with `nft list chain`; at most %d per change)\n' "$commits"
printf '  the agent applying its whole view (its log, %d applies)  p50 %7.1f ms  p95 %7.1f ms\n' \
    "$n_applied" "$ap50" "$ap95"
