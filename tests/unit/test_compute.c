/* Unit tests of src/compute's flavors, keypairs, resource policies and
 * resources: the seed's policy document verbatim and what it becomes
 * (2GHz → 2000 MHz, 4GB → 4096 MiB, ...), the flavor + policy mapping onto
 * spec.resources, flavor names and extra specs, keypair fingerprints
 * against ssh-keygen's and the generated OpenSSH private key's structure,
 * and the node summary behind os-hypervisors. */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "compute/flavor.h"
#include "compute/keypair.h"
#include "compute/model.h"
#include "compute/resource_policy.h"
#include "compute/resources.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/times.h"
#include "store/kv.h"

/* The seed's document, verbatim. */
static const char seed_policy[] = "resourcePolicy:\n"
                                  "  compute:\n"
                                  "    cpu: {reservation: 2GHz, limit: 4GHz, shares: normal}\n"
                                  "    memory: {reservation: 4GB, limit: 8GB}\n"
                                  "  storage: {type: SSD, size: 100GB, iops: 3000}\n"
                                  "  network: {bandwidth: 1Gbps, latency: <10ms}\n";

struct kv_fixture {
    char dir[64];
    struct st_kv *kv;
};

static int kv_setup(void **state)
{
    struct kv_fixture *f = st_new0(struct kv_fixture, 1);
    strcpy(f->dir, "/tmp/st-test-compute-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    st_autofree char *db = st_sprintf("%s/stratos.db", f->dir);
    assert_int_equal(st_kv_open(db, NULL, &f->kv, NULL), 0);
    *state = f;
    return 0;
}

static int kv_teardown(void **state)
{
    struct kv_fixture *f = *state;
    st_kv_close(f->kv);
    st_autofree char *cmd = st_sprintf("rm -rf %s", f->dir);
    int r = system(cmd);
    free(f);
    return r == 0 ? 0 : -1;
}

static json_int_t geti(json_t *obj, const char *path)
{
    /* "a.b.c" */
    st_autofree char *copy = st_strdup(path);
    json_t *v = obj;
    for (char *tok = strtok(copy, "."); tok; tok = strtok(NULL, "."))
        v = json_object_get(v, tok);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return json_integer_value(v);
}

static json_t *seed_resource_policy(void)
{
    json_t *doc = NULL;
    assert_int_equal(st_resource_policy_parse_text(seed_policy, strlen(seed_policy), &doc, NULL),
                     0);
    json_t *rp = json_incref(json_object_get(doc, "resourcePolicy"));
    json_decref(doc);
    assert_non_null(rp);
    return rp;
}

/* Normalizes {"compute": {"cpu": {field: value}}} and returns the error or 0. */
static int try_cpu(const char *field, json_t *value, json_t **ret, char **ret_msg)
{
    st_autoptr(json_t) rp = json_pack("{s:{s:{s:o}}}", "compute", "cpu", field, value);
    st_autoptr(st_err) err = NULL;
    int r = st_resource_policy_normalize(rp, ret, NULL, &err);
    if (ret_msg)
        *ret_msg = st_strdup(err ? err->msg : "");
    return r;
}

/* ---- resource policies ---- */

static void test_policy_seed_document(void **state)
{
    (void)state;
    st_autoptr(json_t) rp = seed_resource_policy();
    /* the YAML reader keeps what it read: quantities as text, iops a number */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(rp, "compute"), "cpu"), "reservation")),
                        "2GHz");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rp, "network"), "latency")), "<10ms");
    st_autoptr(json_t) norm = NULL;
    st_autoptr(json_t) not_enforced = NULL;
    assert_int_equal(st_resource_policy_normalize(rp, &norm, &not_enforced, NULL), 0);
    assert_int_equal(geti(norm, "compute.cpu.reservation_mhz"), 2000);
    assert_int_equal(geti(norm, "compute.cpu.limit_mhz"), 4000);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(norm, "compute"), "cpu"), "shares")),
                        "normal");
    /* GB means GiB, as VMware counts reservations */
    assert_int_equal(geti(norm, "compute.memory.reservation_mb"), 4096);
    assert_int_equal(geti(norm, "compute.memory.limit_mb"), 8192);
    assert_int_equal(geti(norm, "storage.size_gb"), 100);
    assert_int_equal(geti(norm, "storage.iops"), 3000);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(norm, "storage"), "type")), "SSD");
    assert_int_equal(geti(norm, "network.bandwidth_kbps"), 1000000);
    assert_int_equal(geti(norm, "network.latency_us"), 10000);
    st_autofree char *ne = st_json_dumps(not_enforced);
    assert_string_equal(ne, "[\"storage\",\"network\"]");
}

