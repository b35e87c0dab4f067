/* Unit tests of src/lib: errors, time, uuids, paths, files, JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "lib/cleanup.h"
#include "lib/err.h"
#include "lib/files.h"
#include "lib/json.h"
#include "lib/times.h"
#include "lib/uuid.h"

static int inner(struct st_err **err)
{
    return st_err_set(err, -ENOENT, "flavor '%s' not found", "m9");
}

static void test_err_prefix(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    int r = inner(&err);
    r = st_err_prefix(&err, r, "creating server '%s'", "web-01");
    assert_int_equal(r, -ENOENT);
    assert_int_equal(err->code, -ENOENT);
    assert_string_equal(err->msg, "creating server 'web-01': flavor 'm9' not found");
    /* a NULL err is allowed everywhere and keeps the code */
    assert_int_equal(inner(NULL), -ENOENT);
    assert_int_equal(st_err_prefix(NULL, -EIO, "x"), -EIO);
}

static void test_time_roundtrip(void **state)
{
    (void)state;
    char buf[ST_TIME_RFC3339_LEN];
    st_time_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    st_time_rfc3339_ms(1795726633123, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-26T20:57:13.123Z");
    int64_t ms;
    assert_int_equal(st_time_parse_rfc3339(buf, &ms), 0);
    assert_int_equal(ms, 1795726633123);
    assert_int_equal(st_time_parse_rfc3339("2026-11-26T21:57:13+01:00", &ms), 0);
    assert_int_equal(ms, 1795726633000);
    st_time_rfc3339_us(ms, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-26T20:57:13.000000Z");
    assert_int_equal(st_time_parse_rfc3339("2026-13-01T00:00:00Z", &ms), -EINVAL);
    assert_int_equal(st_time_parse_rfc3339("2026-11-26T20:57:13", &ms), -EINVAL);
    assert_int_equal(st_time_parse_rfc3339("garbage", &ms), -EINVAL);
}

static void test_uuid(void **state)
{
    (void)state;
    char a[ST_UUID_LEN], b[ST_UUID_LEN];
    st_uuid_new(a);
    st_uuid_new(b);
    assert_true(st_uuid_valid(a));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_false(st_uuid_valid("not-a-uuid"));
    char h[ST_HEX32_LEN];
    st_uuid_hex32(h);
    assert_int_equal(strlen(h), 32);
    /* ids that become parts of keys: nothing that reaches another key */
    assert_true(st_id_valid(a) && st_id_valid(h) && st_id_valid("web_01"));
    const char *bad[] = {NULL, "", "a/b", "..", "a b", "x\n", "\xc3\xa9"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++)
        assert_false(st_id_valid(bad[i]));
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    assert_false(st_id_valid(long_id));
    long_id[64] = '\0';
    assert_true(st_id_valid(long_id));
}

static void test_path_join(void **state)
{
    (void)state;
    st_autofree char *p = NULL;
    assert_int_equal(st_path_join("/var/lib/stratos", "images", &p, NULL), 0);
    assert_string_equal(p, "/var/lib/stratos/images");
    const char *bad[] = {"", ".", "..", "a/b", "/etc", "x\ny"};
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(st_err) err = NULL;
        char *q = NULL;
        assert_int_equal(st_path_join("/base", bad[i], &q, &err), -EINVAL);
        assert_null(q);
        assert_non_null(strstr(err->msg, "invalid name"));
    }
    st_autofree char *r = NULL;
    assert_int_equal(st_path_join_rel("/b", "a/b/c", &r, NULL), 0);
    assert_string_equal(r, "/b/a/b/c");
    char *q = NULL;
    assert_int_equal(st_path_join_rel("/b", "a/../../etc", &q, NULL), -EINVAL);
    assert_int_equal(st_path_join_rel("/b", "/etc", &q, NULL), -EINVAL);
    assert_int_equal(st_path_join_rel("/b", "a//b", &q, NULL), -EINVAL);
}

static void test_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/st-test-lib-XXXXXX";
    assert_non_null(mkdtemp(dir));
    st_autofree char *sub = st_sprintf("%s/a/b/c", dir);
    assert_int_equal(st_mkdir_p(sub, 0700, NULL), 0);
    assert_int_equal(st_mkdir_p(sub, 0700, NULL), 0);
    st_autofree char *f = st_sprintf("%s/file", sub);
    assert_int_equal(st_write_file_atomic(f, "hello", 5, 0600, NULL), 0);
    struct stat st;
    assert_int_equal(stat(f, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    st_autofree char *data = NULL;
    size_t len = 0;
    assert_int_equal(st_read_file(f, 100, &data, &len, NULL), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    char *small = NULL;
    assert_int_equal(st_read_file(f, 3, &small, NULL, NULL), -EFBIG);
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_read_file("/nonexistent/x", 3, &small, NULL, &err), -ENOENT);
    assert_non_null(strstr(err->msg, "/nonexistent/x"));
    st_autofree char *cmd = st_sprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_json(void **state)
{
    (void)state;
    st_autoptr(st_err) err = NULL;
    json_t *v = NULL;
    assert_int_equal(st_json_parse_object("{\"a\":", 5, &v, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "invalid JSON"));
    st_err_clear(&err);
    assert_int_equal(st_json_parse_object("[1]", 3, &v, &err), -EINVAL);
    st_err_clear(&err);
    assert_int_equal(st_json_parse_object("{\"a\":1,\"a\":2}", 13, &v, &err), -EINVAL);
    st_err_clear(&err);
    st_autoptr(json_t) o = NULL;
    const char *doc = "{\"name\":\"x\",\"n\":3,\"b\":true,\"o\":{},\"l\":[]}";
    assert_int_equal(st_json_parse_object(doc, strlen(doc), &o, NULL), 0);
    const char *s;
    int64_t n;
    bool b;
    json_t *sub;
    assert_int_equal(st_json_get_str(o, "name", true, &s, NULL), 0);
    assert_string_equal(s, "x");
    assert_int_equal(st_json_get_int(o, "n", true, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(st_json_get_bool(o, "b", true, &b, NULL), 0);
    assert_true(b);
    assert_int_equal(st_json_get_obj(o, "o", true, &sub, NULL), 0);
    assert_int_equal(st_json_get_array(o, "l", true, &sub, NULL), 0);
    assert_int_equal(st_json_get_str(o, "missing", false, &s, NULL), -ENOENT);
    assert_int_equal(st_json_get_str(o, "missing", true, &s, &err), -EINVAL);
    assert_string_equal(err->msg, "missing required field 'missing'");
    st_err_clear(&err);
    assert_int_equal(st_json_get_str(o, "n", true, &s, &err), -EINVAL);
    assert_string_equal(err->msg, "field 'n' must be a string");
    st_autofree char *dumped = st_json_dumps(o);
    assert_string_equal(dumped, doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_prefix), cmocka_unit_test(test_time_roundtrip),
        cmocka_unit_test(test_uuid),       cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_files),      cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
