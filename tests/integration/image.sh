#!/usr/bin/env bash
# Images as a user meets them, judged by the real `openstack` CLI: the seed
# image that `stratosd init --import-image` makes (once), create + upload of
# a busybox root filesystem (checksums equal md5sum/sha512sum of the file),
# list, show, save (byte-identical), set/unset, delete (the file goes too);
# another project cannot see a private image nor make one public; a 50 MiB
# upload streams without growing the daemon's peak RSS; an upload cut off
# mid-body leaves the image queued and no temporary file; paging past
# Glance's default page of 25.
source "$(dirname "$0")/lib/common.bash"

command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }
[ -x /bin/busybox ] || { echo "SKIP: busybox-static is not installed"; exit 77; }

data="$ST_TMP/data"
tarball="$ST_TMP/busybox.tar"
"$ST_SOURCE_DIR/scripts/busybox-rootfs.sh" "$tarball" >/dev/null
"$STRATOSD" init --data-dir "$data" --import-image "busybox=$tarball" >/dev/null 2>&1 \
    || fail "init with --import-image"
"$STRATOSD" init --data-dir "$data" --import-image "busybox=$tarball" >/dev/null 2>&1 \
    || fail "second init"
st_start_daemon "$data"

# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"
admin_password=$OS_PASSWORD

# The seed image: public, active, imported once although init ran twice.
[ "$(openstack image list --name busybox -f value -c ID | wc -l)" = 1 ] || fail "seed image not imported exactly once"
openstack image show busybox -f json >"$ST_TMP/seed.json" || fail "image show busybox"
jq -e '.status == "active" and .visibility == "public" and .container_format == "docker"' "$ST_TMP/seed.json" >/dev/null \
    || fail "seed image: $(cat "$ST_TMP/seed.json")"
[ "$(jq -r .checksum "$ST_TMP/seed.json")" = "$(md5sum <"$tarball" | cut -d' ' -f1)" ] || fail "seed checksum"

# Create + upload with the CLI; it prints the queued image, the upload makes it active.
openstack image create --file "$tarball" --container-format docker --disk-format raw \
    --property os_command_line='/bin/sh -c "echo hello"' busybox2 -f json >"$ST_TMP/create.json" \
    || fail "image create"
jq -e '.name == "busybox2" and .container_format == "docker" and .disk_format == "raw"' "$ST_TMP/create.json" >/dev/null \
    || fail "create output: $(cat "$ST_TMP/create.json")"
openstack image show busybox2 -f json >"$ST_TMP/show.json" || fail "image show"
id=$(jq -r .id "$ST_TMP/show.json")
jq -e '.status == "active"' "$ST_TMP/show.json" >/dev/null || fail "not active: $(cat "$ST_TMP/show.json")"
[ "$(jq -r .checksum "$ST_TMP/show.json")" = "$(md5sum <"$tarball" | cut -d' ' -f1)" ] || fail "md5 checksum differs"
[ "$(jq -r .properties.os_hash_value "$ST_TMP/show.json")" = "$(sha512sum <"$tarball" | cut -d' ' -f1)" ] \
    || fail "sha512 differs"
[ "$(jq -r .size "$ST_TMP/show.json")" = "$(stat -c %s "$tarball")" ] || fail "size differs"
[ "$(jq -r .properties.os_command_line "$ST_TMP/show.json")" = '/bin/sh -c "echo hello"' ] || fail "property lost"
cmp -s "$tarball" "$data/images/$id" || fail "stored file differs"

openstack image list -f value -c Name -c Status | grep -x 'busybox2 active' >/dev/null || fail "image list"
openstack image save --file "$ST_TMP/out.tar" busybox2 || fail "image save"
cmp "$tarball" "$ST_TMP/out.tar" || fail "saved image is not byte-identical"

tok=$(openstack token issue -f value -c id)
api="$ST_URL/image/v2"
show() { curl -s "$api/images/$1" -H "X-Auth-Token: $tok"; }
openstack image set --tag demo --tag old --min-ram 32 busybox2 || fail "image set"
openstack image unset --tag old busybox2 || fail "image unset"
show "$id" | jq -e '.tags == ["demo"] and .min_ram == 32' >/dev/null || fail "set/unset not applied: $(show "$id")"

# Bad input: 400 with Glance's error body; a second upload: 409.
code=$(curl -s -o "$ST_TMP/body" -w '%{http_code}' -X POST "$api/images" -H "X-Auth-Token: $tok" \
    -H 'Content-Type: application/json' -d '{"name": "x", "disk_format": "floppy"}')