static void test_policy_units_and_errors(void **state)
{
    (void)state;
    st_autoptr(json_t) norm = NULL;
    assert_int_equal(try_cpu("reservation", json_string("2.5GHz"), &norm, NULL), 0);
    assert_int_equal(geti(norm, "compute.cpu.reservation_mhz"), 2500);
    json_decref(norm);
    norm = NULL;
    assert_int_equal(try_cpu("limit", json_string("750 MHz"), &norm, NULL), 0);
    assert_int_equal(geti(norm, "compute.cpu.limit_mhz"), 750);
    json_decref(norm);
    norm = NULL;
    assert_int_equal(try_cpu("shares", json_string("HIGH"), &norm, NULL), 0);
    json_decref(norm);
    norm = NULL;
    assert_int_equal(try_cpu("shares", json_integer(1500), &norm, NULL), 0);
    assert_int_equal(geti(norm, "compute.cpu.shares"), 1500);
    json_decref(norm);
    norm = NULL;

    struct {
        const char *field;
        json_t *value;
        const char *msg;
    } bad[] = {
        {"limit", json_string("4GB"),
         "resourcePolicy.compute.cpu.limit: unknown unit 'GB' (use "
         "MHz or GHz)"},
        {"limit", json_integer(4000), "a bare number is ambiguous"},
        {"limit", json_string("fast"), "is not a quantity"},
        {"limit", json_string("0GHz"), "a limit of 0"},
        {"limit", json_string("2.1234567GHz"), "more than 6 decimals"},
        {"shares", json_string("medium"), "unknown level 'medium'"},
        {"shares", json_integer(1), "out of range"},
        {"burst", json_string("1GHz"), "unknown field 'burst'"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autofree char *msg = NULL;
        assert_int_not_equal(try_cpu(bad[i].field, bad[i].value, NULL, &msg), 0);
        if (!strstr(msg, bad[i].msg))
            fail_msg("case %zu: '%s' does not say '%s'", i, msg, bad[i].msg);
    }

    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) rp = json_pack("{s:{s:{s:s, s:s}}}", "compute", "memory", "reservation",
                                      "1.5GB", "limit", "1GiB");
    assert_int_equal(st_resource_policy_normalize(rp, NULL, NULL, &err), -EINVAL);
    assert_string_equal(err->msg, "resourcePolicy.compute.memory: reservation (1.5GB) is above "
                                  "the limit (1GiB)");
    st_err_clear(&err);
    st_autoptr(json_t) empty = json_object();
    assert_int_equal(st_resource_policy_normalize(empty, NULL, NULL, &err), -EINVAL);
    st_err_clear(&err);
    st_autoptr(json_t) gpu = json_pack("{s:{}}", "gpu");
    assert_int_equal(st_resource_policy_normalize(gpu, NULL, NULL, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "unknown field 'gpu'"));
}

static void test_policy_yaml_reader(void **state)
{
    (void)state;
    st_autoptr(json_t) v = NULL;
    const char *doc = "a: 1\nb: '2'\nc: [true, null, 1.5, ~, x]\n";
    assert_int_equal(st_resource_policy_parse_text(doc, strlen(doc), &v, NULL), 0);
    st_autofree char *s = st_json_dumps(v);
    assert_string_equal(s, "{\"a\":1,\"b\":\"2\",\"c\":[true,null,1.5,null,\"x\"]}");
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) none = NULL;
    const char *alias = "a: &x {b: 1}\nc: *x\n";
    assert_int_equal(st_resource_policy_parse_text(alias, strlen(alias), &none, &err), -EINVAL);
    assert_string_equal(err->msg, "YAML aliases are not supported");
    st_err_clear(&err);
    const char *broken = "a: [1, 2\n";
    assert_int_equal(st_resource_policy_parse_text(broken, strlen(broken), &none, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "invalid YAML"));
    assert_null(none);
}

