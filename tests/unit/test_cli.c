/* Unit tests of src/cli: what the user sees from the formatters (golden
 * texts of table, value, json, yaml, shell, csv, -c, --sort-column), the
 * argument parsing (flags over environment, --opt=value, argparse errors),
 * the error line taken from each OpenStack error shape, and whole `stratos`
 * runs against a tiny HTTP server in a thread (status, version, errors,
 * --debug with the token hidden, connection refused). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/args.h"
#include "cli/auth.h"
#include "cli/command.h"
#include "cli/config.h"
#include "cli/http.h"
#include "cli/output.h"
#include "fake_http.h"
#include "lib/cleanup.h"
#include "lib/files.h"
#include "lib/json.h"
#include "version.h"

/* ---- helpers ---- */

static json_t *parse(const char *text)
{
    json_t *j = NULL;
    assert_int_equal(st_json_parse(text, strlen(text), &j, NULL), 0);
    return j;
}

struct capture {
    FILE *f;
    char *buf;
    size_t len;
};

static void capture_open(struct capture *c)
{
    c->buf = NULL;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
}

static char *capture_close(struct capture *c)
{
    fclose(c->f);
    return c->buf;
}

static char *show_text(const struct st_cli_output_opts *opts, const char *obj)
{
    st_autoptr(json_t) j = parse(obj);
    struct capture c;
    capture_open(&c);
    assert_int_equal(st_cli_output_show(c.f, opts, j, NULL), 0);
    return capture_close(&c);
}

static const struct st_cli_column servers_cols[] = {
    {"ID", "id"}, {"Name", "name"}, {"RAM", "ram"}, {"Networks", "networks"}};

static const char *servers_json =
    "[{\"id\": \"b\", \"name\": \"h\xc3\xa9llo\", \"ram\": 512,"
    "  \"networks\": [{\"name\": \"private\", \"ip\": \"10.0.0.5\"}]},"
    " {\"id\": \"a\", \"name\": \"x\", \"ram\": 2048}]";

static char *list_text(const struct st_cli_output_opts *opts, const char *rows)
{
    st_autoptr(json_t) j = parse(rows);
    struct capture c;
    capture_open(&c);
    assert_int_equal(
        st_cli_output_list(c.f, opts, servers_cols, ST_ARRAY_SIZE(servers_cols), j, NULL), 0);
    return capture_close(&c);
}

static const char *show_json =
    "{\"name\": \"stratos\", \"version\": \"0.1.0\", \"count\": 3, \"ok\": true,"
    " \"none\": null, \"api\": [\"v2\", \"v1\"], \"nested\": {\"b\": 1, \"a\": {\"c\": \"x\"}},"
    " \"multi\": \"a\\nbb\"}";

/* ---- formatters ---- */

static void test_show_table(void **state)
{
    (void)state;
    struct st_cli_output_opts o = {0};
    st_autofree char *s = show_text(&o, show_json);
    assert_string_equal(s, "+---------+----------------+\n"
                           "| Field   | Value          |\n"
                           "+---------+----------------+\n"
                           "| api     | v1, v2         |\n"
                           "| count   | 3              |\n"
                           "| multi   | a              |\n"
                           "|         | bb             |\n"
                           "| name    | stratos        |\n"
                           "| nested  | a.c='x', b='1' |\n"
                           "| none    | None           |\n"
                           "| ok      | True           |\n"
                           "| version | 0.1.0          |\n"
                           "+---------+----------------+\n");
}

static void test_list_table(void **state)
{
    (void)state;
    struct st_cli_output_opts o = {0};
    st_autofree char *s = list_text(&o, servers_json);
    /* numbers right-aligned (header too), widths in characters not bytes,
     * a missing key shows empty */
    assert_string_equal(s, "+----+-------+------+-------------------------------+\n"
                           "| ID | Name  |  RAM | Networks                      |\n"
                           "+----+-------+------+-------------------------------+\n"
                           "| b  | h\xc3\xa9llo |  512 | ip='10.0.0.5', name='private' |\n"
                           "| a  | x     | 2048 |                               |\n"
                           "+----+-------+------+-------------------------------+\n");

    /* an empty list prints a blank line, or the bare table on request */
    st_autofree char *empty = list_text(&o, "[]");
    assert_string_equal(empty, "\n");
    o.print_empty = true;
    st_autofree char *bare = list_text(&o, "[]");
    assert_string_equal(bare, "+----+------+-----+----------+\n"
                              "| ID | Name | RAM | Networks |\n"
                              "+----+------+-----+----------+\n"
                              "+----+------+-----+----------+\n");
}

static void test_columns_and_sort(void **state)
{
    (void)state;
    /* -c keeps the command's column order, as cliff does */
    const char *cols[] = {"Name", "ID", "Nope"};
    const char *sort[] = {"ID"};
    struct st_cli_output_opts o = {
        .columns = cols, .n_columns = 3, .sort_columns = sort, .n_sort_columns = 1};
    st_autofree char *s = list_text(&o, servers_json);
    assert_string_equal(s, "+----+-------+\n"
                           "| ID | Name  |\n"
                           "+----+-------+\n"
                           "| a  | x     |\n"
                           "| b  | h\xc3\xa9llo |\n"
                           "+----+-------+\n");
    o.sort_descending = true;
    o.format = ST_CLI_FORMAT_VALUE;
    st_autofree char *v = list_text(&o, servers_json);
    assert_string_equal(v, "b h\xc3\xa9llo\na x\n");

    const char *rsort[] = {"RAM"};
    struct st_cli_output_opts by_ram = {.format = ST_CLI_FORMAT_VALUE,
                                        .columns = cols + 1,
                                        .n_columns = 1,
                                        .sort_columns = rsort,
                                        .n_sort_columns = 1};
    st_autofree char *r = list_text(&by_ram, servers_json);
    assert_string_equal(r, "b\na\n"); /* 512 < 2048: numbers compare as numbers */

    /* show: -c picks fields */
    const char *fields[] = {"version", "name"};
    struct st_cli_output_opts so = {.columns = fields, .n_columns = 2};
    st_autofree char *t = show_text(&so, show_json);
    assert_string_equal(t, "+---------+---------+\n"
                           "| Field   | Value   |\n"
                           "+---------+---------+\n"
                           "| name    | stratos |\n"
                           "| version | 0.1.0   |\n"
                           "+---------+---------+\n");

    /* no known column at all is an error naming the known ones */
    const char *bad[] = {"Nope"};
    struct st_cli_output_opts bo = {.columns = bad, .n_columns = 1};
    st_autoptr(json_t) rows = parse(servers_json);
    st_autoptr(st_err) err = NULL;
    struct capture c;
    capture_open(&c);
    assert_int_equal(st_cli_output_list(c.f, &bo, servers_cols, 4, rows, &err), -EINVAL);
    free(capture_close(&c));
    assert_string_equal(err->msg, "No recognized column names in ['Nope']. Recognized columns "
                                  "are ['ID', 'Name', 'RAM', 'Networks'].");
}

static void test_value(void **state)
{
    (void)state;
    struct st_cli_output_opts o = {.format = ST_CLI_FORMAT_VALUE};
    st_autofree char *s = show_text(&o, "{\"b\": 2, \"a\": \"x y\", \"c\": null}");
    assert_string_equal(s, "x y\n2\nNone\n"); /* show: one value per line, sorted by field */
    st_autofree char *l = list_text(&o, servers_json);
    assert_string_equal(l, "b h\xc3\xa9llo 512 ip='10.0.0.5', name='private'\na x 2048 \n");
}

static void test_json(void **state)
{
    (void)state;
    struct st_cli_output_opts o = {.format = ST_CLI_FORMAT_JSON};
    st_autofree char *s = show_text(&o, "{\"b\": [1, 2], \"a\": \"\xc3\xa9\", \"c\": {}}");
    assert_string_equal(s, "{\n"
                           "  \"a\": \"\\u00E9\",\n"
                           "  \"b\": [\n"
                           "    1,\n"
                           "    2\n"
                           "  ],\n"
                           "  \"c\": {}\n"
                           "}\n");
    o.noindent = true;
    st_autofree char *l = list_text(&o, servers_json);
    assert_string_equal(l,
                        "[{\"ID\": \"b\", \"Name\": \"h\\u00E9llo\", \"RAM\": 512, "
                        "\"Networks\": [{\"name\": \"private\", \"ip\": \"10.0.0.5\"}]}, "
                        "{\"ID\": \"a\", \"Name\": \"x\", \"RAM\": 2048, \"Networks\": \"\"}]\n");
    st_autofree char *e = list_text(&o, "[]");
    assert_string_equal(e, "[]\n");
}

static void test_yaml(void **state)
{
    (void)state;
    struct st_cli_output_opts o = {.format = ST_CLI_FORMAT_YAML};
    st_autofree char *s = show_text(&o, show_json);
    assert_string_equal(s, "api:\n"
                           "- v2\n"
                           "- v1\n"
                           "count: 3\n"
                           "multi: \"a\\nbb\"\n"
                           "name: stratos\n"
                           "nested:\n"
                           "  a:\n"
                           "    c: x\n"
                           "  b: 1\n"
                           "none: null\n"
                           "ok: true\n"
                           "version: 0.1.0\n");
    st_autofree char *l = list_text(&o, servers_json);
    assert_string_equal(l, "- ID: b\n"
                           "  Name: h\xc3\xa9llo\n"
                           "  Networks:\n"
                           "  - ip: 10.0.0.5\n"
                           "    name: private\n"
                           "  RAM: 512\n"
                           "- ID: a\n"
                           "  Name: x\n"
                           "  Networks: ''\n"
                           "  RAM: 2048\n");
    /* strings that would read back as something else are quoted */
    st_autofree char *q = show_text(
        &o, "{\"a\": \"true\", \"b\": \"123\", \"c\": \"a: b\", \"d\": \"it's #1\","
            " \"e\": \"- x\", \"f\": \"2026-11-26T20:57:13Z\", \"g\": \"1.5\", \"h\": \"null\","
            " \"i\": \" lead\", \"j\": 1.5, \"k\": \"18e256fb-9d7f-4d20\", \"l\": [], \"m\": {}}");
    assert_string_equal(q, "a: 'true'\n"
                           "b: '123'\n"
                           "c: 'a: b'\n"
                           "d: 'it''s #1'\n"
                           "e: '- x'\n"
                           "f: '2026-11-26T20:57:13Z'\n"
                           "g: '1.5'\n"
                           "h: 'null'\n"
                           "i: ' lead'\n"
                           "j: 1.5\n"
                           "k: 18e256fb-9d7f-4d20\n"
                           "l: []\n"
                           "m: {}\n");
    st_autofree char *e = list_text(&o, "[]");
    assert_string_equal(e, "[]\n");
}

static void test_shell_and_csv(void **state)
{
    (void)state;
    struct st_cli_output_opts o = {.format = ST_CLI_FORMAT_SHELL, .prefix = "st_"};
    st_autofree char *s =
        show_text(&o, "{\"OS-EXT:power state\": 1, \"name\": \"say \\\"hi\\\"\", \"x\": null}");
    assert_string_equal(s, "st_os_ext_power_state=\"1\"\nst_name=\"say \\\"hi\\\"\"\n"
                           "st_x=\"None\"\n");

    struct st_cli_output_opts c = {.format = ST_CLI_FORMAT_CSV};
    st_autofree char *l =
        list_text(&c, "[{\"id\": \"a\\\"b\", \"name\": null, \"ram\": 1, \"networks\": \"x,y\"}]");
    assert_string_equal(l, "\"ID\",\"Name\",\"RAM\",\"Networks\"\n\"a\"\"b\",\"\",1,\"x,y\"\n");
    c.quote = ST_CLI_CSV_QUOTE_MINIMAL;
    st_autofree char *m =
        list_text(&c, "[{\"id\": \"a\", \"name\": \"b c\", \"ram\": 1, \"networks\": \"x,y\"}]");
    assert_string_equal(m, "ID,Name,RAM,Networks\na,b c,1,\"x,y\"\n");

    /* shell is for one object, csv for lists */
    st_autoptr(json_t) rows = parse("[]");
    struct capture cap;
    capture_open(&cap);
    assert_int_equal(st_cli_output_list(cap.f, &o, servers_cols, 4, rows, NULL), -EINVAL);
    free(capture_close(&cap));
}

static void test_cell(void **state)
{
    (void)state;
    const struct {
        const char *json;
        const char *text;
    } cases[] = {
        {"1.0", "1.0"},
        {"0.1", "0.1"},
        {"-2.5", "-2.5"},
        {"1e20", "1e+20"},
        {"1.5e-07", "1.5e-07"},
        {"123456.0", "123456.0"},
        {"-7", "-7"},
        {"false", "False"},
        {"\"a\\r\\nb\\rc\"", "a\nb c"},
        {"{\"k\": null, \"a\": [1, 2]}", "a='1, 2', k="},
        {"[{\"b\": 1}, {\"a\": \"x\"}]", "b='1'\na='x'"},
        {"[\"b\", \"a\"]", "a, b"},
        {"[[1], 2]", "[[1],2]"},
        {"[]", ""},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        st_autoptr(json_t) j = parse(cases[i].json);
        st_autofree char *t = st_cli_output_cell(j);
        assert_string_equal(t, cases[i].text);
    }
}

