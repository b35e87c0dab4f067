#!/usr/bin/env bash
# Fires COUNT server creates at the Nova API at once and records what the
# client saw of each. One curl process runs them all in parallel (--parallel,
# up to PARALLEL connections at a time), so the load generator itself costs
# little on a small machine and the requests are truly in flight together.
#   create-many.sh COMPUTE_URL FLAVOR_ID IMAGE_ID COUNT PARALLEL OUTDIR [NAME_PREFIX]
# The Keystone token comes from the environment (OS_TOKEN), never argv.
# In OUTDIR:
#   progress   one line "<http code> <body file>" per request as it ends, in
#              completion order (a watcher may count the 202s while requests
#              are in flight: recovery.sh kills stratosd midway);
#   results    written at the end, one line "<i> <http code> <server id or ->"
#              per request; code 000: no answer (connection refused or cut).
# A 202 with an id is an "acknowledged" server: the API promised it exists.
set -euo pipefail

if [ $# -lt 6 ]; then
    echo "usage: OS_TOKEN=... $0 COMPUTE_URL FLAVOR_ID IMAGE_ID COUNT PARALLEL OUTDIR [PREFIX]" >&2
    exit 2
fi
url=$1 flavor=$2 image=$3 count=$4 parallel=$5 out=$6 prefix=${7:-many}
[ -n "${OS_TOKEN:-}" ] || { echo "create-many.sh: OS_TOKEN is not set" >&2; exit 2; }
[ "$parallel" -ge 1 ] && [ "$parallel" -le 300 ] || { echo "PARALLEL must be 1..300" >&2; exit 2; }
mkdir -p "$out/bodies"

# A curl config: one block per request, separated by "next"; the token is
# in it (mode 600), out of every argv.
config="$out/curl.config"
(
    umask 077
    for i in $(seq 1 "$count"); do
        [ "$i" -gt 1 ] && echo next
        printf 'url = "%s/servers"\n' "$url"
        printf 'request = "POST"\n'
        printf 'header = "X-Auth-Token: %s"\n' "$OS_TOKEN"
        printf 'header = "Content-Type: application/json"\n'
        printf 'data = "{\\"server\\": {\\"name\\": \\"%s-%d\\", \\"flavorRef\\": \\"%s\\", \\"imageRef\\": \\"%s\\"}}"\n' \
            "$prefix" "$i" "$flavor" "$image"
        printf 'output = "%s/bodies/%d"\n' "$out" "$i"
        printf 'write-out = "%%{http_code} %%{filename_effective}\\n"\n'
        printf 'max-time = 120\n'
        printf 'silent\n'
    done
) >"$config"

# curl's exit status is that of the last failure: refused and cut requests
# are what this records, not an error of the script.
# stdbuf: a line of progress as each request ends (curl's stdout into a
# file is block-buffered: a watcher would see ~100 answers at once).
stdbuf -oL curl --parallel --parallel-immediate --parallel-max "$parallel" -K "$config" \
    >"$out/progress" 2>/dev/null || true
rm -f "$config"

: >"$out/results.tmp"
for i in $(seq 1 "$count"); do
    code=$(awk -v f="$out/bodies/$i" '$2 == f {print $1; exit}' "$out/progress")
    id=-
    if [ -s "$out/bodies/$i" ]; then
        id=$(jq -r '.server.id // "-"' "$out/bodies/$i" 2>/dev/null) || id=-
    fi
    echo "$i ${code:-000} ${id:--}" >>"$out/results.tmp"
done
mv "$out/results.tmp" "$out/results"