static void test_policy_store(void **state)
{
    struct kv_fixture *f = *state;
    st_autoptr(json_t) rp = seed_resource_policy();
    st_autoptr(json_t) doc = NULL;
    bool created = false;
    assert_int_equal(st_resource_policy_put(f->kv, "proj-a", "gold", rp, &doc, &created, NULL), 0);
    assert_true(created);
    int64_t rev = st_kv_revision(f->kv);
    /* applying the same document again writes nothing */
    st_autoptr(json_t) again = NULL;
    assert_int_equal(st_resource_policy_put(f->kv, "proj-a", "gold", rp, &again, &created, NULL),
                     0);
    assert_false(created);
    assert_int_equal(st_kv_revision(f->kv), rev);
    assert_true(json_equal(doc, again));
    /* storage and network are kept and flagged, never dropped */
    st_autoptr(json_t) got = NULL;
    assert_int_equal(st_resource_policy_get(f->kv, "proj-a", "gold", &got, NULL), 0);
    assert_true(json_equal(json_object_get(got, "resourcePolicy"), rp));
    assert_int_equal(json_array_size(json_object_get(got, "not_enforced")), 2);
    /* another project has its own namespace */
    st_autoptr(st_err) err = NULL;
    st_autoptr(json_t) none = NULL;
    assert_int_equal(st_resource_policy_get(f->kv, "proj-b", "gold", &none, &err), -ENOENT);
    assert_string_equal(err->msg, "resource policy 'gold' not found");
    st_err_clear(&err);
    st_autoptr(json_t) small = json_pack("{s:{s:{s:s}}}", "compute", "cpu", "shares", "low");
    assert_int_equal(st_resource_policy_put(f->kv, "proj-b", "gold", small, NULL, &created, NULL),
                     0);
    assert_true(created);
    st_autoptr(json_t) list_a = NULL;
    st_autoptr(json_t) list_all = NULL;
    assert_int_equal(st_resource_policy_list(f->kv, "proj-a", &list_a, NULL), 0);
    assert_int_equal(json_array_size(list_a), 1);
    assert_int_equal(st_resource_policy_list(f->kv, NULL, &list_all, NULL), 0);
    assert_int_equal(json_array_size(list_all), 2);
    /* a replaced policy keeps its creation time */
    assert_int_equal(st_resource_policy_put(f->kv, "proj-a", "gold", small, &none, &created, NULL),
                     0);
    assert_false(created);
    assert_true(
        json_equal(json_object_get(none, "created_at"), json_object_get(doc, "created_at")));
    assert_int_equal(st_resource_policy_put(f->kv, "proj-a", "a/b", small, NULL, NULL, &err),
                     -EINVAL);
    st_err_clear(&err);
    assert_int_equal(st_resource_policy_delete(f->kv, "proj-a", "gold", NULL), 0);
    assert_int_equal(st_resource_policy_delete(f->kv, "proj-a", "gold", &err), -ENOENT);
}

/* ---- resources ---- */

static json_t *flavor(int vcpus, int ram, int disk, json_t *specs)
{
    return json_pack("{s:i, s:i, s:i, s:o}", "vcpus", vcpus, "ram", ram, "disk", disk,
                     "extra_specs", specs ? specs : json_object());
}

static void test_resources_seed_policy(void **state)
{
    (void)state;
    st_autoptr(json_t) rp = seed_resource_policy();
    st_autoptr(json_t) fl = flavor(2, 2048, 20, NULL);
    st_autoptr(json_t) res = NULL;
    assert_int_equal(st_compute_resources(fl, rp, &res, NULL), 0);
    assert_int_equal(geti(res, "vcpus"), 2);
    assert_int_equal(geti(res, "memory_mb"), 2048);
    assert_int_equal(geti(res, "disk_gb"), 20);
    assert_int_equal(geti(res, "cpu_reservation_mhz"), 2000);
    assert_int_equal(geti(res, "cpu_limit_mhz"), 4000);
    assert_int_equal(geti(res, "cpu_shares"), 2048); /* normal x 2 vCPU */
    assert_int_equal(geti(res, "memory_reservation_mb"), 4096);
    assert_int_equal(geti(res, "memory_limit_mb"), 8192);
    assert_int_equal(geti(res, "pids_limit"), 4096);
    assert_int_equal(geti(res, "cpu_quota_us"), 0);
    /* a stored policy document works as well as the bare object */
    st_autoptr(json_t) stored = json_pack("{s:s, s:O}", "name", "gold", "resourcePolicy", rp);
    st_autoptr(json_t) res2 = NULL;
    assert_int_equal(st_compute_resources(fl, stored, &res2, NULL), 0);
    assert_true(json_equal(res, res2));
}