/* ---- arguments and configuration ---- */

static const char *const env_names[] = {
    "OS_AUTH_URL",
    "OS_USERNAME",
    "OS_PASSWORD",
    "OS_PROJECT_NAME",
    "OS_PROJECT_ID",
    "OS_USER_DOMAIN_NAME",
    "OS_PROJECT_DOMAIN_NAME",
    "OS_REGION_NAME",
    "OS_TOKEN",
    "OS_CACERT",
    "OS_INSECURE",
    "STRATOS_URL",
    "OS_USER_ID",
    "OS_USER_DOMAIN_ID",
    "OS_PROJECT_DOMAIN_ID",
    "OS_DEFAULT_DOMAIN",
    "OS_INTERFACE",
};

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < ST_ARRAY_SIZE(env_names); i++)
        unsetenv(env_names[i]);
    return 0;
}

static void test_config_env_and_flags(void **state)
{
    (void)state;
    setenv("OS_USERNAME", "env-user", 1);
    setenv("OS_PROJECT_NAME", "env-project", 1);
    setenv("OS_AUTH_URL", "https://keystone.example:5000/identity/v3", 1);
    setenv("OS_INSECURE", "true", 1);
    char *argv[] = {"--os-username",  "flag-user", "server", "list",
                    "--os-token=tok", "-c",        "ID",     "--debug"};
    struct st_cli_config cfg;
    struct st_cli_args rest;
    assert_int_equal(st_cli_config_load(&cfg, ST_ARRAY_SIZE(argv), argv, &rest, NULL), 0);
    assert_string_equal(cfg.username, "flag-user");       /* the flag wins */
    assert_string_equal(cfg.project_name, "env-project"); /* the environment fills in */
    assert_string_equal(cfg.token, "tok");                /* --opt=value */
    assert_true(cfg.insecure);
    assert_true(cfg.debug);
    assert_null(cfg.password);
    /* everything else stays, in order, for the command */
    assert_int_equal(rest.n_rest, 4);
    assert_string_equal(rest.rest[0], "server");
    assert_string_equal(rest.rest[1], "list");
    assert_string_equal(rest.rest[2], "-c");
    assert_string_equal(rest.rest[3], "ID");

    /* the endpoint is the auth URL's origin unless given */
    st_autofree char *ep = NULL;
    assert_int_equal(st_cli_config_endpoint(&cfg, &ep, NULL), 0);
    assert_string_equal(ep, "https://keystone.example:5000");
    st_cli_args_clear(&rest);
    st_cli_config_clear(&cfg);

    setenv("STRATOS_URL", "http://10.1.2.3:9000/", 1);
    char *argv2[] = {"status"};
    assert_int_equal(st_cli_config_load(&cfg, 1, argv2, &rest, NULL), 0);
    st_autofree char *ep2 = NULL;
    assert_int_equal(st_cli_config_endpoint(&cfg, &ep2, NULL), 0);
    assert_string_equal(ep2, "http://10.1.2.3:9000");
    st_cli_args_clear(&rest);
    st_cli_config_clear(&cfg);

    clean_env(NULL);
    setenv("OS_AUTH_URL", "http://[::1]/identity/v3", 1);
    assert_int_equal(st_cli_config_load(&cfg, 1, argv2, &rest, NULL), 0);
    st_autofree char *ep3 = NULL;
    assert_int_equal(st_cli_config_endpoint(&cfg, &ep3, NULL), 0);
    assert_string_equal(ep3, "http://[::1]");
    st_cli_args_clear(&rest);
    st_cli_config_clear(&cfg);

    clean_env(NULL);
    assert_int_equal(st_cli_config_load(&cfg, 1, argv2, &rest, NULL), 0);
    st_autofree char *ep4 = NULL;
    assert_int_equal(st_cli_config_endpoint(&cfg, &ep4, NULL), 0);
    assert_string_equal(ep4, "http://127.0.0.1:8080");
    assert_false(cfg.insecure);
    st_cli_args_clear(&rest);
    st_cli_config_clear(&cfg);

    /* a global option without its value */
    char *argv3[] = {"status", "--os-token"};
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_cli_config_load(&cfg, 2, argv3, &rest, &err), -EINVAL);
    assert_string_equal(err->msg, "argument --os-token: expected one argument");
    st_cli_config_clear(&cfg);
}

static const char *const colours[] = {"red", "green", NULL};
static const struct st_cli_option cmd_options[] = {
    {"flavor", 0, ST_CLI_OPT_VALUE, "<flavor>", "flavor", NULL, true, 0},
    {"property", 0, ST_CLI_OPT_APPEND, "<key=value>", "property", NULL, false, 0},
    {"wait", 0, ST_CLI_OPT_FLAG, NULL, "wait", NULL, false, 0},
    {"colour", 'C', ST_CLI_OPT_VALUE, NULL, "colour", colours, false, 0},
    ST_CLI_FLAG("enable", "enable", 1),
    ST_CLI_FLAG("disable", "disable", 1),
    ST_CLI_OPTIONS_END,
};
static const struct st_cli_arg cmd_args[] = {
    {"<server-name>", "name", 0},
    {NULL, NULL, 0},
};

static int parse_cmd(char **argv, int argc, struct st_cli_args *a, struct st_err **err)
{
    const struct st_cli_option *const tables[] = {cmd_options};
    int r = st_cli_args_parse(tables, 1, argc, argv, false, a, err);
    if (r < 0)
        return r;
    r = st_cli_args_check(a, tables, 1, cmd_args, err);
    if (r < 0)
        st_cli_args_clear(a);
    return r;
}

static void test_args(void **state)
{
    (void)state;
    struct st_cli_args a;
    char *ok[] = {"--flavor", "m1",          "demo",   "--property=a=1", "--property",
                  "b=2",      "--flavor=m2", "--wait", "-Cgreen"};
    assert_int_equal(parse_cmd(ok, ST_ARRAY_SIZE(ok), &a, NULL), 0);
    assert_string_equal(st_cli_args_get(&a, "flavor"), "m2"); /* the last one wins */
    char *const *props;
    assert_int_equal(st_cli_args_all(&a, "property", &props), 2);
    assert_string_equal(props[0], "a=1");
    assert_string_equal(props[1], "b=2");
    assert_true(st_cli_args_flag(&a, "wait"));
    assert_string_equal(st_cli_args_get(&a, "colour"), "green");
    assert_int_equal(a.n_pos, 1);
    assert_string_equal(a.pos[0], "demo");
    assert_null(st_cli_args_get(&a, "nothing"));
    st_cli_args_clear(&a);

    /* "--" ends the options; negative numbers are positionals */
    /* one member of an exclusive group, even twice, is fine */
    char *one[] = {"--flavor=m", "a", "--enable", "--enable"};
    assert_int_equal(parse_cmd(one, 4, &a, NULL), 0);
    assert_true(st_cli_args_flag(&a, "enable"));
    st_cli_args_clear(&a);

    char *dash[] = {"--flavor", "m1", "--", "--wait"};
    assert_int_equal(parse_cmd(dash, 4, &a, NULL), 0);
    assert_false(st_cli_args_flag(&a, "wait"));
    assert_string_equal(a.pos[0], "--wait");
    st_cli_args_clear(&a);

    const struct {
        char *argv[4];
        int argc;
        const char *msg;
    } bad[] = {
        {{"--flavor", "m1", "demo", "--bogus"}, 4, "unrecognized arguments: --bogus"},
        {{"demo", "--flavor"}, 2, "argument --flavor: expected one argument"},
        {{"demo", "--flavor", "--wait"}, 3, "argument --flavor: expected one argument"},
        {{"demo"}, 1, "the following arguments are required: --flavor"},
        {{"--wait"}, 1, "the following arguments are required: --flavor, <server-name>"},
        {{"--flavor", "m", "a", "b"}, 4, "unrecognized arguments: b"},
        {{"--flavor", "m", "a", "--wait=1"}, 4, "argument --wait: ignored explicit argument '1'"},
        {{"--flavor", "m", "a", "-C"}, 4, "argument -C/--colour: expected one argument"},
        {{"-C", "blue", "--flavor", "m"},
         4,
         "argument -C/--colour: invalid choice: 'blue' (choose from 'red', 'green')"},
        /* an exclusive group: the later option is the one named first */
        {{"--disable", "--flavor=m", "a", "--enable"},
         4,
         "argument --enable: not allowed with argument --disable"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autoptr(st_err) err = NULL;
        assert_int_equal(parse_cmd((char **)bad[i].argv, bad[i].argc, &a, &err), -EINVAL);
        assert_string_equal(err->msg, bad[i].msg);
    }
}

/* ---- error messages ---- */

static void test_error_message(void **state)
{
    (void)state;
    const struct {
        long status;
        const char *body;
        const char *rid;
        const char *msg;
    } cases[] = {
        {404,
         "{\"error\": {\"code\": 404, \"title\": \"Not Found\", \"message\": \"Could not find "
         "project: foo.\"}}",
         "req-1", "Could not find project: foo. (HTTP 404) (Request-ID: req-1)"},
        {404,
         "{\"itemNotFound\": {\"code\": 404, \"message\": \"Instance web could not be found.\"}}",
         "req-2", "Instance web could not be found. (HTTP 404) (Request-ID: req-2)"},
        {409, "{\"conflictingRequest\": {\"code\": 409, \"message\": \"Flavor exists.\"}}", NULL,
         "Flavor exists. (HTTP 409)"},
        {404,
         "{\"NeutronError\": {\"type\": \"NetworkNotFound\", \"message\": \"Network private "
         "could not be found.\", \"detail\": \"\"}}",
         NULL, "Network private could not be found. (HTTP 404)"},
        {400, "{\"message\": \"bad thing\"}", NULL, "bad thing (HTTP 400)"},
        {404,
         "<html><head><title>404 Not Found</title></head><body>No image found with ID "
         "foo</body></html>",
         NULL, "404 Not Found No image found with ID foo (HTTP 404)"},
        {503, "", NULL, "Service Unavailable (HTTP 503)"},
        {500, "{\"unexpected\": true}", NULL, "Service Unavailable (HTTP 500)"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        st_autofree char *m =
            st_cli_http_error_message(cases[i].status, "Service Unavailable", cases[i].body,
                                      strlen(cases[i].body), cases[i].rid);
        assert_string_equal(m, cases[i].msg);
    }
    assert_int_equal(st_cli_http_errno(404), -ENOENT);
    assert_int_equal(st_cli_http_errno(409), -EEXIST);
    assert_int_equal(st_cli_http_errno(401), -EACCES);
}

/* ---- whole runs against a tiny HTTP server (fake_http.h) ---- */

struct run_result {
    int rc;
    char *out;
    char *err;
};

static struct run_result run_cli(int argc, char **argv)
{
    struct capture out, err;
    capture_open(&out);
    capture_open(&err);
    struct run_result r;
    r.rc = st_cli_run(argc, argv, out.f, err.f);
    r.out = capture_close(&out);
    r.err = capture_close(&err);
    return r;
}

static void run_free(struct run_result *r)
{
    free(r->out);
    free(r->err);
}

static const struct fake_route healthy_routes[] = {
    {"/healthz", "200 OK", "x-openstack-request-id: req-h1\r\n",
     "{\"status\": \"ok\", \"checks\": {\"store\": \"ok\"}}"},
    {"/version", "200 OK", "",
     "{\"name\": \"stratos\", \"version\": \"0.1.0\", \"api_versions\": [\"v1\"]}"},
};

static void test_run_status(void **state)
{
    (void)state;
    struct fake_server s;
    fake_start(&s, healthy_routes, ST_ARRAY_SIZE(healthy_routes));
    st_autofree char *url = st_sprintf("http://127.0.0.1:%u", s.port);
    char *argv[] = {"stratos", "--os-endpoint", url, "status"};
    struct run_result r = run_cli(4, argv);
    fake_stop(&s);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    /* the Value column is as wide as the URL, whose port varies */
    int w = (int)strlen(url);
    char dashes[64];
    memset(dashes, '-', (size_t)w + 2);
    dashes[w + 2] = '\0';
    st_autofree char *want =
        st_sprintf("+----------+%s+\n"
                   "| Field    | %-*s |\n"
                   "+----------+%s+\n"
                   "| checks   | %-*s |\n"
                   "| endpoint | %s |\n"
                   "| status   | %-*s |\n"
                   "| version  | %-*s |\n"
                   "+----------+%s+\n",
                   dashes, w, "Value", dashes, w, "store='ok'", url, w, "ok", w, "0.1.0", dashes);
    assert_string_equal(r.out, want);
    run_free(&r);

    /* unhealthy: the table still shows what the server said, exit 1 */
    const struct fake_route sick[] = {
        {"/healthz", "503 Service Unavailable", "",
         "{\"status\": \"error\", \"checks\": {\"store\": \"database is locked\"}}"},
        {"/version", "200 OK", "", "{\"name\": \"stratos\", \"version\": \"0.1.0\"}"},
    };
    fake_start(&s, sick, 2);
    st_autofree char *url2 = st_sprintf("http://127.0.0.1:%u", s.port);
    char *argv2[] = {"stratos", "status", "-f", "json", "--os-endpoint", url2};
    r = run_cli(6, argv2);
    fake_stop(&s);
    assert_int_equal(r.rc, 1);
    st_autofree char *want2 =
        st_sprintf("{\n  \"checks\": {\n    \"store\": \"database is locked\"\n  },\n"
                   "  \"endpoint\": \"%s\",\n  \"error\": \"Service Unavailable (HTTP 503)\",\n"
                   "  \"status\": \"error\",\n  \"version\": \"0.1.0\"\n}\n",
                   url2);
    assert_string_equal(r.out, want2);
    run_free(&r);
}

static void test_run_version_and_errors(void **state)
{
    (void)state;
    struct fake_server s;
    fake_start(&s, healthy_routes, ST_ARRAY_SIZE(healthy_routes));
    st_autofree char *url = st_sprintf("http://127.0.0.1:%u", s.port);
    setenv("STRATOS_URL", url, 1);
    setenv("OS_TOKEN", "s3cr3t-token", 1);
    char *argv[] = {"stratos", "version",        "-f",     "value", "-c", "version",
                    "-c",      "client_version", "--debug"};
    struct run_result r = run_cli(ST_ARRAY_SIZE(argv), argv);
    fake_stop(&s);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "0.1.0\n0.1.0\n");
    /* --debug shows the exchange on stderr, never the token */
    st_autofree char *req_line = st_sprintf("REQ: curl -g -i -X GET %s/version -H \"Accept: "
                                            "application/json\" -H \"User-Agent: stratos/",
                                            url);
    assert_non_null(strstr(r.err, req_line));
    assert_non_null(strstr(r.err, "RESP: [200] Content-Type: application/json"));
    assert_non_null(strstr(r.err, "RESP BODY: {\"name\":\"stratos\""));
    run_free(&r);

    /* the token reaches the server, and --debug hides it */
    struct st_cli_http *h;
    struct st_cli_http_opts ho = {.base_url = url};
    fake_start(&s, healthy_routes, ST_ARRAY_SIZE(healthy_routes));
    free(url);
    url = st_sprintf("http://127.0.0.1:%u", s.port);
    ho.base_url = url;
    struct capture dbg;
    capture_open(&dbg);
    ho.debug = dbg.f;
    assert_int_equal(st_cli_http_new(&ho, &h, NULL), 0);
    st_cli_http_set_token(h, "s3cr3t-token");
    st_autoptr(json_t) body = parse("{\"auth\": {\"password\": \"pw\", \"user\": \"u\"}}");
    st_autoptr(st_err) err = NULL;
    json_t *got = NULL;
    assert_int_equal(st_cli_http_json(h, "POST", "/nope", body, &got, &err), -ENOENT);
    assert_string_equal(err->msg, "no route (HTTP 404)");
    st_cli_http_free(h);
    fake_stop(&s);
    st_autofree char *d = capture_close(&dbg);
    assert_non_null(strstr(s.requests, "X-Auth-Token: s3cr3t-token\r\n"));
    assert_null(strstr(d, "s3cr3t"));
    assert_null(strstr(d, "\"pw\""));
    assert_non_null(strstr(d, "-H \"X-Auth-Token: ***\""));
    assert_non_null(strstr(d, "-d '{\"auth\":{\"password\":\"***\",\"user\":\"u\"}}'"));

    /* an HTTP error: the server's message, status and request id; exit 1 */
    const struct fake_route gone[] = {
        {"/version", "404 Not Found", "X-OpenStack-Request-ID: req-42\r\n",
         "{\"itemNotFound\": {\"code\": 404, \"message\": \"No version here.\"}}"},
    };
    fake_start(&s, gone, 1);
    free(url);
    url = st_sprintf("http://127.0.0.1:%u", s.port);
    setenv("STRATOS_URL", url, 1);
    char *argv2[] = {"stratos", "version"};
    r = run_cli(2, argv2);
    fake_stop(&s);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "No version here. (HTTP 404) (Request-ID: req-42)\n");
    run_free(&r);

    /* nobody listening */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd); /* bound, never listened: the port refuses */
    free(url);
    url = st_sprintf("http://127.0.0.1:%u", ntohs(a.sin_port));
    char *argv3[] = {"stratos", "--os-endpoint", url, "status"};
    r = run_cli(4, argv3);
    assert_int_equal(r.rc, 1);
    st_autofree char *want = st_sprintf("cannot reach stratosd at %s: Connection refused\n", url);
    assert_string_equal(r.err, want);
    run_free(&r);
}

