/* Unit tests of stratosd's configuration: flags, YAML file, precedence,
 * and the errors a user sees for bad input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/config.h"
#include "lib/cleanup.h"
#include "lib/files.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/st-test-daemon-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    st_autofree char *cmd = st_sprintf("rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *write_config(const char *text)
{
    char *path = st_sprintf("%s/stratosd.yaml", tmpdir);
    assert_int_equal(st_write_file_atomic(path, text, strlen(text), 0600, NULL), 0);
    return path;
}

static int load(struct st_daemon_config *cfg, struct st_err **err, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return st_daemon_config_load(argc, argv, cfg, err);
}

static void test_defaults_and_flags(void **state)
{
    (void)state;
    struct st_daemon_config cfg;
    char *argv[] = {"stratosd", "init",       "--data-dir", "/srv/x", "--listen=0.0.0.0:9000",
                    "--role",   "controller", NULL};
    assert_int_equal(load(&cfg, NULL, argv), 0);
    assert_int_equal(cfg.command, ST_DAEMON_INIT);
    assert_string_equal(cfg.data_dir, "/srv/x");
    assert_string_equal(cfg.listen, "0.0.0.0:9000");
    assert_int_equal(cfg.role, ST_ROLE_CONTROLLER);
    assert_string_equal(cfg.public_url, "http://127.0.0.1:9000");
    assert_true(cfg.access_log);
    st_daemon_config_clear(&cfg);

    char *argv2[] = {"stratosd", NULL};
    assert_int_equal(load(&cfg, NULL, argv2), 0);
    assert_int_equal(cfg.command, ST_DAEMON_RUN);
    assert_string_equal(cfg.listen, ST_DAEMON_DEFAULT_LISTEN);
    assert_int_equal(cfg.role, ST_ROLE_ALL);
    assert_non_null(cfg.data_dir);
    st_daemon_config_clear(&cfg);
}

static void test_file_then_flags_win(void **state)
{
    (void)state;
    st_autofree char *path = write_config("# stratosd\n"
                                          "data-dir: /srv/from-file\n"
                                          "listen: 127.0.0.1:7000\n"
                                          "body-limit: 2MiB\n"
                                          "threads: 4\n"
                                          "access-log: false\n");
    struct st_daemon_config cfg;
    char *argv[] = {"stratosd", "--config", path, "--listen", "127.0.0.1:7001", NULL};
    assert_int_equal(load(&cfg, NULL, argv), 0);
    assert_string_equal(cfg.data_dir, "/srv/from-file");
    assert_string_equal(cfg.listen, "127.0.0.1:7001");
    assert_int_equal(cfg.body_limit, 2 * 1024 * 1024);
    assert_int_equal(cfg.threads, 4);
    assert_false(cfg.access_log);
    assert_string_equal(cfg.config_file, path);
    st_daemon_config_clear(&cfg);
}

static void expect_error(char **argv, const char *needle)
{
    struct st_daemon_config cfg;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(load(&cfg, &err, argv), -EINVAL);
    assert_non_null(err);
    if (!strstr(err->msg, needle))
        fail_msg("error '%s' does not mention '%s'", err->msg, needle);
    st_daemon_config_clear(&cfg);
}

static void test_bad_input(void **state)
{
    (void)state;
    expect_error((char *[]){"stratosd", "--role", "boss", NULL}, "invalid role 'boss'");
    expect_error((char *[]){"stratosd", "--bogus", NULL}, "unknown option '--bogus'");
    expect_error((char *[]){"stratosd", "--listen", NULL}, "needs a value");
    expect_error((char *[]){"stratosd", "frobnicate", NULL}, "unknown command 'frobnicate'");
    expect_error((char *[]){"stratosd", "--threads", "-3", NULL}, "invalid threads");
    expect_error((char *[]){"stratosd", "--body-limit", "12XB", NULL}, "invalid size");
    expect_error((char *[]){"stratosd", "--tls-cert", "/x.pem", NULL}, "together");

    st_autofree char *typo = write_config("listne: 1.2.3.4:5\n");
    expect_error((char *[]){"stratosd", "--config", typo, NULL}, "unknown key 'listne'");
    st_autofree char *broken = write_config("listen: [unclosed\n");
    expect_error((char *[]){"stratosd", "--config", broken, NULL}, "invalid YAML");
    st_autofree char *nested = write_config("listen: {a: b}\n");
    expect_error((char *[]){"stratosd", "--config", nested, NULL}, "single value");
}

/* Nova's allocation ratios: flags and YAML keys, unset (0: the agent's
 * defaults 4.0 / 1.0 / 1.0) until given, and only sensible numbers. */
static void test_allocation_ratios(void **state)
{
    (void)state;
    struct st_daemon_config cfg;
    char *none[] = {"stratosd", NULL};
    assert_int_equal(load(&cfg, NULL, none), 0);
    assert_true(cfg.cpu_allocation_ratio == 0);
    assert_true(cfg.ram_allocation_ratio == 0);
    assert_true(cfg.disk_allocation_ratio == 0);
    st_daemon_config_clear(&cfg);

    st_autofree char *path = write_config("cpu-allocation-ratio: 16\n"
                                          "ram-allocation-ratio: 1.5\n"
                                          "disk-allocation-ratio: 0.9\n");
    char *argv[] = {"stratosd", "--config", path, "--cpu-allocation-ratio", "1", NULL};
    assert_int_equal(load(&cfg, NULL, argv), 0);
    assert_true(cfg.cpu_allocation_ratio == 1.0); /* the flag wins */
    assert_true(cfg.ram_allocation_ratio == 1.5);
    assert_true(cfg.disk_allocation_ratio == 0.9);
    st_daemon_config_clear(&cfg);

    const char *bad[] = {"0", "-1", "abc", "2x", "", "nan", "inf", "1001", "1e400"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st_autofree char *want = st_sprintf(
            "--ram-allocation-ratio: invalid ram-allocation-ratio '%s': expected a number "
            "above 0, at most 1000",
            bad[i]);
        expect_error((char *[]){"stratosd", "--ram-allocation-ratio", (char *)bad[i], NULL}, want);
    }
    st_autofree char *zero = write_config("disk-allocation-ratio: 0\n");
    expect_error((char *[]){"stratosd", "--config", zero, NULL},
                 "invalid disk-allocation-ratio '0'");
    expect_error((char *[]){"stratosd", "--cpu-allocation-ratio", NULL}, "needs a value");
}

static void test_parse_size(void **state)
{
    (void)state;
    size_t v;
    assert_int_equal(st_daemon_parse_size("1048576", &v, NULL), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(st_daemon_parse_size("512KiB", &v, NULL), 0);
    assert_int_equal(v, 512 * 1024);
    assert_int_equal(st_daemon_parse_size("1G", &v, NULL), 0);
    assert_int_equal(v, 1024UL * 1024 * 1024);
    assert_int_equal(st_daemon_parse_size("", &v, NULL), -EINVAL);
    assert_int_equal(st_daemon_parse_size("99999999999999999999999", &v, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_flags), cmocka_unit_test(test_file_then_flags_win),
        cmocka_unit_test(test_bad_input),          cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_allocation_ratios),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