static void test_resources_flavor_only(void **state)
{
    (void)state;
    st_autoptr(json_t) plain = flavor(4, 4096, 20, NULL);
    st_autoptr(json_t) res = NULL;
    assert_int_equal(st_compute_resources(plain, NULL, &res, NULL), 0);
    assert_int_equal(geti(res, "memory_reservation_mb"), 4096);
    assert_int_equal(geti(res, "memory_limit_mb"), 4096);
    assert_int_equal(geti(res, "cpu_reservation_mhz"), 0);
    assert_int_equal(geti(res, "cpu_limit_mhz"), 0);
    assert_int_equal(geti(res, "cpu_shares"), 4096);

    /* Nova's quota keys: cpu_quota is per vCPU, the instance gets the sum */
    st_autoptr(json_t) tuned = flavor(
        2, 1024, 10,
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "quota:cpu_shares", "300", "quota:cpu_quota",
                  "50000", "quota:cpu_period", "100000", "resources:memory_reservation_mb", "512",
                  "resources:cpu_reservation_mhz", "1000", "resources:pids_limit", "128"));
    st_autoptr(json_t) res2 = NULL;
    assert_int_equal(st_compute_resources(tuned, NULL, &res2, NULL), 0);
    assert_int_equal(geti(res2, "cpu_shares"), 300);
    assert_int_equal(geti(res2, "cpu_quota_us"), 100000);
    assert_int_equal(geti(res2, "cpu_period_us"), 100000);
    assert_int_equal(geti(res2, "memory_reservation_mb"), 512);
    assert_int_equal(geti(res2, "memory_limit_mb"), 1024);
    assert_int_equal(geti(res2, "cpu_reservation_mhz"), 1000);
    assert_int_equal(geti(res2, "pids_limit"), 128);

    /* the policy wins where both speak: shares and the limit (which drops the quota) */
    st_autoptr(json_t) rp =
        json_pack("{s:{s:{s:s, s:s}}}", "compute", "cpu", "shares", "low", "limit", "1GHz");
    st_autoptr(json_t) res3 = NULL;
    assert_int_equal(st_compute_resources(tuned, rp, &res3, NULL), 0);
    assert_int_equal(geti(res3, "cpu_shares"), 1024); /* low x 2 vCPU */
    assert_int_equal(geti(res3, "cpu_limit_mhz"), 1000);
    assert_int_equal(geti(res3, "cpu_quota_us"), 0);
    assert_int_equal(geti(res3, "cpu_reservation_mhz"), 1000); /* the flavor's, unopposed */

    /* a reservation alone raises the default limit instead of contradicting it */
    st_autoptr(json_t) res_only =
        json_pack("{s:{s:{s:s}}}", "compute", "memory", "reservation", "2GB");
    st_autoptr(json_t) res4 = NULL;
    assert_int_equal(st_compute_resources(tuned, res_only, &res4, NULL), 0);
    assert_int_equal(geti(res4, "memory_reservation_mb"), 2048);
    assert_int_equal(geti(res4, "memory_limit_mb"), 2048);

    /* an explicit contradiction is refused */
    st_autoptr(json_t) clash_fl =
        flavor(1, 1024, 1, json_pack("{s:s}", "resources:memory_limit_mb", "256"));
    st_autoptr(json_t) res5 = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_compute_resources(clash_fl, res_only, &res5, &err), -EINVAL);
    assert_string_equal(err->msg, "memory reservation of 2048 MiB is above the limit of 256 MiB");
    st_err_clear(&err);
    st_autoptr(json_t) junk = flavor(1, 1024, 1, json_pack("{s:s}", "quota:cpu_shares", "lots"));
    assert_int_equal(st_compute_resources(junk, NULL, &res5, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "quota:cpu_shares"));
}

static void test_policy_for_server(void **state)
{
    struct kv_fixture *f = *state;
    st_autoptr(json_t) gold = seed_resource_policy();
    st_autoptr(json_t) bronze = json_pack("{s:{s:{s:s}}}", "compute", "cpu", "shares", "low");
    assert_int_equal(st_resource_policy_put(f->kv, "p1", "gold", gold, NULL, NULL, NULL), 0);
    assert_int_equal(st_resource_policy_put(f->kv, "p1", "bronze", bronze, NULL, NULL, NULL), 0);
    st_autoptr(json_t) fl =
        flavor(2, 2048, 20, json_pack("{s:s}", "stratos:resource_policy", "gold"));
    st_autoptr(json_t) md = json_pack("{s:s}", "resource_policy", "bronze");
    st_autoptr(json_t) p = NULL;
    assert_int_equal(st_compute_policy_for(f->kv, "p1", fl, NULL, &p, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(p, "name")), "gold");
    json_decref(p);
    p = NULL;
    assert_int_equal(st_compute_policy_for(f->kv, "p1", fl, md, &p, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(p, "name")), "bronze");
    json_decref(p);
    p = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_compute_policy_for(f->kv, "p2", fl, NULL, &p, &err), -EINVAL);
    assert_string_equal(err->msg, "resource policy 'gold' (from the flavor's extra spec "
                                  "stratos:resource_policy) not found in this project");
    st_autoptr(json_t) plain = flavor(1, 512, 1, NULL);
    assert_int_equal(st_compute_policy_for(f->kv, "p1", plain, NULL, &p, NULL), 0);
    assert_null(p);
}

/* ---- flavors ---- */