static void test_run_usage(void **state)
{
    (void)state;
    char *unknown[] = {"stratos", "frobnicate", "now"};
    struct run_result r = run_cli(3, unknown);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "stratos: 'frobnicate now' is not a stratos command. See "
                               "'stratos --help'.\n");
    run_free(&r);

    char *typo[] = {"stratos", "statsu"};
    r = run_cli(2, typo);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "stratos: 'statsu' is not a stratos command. See 'stratos "
                               "--help'.\nDid you mean one of these?\n  status\n");
    run_free(&r);

    char *bad_opt[] = {"stratos", "status", "--bogus"};
    r = run_cli(3, bad_opt);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "usage: stratos status [-h]"));
    assert_non_null(strstr(r.err, "\nstratos status: error: unrecognized arguments: --bogus\n"));
    run_free(&r);

    char *bad_fmt[] = {"stratos", "status", "-f", "csv"};
    r = run_cli(4, bad_fmt);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "argument -f/--format: invalid choice: 'csv' (choose from "
                                  "'json', 'shell', 'table', 'value', 'yaml')"));
    run_free(&r);

    char *version[] = {"stratos", "--version"};
    r = run_cli(2, version);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "stratos " ST_VERSION "\n");
    run_free(&r);

    char *help[] = {"stratos", "--help"};
    r = run_cli(2, help);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "\nCommands:\n"));
    assert_non_null(
        strstr(r.out, "\n  status                      Show whether stratosd is up and healthy\n"));
    assert_non_null(strstr(r.out, "  --os-auth-url <auth-url>\n"));
    run_free(&r);

    char *cmd_help[] = {"stratos", "help", "version"};
    r = run_cli(3, cmd_help);
    assert_int_equal(r.rc, 0);
    assert_non_null(
        strstr(r.out, "usage: stratos version [-h] [-f {json,shell,table,value,yaml}]"));
    assert_non_null(strstr(r.out, "\noutput formatters:\n"));
    run_free(&r);

    char *cmd_h[] = {"stratos", "status", "-h"};
    r = run_cli(3, cmd_h);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: stratos status [-h]"));
    run_free(&r);
}

/* ---- Keystone: login, catalog, identity commands ---- */

/* "stratos" and the words up to NULL, run as the CLI. */
static struct run_result run_words(const char *first, ...)
{
    char *argv[64] = {"stratos", (char *)first};
    int argc = 2;
    va_list ap;
    va_start(ap, first);
    for (const char *w; argc < 63 && (w = va_arg(ap, const char *));)
        argv[argc++] = (char *)w;
    va_end(ap);
    return run_cli(argc, argv);
}

static void log_reset(struct fake_server *s)
{
    s->log_len = 0;
    s->log[0] = '\0';
}

/* Keystone's token body for admin in project admin, with a catalog. */
static char *admin_token(const char *catalog)
{
    return st_sprintf(
        "{\"token\": {\"expires_at\": \"2030-01-01T12:00:00.000000Z\", \"methods\": [\"password\"],"
        " \"user\": {\"id\": \"u-admin\", \"name\": \"admin\","
        "  \"domain\": {\"id\": \"default\", \"name\": \"Default\"}},"
        " \"project\": {\"id\": \"p-admin\", \"name\": \"admin\","
        "  \"domain\": {\"id\": \"default\", \"name\": \"Default\"}},"
        " \"catalog\": [%s]}}",
        catalog);
}

static void test_auth_password_body(void **state)
{
    (void)state;
    /* the openstack CLI with OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME only:
     * osc-lib's default domain, by id, for both */
    struct st_cli_config cfg = {.username = "admin", .password = "secret", .project_name = "admin"};
    st_autoptr(json_t) b1 = st_cli_auth_password_body(&cfg);
    st_autofree char *t1 = st_json_dumps(b1);
    assert_string_equal(t1, "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{"
                            "\"user\":{\"password\":\"secret\",\"name\":\"admin\",\"domain\":{"
                            "\"id\":\"default\"}}}},\"scope\":{\"project\":{\"name\":\"admin\","
                            "\"domain\":{\"id\":\"default\"}}}}}");

    /* an openrc's domain names */
    cfg.user_domain_name = "Default";
    cfg.project_domain_name = "Default";
    st_autoptr(json_t) b2 = st_cli_auth_password_body(&cfg);
    st_autoptr(json_t) w2 = parse("{\"auth\": {\"identity\": {\"methods\": [\"password\"],"
                                  " \"password\": {\"user\": {\"name\": \"admin\", \"password\":"
                                  " \"secret\", \"domain\": {\"name\": \"Default\"}}}},"
                                  " \"scope\": {\"project\": {\"name\": \"admin\", \"domain\":"
                                  " {\"name\": \"Default\"}}}}}");
    assert_true(json_equal(b2, w2));

    /* ids win over names; the user by id has no domain; no project is unscoped */
    cfg.user_id = "u1";
    cfg.project_id = "p1";
    cfg.user_domain_id = "d1";
    st_autoptr(json_t) b3 = st_cli_auth_password_body(&cfg);
    st_autoptr(json_t) w3 = parse("{\"auth\": {\"identity\": {\"methods\": [\"password\"],"
                                  " \"password\": {\"user\": {\"id\": \"u1\", \"password\":"
                                  " \"secret\"}}}, \"scope\": {\"project\": {\"id\": \"p1\"}}}}");
    assert_true(json_equal(b3, w3));
    struct st_cli_config unscoped = {
        .username = "u", .password = "p", .user_domain_id = "d1", .user_domain_name = "D"};
    st_autoptr(json_t) b4 = st_cli_auth_password_body(&unscoped);
    st_autoptr(json_t) w4 = parse("{\"auth\": {\"identity\": {\"methods\": [\"password\"],"
                                  " \"password\": {\"user\": {\"name\": \"u\", \"password\": \"p\","
                                  " \"domain\": {\"id\": \"d1\"}}}}}}");
    assert_true(json_equal(b4, w4));
}

