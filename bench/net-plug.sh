#!/usr/bin/env bash
# Port plug time: how long after POST /servers packets reach a new server.
# stratosd all-in-one (controller + agent + crun) in a network namespace of
# its own that plays the host, one network (10.0.9.0/24), one server already
# running on it (the prober). Then, BENCH_SERVERS times (default 20), in the
# same run and in alternating order:
#   - a server on the network: POST /servers (Python's http.client with a
#     Keystone token, one kept-alive connection: no CLI start-up cost), GET
#     /servers/{id} every 2 ms for its address and status, and, from the
#     prober's network namespace (a thread setns()ed into it, a raw ICMP
#     socket), an echo request to that address every 1 ms until one is
#     answered: create -> ACTIVE and create -> first reply, side by side;
#   - a server without a network ("networks": []): create -> ACTIVE, the
#     same flavor and image: what plugging the port adds to a create.
# Each server is deleted and awaited (404) before the next, untimed, so each
# create meets the same node; one unmeasured pair first. The next server
# gets the deleted one's address back, with another MAC, and nothing tells
# the prober (no gratuitous ARP): its neighbour entry would send the echo
# requests to the old MAC for ~30 s (base_reachable_time + probes). So the
# prober's neighbour cache is flushed before each create (untimed): the
# figure is the plug time a client without a stale entry sees.
# Pings that start before the port exists meet ARP: the kernel retries an
# unanswered ARP request every retrans_time_ms (1 s by default), so the
# prober's eth0 gets the kernel's floor, 10 ms (the first-reply figure is
# that coarse); the new server's side is left as the agent made it.
# Needs root, crun, busybox-static, openstack, jq, python3 (exits 77 with
# the reason otherwise).
#   bench/net-plug.sh [builddir]          (default: build)
# Every server, container, mount, namespace and process it made is removed
# on exit, also on failure or Ctrl-C.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$here/$build"
# shellcheck source=bench/lib/stack.bash
source "$here/bench/lib/stack.bash"
n_srv="${BENCH_SERVERS:-20}"

if [[ $EUID -ne 0 ]]; then
    echo "SKIP net-plug: needs root (containers, network namespaces)"
    exit 77
fi
for tool in crun openstack jq python3 nsenter ip setsid; do
    command -v "$tool" >/dev/null || { echo "SKIP net-plug: $tool is missing (scripts/install-deps.sh)"; exit 77; }
done
[[ -x /bin/busybox ]] || { echo "SKIP net-plug: busybox-static is missing (scripts/install-deps.sh)"; exit 77; }
[[ -x "$build/stratosd" ]] || {
    echo "net-plug.sh: $build/stratosd not found; build it with: cmake --build $build --target stratosd" >&2
    exit 1
}

# The outer run: a fresh network namespace as the host, the rest inside it
# (nsenter, not `ip netns exec`, which mounts a fresh /sys and hides the
# cgroup hierarchies the container driver needs).
st_bench_host_ns st-bnp "net-plug" 77 "$0" "$@"

data_dir="${ST_DATA_DIR:-/var/lib/stratos}"
base="$data_dir"
while [[ ! -d "$base" ]]; do base="$(dirname "$base")"; done
tmp="$(mktemp -d "$base/.stratos-bench-netplug.XXXXXX")"
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
# its own session: a Ctrl-C reaches only this script, whose cleanup deletes
# the servers through the daemon before stopping it
setsid "$build/stratosd" --data-dir "$data" --listen 127.0.0.1:0 --no-access-log \
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
flavor="$(openstack flavor create --vcpus 1 --ram 64 --disk 1 bench.tiny -f value -c id)"
image="$(openstack image show busybox -f value -c id)"
# a process that keeps running (busybox's init would want a tty)
openstack image set --property os_command_line="/bin/sleep 100000" busybox
openstack quota set --instances -1 --cores -1 --ram -1 "$OS_PROJECT_NAME"
net="$(openstack network create bench-net -f value -c id)"
openstack subnet create --network bench-net --subnet-range 10.0.9.0/24 bench-subnet >/dev/null

