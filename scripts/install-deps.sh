#!/usr/bin/env bash
# Installs, from Debian's packages, exactly what stratos needs to build and
# test (and, with --bench, to run the benchmarks). Idempotent and fast when
# everything is present: apt runs only for packages that are missing.
set -euo pipefail

build=(build-essential cmake pkg-config clang-format
       libmicrohttpd-dev libjansson-dev libfyaml-dev libsqlite3-dev
       libcurl4-openssl-dev libssl-dev libargon2-dev libcmocka-dev
       curl jq sqlite3 iproute2 procps python3-openstackclient busybox-static
       crun libarchive-dev libseccomp-dev zstd util-linux openssh-client
       libnl-route-3-dev libnftables-dev libnetfilter-conntrack-dev nftables
       iputils-ping netcat-openbsd etcd-server)
bench=(wrk nginx-light iperf3)

want=("${build[@]}")
for arg in "$@"; do
  case "$arg" in
    --bench) want+=("${bench[@]}") ;;
    *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