static void test_auth_catalog(void **state)
{
    (void)state;
    struct st_cli_auth a = {.interface = "public",
                            .endpoint = "http://st:8080",
                            .auth_url = "http://st:8080/identity/v3"};
    a.catalog = parse(
        "["
        " {\"type\": \"identity\", \"endpoints\": [{\"interface\": \"public\", \"region_id\": "
        "  \"RegionOne\", \"url\": \"http://k:5000/v3/\"}]},"
        " {\"type\": \"compute\", \"endpoints\": ["
        "  {\"interface\": \"internal\", \"region_id\": \"RegionOne\", \"url\": \"http://int\"},"
        "  {\"interface\": \"public\", \"region_id\": \"RegionOne\", \"url\": \"http://c1/v2.1\"},"
        "  {\"interface\": \"public\", \"region\": \"RegionTwo\", \"url\": \"http://c2/v2.1\"}]},"
        " {\"type\": \"block-storage\", \"endpoints\": [{\"interface\": \"public\", \"url\":"
        "  \"http://v/v3/p1\"}]}]");
    const struct {
        const char *type, *region, *url, *msg;
    } cases[] = {
        {"identity", NULL, "http://k:5000/v3", NULL},
        {"compute", NULL, "http://c1/v2.1", NULL},
        {"compute", "RegionTwo", "http://c2/v2.1", NULL},
        {"volumev3", NULL, "http://v/v3/p1", NULL}, /* an alias of block-storage */
        {"network", NULL, NULL, "public endpoint for network service not found"},
        {"identity", "RegionTwo", NULL,
         "public endpoint for identity service in RegionTwo region not found"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        a.region = (char *)cases[i].region;
        st_autofree char *url = NULL;
        st_autoptr(st_err) err = NULL;
        int r = st_cli_auth_service_url(&a, cases[i].type, &url, &err);
        if (cases[i].url) {
            assert_int_equal(r, 0);
            assert_string_equal(url, cases[i].url);
        } else {
            assert_int_equal(r, -ENOENT);
            assert_string_equal(err->msg, cases[i].msg);
        }
    }
    json_decref(a.catalog);

    /* a token given as is: no catalog, stratosd's own paths */
    a.catalog = NULL;
    a.region = NULL;
    st_autofree char *id = NULL, *compute = NULL;
    assert_int_equal(st_cli_auth_service_url(&a, "identity", &id, NULL), 0);
    assert_string_equal(id, "http://st:8080/identity/v3");
    assert_int_equal(st_cli_auth_service_url(&a, "compute", &compute, NULL), 0);
    assert_string_equal(compute, "http://st:8080/compute/v2.1");

    a.catalog = parse("[]");
    st_autofree char *none = NULL;
    st_autoptr(st_err) err = NULL;
    assert_int_equal(st_cli_auth_service_url(&a, "compute", &none, &err), -ENOENT);
    assert_string_equal(err->msg, "The service catalog is empty.");
    json_decref(a.catalog);
}

static void test_auth_login(void **state)
{
    (void)state;
    struct fake_route routes[] = {
        {"POST /identity/v3/auth/tokens", "201 Created",
         "X-Subject-Token: tok-123\r\nx-openstack-request-id: req-a\r\n", NULL},
        /* the catalog's identity URL, not OS_AUTH_URL, serves the commands */
        {"/keystone/v3/projects", "200 OK", "",
         "{\"projects\": [{\"id\": \"p-admin\", \"name\": \"admin\"},"
         " {\"id\": \"p-2\", \"name\": \"demo\"}], \"links\": {}}"},
        {"/identity", "300 Multiple Choices", "", NULL},
    };
    struct fake_server s;
    fake_start(&s, routes, ST_ARRAY_SIZE(routes));
    st_autofree char *catalog = st_sprintf(
        "{\"type\": \"identity\", \"endpoints\": [{\"interface\": \"public\", \"region_id\":"
        " \"RegionOne\", \"url\": \"http://127.0.0.1:%u/keystone/v3/\"}]}",
        s.port);
    st_autofree char *token = admin_token(catalog);
    routes[0].body = token;
    st_autofree char *versions = st_sprintf(
        "{\"versions\": {\"values\": [{\"id\": \"v3.14\", \"status\": \"stable\", \"links\":"
        " [{\"rel\": \"self\", \"href\": \"http://127.0.0.1:%u/identity/v3/\"}]}]}}",
        s.port);
    routes[2].body = versions;
    st_autofree char *auth_url = st_sprintf("http://127.0.0.1:%u/identity/v3", s.port);
    setenv("OS_AUTH_URL", auth_url, 1);
    setenv("OS_USERNAME", "admin", 1);
    setenv("OS_PASSWORD", "secret", 1);
    setenv("OS_PROJECT_NAME", "admin", 1);
    setenv("OS_USER_DOMAIN_NAME", "Default", 1);
    setenv("OS_PROJECT_DOMAIN_NAME", "Default", 1);

    struct run_result r = run_words("project", "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(r.out, "+---------+-------+\n"
                               "| ID      | Name  |\n"
                               "+---------+-------+\n"
                               "| p-admin | admin |\n"
                               "| p-2     | demo  |\n"
                               "+---------+-------+\n");
    /* the body the openstack CLI sends, then the catalog URL with the token */
    assert_string_equal(s.log,
                        "POST /identity/v3/auth/tokens {\"auth\":{\"identity\":{\"methods\":["
                        "\"password\"],\"password\":{\"user\":{\"password\":\"secret\",\"name\":"
                        "\"admin\",\"domain\":{\"name\":\"Default\"}}}},\"scope\":{\"project\":{"
                        "\"name\":\"admin\",\"domain\":{\"name\":\"Default\"}}}}}\n"
                        "GET /keystone/v3/projects \n");
    const char *list_req = strstr(s.requests, "GET /keystone/v3/projects");
    assert_non_null(list_req);
    assert_non_null(strstr(list_req, "X-Auth-Token: tok-123\r\n"));
    assert_null(strstr(s.requests, "X-Auth-Token: tok-123\r\nContent-Type")); /* login: none */
    run_free(&r);

    /* token issue: the login's token, as openstack prints it */
    r = run_words("token", "issue", "-f", "json", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "{\n  \"expires\": \"2030-01-01T12:00:00+0000\",\n"
                               "  \"id\": \"tok-123\",\n  \"project_id\": \"p-admin\",\n"
                               "  \"user_id\": \"u-admin\"\n}\n");
    run_free(&r);

    /* an unversioned auth URL: its version document says where v3 is */
    st_autofree char *unversioned = st_sprintf("http://127.0.0.1:%u/identity/", s.port);
    log_reset(&s);
    r = run_words("--os-auth-url", unversioned, "token", "issue", "-f", "value", "-c", "id", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "tok-123\n");
    const char *want = "GET /identity \nPOST /identity/v3/auth/tokens {";
    assert_int_equal(strncmp(s.log, want, strlen(want)), 0);
    run_free(&r);

    /* a region the catalog does not have */
    r = run_words("--os-region-name", "RegionX", "project", "list", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err,
                        "public endpoint for identity service in RegionX region not found\n");
    run_free(&r);

    /* status and version need no login */
    log_reset(&s);
    r = run_words("status", NULL);
    assert_int_equal(r.rc, 1); /* no /healthz here: unhealthy, but it ran */
    assert_null(strstr(s.log, "auth/tokens"));
    run_free(&r);
    fake_stop(&s);
}

static void test_auth_errors(void **state)
{
    (void)state;
    const struct fake_route routes[] = {
        {"POST /identity/v3/auth/tokens", "401 Unauthorized",
         "x-openstack-request-id: req-401\r\nWWW-Authenticate: Keystone uri=\"x\"\r\n",
         "{\"error\": {\"code\": 401, \"title\": \"Unauthorized\", \"message\": \"The request "
         "you have made requires authentication.\"}}"},
    };
    struct fake_server s;
    fake_start(&s, routes, ST_ARRAY_SIZE(routes));
    st_autofree char *auth_url = st_sprintf("http://127.0.0.1:%u/identity/v3", s.port);
    setenv("OS_AUTH_URL", auth_url, 1);
    setenv("OS_USERNAME", "admin", 1);
    setenv("OS_PASSWORD", "wrong", 1);
    struct run_result r = run_words("project", "list", NULL);
    fake_stop(&s);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "The request you have made requires authentication. (HTTP 401) "
                               "(Request-ID: req-401)\n");
    run_free(&r);

    /* nothing to log in with: openstack's words, exit 1 */
    unsetenv("OS_AUTH_URL");
    r = run_words("token", "issue", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Missing value auth-url required for auth plugin password\n");
    run_free(&r);
    setenv("OS_AUTH_URL", auth_url, 1);
    unsetenv("OS_USERNAME");
    r = run_words("token", "issue", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Missing parameter(s): \nSet a username with --os-username, "
                               "OS_USERNAME, or auth.username or set a user-id with --os-user-id, "
                               "OS_USER_ID, or auth.user_id\n");
    run_free(&r);
}

/* A Keystone for the identity commands, logged in with a token as is. */
static void keystone_start(struct fake_server *s, struct fake_route *routes, size_t n)
{
    fake_start(s, routes, n);
    st_autofree char *auth_url = st_sprintf("http://127.0.0.1:%u/identity/v3", s->port);
    setenv("OS_AUTH_URL", auth_url, 1);
    setenv("OS_TOKEN", "tok-as-is", 1);
}

#define TOKEN_ROUTE                                                                                \
    {                                                                                              \
        "/identity/v3/auth/tokens", "200 OK", "X-Subject-Token: tok-as-is\r\n", NULL               \
    }

static const char *const proj_a =
    "{\"id\": \"9d3a2c\", \"name\": \"proj-a\", \"domain_id\": \"default\", \"description\":"
    " \"first one\", \"enabled\": true, \"parent_id\": \"default\", \"is_domain\": false,"
    " \"tags\": [], \"options\": {}, \"links\": {\"self\": \"http://x/v3/projects/9d3a2c\"}}";

static void test_name_lookup(void **state)
{
    (void)state;
    st_autofree char *token = admin_token("");
    st_autofree char *one = st_sprintf("{\"projects\": [%s], \"links\": {}}", proj_a);
    st_autofree char *two = st_sprintf("{\"projects\": [%s, %s]}", proj_a, proj_a);
    st_autofree char *by_id = st_sprintf("{\"project\": %s}", proj_a);
    struct fake_route routes[] = {
        TOKEN_ROUTE,
        {"/identity/v3/projects?name=none", "200 OK", "", "{\"projects\": [], \"links\": {}}"},
        {"/identity/v3/projects?name=one", "200 OK", "", one},
        {"/identity/v3/projects?name=two", "200 OK", "", two},
        {"/identity/v3/projects?name=my%20proj", "200 OK", "", one},
        {"/identity/v3/projects/9d3a2c", "200 OK", "", by_id},
        {"/identity/v3/projects/p-admin", "200 OK", "", by_id},
        {"/identity/v3/users?name=nobody", "404 Not Found", "", "{}"},
    };
    routes[0].body = token;
    struct fake_server s;
    keystone_start(&s, routes, ST_ARRAY_SIZE(routes));

    /* 404 by ID, then 0 rows by name */
    struct run_result r = run_words("project", "show", "none", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "No project with a name or ID of 'none' exists.\n");
    /* (each run validates its token to peek at its project, as openstack) */
    assert_string_equal(s.log, "GET /identity/v3/auth/tokens \n"
                               "GET /identity/v3/projects/none \n"
                               "GET /identity/v3/projects?name=none \n");
    assert_non_null(strstr(s.requests, "X-Subject-Token: tok-as-is\r\n"));
    run_free(&r);

    /* 1 row: that one, shown */
    log_reset(&s);
    r = run_words("project", "show", "one", "-f", "value", "-c", "id", "-c", "name", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "9d3a2c\nproj-a\n");
    assert_string_equal(s.log, "GET /identity/v3/auth/tokens \n"
                               "GET /identity/v3/projects/one \n"
                               "GET /identity/v3/projects?name=one \n");
    run_free(&r);

    /* 2 rows: ambiguous */
    r = run_words("project", "show", "two", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "More than one project exists with the name 'two'.\n");
    run_free(&r);

    /* an ID answers at once; a name needing escapes is escaped */
    log_reset(&s);
    r = run_words("project", "show", "9d3a2c", "-f", "value", "-c", "name", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "proj-a\n");
    assert_string_equal(s.log, "GET /identity/v3/auth/tokens \n"
                               "GET /identity/v3/projects/9d3a2c \n");
    run_free(&r);
    log_reset(&s);
    r = run_words("project", "show", "my proj", "-f", "value", "-c", "name", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET /identity/v3/auth/tokens \n"
                               "GET /identity/v3/projects/my%20proj \n"
                               "GET /identity/v3/projects?name=my%20proj \n");
    run_free(&r);

    /* the token's own project by name goes straight to its ID */
    log_reset(&s);
    r = run_words("project", "show", "admin", "-f", "value", "-c", "id", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET /identity/v3/auth/tokens \n"
                               "GET /identity/v3/projects/p-admin \n");
    run_free(&r);

    /* a 404 on the list is no match either; the message names the kind */
    r = run_words("user", "show", "nobody", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "No user with a name or ID of 'nobody' exists.\n");
    run_free(&r);
    fake_stop(&s);
}

static void test_project_commands(void **state)
{
    (void)state;
    st_autofree char *created = st_sprintf("{\"project\": %s}", proj_a);
    st_autofree char *one = st_sprintf("{\"projects\": [%s]}", proj_a);
    struct fake_route routes[] = {
        {"POST /identity/v3/projects", "201 Created", "", created},
        {"/identity/v3/projects?name=proj-a", "200 OK", "", one},
        {"DELETE /identity/v3/projects/9d3a2c", "204 No Content", "", ""},
        {"PATCH /identity/v3/projects/9d3a2c", "200 OK", "", created},
    };
    struct fake_server s;
    keystone_start(&s, routes, ST_ARRAY_SIZE(routes));

    struct run_result r =
        run_words("project", "create", "--description", "first one", "proj-a", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    /* every field but links, sorted; options and tags as Python prints them */
    assert_string_equal(r.out, "+-------------+-----------+\n"
                               "| Field       | Value     |\n"
                               "+-------------+-----------+\n"
                               "| description | first one |\n"
                               "| domain_id   | default   |\n"
                               "| enabled     | True      |\n"
                               "| id          | 9d3a2c    |\n"
                               "| is_domain   | False     |\n"
                               "| name        | proj-a    |\n"
                               "| options     | {}        |\n"
                               "| parent_id   | default   |\n"
                               "| tags        | []        |\n"
                               "+-------------+-----------+\n");
    assert_string_equal(s.log, "POST /identity/v3/projects {\"project\":{\"name\":\"proj-a\","
                               "\"description\":\"first one\",\"enabled\":true,\"options\":{},"
                               "\"tags\":[]}}\n");
    run_free(&r);

    /* -f json keeps them as JSON */
    r = run_words("project", "create", "proj-a", "-f", "json", "-c", "options", "-c", "tags", NULL);
    assert_string_equal(r.out, "{\n  \"options\": {},\n  \"tags\": []\n}\n");
    run_free(&r);

    /* delete goes on after a failure and counts them */
    log_reset(&s);
    r = run_words("project", "delete", "proj-a", "ghost", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Failed to delete project with name or ID 'ghost': No project with "
                               "a name or ID of 'ghost' exists.\n"
                               "1 of 2 projects failed to delete.\n");
    assert_non_null(strstr(s.log, "DELETE /identity/v3/projects/9d3a2c \n"));
    run_free(&r);

    /* set: only what was given, PATCHed */
    log_reset(&s);
    r = run_words("project", "set", "--disable", "--name", "proj-b", "proj-a", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(s.log, "PATCH /identity/v3/projects/9d3a2c {\"project\":{\"name\":"
                                  "\"proj-b\",\"enabled\":false}}\n"));
    run_free(&r);

    /* --enable and --disable exclude each other, as argparse says */
    r = run_words("project", "create", "--enable", "--disable", "x", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "[--enable | --disable]"));
    assert_non_null(strstr(r.err, "\nstratos project create: error: argument --disable: not "
                                  "allowed with argument --enable\n"));
    run_free(&r);
    fake_stop(&s);

    /* a duplicate: Keystone's 409 message, or the existing one with --or-show */
    const struct fake_route conflict[] = {
        {"POST /identity/v3/projects", "409 Conflict", "x-openstack-request-id: req-9\r\n",
         "{\"error\": {\"code\": 409, \"title\": \"Conflict\", \"message\": \"Conflict occurred "
         "attempting to store project - Duplicate entry found with name proj-a.\"}}"},
        {"/identity/v3/projects?name=proj-a", "200 OK", "", one},
    };
    keystone_start(&s, (struct fake_route *)conflict, ST_ARRAY_SIZE(conflict));
    r = run_words("project", "create", "proj-a", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Conflict occurred attempting to store project - Duplicate entry "
                               "found with name proj-a. (HTTP 409) (Request-ID: req-9)\n");
    run_free(&r);
    r = run_words("project", "create", "--or-show", "proj-a", "-f", "value", "-c", "id", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "9d3a2c\n");
    run_free(&r);
    fake_stop(&s);
}

static void test_user_commands(void **state)
{
    (void)state;
    const char *user =
        "{\"user\": {\"id\": \"5cf6c8\", \"name\": \"user-a\", \"domain_id\": \"default\","
        " \"enabled\": true, \"password_expires_at\": null, \"options\": {},"
        " \"default_project_id\": \"9d3a2c\", \"links\": {\"self\": \"x\"}}}";
    st_autofree char *by_id = st_sprintf("{\"project\": %s}", proj_a);
    struct fake_route routes[] = {
        {"POST /identity/v3/users", "201 Created", "", user},
        {"/identity/v3/projects/9d3a2c", "200 OK", "", by_id},
        {"/identity/v3/users", "200 OK", "",
         "{\"users\": [{\"id\": \"5cf6c8\", \"name\": \"user-a\", \"domain_id\": \"default\","
         " \"enabled\": false, \"default_project_id\": \"9d3a2c\"}]}"},
    };
    struct fake_server s;
    keystone_start(&s, routes, ST_ARRAY_SIZE(routes));
    struct run_result r = run_words("user", "create", "--project", "9d3a2c", "--password", "pw",
                                    "user-a", "-f", "value", "-c", "default_project_id", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "9d3a2c\n");
    assert_non_null(strstr(s.log, "POST /identity/v3/users {\"user\":{\"name\":\"user-a\","
                                  "\"default_project_id\":\"9d3a2c\",\"password\":\"pw\","
                                  "\"enabled\":true,\"options\":{}}}\n"));
    run_free(&r);

    /* without a password: openstack's warning, and none sent */
    log_reset(&s);
    r = run_words("user", "create", "user-a", "-f", "value", "-c", "id", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "No password was supplied, authentication will fail when a user "
                               "does not have a password.\n");
    assert_null(strstr(s.log, "password\":"));
    run_free(&r);

    r = run_words("user", "list", "--long", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "+--------+--------+---------+---------+-------------+-------+"
                               "---------+\n"
                               "| ID     | Name   | Project | Domain  | Description | Email | "
                               "Enabled |\n"
                               "+--------+--------+---------+---------+-------------+-------+"
                               "---------+\n"
                               "| 5cf6c8 | user-a | 9d3a2c  | default |             |       | "
                               "False   |\n"
                               "+--------+--------+---------+---------+-------------+-------+"
                               "---------+\n");
    run_free(&r);
    fake_stop(&s);
}

static void test_role_commands(void **state)
{
    (void)state;
    st_autofree char *token = admin_token("");
    struct fake_route routes[] = {
        TOKEN_ROUTE,
        {"/identity/v3/roles?name=member", "200 OK", "",
         "{\"roles\": [{\"id\": \"a08cc2\", \"name\": \"member\", \"domain_id\": null,"
         " \"description\": null, \"options\": {}, \"links\": {\"self\": \"x\"}}]}"},
        {"/identity/v3/users?name=user-a", "200 OK", "",
         "{\"users\": [{\"id\": \"5cf6c8\", \"name\": \"user-a\"}]}"},
        {"/identity/v3/projects?name=proj-a", "200 OK", "",
         "{\"projects\": [{\"id\": \"9d3a2c\", \"name\": \"proj-a\"}]}"},
        {"PUT /identity/v3/projects/9d3a2c/users/5cf6c8/roles/a08cc2", "204 No Content", "", ""},
        {"DELETE /identity/v3/projects/9d3a2c/users/5cf6c8/roles/a08cc2", "204 No Content", "", ""},
        {"/identity/v3/role_assignments?user.id=5cf6c8&scope.project.id=9d3a2c&include_names=True",
         "200 OK", "",
         "{\"role_assignments\": [{\"role\": {\"id\": \"a08cc2\", \"name\": \"member\"},"
         " \"user\": {\"id\": \"5cf6c8\", \"name\": \"user-a\", \"domain\": {\"id\": \"default\","
         " \"name\": \"Default\"}}, \"scope\": {\"project\": {\"id\": \"9d3a2c\", \"name\":"
         " \"proj-a\", \"domain\": {\"id\": \"default\", \"name\": \"Default\"}}},"
         " \"links\": {}}]}"},
    };
    routes[0].body = token;
    struct fake_server s;
    keystone_start(&s, routes, ST_ARRAY_SIZE(routes));

    /* role, user, project by name (each a 404 by ID first), then the PUT */
    struct run_result r =
        run_words("role", "add", "--project", "proj-a", "--user", "user-a", "member", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "");
    assert_string_equal(s.log, "GET /identity/v3/roles/member \n"
                               "GET /identity/v3/roles?name=member \n"
                               "GET /identity/v3/users/user-a \n"
                               "GET /identity/v3/users?name=user-a \n"
                               "GET /identity/v3/projects/proj-a \n"
                               "GET /identity/v3/projects?name=proj-a \n"
                               "PUT /identity/v3/projects/9d3a2c/users/5cf6c8/roles/a08cc2 \n");
    run_free(&r);

    log_reset(&s);
    r = run_words("role", "remove", "--project", "proj-a", "--user", "user-a", "member", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(
        strstr(s.log, "DELETE /identity/v3/projects/9d3a2c/users/5cf6c8/roles/a08cc2 \n"));
    run_free(&r);

    /* no target: keystoneclient's message */
    r = run_words("role", "add", "--user", "user-a", "member", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Must specify either system, domain, or project\n");
    run_free(&r);

    r = run_words("role", "assignment", "list", "--user", "user-a", "--project", "proj-a",
                  "--names", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "+--------+----------------+-------+----------------+--------+"
                               "--------+-----------+\n"
                               "| Role   | User           | Group | Project        | Domain | "
                               "System | Inherited |\n"
                               "+--------+----------------+-------+----------------+--------+"
                               "--------+-----------+\n"
                               "| member | user-a@Default |       | proj-a@Default |        | "
                               "       | False     |\n"
                               "+--------+----------------+-------+----------------+--------+"
                               "--------+-----------+\n");
    run_free(&r);
    fake_stop(&s);
}

static void test_identity_help(void **state)
{
    (void)state;
    struct run_result r = run_words("--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "\n  project create              Create new project\n"));
    assert_non_null(strstr(r.out, "\n  role assignment list        List role assignments\n"));
    assert_non_null(strstr(r.out, "\n  token issue                 Issue new token\n"));
    assert_non_null(strstr(r.out, "\n  user create                 Create new user\n"));
    assert_non_null(strstr(r.out, "  --os-user-domain-id <auth-user-domain-id>\n"));
    run_free(&r);

    /* argparse's usage, wrapped at 78 columns, and options wrapped under help */
    r = run_words("project", "set", "--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: stratos project set [-h] [--name <name>] [--domain "
                                  "<domain>]\n"
                                  "                           [--description <description>]\n"
                                  "                           [--enable | --disable] "
                                  "[--property <key=value>]\n"));
    assert_non_null(strstr(r.out, "                           <project>\n\nSet project "
                                  "properties\n"));
    assert_non_null(strstr(r.out, "  --description <description>\n"
                                  "                        Set project description\n"));
    assert_non_null(strstr(r.out, "  --immutable           Make resource immutable. An immutable "
                                  "project may not\n"
                                  "                        be deleted or modified except to "
                                  "remove the immutable\n                        flag\n"));
    run_free(&r);

    r = run_words("help", "role", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "Command \"role\" matches:\n  role add\n"));
    run_free(&r);
}

static void test_python_str(void **state)
{
    (void)state;
    const struct {
        const char *json, *repr;
    } cases[] = {
        {"{}", "{}"},
        {"[]", "[]"},
        {"[\"b\", \"a\"]", "['b', 'a']"}, /* the server's order: str(), not format_list */
        {"{\"k\": true, \"n\": null, \"i\": 1, \"f\": 0.5}", "{'k': True, 'n': None, 'i': 1, "
                                                             "'f': 0.5}"},
        {"[\"it's\", \"a\\\\b\\n\"]", "[\"it's\", 'a\\\\b\\n']"},
        {"\"s\"", "'s'"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        st_autoptr(json_t) j = parse(cases[i].json);
        st_autofree char *t = st_cli_output_repr(j);
        assert_string_equal(t, cases[i].repr);
    }
    struct st_cli_output_opts o = {.format = ST_CLI_FORMAT_VALUE, .python_str = true};
    st_autofree char *v = show_text(&o, "{\"a\": \"plain\", \"b\": {\"x\": [1]}, \"c\": [\"t\"]}");
    assert_string_equal(v, "plain\n{'x': [1]}\n['t']\n");

    /* YAML: PyYAML's words are quoted, "y" and "n" are not */
    struct st_cli_output_opts y = {.format = ST_CLI_FORMAT_YAML};
    st_autofree char *t = show_text(&y, "{\"a\": \"y\", \"b\": \"Yes\", \"c\": \"yEs\", \"d\": "
                                        "\"NULL\", \"e\": \".NaN\"}");
    assert_string_equal(t, "a: y\nb: 'Yes'\nc: yEs\nd: 'NULL'\ne: '.NaN'\n");
}

/* ---- compute, image and apply commands ---- */

static const char *const flavor_f1 =
    "{\"id\": \"f1\", \"name\": \"m1.small\", \"ram\": 2048, \"vcpus\": 1, \"disk\": 20,"
    " \"OS-FLV-EXT-DATA:ephemeral\": 0, \"swap\": \"\", \"rxtx_factor\": 1.0,"
    " \"os-flavor-access:is_public\": true, \"OS-FLV-DISABLED:disabled\": false, \"links\": []}";

static const char *const image_i1 =
    "{\"id\": \"44fd\", \"name\": \"busybox\", \"status\": \"active\", \"visibility\": \"public\","
    " \"protected\": false, \"os_hidden\": false, \"checksum\": \"abc1\", \"size\": 3,"
    " \"virtual_size\": null, \"min_disk\": 0, \"min_ram\": 0, \"owner\": \"p-admin\","
    " \"disk_format\": \"raw\", \"container_format\": \"docker\", \"tags\": [\"b\", \"a\"],"
    " \"created_at\": \"2030-01-01T11:00:00Z\", \"updated_at\": \"2030-01-01T11:00:00Z\","
    " \"self\": \"/v2/images/44fd\", \"file\": \"/v2/images/44fd/file\","
    " \"schema\": \"/v2/schemas/image\", \"os_command_line\": \"/bin/sh\"}";

/* A Nova server at 2.1 in the given status, with a fault when ERROR. */
static char *server_json(const char *status, const char *fault)
{
    return st_sprintf(
        "{\"server\": {\"id\": \"s1\", \"name\": \"demo\", \"status\": \"%s\","
        " \"tenant_id\": \"p-admin\", \"user_id\": \"u-admin\", \"metadata\": {\"a\": \"b\"},"
        " \"addresses\": {\"private\": [{\"version\": 4, \"addr\": \"10.0.2.11\"}]},"
        " \"flavor\": {\"id\": \"f1\", \"links\": []}, \"image\": {\"id\": \"44fd\", \"links\": "
        "[]},"
        " \"key_name\": \"k1\", \"security_groups\": [{\"name\": \"default\"}],"
        " \"os-extended-volumes:volumes_attached\": [], \"progress\": 0,"
        " \"OS-EXT-STS:task_state\": null, \"OS-EXT-STS:power_state\": %d,"
        " \"OS-EXT-AZ:availability_zone\": \"nova\", \"OS-EXT-SRV-ATTR:host\": \"node1\","
        " \"created\": \"2030-01-01T11:00:00Z\"%s%s%s, \"links\": []}}",
        status, strcmp(status, "ACTIVE") == 0 ? 1 : 0,
        fault ? ", \"fault\": {\"code\": 500, "
                "\"message\": \""
              : "",
        fault ? fault : "", fault ? "\"}" : "");
}

/* A cloud for the compute commands: a token as is, the services at
 * stratosd's own paths on the fake server. */
static void cloud_start(struct fake_server *s, const struct fake_route *routes, size_t n,
                        const struct fake_later *later, size_t n_later)
{
    fake_start_later(s, routes, n, later, n_later);
    st_autofree char *auth_url = st_sprintf("http://127.0.0.1:%u/identity/v3", s->port);
    setenv("OS_AUTH_URL", auth_url, 1);
    setenv("OS_TOKEN", "tok-as-is", 1);
}

/* The request of the server's log that starts with prefix (head included). */
static const char *request_of(struct fake_server *s, const char *prefix)
{
    const char *r = strstr(s->requests, prefix);
    assert_non_null(r);
    return r;
}

static void test_formatted_cells(void **state)
{
    (void)state;
    /* cliff's FormattableColumn: human text in tables, the value in json,
     * Python's str() of the value in value/shell/csv */
    st_autoptr(json_t) obj = json_object();
    json_object_set_new(obj, "nets",
                        st_cli_output_formatted("private=10.0.0.5", parse("{\"private\": "
                                                                          "[\"10.0.0.5\"]}")));
    json_object_set_new(obj, "power", st_cli_output_formatted("Running", json_integer(1)));
    const struct {
        enum st_cli_format format;
        const char *want;
    } cases[] = {
        {ST_CLI_FORMAT_TABLE, "+-------+------------------+\n"
                              "| Field | Value            |\n"
                              "+-------+------------------+\n"
                              "| nets  | private=10.0.0.5 |\n"
                              "| power | Running          |\n"
                              "+-------+------------------+\n"},
        {ST_CLI_FORMAT_JSON, "{\n  \"nets\": {\n    \"private\": [\n      \"10.0.0.5\"\n    ]\n  "
                             "},\n  \"power\": 1\n}\n"},
        {ST_CLI_FORMAT_VALUE, "{'private': ['10.0.0.5']}\n1\n"},
        {ST_CLI_FORMAT_SHELL, "nets=\"{'private': ['10.0.0.5']}\"\npower=\"1\"\n"},
        {ST_CLI_FORMAT_YAML, "nets:\n  private:\n  - 10.0.0.5\npower: 1\n"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
        struct st_cli_output_opts o = {.format = cases[i].format};
        struct capture c;
        capture_open(&c);
        assert_int_equal(st_cli_output_show(c.f, &o, obj, NULL), 0);
        st_autofree char *text = capture_close(&c);
        assert_string_equal(text, cases[i].want);
    }
}

static void test_flavor_commands(void **state)
{
    (void)state;
    st_autofree char *f1 = st_sprintf("{\"flavor\": %s}", flavor_f1);
    st_autofree char *list = st_sprintf("{\"flavors\": [%s]}", flavor_f1);
    const struct fake_route routes[] = {
        {"POST /compute/v2.1/flavors", "200 OK", "",
         "{\"flavor\": {\"id\": \"f2\", \"name\": \"m1.medium\", \"ram\": 4096, \"vcpus\": 2,"
         " \"disk\": 20, \"OS-FLV-EXT-DATA:ephemeral\": 0, \"swap\": \"\", \"rxtx_factor\": 1.0,"
         " \"os-flavor-access:is_public\": false, \"OS-FLV-DISABLED:disabled\": false}}"},
        {"POST /compute/v2.1/flavors/f2/os-extra_specs", "200 OK", "",
         "{\"extra_specs\": {\"quota:cpu_shares\": \"2048\"}}"},
        {"/compute/v2.1/flavors/detail?is_public=True", "200 OK", "", list},
        {"/compute/v2.1/flavors/detail?is_public=None", "200 OK", "", list},
        {"/compute/v2.1/flavors/f1", "200 OK", "", f1},
        {"/compute/v2.1/flavors/f1/os-extra_specs", "200 OK", "",
         "{\"extra_specs\": {\"hw:a\": \"1\"}}"},
        {"DELETE /compute/v2.1/flavors/f1", "202 Accepted", "", ""},
    };
    struct fake_server s;
    cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);

    struct run_result r =
        run_words("flavor", "create", "--vcpus", "2", "--ram", "4096", "--disk", "20", "--property",
                  "quota:cpu_shares=2048", "--private", "m1.medium", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    /* the SDK's body (id null: Nova picks), then the extra specs */
    assert_string_equal(s.log, "POST /compute/v2.1/flavors {\"flavor\":{\"name\":\"m1.medium\","
                               "\"ram\":4096,\"vcpus\":2,\"disk\":20,\"id\":null,\"swap\":0,"
                               "\"OS-FLV-EXT-DATA:ephemeral\":0,\"rxtx_factor\":1.0,"
                               "\"os-flavor-access:is_public\":false}}\n"
                               "POST /compute/v2.1/flavors/f2/os-extra_specs {\"extra_specs\":"
                               "{\"quota:cpu_shares\":\"2048\"}}\n");
    assert_non_null(strstr(request_of(&s, "POST /compute/v2.1/flavors "),
                           "OpenStack-API-Version: compute 2.1\r\n"));
    assert_string_equal(r.out, "+----------------------------+-------------------------+\n"
                               "| Field                      | Value                   |\n"
                               "+----------------------------+-------------------------+\n"
                               "| OS-FLV-DISABLED:disabled   | False                   |\n"
                               "| OS-FLV-EXT-DATA:ephemeral  | 0                       |\n"
                               "| description                | None                    |\n"
                               "| disk                       | 20                      |\n"
                               "| id                         | f2                      |\n"
                               "| name                       | m1.medium               |\n"
                               "| os-flavor-access:is_public | False                   |\n"
                               "| properties                 | quota:cpu_shares='2048' |\n"
                               "| ram                        | 4096                    |\n"
                               "| rxtx_factor                | 1.0                     |\n"
                               "| swap                       |                         |\n"
                               "| vcpus                      | 2                       |\n"
                               "+----------------------------+-------------------------+\n");
    run_free(&r);

    /* list --long fetches each flavor's extra specs */
    log_reset(&s);
    r = run_words("flavor", "list", "--long", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET /compute/v2.1/flavors/detail?is_public=True \n"
                               "GET /compute/v2.1/flavors/f1/os-extra_specs \n");
    assert_string_equal(r.out, "+----+----------+------+------+-----------+-------+-----------+"
                               "------+-------------+------------+\n"
                               "| ID | Name     |  RAM | Disk | Ephemeral | VCPUs | Is Public | "
                               "Swap | RXTX Factor | Properties |\n"
                               "+----+----------+------+------+-----------+-------+-----------+"
                               "------+-------------+------------+\n"
                               "| f1 | m1.small | 2048 |   20 |         0 |     1 | True      | "
                               "     |         1.0 | hw:a='1'   |\n"
                               "+----+----------+------+------+-----------+-------+-----------+"
                               "------+-------------+------------+\n");
    run_free(&r);

    /* the SDK's lookup: by ID (404), then the list matched on the name */
    log_reset(&s);
    r = run_words("flavor", "show", "m1.small", "-f", "json", "-c", "id", "-c", "properties", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET /compute/v2.1/flavors/m1.small \n"
                               "GET /compute/v2.1/flavors/detail?is_public=None \n"
                               "GET /compute/v2.1/flavors/f1/os-extra_specs \n");
    assert_string_equal(r.out, "{\n  \"id\": \"f1\",\n  \"properties\": {\n    \"hw:a\": \"1\"\n"
                               "  }\n}\n");
    run_free(&r);

    /* delete goes on after a miss and counts */
    log_reset(&s);
    r = run_words("flavor", "delete", "m1.small", "nope", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Failed to delete flavor with name or ID 'nope': No Flavor found "
                               "for nope\n1 of 2 flavors failed to delete.\n");
    assert_non_null(strstr(s.log, "DELETE /compute/v2.1/flavors/f1 \n"));
    run_free(&r);

    /* argparse's type=int */
    r = run_words("flavor", "create", "--ram", "lots", "x", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "stratos flavor create: error: argument --ram: invalid int "
                                  "value: 'lots'\n"));
    run_free(&r);
    fake_stop(&s);
}

static void test_keypair_commands(void **state)
{
    (void)state;
    char path[] = "/tmp/st-cli-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@host\n";
    assert_int_equal(write(fd, pub, strlen(pub)), (ssize_t)strlen(pub));
    close(fd);
    const struct fake_route routes[] = {
        {"POST /compute/v2.1/os-keypairs", "200 OK", "",
         "{\"keypair\": {\"name\": \"k1\", \"public_key\": \"ssh-ed25519 AAAA\","
         " \"fingerprint\": \"5a:64\", \"user_id\": \"u-admin\","
         " \"private_key\": \"-----BEGIN OPENSSH PRIVATE KEY-----\\nxyz\\n\"}}"},
        {"/compute/v2.1/os-keypairs", "200 OK", "",
         "{\"keypairs\": [{\"keypair\": {\"name\": \"k1\", \"fingerprint\": \"5a:64\","
         " \"public_key\": \"ssh-ed25519 AAAA\\n\"}}]}"},
    };
    struct fake_server s;
    cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);

    /* the key file verbatim, newline included */
    struct run_result r = run_words("keypair", "create", "--public-key", path, "k1", NULL);
    unlink(path);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "POST /compute/v2.1/os-keypairs {\"keypair\":{\"name\":\"k1\","
                               "\"public_key\":\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample "
                               "user@host\\n\"}}\n");
    assert_string_equal(r.out, "+-------------+---------+\n"
                               "| Field       | Value   |\n"
                               "+-------------+---------+\n"
                               "| created_at  | None    |\n"
                               "| fingerprint | 5a:64   |\n"
                               "| id          | k1      |\n"
                               "| is_deleted  | None    |\n"
                               "| name        | k1      |\n"
                               "| type        | ssh     |\n"
                               "| user_id     | u-admin |\n"
                               "+-------------+---------+\n");
    run_free(&r);

    /* generated: the private key, once, on stdout (then cliff's empty table) */
    log_reset(&s);
    r = run_words("keypair", "create", "k1", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "POST /compute/v2.1/os-keypairs {\"keypair\":{\"name\":\"k1\"}}\n");
    assert_string_equal(r.out, "-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n\n");
    run_free(&r);

    r = run_words("keypair", "list", "-f", "csv", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "\"Name\",\"Fingerprint\"\n\"k1\",\"5a:64\"\n");
    run_free(&r);

    /* show by name: GET by name (404 here), then the list */
    r = run_words("keypair", "show", "--public-key", "k1", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "ssh-ed25519 AAAA\n\n");
    run_free(&r);
    r = run_words("keypair", "create", "--type", "x509", "k2", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "--os-compute-api-version 2.2 or greater is required to support "
                               "the --type option\n");
    run_free(&r);
    fake_stop(&s);
}

/* The 3 MiB image of the upload test: a pattern that a shifted or
 * truncated copy cannot match. */
static unsigned char image_byte(size_t i)
{
    return (unsigned char)((i * 31 + i / 4096) & 0xff);
}

static void test_image_commands(void **state)
{
    (void)state;
    const size_t size = 3 * 1024 * 1024;
    char path[] = "/tmp/st-cli-image-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unsigned char *data = st_new0(unsigned char, size);
    for (size_t i = 0; i < size; i++)
        data[i] = image_byte(i);
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    close(fd);
    st_autofree char *one = st_sprintf("{\"images\": [%s], \"first\": \"/v2/images\"}", image_i1);
    const struct fake_route routes[] = {
        {"POST /image/v2/images", "201 Created", "",
         "{\"id\": \"44fd\", \"name\": \"busybox\", \"status\": \"queued\"}"},
        {"PUT /image/v2/images/44fd/file", "204 No Content", "", ""},
        {"/image/v2/images/44fd", "200 OK", "", image_i1},
        {"/image/v2/images?name=busybox", "200 OK", "", one},
        {"/image/v2/images", "200 OK", "", one},
        {"/image/v2/images/44fd/file", "200 OK",
         "Content-MD5: 900150983cd24fb0d6963f7d28e17f72\r\n", "abc"},
        {"PATCH /image/v2/images/44fd", "200 OK", "", image_i1},
    };
    struct fake_server s;
    cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);

    struct run_result r = run_words("image", "create", "--file", path, "--container-format",
                                    "docker", "--disk-format", "raw", "--property",
                                    "os_command_line=/bin/sh", "--public", "busybox", NULL);
    unlink(path);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    /* POST, the file streamed with its length, then the image as it is now */
    assert_string_equal(s.log,
                        "POST /image/v2/images {\"name\":\"busybox\",\"disk_format\":\"raw\","
                        "\"container_format\":\"docker\",\"visibility\":\"public\","
                        "\"os_command_line\":\"/bin/sh\","
                        "\"owner_specified.openstack.md5\":\"\","
                        "\"owner_specified.openstack.sha256\":\"\","
                        "\"owner_specified.openstack.object\":\"images/busybox\"}\n"
                        "PUT /image/v2/images/44fd/file <3145728 bytes>\n"
                        "GET /image/v2/images/44fd \n");
    const char *put = request_of(&s, "PUT /image/v2/images/44fd/file");
    assert_non_null(strstr(put, "Content-Type: application/octet-stream\r\n"));
    assert_non_null(strstr(put, "Content-Length: 3145728\r\n"));
    assert_int_equal(s.upload_len, size);
    assert_memory_equal(s.upload, data, size);
    free(data);
    /* openstack's image view: known fields, tags sorted, the rest as properties */
    assert_string_equal(r.out,
                        "+------------------+----------------------------------------------+\n"
                        "| Field            | Value                                        |\n"
                        "+------------------+----------------------------------------------+\n"
                        "| checksum         | abc1                                         |\n"
                        "| container_format | docker                                       |\n"
                        "| created_at       | 2030-01-01T11:00:00Z                         |\n"
                        "| disk_format      | raw                                          |\n"
                        "| file             | /v2/images/44fd/file                         |\n"
                        "| id               | 44fd                                         |\n"
                        "| min_disk         | 0                                            |\n"
                        "| min_ram          | 0                                            |\n"
                        "| name             | busybox                                      |\n"
                        "| owner            | p-admin                                      |\n"
                        "| properties       | os_command_line='/bin/sh', os_hidden='False' |\n"
                        "| protected        | False                                        |\n"
                        "| schema           | /v2/schemas/image                            |\n"
                        "| size             | 3                                            |\n"
                        "| status           | active                                       |\n"
                        "| tags             | a, b                                         |\n"
                        "| updated_at       | 2030-01-01T11:00:00Z                         |\n"
                        "| visibility       | public                                       |\n"
                        "+------------------+----------------------------------------------+\n");
    run_free(&r);

    /* a missing file creates nothing */
    log_reset(&s);
    r = run_words("image", "create", "--file", "/nonexistent/x.tar", "x", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "[Errno 2] No such file or directory: '/nonexistent/x.tar'\n");
    assert_string_equal(s.log, "");
    run_free(&r);

    r = run_words("image", "list", "--long", "-f", "value", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "44fd busybox raw docker 3 abc1 active public False p-admin "
                               "['b', 'a']\n");
    run_free(&r);

    /* save: streamed to the file and checked against Content-MD5 */
    char out[] = "/tmp/st-cli-saved-XXXXXX";
    fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    r = run_words("image", "save", "--file", out, "busybox", NULL);
    assert_int_equal(r.rc, 0);
    st_autofree char *saved = NULL;
    size_t saved_len;
    assert_int_equal(st_read_file(out, 1024, &saved, &saved_len, NULL), 0);
    assert_string_equal(saved, "abc");
    run_free(&r);

    /* set: one JSON patch of "add" operations, in key order */
    log_reset(&s);
    r = run_words("image", "set", "--property", "hw_x=1", "--tag", "c", "--min-ram", "64",
                  "busybox", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log, "PATCH /image/v2/images/44fd [{\"op\":\"add\",\"path\":\"/hw_x\","
                                  "\"value\":\"1\"},{\"op\":\"add\",\"path\":\"/min_ram\","
                                  "\"value\":64},{\"op\":\"add\",\"path\":\"/tags\",\"value\":"
                                  "[\"b\",\"a\",\"c\"]}]\n"));
    assert_non_null(strstr(request_of(&s, "PATCH /image/v2/images/44fd"),
                           "Content-Type: application/openstack-images-v2.1-json-patch\r\n"));
    run_free(&r);
    fake_stop(&s);

    /* a download that does not match its checksum fails and leaves no file */
    const struct fake_route bad[] = {
        {"/image/v2/images/44fd", "200 OK", "", image_i1},
        {"/image/v2/images/44fd/file", "200 OK", "", "abd"},
    };
    cloud_start(&s, bad, ST_ARRAY_SIZE(bad), NULL, 0);
    r = run_words("image", "save", "--file", out, "44fd", NULL);
    fake_stop(&s);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "Unable to download image: checksum mismatch: abc1 != "
                               "4911e516e5aa21d327512e0c8b197616\n");
    assert_int_equal(access(out, F_OK), -1);
    run_free(&r);
}