# the prober: a server already running on the network
openstack server create --flavor bench.tiny --image busybox --network bench-net probe >/dev/null
for _ in $(seq 300); do
    st="$(openstack server show probe -f value -c status)"
    [[ $st = ACTIVE || $st = ERROR ]] && break
    sleep 0.2
done
[[ $st = ACTIVE ]] || { echo "net-plug.sh: the prober is $st" >&2; tail -20 "$tmp/stratosd.log" >&2; exit 1; }
probe_id="$(openstack server show probe -f value -c id)"
# the namespace the agent made for it and plugged its port into
probe_ns="$data/agent/netns/$probe_id"
[[ -e "$probe_ns" ]] || probe_ns="$data/netns/$probe_id"
nsenter --net="$probe_ns" sysctl -qw net.ipv4.neigh.eth0.retrans_time_ms=10

cat >"$tmp/plug.py" <<'EOF'
import ctypes, http.client, json, os, re, select, socket, struct, subprocess, sys, threading, time
from urllib.parse import urlsplit

url, token, flavor, image, net, n, probe_ns, log = sys.argv[1:9]
n = int(n)
u = urlsplit(url)
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
TIMEOUT = 120.0

class Api:
    def __init__(self):
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
    def req(self, method, path, body=None):
        h = {"X-Auth-Token": token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body)
            h["Content-Type"] = "application/json"
        self.c.request(method, "/compute/v2.1" + path, body=data, headers=h)
        r = self.c.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)

def checksum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff

class Pinger(threading.Thread):
    """Echo requests every 1 ms from the prober's namespace until one is answered."""
    def __init__(self, target, ident):
        super().__init__(daemon=True)
        self.target, self.icmp_id, self.reply_at, self.error, self.sent = target, ident, None, None, 0
        self.stop = False
    def run(self):
        try:
            fd = os.open(probe_ns, os.O_RDONLY)
            if libc.setns(fd, CLONE_NEWNET) != 0:  # this thread only
                raise OSError(ctypes.get_errno(), "setns")
            os.close(fd)
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            deadline = time.monotonic() + TIMEOUT
            seq = 0
            while not self.stop and time.monotonic() < deadline:
                seq = (seq + 1) & 0xffff
                hdr = struct.pack("!BBHHH", 8, 0, 0, self.icmp_id, seq) + b"stratos-bench..."
                pkt = hdr[:2] + struct.pack("!H", checksum(hdr)) + hdr[4:]
                try:
                    s.sendto(pkt, (self.target, 0))
                    self.sent += 1
                except OSError:
                    pass  # the neighbour is unresolved: the next one retries
                end = time.monotonic() + 0.001
                while True:
                    left = end - time.monotonic()
                    if left <= 0 or not select.select([s], [], [], left)[0]:
                        break
                    data, addr = s.recvfrom(2048)
                    ihl = (data[0] & 15) * 4
                    typ, _, _, ident = struct.unpack("!BBHH", data[ihl:ihl + 6])
                    if typ == 0 and ident == self.icmp_id and addr[0] == self.target:
                        self.reply_at = time.monotonic()
                        return
        except Exception as e:
            self.error = e

def wait_gone(api, sid):
    api.req("DELETE", "/servers/" + sid)
    t0 = time.monotonic()
    while time.monotonic() - t0 < TIMEOUT:
        if api.req("GET", "/servers/" + sid)[0] == 404:
            return
        time.sleep(0.005)
    raise SystemExit("server %s not gone after %d s" % (sid, TIMEOUT))

