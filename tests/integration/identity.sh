#!/usr/bin/env bash
# Identity as a user meets it, judged by the real, unmodified `openstack`
# CLI (Debian's python3-openstackclient): the admin from `stratosd init`'s
# admin-openrc, a project, a user with a password, a role grant, that user's
# own login, a wrong password, a duplicate, a forbidden call; token
# revocation over plain HTTP; the audit log.
source "$(dirname "$0")/lib/common.bash"

command -v openstack >/dev/null || { echo "SKIP: the openstack CLI is not installed"; exit 77; }

data="$ST_TMP/data"
"$STRATOSD" init --data-dir "$data" >/dev/null
[ "$(stat -c %a "$data/admin-openrc")" = 600 ] || fail "admin-openrc is not mode 0600"
grep -q '^export OS_PASSWORD=' "$data/admin-openrc" || fail "no password in admin-openrc"
st_start_daemon "$data"

# shellcheck disable=SC1091
source "$data/admin-openrc"
export OS_AUTH_URL="$ST_URL/identity/v3"

openstack token issue -f value -c project_id >/dev/null || fail "admin token issue"
openstack project create proj-a -f value -c name | grep -x proj-a >/dev/null || fail "project create"
openstack user create --password pw-a user-a -f value -c name | grep -x user-a >/dev/null || fail "user create"
openstack role add --project proj-a --user user-a member || fail "role add"
openstack role assignment list --user user-a --project proj-a --names -f value -c Role -c User -c Project \
    | grep -x 'member user-a@Default proj-a@Default' >/dev/null || fail "role assignment list"

# A duplicate name is refused with Keystone's conflict message.
if out=$(openstack project create proj-a 2>&1); then fail "duplicate project accepted"; fi
grep -qi "duplicate" <<<"$out" || fail "duplicate message: $out"

# The stratos CLI does the same, from the same openrc.
"$STRATOS" project create proj-b -f value -c name | grep -x proj-b >/dev/null || fail "stratos project create"
"$STRATOS" user create --password pw-b user-b -f value -c name | grep -x user-b >/dev/null || fail "stratos user create"
"$STRATOS" role add --project proj-b --user user-b reader || fail "stratos role add"
"$STRATOS" role assignment list --user user-b --names -f value -c Role -c Project \
    | grep -x 'reader proj-b@Default' >/dev/null || fail "stratos role assignment list"
OS_USERNAME=user-b OS_PASSWORD=pw-b OS_PROJECT_NAME=proj-b "$STRATOS" token issue -f value -c id >/dev/null \
    || fail "stratos token issue as user-b"
if out=$(OS_USERNAME=user-b OS_PASSWORD=bad "$STRATOS" token issue 2>&1); then fail "stratos: wrong password accepted"; fi
grep -q "requires authentication" <<<"$out" || fail "stratos wrong password message: $out"
"$STRATOS" project delete proj-b || fail "stratos project delete"
if "$STRATOS" project show proj-b >/dev/null 2>&1; then fail "deleted project still shown"; fi

# The new user logs in with their password, scoped to proj-a.
export OS_USERNAME=user-a OS_PASSWORD=pw-a OS_PROJECT_NAME=proj-a
pid=$(openstack token issue -f value -c project_id) || fail "user-a token issue"
[ "$pid" = "$(OS_USERNAME=admin OS_PASSWORD=$(sed -n "s/^export OS_PASSWORD='\(.*\)'/\1/p" "$data/admin-openrc") \
    OS_PROJECT_NAME=admin openstack project show proj-a -f value -c id)" ] || fail "token project is not proj-a"

# A wrong password fails with Keystone's message.
if out=$(OS_PASSWORD=wrong openstack token issue 2>&1); then fail "wrong password accepted"; fi
grep -q "requires authentication" <<<"$out" || fail "wrong password message: $out"

# A member may not administer identity.
if out=$(openstack user list 2>&1); then fail "member listed users"; fi
grep -q "HTTP 403" <<<"$out" || fail "member user list: $out"

# Token revocation over HTTP: a revoked token is refused at once.
tok=$(curl -si -X POST "$OS_AUTH_URL/auth/tokens" -H 'Content-Type: application/json' -d '{"auth":
  {"identity": {"methods": ["password"], "password": {"user": {"name": "user-a",
   "domain": {"name": "Default"}, "password": "pw-a"}}},
   "scope": {"project": {"name": "proj-a", "domain": {"name": "Default"}}}}}' \
  | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p')
[ -n "$tok" ] || fail "no X-Subject-Token"
code=$(curl -s -o /dev/null -w '%{http_code}' "$OS_AUTH_URL/auth/tokens" -H "X-Auth-Token: $tok" -H "X-Subject-Token: $tok")
[ "$code" = 200 ] || fail "validate own token gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$OS_AUTH_URL/auth/tokens" -H "X-Auth-Token: $tok" -H "X-Subject-Token: $tok")
[ "$code" = 204 ] || fail "revoke gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$OS_AUTH_URL/auth/tokens" -H "X-Auth-Token: $tok" -H "X-Subject-Token: $tok")
[ "$code" = 401 ] || fail "revoked token gave $code"

# Malformed auth bodies: 400 in Keystone's error shape, never a crash.
code=$(curl -s -o "$ST_TMP/body" -w '%{http_code}' -X POST "$OS_AUTH_URL/auth/tokens" -H 'Content-Type: application/json' -d '{"auth": ')
[ "$code" = 400 ] || fail "malformed auth body gave $code"
jq -e '.error.code == 400 and (.error.message | length > 0)' "$ST_TMP/body" >/dev/null || fail "400 body: $(cat "$ST_TMP/body")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$OS_AUTH_URL/auth/tokens" -d '{"auth": {"identity": 5}}')
[ "$code" = 400 ] || fail "wrong-typed auth body gave $code"

# Every mutating call is in the audit log, with who made it.
st_stop_daemon
audited() { jq -s -e "any(.[]; $1)" "$data/audit.log" >/dev/null; }
audited '.action == "identity:project:create" and .status == 201 and .user_name == "admin"' \
    || fail "project create not audited"
audited '.action == "identity:grant:create" and .status == 204' || fail "grant not audited"
audited '.action == "identity:token:issue" and .status == 401' || fail "failed login not audited"
! grep -q "pw-a" "$data/audit.log" "$ST_LOG" || fail "a password leaked into a log"
echo PASS