/* Routes for server create: the lookups of §10 and the server itself. */
#define SERVER_CREATE_ROUTES(image_list, flavor, server_body)                                      \
    {"/image/v2/images?name=busybox", "200 OK", "", image_list},                                   \
        {"/image/v2/images/44fd", "200 OK", "", image_i1},                                         \
        {"/compute/v2.1/flavors", "200 OK", "",                                                    \
         "{\"flavors\": [{\"id\": \"f1\", \"name\": \"m1.small\", \"links\": []}]}"},              \
        {"/compute/v2.1/flavors/f1", "200 OK", "", flavor},                                        \
        {"POST /compute/v2.1/servers", "202 Accepted", "",                                         \
         "{\"server\": {\"id\": \"s1\", \"adminPass\": \"pw\", \"links\": []}}"},                  \
    {                                                                                              \
        "/compute/v2.1/servers/s1", "200 OK", "", server_body                                      \
    }

static void test_server_create(void **state)
{
    (void)state;
    char path[] = "/tmp/st-cli-userdata-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\necho hi\n", 18), 18);
    close(fd);
    st_autofree char *images = st_sprintf("{\"images\": [%s]}", image_i1);
    st_autofree char *flavor = st_sprintf("{\"flavor\": %s}", flavor_f1);
    st_autofree char *build = server_json("BUILD", NULL);
    const struct fake_route routes[] = {
        SERVER_CREATE_ROUTES(images, flavor, build),
        {"/network/v2.0/networks?name=private", "200 OK", "",
         "{\"networks\": [{\"id\": \"net-1\", \"name\": \"private\"}]}"},
        {"/network/v2.0/security-groups?name=default", "200 OK", "",
         "{\"security_groups\": [{\"id\": \"sg-1\", \"name\": \"default\"}]}"},
    };
    struct fake_server s;
    cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);

    struct run_result r =
        run_words("server", "create", "--flavor", "m1.small", "--image", "busybox", "--key-name",
                  "k1", "--user-data", path, "--property", "a=b", "--availability-zone", "nova",
                  "--network", "private", "--security-group", "default", "demo", NULL);
    unlink(path);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    /* openstack's sequence (§10) and novaclient's body (§4.4): the group by
     * its ID, the network by UUID, user data in base64 */
    assert_string_equal(s.log,
                        "GET /image/v2/images/busybox \n"
                        "GET /image/v2/images?name=busybox \n"
                        "GET /compute/v2.1/flavors/m1.small \n"
                        "GET /compute/v2.1/flavors \n"
                        "GET /compute/v2.1/flavors/f1 \n"
                        "GET /network/v2.0/networks/private \n"
                        "GET /network/v2.0/networks?name=private \n"
                        "GET /network/v2.0/security-groups/default \n"
                        "GET /network/v2.0/security-groups?name=default \n"
                        "POST /compute/v2.1/servers {\"server\":{\"name\":\"demo\",\"imageRef\":"
                        "\"44fd\",\"flavorRef\":\"f1\",\"user_data\":\"IyEvYmluL3NoCmVjaG8gaGkK\","
                        "\"metadata\":{\"a\":\"b\"},\"key_name\":\"k1\",\"min_count\":1,"
                        "\"max_count\":1,\"security_groups\":[{\"name\":\"sg-1\"}],"
                        "\"availability_zone\":\"nova\",\"networks\":[{\"uuid\":\"net-1\"}]}}\n"
                        "GET /compute/v2.1/servers/s1 \n"
                        "GET /image/v2/images/44fd \n"
                        "GET /compute/v2.1/flavors/f1 \n");
    const char *post = request_of(&s, "POST /compute/v2.1/servers");
    assert_non_null(strstr(post, "X-OpenStack-Nova-API-Version: 2.1\r\n"));
    assert_string_equal(r.out, "+-----------------------------+----------------------+\n"
                               "| Field                       | Value                |\n"
                               "+-----------------------------+----------------------+\n"
                               "| OS-EXT-AZ:availability_zone | nova                 |\n"
                               "| OS-EXT-SRV-ATTR:host        | node1                |\n"
                               "| OS-EXT-STS:power_state      | NOSTATE              |\n"
                               "| OS-EXT-STS:task_state       | None                 |\n"
                               "| addresses                   | private=10.0.2.11    |\n"
                               "| adminPass                   | pw                   |\n"
                               "| created                     | 2030-01-01T11:00:00Z |\n"
                               "| flavor                      | m1.small (f1)        |\n"
                               "| id                          | s1                   |\n"
                               "| image                       | busybox (44fd)       |\n"
                               "| key_name                    | k1                   |\n"
                               "| name                        | demo                 |\n"
                               "| progress                    | 0                    |\n"
                               "| project_id                  | p-admin              |\n"
                               "| properties                  | a='b'                |\n"
                               "| security_groups             | name='default'       |\n"
                               "| status                      | BUILD                |\n"
                               "| user_id                     | u-admin              |\n"
                               "| volumes_attached            |                      |\n"
                               "+-----------------------------+----------------------+\n");
    run_free(&r);

    /* no options: no networks, groups, metadata or user data keys at all */
    log_reset(&s);
    r = run_words("server", "create", "--flavor", "f1", "--image", "44fd", "demo", "-f", "value",
                  "-c", "id", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "s1\n");
    assert_non_null(strstr(s.log, "POST /compute/v2.1/servers {\"server\":{\"name\":\"demo\","
                                  "\"imageRef\":\"44fd\",\"flavorRef\":\"f1\",\"min_count\":1,"
                                  "\"max_count\":1}}\n"));
    run_free(&r);

    r = run_words("server", "create", "--image", "busybox", "demo", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "error: the following arguments are required: --flavor\n"));
    run_free(&r);
    fake_stop(&s);
}