static void test_flavor_lifecycle(void **state)
{
    struct kv_fixture *f = *state;
    st_autoptr(json_t) req = json_pack("{s:s, s:i, s:i, s:i, s:n, s:b}", "name", "m1.medium",
                                       "vcpus", 2, "ram", 4096, "disk", 20, "id", "is_public", 1);
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_flavor_create(f->kv, req, &doc, NULL), 0);
    const char *id = json_string_value(json_object_get(doc, "id"));
    assert_int_equal(strlen(id), 36); /* id null: a UUID */
    assert_int_equal(geti(doc, "vcpus"), 2);

    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_flavor_create(f->kv, req, NULL, &err), -EEXIST);
    assert_string_equal(err->msg, "Flavor with name m1.medium already exists.");
    st_err_clear(&err);
    st_autoptr(json_t) req2 = json_pack("{s:s, s:s, s:s, s:i, s:i}", "name", "other", "id", id,
                                        "vcpus", "1", "ram", 512, "disk", 0);
    assert_int_equal(st_flavor_create(f->kv, req2, NULL, &err), -EEXIST);
    st_autofree char *want = st_sprintf("Flavor with ID %s already exists.", id);
    assert_string_equal(err->msg, want);
    st_err_clear(&err);
    /* a failed create leaves its name free */
    json_object_set_new(req2, "id", json_string("42"));
    assert_int_equal(st_flavor_create(f->kv, req2, NULL, NULL), 0);

    struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"vcpus\": 1, \"ram\": 1, \"disk\": 1}", "'name' is a required property"},
        {"{\"name\": \"x\", \"vcpus\": 0, \"ram\": 1, \"disk\": 1}", "out of range"},
        {"{\"name\": \"x\", \"vcpus\": \"two\", \"ram\": 1, \"disk\": 1}", "must be an integer"},
        {"{\"name\": \" x\", \"vcpus\": 1, \"ram\": 1, \"disk\": 1}", "whitespace"},
        {"{\"name\": \"x\", \"vcpus\": 1, \"ram\": 1, \"disk\": 1, \"id\": \"a/b\"}", "'id'"},
        {"{\"name\": \"x\", \"vcpus\": 1, \"ram\": 1}", "'disk' is a required property"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(json_t) b = NULL;
        assert_int_equal(st_json_parse_object(bad[i].json, strlen(bad[i].json), &b, NULL), 0);
        assert_int_equal(st_flavor_create(f->kv, b, NULL, &err), -EINVAL);
        if (!strstr(err->msg, bad[i].msg))
            fail_msg("case %zu: '%s' does not say '%s'", i, err->msg, bad[i].msg);
        st_err_clear(&err);
    }

    /* extra specs: numbers become text, stratos's keys are checked */
    st_autoptr(json_t) specs =
        json_pack("{s:i, s:s}", "quota:cpu_shares", 2048, "hw:cpu_policy", "dedicated");
    st_autoptr(json_t) stored = NULL;
    assert_int_equal(st_flavor_set_extra_specs(f->kv, id, specs, &stored, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(stored, "quota:cpu_shares")), "2048");
    st_autoptr(json_t) bad_spec = json_pack("{s:s}", "quota:cpu_shares", "lots");
    assert_int_equal(st_flavor_set_extra_specs(f->kv, id, bad_spec, NULL, &err), -EINVAL);
    assert_string_equal(err->msg, "extra spec quota:cpu_shares: 'lots' is not an integer");
    st_err_clear(&err);
    st_autoptr(json_t) typo = json_pack("{s:s}", "stratos:resource_polcy", "gold");
    assert_int_equal(st_flavor_set_extra_specs(f->kv, id, typo, NULL, &err), -EINVAL);
    st_err_clear(&err);
    assert_int_equal(st_flavor_unset_extra_spec(f->kv, id, "hw:cpu_policy", NULL), 0);
    assert_int_equal(st_flavor_unset_extra_spec(f->kv, id, "hw:cpu_policy", &err), -ENOENT);
    st_err_clear(&err);
    st_autoptr(json_t) got = NULL;
    assert_int_equal(st_flavor_get(f->kv, id, &got, NULL), 0);
    st_autofree char *s = st_json_dumps(json_object_get(got, "extra_specs"));
    assert_string_equal(s, "{\"quota:cpu_shares\":\"2048\"}");

    st_autoptr(json_t) all = NULL;
    assert_int_equal(st_flavor_list(f->kv, &all, NULL), 0);
    assert_int_equal(json_array_size(all), 2);

    /* deleting frees the name */
    assert_int_equal(st_flavor_delete(f->kv, id, NULL), 0);
    assert_int_equal(st_flavor_get(f->kv, id, &got, &err), -ENOENT);
    st_autofree char *nf = st_sprintf("Flavor %s could not be found.", id);
    assert_string_equal(err->msg, nf);
    st_err_clear(&err);
    assert_int_equal(st_flavor_delete(f->kv, id, &err), -ENOENT);
    assert_int_equal(st_flavor_create(f->kv, req, NULL, NULL), 0);
}