def create(api, name, with_net, ident):
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": image,
                       "networks": [{"uuid": net}] if with_net else []}}
    # forget the MACs of deleted servers whose addresses come back (untimed)
    subprocess.run(["nsenter", "--net=" + probe_ns, "ip", "neigh", "flush", "dev", "eth0"],
                   check=True)
    t0 = time.monotonic()
    code, doc = api.req("POST", "/servers", body)
    if code != 202:
        raise SystemExit("POST /servers: %d %s" % (code, doc))
    sid = doc["server"]["id"]
    pinger, active_at, addr_at = None, None, None
    try:
        while time.monotonic() - t0 < TIMEOUT:
            code, doc = api.req("GET", "/servers/" + sid)
            if code != 200:
                raise SystemExit("GET /servers/%s: %d" % (sid, code))
            srv = doc["server"]
            if with_net and pinger is None:
                addrs = [a["addr"] for v in srv.get("addresses", {}).values() for a in v]
                if addrs:
                    addr_at = time.monotonic()
                    pinger = Pinger(addrs[0], ident)
                    pinger.start()
            if srv["status"] == "ERROR":
                raise SystemExit("server %s: ERROR: %s" % (sid, srv.get("fault")))
            if active_at is None and srv["status"] == "ACTIVE":
                active_at = time.monotonic()
            if active_at is not None and (not with_net or (pinger and not pinger.is_alive())):
                break
            time.sleep(0.002)
        if active_at is None:
            raise SystemExit("server %s not ACTIVE after %d s" % (sid, TIMEOUT))
        if with_net:
            pinger.join(TIMEOUT)
            if pinger.error or pinger.reply_at is None:
                raise SystemExit("server %s (%s): no echo reply: %s" % (sid, pinger.target, pinger.error))
        ms = lambda t: (t - t0) * 1000.0
        return (ms(active_at), ms(pinger.reply_at) if with_net else None,
                ms(addr_at) if with_net else None, pinger.sent if with_net else 0, sid)
    finally:
        if pinger:
            pinger.stop = True
        wait_gone(api, sid)

def pct(v, p):
    v = sorted(v)
    return v[(p * (len(v) - 1) + 50) // 100]

api = Api()
create(api, "warm-net", True, 1)
create(api, "warm-nonet", False, 2)
net_active, net_reply, net_addr, nonet_active, before, sent = [], [], [], [], 0, []
ids = {True: set(), False: set()}
for i in range(n):
    order = (True, False) if i % 2 == 0 else (False, True)
    for with_net in order:
        a, r, ad, s, sid = create(api, "plug-%d-%s" % (i, "net" if with_net else "nonet"), with_net,
                                  100 + i)
        ids[with_net].add(sid)
        if with_net:
            net_active.append(a); net_reply.append(r); net_addr.append(ad); sent.append(s)
            before += r < a
        else:
            nonet_active.append(a)

row = lambda name, v, note="": print("  %-37s p50 %7.1f ms  p95 %7.1f ms  max %7.1f ms%s"
                                     % (name, pct(v, 50), pct(v, 95), max(v), note))
print("net-plug: %d servers on one network (1 vCPU, 64 MiB, busybox), %d without one, alternating;"
      " status polled every 2 ms, echo requests every 1 ms from a running server on the network"
      % (n, n))
row("on the network: create -> ACTIVE", net_active)
row("on the network: create -> 1st reply", net_reply,
    "  (replied before ACTIVE: %d of %d)" % (before, n))
row("no network:     create -> ACTIVE", nonet_active)
print("  networking adds to create -> ACTIVE, p50: %+.1f ms (%.2fx); address in GET /servers/{id}"
      " after p50 %.1f ms; echo requests sent until the 1st reply p50 %d"
      % (pct(net_active, 50) - pct(nonet_active, 50), pct(net_active, 50) / pct(nonet_active, 50),
         pct(net_addr, 50), pct(sent, 50)))
# the agent's share, from its log: create+start through the driver, which
# for a server with ports includes making its namespace and plugging them
agent = {True: [], False: []}
for line in open(log):
    m = re.search(r"event=agent_action .*server=(\S+) action=create_start ms=([0-9.]+)", line)
    if m:
        for k in (True, False):
            if m.group(1) in ids[k]:
                agent[k].append(float(m.group(2)))
if agent[True] and agent[False]:
    print("  of which the agent's create+start (its log), p50: %.1f ms on the network, %.1f ms without"
          % (pct(agent[True], 50), pct(agent[False], 50)))
EOF
python3 "$tmp/plug.py" "$url" "$token" "$flavor" "$image" "$net" "$n_srv" "$probe_ns" \
    "$tmp/stratosd.log" ||
    { echo "net-plug.sh: failed; the end of stratosd's log:" >&2; tail -30 "$tmp/stratosd.log" >&2; exit 1; }