static void test_server_wait(void **state)
{
    (void)state;
    st_autofree char *images = st_sprintf("{\"images\": [%s]}", image_i1);
    st_autofree char *flavor = st_sprintf("{\"flavor\": %s}", flavor_f1);
    st_autofree char *build = server_json("BUILD", NULL);
    st_autofree char *active = server_json("ACTIVE", NULL);
    const struct fake_route routes[] = {SERVER_CREATE_ROUTES(images, flavor, build)};
    const struct fake_later becomes_active[] = {{"/compute/v2.1/servers/s1", 2, "200 OK", active}};
    struct fake_server s;
    cloud_start(&s, routes, ST_ARRAY_SIZE(routes), becomes_active, 1);

    /* polls until ACTIVE: the progress on stderr, stdout clean JSON */
    struct run_result r =
        run_words("server", "create", "--flavor", "f1", "--image", "44fd", "--wait", "demo", "-f",
                  "json", "-c", "status", "-c", "OS-EXT-STS:power_state", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out,
                        "{\n  \"OS-EXT-STS:power_state\": 1,\n  \"status\": \"ACTIVE\"\n}\n");
    assert_string_equal(r.err, "Server demo: BUILD\nServer demo: ACTIVE\n");
    assert_non_null(strstr(s.log, "GET /compute/v2.1/servers/s1 \nGET /compute/v2.1/servers/s1 \n"
                                  "GET /compute/v2.1/servers/s1 \n"));
    run_free(&r);
    fake_stop(&s);

    /* ERROR: exit 1, the fault's message, nothing on stdout */
    st_autofree char *error =
        server_json("ERROR", "No valid host: 1 node, 1 removed by RamFilter (2048 MB free)");
    const struct fake_later becomes_error[] = {{"/compute/v2.1/servers/s1", 1, "200 OK", error}};
    cloud_start(&s, routes, ST_ARRAY_SIZE(routes), becomes_error, 1);
    r = run_words("server", "create", "--flavor", "f1", "--image", "44fd", "--wait", "demo", NULL);
    fake_stop(&s);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "Server demo: BUILD\nServer demo: ERROR\n"
                               "Error creating server: demo\n"
                               "No valid host: 1 node, 1 removed by RamFilter (2048 MB free)\n");
    run_free(&r);

    /* delete --wait polls until Nova answers 404 */
    const struct fake_route del[] = {
        {"/compute/v2.1/servers/s1", "200 OK", "", active},
        {"DELETE /compute/v2.1/servers/s1", "204 No Content", "", ""},
    };
    const struct fake_later gone[] = {
        {"/compute/v2.1/servers/s1", 2, "404 Not Found",
         "{\"itemNotFound\": {\"code\": 404, \"message\": \"Instance s1 could not be found.\"}}"}};
    cloud_start(&s, del, ST_ARRAY_SIZE(del), gone, 1);
    r = run_words("server", "delete", "--wait", "s1", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET /compute/v2.1/servers/s1 \n"
                               "DELETE /compute/v2.1/servers/s1 \n"
                               "GET /compute/v2.1/servers/s1 \n"
                               "GET /compute/v2.1/servers/s1 \n");
    assert_string_equal(r.err, "Server demo: ACTIVE\n");
    run_free(&r);
    fake_stop(&s);
}