static void test_flavor_private_access(void **state)
{
    struct kv_fixture *f = *state;
    st_autoptr(json_t) req = json_pack("{s:s, s:s, s:i, s:i, s:i, s:b}", "name", "secret", "id",
                                       "p1", "vcpus", 1, "ram", 512, "disk", 1, "is_public", 0);
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_flavor_create(f->kv, req, &doc, NULL), 0);
    assert_false(st_flavor_visible(doc, "proj-a"));
    assert_int_equal(st_flavor_access(f->kv, "p1", "proj-a", true, NULL), 0);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_flavor_access(f->kv, "p1", "proj-a", true, &err), -EEXIST);
    st_err_clear(&err);
    st_autoptr(json_t) got = NULL;
    assert_int_equal(st_flavor_get(f->kv, "p1", &got, NULL), 0);
    assert_true(st_flavor_visible(got, "proj-a"));
    assert_false(st_flavor_visible(got, "proj-b"));
    assert_int_equal(st_flavor_access(f->kv, "p1", "proj-a", false, NULL), 0);
    assert_int_equal(st_flavor_access(f->kv, "p1", "proj-a", false, &err), -ENOENT);
}

struct race {
    struct st_kv *kv;
    int result;
};

static void *create_same_name(void *arg)
{
    struct race *r = arg;
    st_autoptr(json_t) req =
        json_pack("{s:s, s:i, s:i, s:i}", "name", "contended", "vcpus", 1, "ram", 64, "disk", 0);
    r->result = st_flavor_create(r->kv, req, NULL, NULL);
    return NULL;
}

/* Concurrent creates of one name: exactly one wins. */
static void test_flavor_name_race(void **state)
{
    struct kv_fixture *f = *state;
    struct race races[8];
    pthread_t threads[8];
    for (int i = 0; i < 8; i++) {
        races[i] = (struct race){f->kv, 1};
        assert_int_equal(pthread_create(&threads[i], NULL, create_same_name, &races[i]), 0);
    }
    int wins = 0, conflicts = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        wins += races[i].result == 0;
        conflicts += races[i].result == -EEXIST;
    }
    assert_int_equal(wins, 1);
    assert_int_equal(conflicts, 7);
}

/* ---- keypairs ---- */

