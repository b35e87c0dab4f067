#!/usr/bin/env bash
# Builds a small root filesystem tarball from Debian's busybox-static: the
# seed image that `make run` imports as "busybox" (container_format docker),
# so the README tour works offline. Needs no root: files are owned by 0:0 in
# the archive only (tar --owner/--group), and the applet links are plain
# symlinks made in a temporary directory. /sbin/init is left out on purpose:
# a container then runs the image's os_command_line, or /bin/sh.
#
# usage: scripts/busybox-rootfs.sh OUT.tar   (OUT.tar.gz / OUT.tar.zst compress)
set -euo pipefail

out=${1:?usage: $0 OUT.tar[.gz|.zst]}
busybox=${BUSYBOX:-/bin/busybox}

[ -x "$busybox" ] || { echo "busybox-rootfs: $busybox not found: apt-get install busybox-static" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
    echo "busybox-rootfs: $busybox is dynamically linked: install busybox-static" >&2
    exit 1
fi

tmp=$(mktemp -d /tmp/busybox-rootfs-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,run,var/log,var/tmp,home}
chmod 0700 "$root/root"
chmod 1777 "$root/tmp" "$root/var/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"

# One symlink per applet, where `busybox --install -s` would put it.
while read -r applet; do
    case "$applet" in
        bin/busybox | sbin/init | linuxrc) continue ;;
    esac
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo "127.0.0.1 localhost" >"$root/etc/hosts"
cat >"$root/etc/os-release" <<EOF
NAME="stratos busybox"
ID=busybox
VERSION_ID="$("$busybox" | head -n1 | sed -n 's/^BusyBox v\([^ ]*\).*/\1/p')"
PRETTY_NAME="stratos seed image (Debian busybox-static)"
EOF

mkdir -p "$(dirname "$out")"
# Reproducible: sorted names, fixed times, numeric root ownership.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -a \
    -C "$root" -cf "$out.tmp.$$.${out##*.}" .
mv "$out.tmp.$$.${out##*.}" "$out"
echo "busybox-rootfs: wrote $out ($(du -h "$out" | cut -f1))"