static void test_server_commands(void **state)
{
    (void)state;
    st_autofree char *active = server_json("ACTIVE", NULL);
    st_autofree char *detail = st_sprintf("{\"servers\": [%s]}", strchr(active, ':') + 2);
    detail[strlen(detail) - 3] = '\0'; /* the object inside {"server": ...} */
    st_autofree char *servers = st_sprintf("%s]}", detail);
    st_autofree char *images = st_sprintf("{\"images\": [%s]}", image_i1);
    st_autofree char *flavors = st_sprintf("{\"flavors\": [%s]}", flavor_f1);
    const struct fake_route routes[] = {
        {"/compute/v2.1/servers/detail", "200 OK", "", servers},
        {"/compute/v2.1/servers/detail?all_tenants=True&name=demo&status=ACTIVE", "200 OK", "",
         servers},
        {"/image/v2/images", "200 OK", "", images},
        {"/compute/v2.1/flavors/detail?is_public=None", "200 OK", "", flavors},
        {"/compute/v2.1/servers?name=demo", "200 OK", "",
         "{\"servers\": [{\"id\": \"s1\", \"name\": \"demo\"}, {\"id\": \"s2\", \"name\": "
         "\"demo-2\"}]}"},
        {"/compute/v2.1/servers/s1", "200 OK", "", active},
        {"/compute/v2.1/servers?name=nope", "200 OK", "", "{\"servers\": []}"},
        {"POST /compute/v2.1/servers/s1/action", "202 Accepted", "", ""},
        {"/compute/v2.1/os-hypervisors/detail", "200 OK", "",
         "{\"hypervisors\": [{\"id\": 1, \"hypervisor_hostname\": \"node1\", \"hypervisor_type\":"
         " \"stratos-container\", \"host_ip\": \"10.0.0.1\", \"state\": \"up\", \"vcpus\": 8,"
         " \"vcpus_used\": 2, \"memory_mb\": 16000, \"memory_mb_used\": 2048}]}"},
    };
    struct fake_server s;
    cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);

    /* names of images and flavors from one list each */
    struct run_result r = run_words("server", "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET /compute/v2.1/servers/detail \n"
                               "GET /image/v2/images \n"
                               "GET /compute/v2.1/flavors/detail?is_public=None \n");
    assert_string_equal(r.out, "+----+------+--------+-------------------+---------+----------+\n"
                               "| ID | Name | Status | Networks          | Image   | Flavor   |\n"
                               "+----+------+--------+-------------------+---------+----------+\n"
                               "| s1 | demo | ACTIVE | private=10.0.2.11 | busybox | m1.small |\n"
                               "+----+------+--------+-------------------+---------+----------+\n");
    run_free(&r);

    /* filters as novaclient sorts them */
    log_reset(&s);
    r = run_words("server", "list", "--name", "demo", "--status", "ACTIVE", "--all-projects",
                  "--long", "-f", "json", "-c", "Power State", "-c", "Properties", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log, "GET /compute/v2.1/servers/detail?all_tenants=True&name=demo&"
                                  "status=ACTIVE \n"));
    assert_string_equal(r.out, "[\n  {\n    \"Power State\": 1,\n    \"Properties\": {\n"
                               "      \"a\": \"b\"\n    }\n  }\n]\n");
    run_free(&r);

    /* actions: novaclient's lookup (the exact name among the list's) */
    log_reset(&s);
    r = run_words("server", "stop", "demo", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET /compute/v2.1/servers/demo \n"
                               "GET /compute/v2.1/servers?name=demo \n"
                               "GET /compute/v2.1/servers/s1 \n"
                               "POST /compute/v2.1/servers/s1/action {\"os-stop\":null}\n");
    run_free(&r);
    log_reset(&s);
    r = run_words("server", "start", "s1", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "GET /compute/v2.1/servers/s1 \n"
                               "POST /compute/v2.1/servers/s1/action {\"os-start\":null}\n");
    run_free(&r);
    log_reset(&s);
    r = run_words("server", "reboot", "--hard", "s1", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(s.log, "POST /compute/v2.1/servers/s1/action {\"reboot\":{\"type\":"
                                  "\"HARD\"}}\n"));
    run_free(&r);
    r = run_words("server", "show", "nope", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "No server with a name or ID of 'nope' exists.\n");
    run_free(&r);

    r = run_words("hypervisor", "list", "--long", "-f", "csv", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "\"ID\",\"Hypervisor Hostname\",\"Hypervisor Type\",\"Host IP\","
                               "\"State\",\"vCPUs Used\",\"vCPUs\",\"Memory MB Used\","
                               "\"Memory MB\"\n1,\"node1\",\"stratos-container\",\"10.0.0.1\","
                               "\"up\",2,8,2048,16000\n");
    run_free(&r);
    fake_stop(&s);

    /* console log: the SDK's lookup, the action, a newline added */
    const struct fake_route console[] = {
        {"/compute/v2.1/servers/s1", "200 OK", "", active},
        {"POST /compute/v2.1/servers/s1/action", "200 OK", "", "{\"output\": \"line 2\\nline 3\"}"},
    };
    cloud_start(&s, console, ST_ARRAY_SIZE(console), NULL, 0);
    r = run_words("console", "log", "show", "--lines", "2", "s1", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "line 2\nline 3\n");
    assert_non_null(strstr(s.log, "POST /compute/v2.1/servers/s1/action {\"os-getConsoleOutput\":"
                                  "{\"length\":2}}\n"));
    run_free(&r);
    fake_stop(&s);
}