static const char ed25519_pub[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8TSOVqTBIQwhsuT3rXz1pVFYZq08xgVacfRs3zQEKm test\n";
static const char ed25519_md5[] = "78:02:f0:14:6f:00:0d:7b:a2:6d:7c:ec:40:72:01:ca";
static const char rsa_pub[] =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDhEtPyq5Ycog9MI/SZQvvwDAFWLRQzH1Lv5WQpn0GHiL3t7TQbZ+xNVMXwxU+"
    "fryrUqD9qdXbZrCPf01bQiXtHSW2LlZqvRuG/lA1vYWjZrLvzXBVsNXjlnvlDhPNiyfPJgLpe5xthaqUBELhoYezJH4iI"
    "PahVeoYfOH/UgvUzAQ== small";
static const char rsa_md5[] = "b3:99:4b:97:b6:5f:f7:ae:ed:92:5a:2c:47:a7:0b:27";
static const char ecdsa_pub[] =
    "ecdsa-sha2-nistp256 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPFRiCmiGWYbFZyAoVYwiwOHG882g3zSdCGs8GVJ"
    "YOc9Lcm9N7inhmykFQy8a43NwLVzQjj1jxJZUn8Lqh04Lu4= root@vm";
static const char ecdsa_md5[] = "7d:2f:85:0b:12:49:41:b2:11:bf:90:bc:56:f8:f8:15";

static void test_keypair_fingerprints(void **state)
{
    (void)state;
    char fp[48];
    st_autofree char *norm = NULL;
    /* the fingerprints `ssh-keygen -l -E md5` printed for these keys */
    assert_int_equal(st_keypair_parse_public(ed25519_pub, fp, &norm, NULL), 0);
    assert_string_equal(fp, ed25519_md5);
    assert_string_equal(norm, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8TSOVqTBIQwhsuT3rXz1pVFYZq0"
                              "8xgVacfRs3zQEKm test");
    assert_int_equal(st_keypair_parse_public(rsa_pub, fp, NULL, NULL), 0);
    assert_string_equal(fp, rsa_md5);
    assert_int_equal(st_keypair_parse_public(ecdsa_pub, fp, NULL, NULL), 0);
    assert_string_equal(fp, ecdsa_md5);

    const char *bad[] = {
        "",
        "ssh-ed25519",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        "ssh-ed25519 not*base64",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8TSOVqTBIQwhsuT3rXz1pVFYZq08xgVacfRs3zQE==", /* short
                                                                                             */
        /* an ed25519 blob under the rsa name */
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIE8TSOVqTBIQwhsuT3rXz1pVFYZq08xgVacfRs3zQEKm",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8TSOVqTBIQwhsuT3rXz1pVFYZq08xgVacfRs3zQEKm a\nb",
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(st_err) err = NULL;
        if (st_keypair_parse_public(bad[i], fp, NULL, &err) != -EINVAL)
            fail_msg("case %zu accepted: %s", i, bad[i]);
        assert_non_null(strstr(err->msg, "Keypair data is invalid"));
    }
}

static size_t read_u32(const unsigned char *p)
{
    return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

/* The generated private key is openssh-key-v1 and holds the public key. */
static void test_keypair_generate(void **state)
{
    (void)state;
    st_autofree char *pub = NULL, *priv = NULL;
    assert_int_equal(st_keypair_generate("c", &pub, &priv, NULL), 0);
    char fp[48];
    assert_int_equal(st_keypair_parse_public(pub, fp, NULL, NULL), 0);
    const char *head = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
    const char *tail = "-----END OPENSSH PRIVATE KEY-----\n";
    assert_memory_equal(priv, head, strlen(head));
    size_t plen = strlen(priv);
    assert_string_equal(priv + plen - strlen(tail), tail);
    /* body: base64 in lines of at most 70 */
    char b64[2048] = "";
    size_t n = 0;
    for (const char *p = priv + strlen(head); p < priv + plen - strlen(tail); p++) {
        if (*p == '\n')
            continue;
        b64[n++] = *p;
    }
    unsigned char bin[1600];
    int len = EVP_DecodeBlock(bin, (unsigned char *)b64, (int)n);
    assert_true(len > 100);
    assert_memory_equal(bin, "openssh-key-v1\0", 15);
    size_t off = 15;
    for (int i = 0; i < 3; i++) /* cipher "none", kdf "none", kdf options "" */
        off += 4 + read_u32(bin + off);
    assert_int_equal(read_u32(bin + off), 1);
    off += 4;
    size_t blob_len = read_u32(bin + off);
    assert_int_equal(blob_len, 51);
    /* the blob is the public key line's */
    unsigned char pub_bin[64];
    const char *pub_b64 = pub + strlen("ssh-ed25519 ");
    int pn = EVP_DecodeBlock(pub_bin, (const unsigned char *)pub_b64,
                             (int)(strchr(pub_b64, ' ') - pub_b64));
    assert_true(pn >= 51);
    assert_memory_equal(bin + off + 4, pub_bin, 51);
    off += 4 + blob_len;
    size_t priv_len = read_u32(bin + off);
    off += 4;
    assert_int_equal(priv_len % 8, 0);
    assert_memory_equal(bin + off, bin + off + 4, 4); /* the two check integers */
    /* a second key is another key */
    st_autofree char *pub2 = NULL, *priv2 = NULL;
    assert_int_equal(st_keypair_generate("c", &pub2, &priv2, NULL), 0);
    assert_string_not_equal(pub, pub2);
}

static void test_keypair_store(void **state)
{
    struct kv_fixture *f = *state;
    st_autoptr(json_t) doc = NULL;
    assert_int_equal(st_keypair_create(f->kv, "u1", "k1", ed25519_pub, &doc, NULL, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "fingerprint")), ed25519_md5);
    assert_true(json_integer_value(json_object_get(doc, "id")) > 0);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_keypair_create(f->kv, "u1", "k1", rsa_pub, NULL, NULL, &err), -EEXIST);
    assert_string_equal(err->msg, "Key pair 'k1' already exists.");
    st_err_clear(&err);
    /* the same name for another user is another keypair */
    assert_int_equal(st_keypair_create(f->kv, "u2", "k1", rsa_pub, NULL, NULL, NULL), 0);
    st_autofree char *priv = NULL;
    st_autoptr(json_t) gen = NULL;
    assert_int_equal(st_keypair_create(f->kv, "u1", "my key_2-x", NULL, &gen, &priv, NULL), 0);
    assert_non_null(strstr(priv, "BEGIN OPENSSH PRIVATE KEY"));
    assert_null(json_object_get(gen, "private_key")); /* never stored */
    assert_int_equal(st_keypair_create(f->kv, "u1", "bad/name", NULL, NULL, NULL, &err), -EINVAL);
    assert_string_equal(err->msg, "Keypair data is invalid: Keypair name contains unsafe "
                                  "characters");
    st_err_clear(&err);
    st_autoptr(json_t) got = NULL;
    assert_int_equal(st_keypair_get(f->kv, "u1", "k1", &got, NULL), 0);
    assert_true(json_equal(json_object_get(got, "id"), json_object_get(doc, "id")));
    st_autoptr(json_t) none = NULL;
    assert_int_equal(st_keypair_get(f->kv, "u2", "my key_2-x", &none, &err), -ENOENT);
    assert_string_equal(err->msg, "Keypair my key_2-x not found for user u2");
    st_err_clear(&err);
    st_autoptr(json_t) mine = NULL;
    assert_int_equal(st_keypair_list(f->kv, "u1", &mine, NULL), 0);
    assert_int_equal(json_array_size(mine), 2);
    assert_int_equal(st_keypair_delete(f->kv, "u1", "k1", NULL), 0);
    assert_int_equal(st_keypair_delete(f->kv, "u1", "k1", &err), -ENOENT);
    st_err_clear(&err);
    /* Nova's quota of 100 keypairs per user */
    for (int i = 0; i < ST_KEYPAIR_PER_USER; i++) {
        st_autofree char *name = st_sprintf("q%d", i);
        assert_int_equal(st_keypair_create(f->kv, "u3", name, ed25519_pub, NULL, NULL, NULL), 0);
    }
    assert_int_equal(st_keypair_create(f->kv, "u3", "one-more", ed25519_pub, NULL, NULL, &err),
                     -EDQUOT);
}