[ "$code" = 400 ] || fail "bad disk_format gave $code"
jq -e '.error.code == 400 and (.error.message | test("disk_format"))' "$ST_TMP/body" >/dev/null || fail "400 body: $(cat "$ST_TMP/body")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$api/images/$id/file" -H "X-Auth-Token: $tok" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$tarball")
[ "$code" = 409 ] || fail "second upload gave $code"

# Another project: a private image is not found, a public one is seen but not writable.
openstack project create proj-b >/dev/null || fail "project create"
openstack user create --password pw-b user-b >/dev/null || fail "user create"
openstack role add --project proj-b --user user-b member || fail "role add"
openstack image set --private busybox2 || fail "image set --private"
export OS_USERNAME=user-b OS_PASSWORD=pw-b OS_PROJECT_NAME=proj-b
if out=$(openstack image show busybox2 2>&1); then fail "proj-b sees a private image"; fi
grep -q "No Image found" <<<"$out" || fail "proj-b image show: $out"
openstack image list -f value -c Name >"$ST_TMP/list-b" || fail "proj-b image list"
! grep -qx busybox2 "$ST_TMP/list-b" || fail "proj-b lists a private image"
grep -qx busybox "$ST_TMP/list-b" || fail "proj-b does not see the public image"
code=$(curl -s -o /dev/null -w '%{http_code}' "$api/images/$id" -H "X-Auth-Token: $(openstack token issue -f value -c id)")
[ "$code" = 404 ] || fail "proj-b GET private image by id gave $code"
if out=$(openstack image delete busybox 2>&1); then fail "proj-b deleted the public seed image"; fi
if out=$(openstack image create --public --disk-format raw --container-format bare pub-b 2>&1); then
    fail "a member created a public image"
fi
grep -q "403" <<<"$out" || fail "member --public: $out"
export OS_USERNAME=admin OS_PASSWORD=$admin_password OS_PROJECT_NAME=admin

# A 50 MiB upload streams: the daemon's peak RSS barely moves.
head -c $((50 * 1024 * 1024)) /dev/urandom >"$ST_TMP/big.raw"
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$ST_PID/status"; }
before=$(hwm)
openstack image create --file "$ST_TMP/big.raw" --disk-format raw --container-format bare big >/dev/null || fail "50 MiB create"
after=$(hwm)
growth=$(((after - before) / 1024))
echo "50 MiB upload: VmHWM ${before} kB -> ${after} kB (+${growth} MiB)"
[ "$growth" -lt 20 ] || fail "peak RSS grew by $growth MiB during a 50 MiB upload"
big_id=$(curl -s "$api/images?name=big" -H "X-Auth-Token: $tok" | jq -r '.images[0].id')
[ "$(show "$big_id" | jq -r .checksum)" = "$(md5sum <"$ST_TMP/big.raw" | cut -d' ' -f1)" ] || fail "big checksum"

# An upload cut off mid-body: back to queued, no temporary file left.
cut_id=$(curl -s -X POST "$api/images" -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' \
    -d '{"name": "cut", "disk_format": "raw", "container_format": "bare"}' | jq -r .id)
curl -s -o /dev/null --limit-rate 2M -X PUT "$api/images/$cut_id/file" -H "X-Auth-Token: $tok" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$ST_TMP/big.raw" &
curl_pid=$!
sleep 1
kill "$curl_pid"
wait "$curl_pid" 2>/dev/null || true
for _ in $(seq 1 50); do
    status=$(show "$cut_id" | jq -r .status)
    [ "$status" = queued ] && break
    sleep 0.2
done
[ "$status" = queued ] || fail "interrupted upload left status $status"
! ls -A "$data/images" | grep '^\.upload-' >/dev/null || fail "temporary upload file left behind"

# Paging: more than one page of 25, followed by the CLI through "next".
for i in $(seq 1 26); do
    curl -s -o /dev/null -X POST "$api/images" -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' \
        -d "{\"name\": \"page-$i\"}"
done
n=$(openstack image list -f value -c ID | wc -l)
[ "$n" = 30 ] || fail "image list over pages gave $n rows, want 30"

# Delete: gone from the list, and its file from the disk.
openstack image delete busybox2 || fail "image delete"
code=$(curl -s -o /dev/null -w '%{http_code}' "$api/images/$id" -H "X-Auth-Token: $tok")
[ "$code" = 404 ] || fail "deleted image answers $code"
[ ! -e "$data/images/$id" ] || fail "deleted image's file remains"
st_stop_daemon
echo PASS