static void test_quota_commands(void **state)
{
    (void)state;
    st_autofree char *token = admin_token("");
    struct fake_route routes[] = {
        TOKEN_ROUTE,
        {"/compute/v2.1/os-quota-sets/p-admin", "200 OK", "",
         "{\"quota_set\": {\"id\": \"p-admin\", \"cores\": 20, \"instances\": 10, \"ram\": 51200,"
         " \"key_pairs\": 100, \"metadata_items\": 128}}"},
        {"/identity/v3/projects?name=admin", "200 OK", "",
         "{\"projects\": [{\"id\": \"p-admin\", \"name\": \"admin\"}]}"},
        {"PUT /compute/v2.1/os-quota-sets/p-admin", "200 OK", "", "{\"quota_set\": {}}"},
    };
    routes[0].body = token;
    struct fake_server s;
    cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);
    struct run_result r = run_words("quota", "show", "-f", "value", NULL);
    assert_int_equal(r.rc, 0);
    /* openstack's names, the project by ID and name */
    assert_string_equal(r.out, "20\n10\n100\np-admin\nadmin\n128\n51200\n");
    run_free(&r);
    r = run_words("quota", "show", "-f", "value", "-c", "key-pairs", "-c", "project_name", NULL);
    assert_string_equal(r.out, "100\nadmin\n");
    run_free(&r);

    log_reset(&s);
    r = run_words("quota", "set", "--instances", "5", "--cores", "8", "--ram", "4096", "admin",
                  NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log,
                        "GET /identity/v3/projects/admin \n"
                        "GET /identity/v3/projects?name=admin \n"
                        "PUT /compute/v2.1/os-quota-sets/p-admin {\"quota_set\":{\"cores\":8,"
                        "\"instances\":5,\"ram\":4096}}\n");
    run_free(&r);
    fake_stop(&s);
}

/* The seed's resource policy, verbatim. */
static const char *const seed_policy = "resourcePolicy:\n"
                                       "  compute:\n"
                                       "    cpu: {reservation: 2GHz, limit: 4GHz, shares: normal}\n"
                                       "    memory: {reservation: 4GB, limit: 8GB}\n"
                                       "  storage: {type: SSD, size: 100GB, iops: 3000}\n"
                                       "  network: {bandwidth: 1Gbps, latency: <10ms}\n";

static char *write_temp(const char *text)
{
    char *path = st_strdup("/tmp/st-cli-doc-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_apply(void **state)
{
    (void)state;
    const struct fake_route routes[] = {
        {"PUT /stratos/v1/resource-policies/gold", "201 Created", "",
         "{\"resource_policy\": {\"name\": \"gold\", \"project_id\": \"p-admin\","
         " \"resourcePolicy\": {\"storage\": {\"type\": \"SSD\"}},"
         " \"not_enforced\": [\"storage\", \"network\"]}}"},
        {"/stratos/v1/resource-policies", "200 OK", "",
         "{\"resource_policies\": [{\"name\": \"gold\", \"project_id\": \"p-admin\","
         " \"not_enforced\": [\"storage\", \"network\"], \"updated_at\": \"2030\"}]}"},
    };
    struct fake_server s;
    cloud_start(&s, routes, ST_ARRAY_SIZE(routes), NULL, 0);
    st_autofree char *named = st_sprintf("metadata: {name: gold}\n%s", seed_policy);
    st_autofree char *file = write_temp(named);

    /* the seed's document, parsed (3000 a number, the rest strings) and PUT */
    struct run_result r = run_words("apply", "-f", file, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "PUT /stratos/v1/resource-policies/gold {\"name\":\"gold\","
                               "\"resourcePolicy\":{\"compute\":{\"cpu\":{\"reservation\":\"2GHz\","
                               "\"limit\":\"4GHz\",\"shares\":\"normal\"},\"memory\":{"
                               "\"reservation\":\"4GB\",\"limit\":\"8GB\"}},\"storage\":{\"type\":"
                               "\"SSD\",\"size\":\"100GB\",\"iops\":3000},\"network\":{"
                               "\"bandwidth\":\"1Gbps\",\"latency\":\"<10ms\"}}}\n");
    assert_string_equal(r.err, "warning: resource policy 'gold': storage is stored but not "
                               "enforced yet\n"
                               "warning: resource policy 'gold': network is stored but not "
                               "enforced yet\n");
    assert_string_equal(r.out, "+----------------+--------------------+\n"
                               "| Field          | Value              |\n"
                               "+----------------+--------------------+\n"
                               "| name           | gold               |\n"
                               "| not_enforced   | network, storage   |\n"
                               "| project_id     | p-admin            |\n"
                               "| resourcePolicy | storage.type='SSD' |\n"
                               "+----------------+--------------------+\n");
    run_free(&r);
    unlink(file);

    /* --dry-run: the request printed, none sent; the default name */
    st_autofree char *plain = write_temp(seed_policy);
    log_reset(&s);
    r = run_words("apply", "-f", plain, "--dry-run", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(s.log, "");
    st_autofree char *want = st_sprintf("PUT http://127.0.0.1:%u/stratos/v1/resource-policies/"
                                        "default (dry run)\n{\n  \"name\": \"default\",\n",
                                        s.port);
    assert_int_equal(strncmp(r.out, want, strlen(want)), 0);
    run_free(&r);
    unlink(plain);

    /* unknown kinds, bad YAML: exit 2 and nothing sent, even when another
     * document of the file is good */
    const struct {
        const char *text, *err;
    } bad[] = {
        {"bucket: {name: b}\n", "unknown kind of document 'bucket' (known: resourcePolicy, vpc)"},
        {"kind: Deployment\nspec: {}\n", "unknown kind 'Deployment' (known: resourcePolicy, vpc)"},
        {"resourcePolicy: [1]\n", "resourcePolicy must be a mapping"},
        {"a: [\n", "invalid YAML: line 2, column 1: flow sequence without a closing bracket"},
        {"a: &x 1\nb: *x\n", "invalid YAML: a: anchors and aliases are not accepted"},
    };
    for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
        st_autofree char *doc = st_sprintf("%s---\n%s", seed_policy, bad[i].text);
        st_autofree char *f = write_temp(i < 3 ? doc : bad[i].text);
        log_reset(&s);
        r = run_words("apply", "-f", f, NULL);
        unlink(f);
        assert_int_equal(r.rc, 2);
        assert_string_equal(s.log, "");
        st_autofree char *msg =
            i < 3 ? st_sprintf("stratos apply: error: %s: document 2: %s\n", f, bad[i].err)
                  : st_sprintf("stratos apply: error: %s: %s\n", f, bad[i].err);
        assert_string_equal(r.err, msg);
        run_free(&r);
    }

    r = run_words("resource", "policy", "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "+------+------------+------------------+------------+\n"
                               "| Name | Project ID | Not Enforced     | Updated At |\n"
                               "+------+------------+------------------+------------+\n"
                               "| gold | p-admin    | network, storage | 2030       |\n"
                               "+------+------------+------------------+------------+\n");
    run_free(&r);
    fake_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_table),
        cmocka_unit_test(test_list_table),
        cmocka_unit_test(test_columns_and_sort),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_yaml),
        cmocka_unit_test(test_shell_and_csv),
        cmocka_unit_test(test_cell),
        cmocka_unit_test_setup_teardown(test_config_env_and_flags, clean_env, clean_env),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_error_message),
        cmocka_unit_test_setup_teardown(test_run_status, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_run_version_and_errors, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_run_usage, clean_env, clean_env),
        cmocka_unit_test(test_auth_password_body),
        cmocka_unit_test(test_auth_catalog),
        cmocka_unit_test_setup_teardown(test_auth_login, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_auth_errors, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_name_lookup, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_project_commands, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_user_commands, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_role_commands, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_identity_help, clean_env, clean_env),
        cmocka_unit_test(test_python_str),
        cmocka_unit_test(test_formatted_cells),
        cmocka_unit_test_setup_teardown(test_flavor_commands, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_keypair_commands, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_image_commands, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_server_create, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_server_wait, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_server_commands, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_quota_commands, clean_env, clean_env),
        cmocka_unit_test_setup_teardown(test_apply, clean_env, clean_env),
    };
    /* argparse wraps at $COLUMNS - 2: the same width wherever this runs */
    setenv("COLUMNS", "80", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