/* ---- nodes ---- */

static void put_json(struct st_kv *kv, const char *key, json_t *doc)
{
    st_autofree char *s = st_json_dumps(doc);
    assert_int_equal(st_kv_put(kv, key, s, strlen(s), ST_KV_ANY, NULL, NULL), 0);
}

static void test_nodes_summary(void **state)
{
    struct kv_fixture *f = *state;
    int64_t now = st_time_now_ms();
    char fresh[ST_TIME_RFC3339_LEN], stale[ST_TIME_RFC3339_LEN];
    st_time_rfc3339_ms(now - 5000, fresh, sizeof(fresh));
    st_time_rfc3339_ms(now - 60000, stale, sizeof(stale));
    st_autoptr(json_t) n1 = json_pack(
        "{s:s, s:[s], s:{s:i, s:i, s:i, s:i}, s:s, s:i, s:s}", "name", "node1", "drivers",
        "container", "capacity", "vcpus", 8, "cpu_mhz", 2400, "memory_mb", 16384, "disk_gb", 100,
        "heartbeat_at", fresh, "lease_seconds", 30, "availability_zone", "nova");
    st_autoptr(json_t) n2 =
        json_pack("{s:s, s:[s], s:{s:i}, s:s, s:i}", "name", "node2", "drivers", "sim", "capacity",
                  "vcpus", 4, "heartbeat_at", stale, "lease_seconds", 30);
    put_json(f->kv, ST_COMPUTE_NODES_PREFIX "node1", n1);
    put_json(f->kv, ST_COMPUTE_NODES_PREFIX "node2", n2);
    st_autoptr(json_t) alloc =
        json_pack("{s:{s:{s:i, s:i, s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i, s:i}}}", "servers", "a",
                  "vcpus", 2, "memory_mb", 4096, "disk_gb", 20, "cpu_reservation_mhz", 2000,
                  "memory_reservation_mb", 4096, "b", "vcpus", 1, "memory_mb", 512, "disk_gb", 1,
                  "cpu_reservation_mhz", 0, "memory_reservation_mb", 512);
    put_json(f->kv, ST_COMPUTE_ALLOCATIONS_PREFIX "node1", alloc);
    st_autoptr(json_t) sum = NULL;
    assert_int_equal(st_compute_nodes_summary(f->kv, now, &sum, NULL), 0);
    assert_int_equal(json_array_size(sum), 2);
    json_t *a = json_array_get(sum, 0), *b = json_array_get(sum, 1);
    assert_string_equal(json_string_value(json_object_get(a, "name")), "node1");
    assert_string_equal(json_string_value(json_object_get(a, "state")), "up");
    assert_string_equal(json_string_value(json_object_get(b, "state")), "down");
    assert_int_equal(geti(a, "used.vcpus"), 3);
    assert_int_equal(geti(a, "used.memory_mb"), 4608);
    assert_int_equal(geti(a, "used.cpu_reservation_mhz"), 2000);
    assert_int_equal(geti(a, "used.servers"), 2);
    assert_int_equal(geti(b, "used.servers"), 0);
    assert_true(geti(a, "id") != geti(b, "id"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_seed_document),
        cmocka_unit_test(test_policy_units_and_errors),
        cmocka_unit_test(test_policy_yaml_reader),
        cmocka_unit_test_setup_teardown(test_policy_store, kv_setup, kv_teardown),
        cmocka_unit_test(test_resources_seed_policy),
        cmocka_unit_test(test_resources_flavor_only),
        cmocka_unit_test_setup_teardown(test_policy_for_server, kv_setup, kv_teardown),
        cmocka_unit_test_setup_teardown(test_flavor_lifecycle, kv_setup, kv_teardown),
        cmocka_unit_test_setup_teardown(test_flavor_private_access, kv_setup, kv_teardown),
        cmocka_unit_test_setup_teardown(test_flavor_name_race, kv_setup, kv_teardown),
        cmocka_unit_test(test_keypair_fingerprints),
        cmocka_unit_test(test_keypair_generate),
        cmocka_unit_test_setup_teardown(test_keypair_store, kv_setup, kv_teardown),
        cmocka_unit_test_setup_teardown(test_nodes_summary, kv_setup, kv_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
