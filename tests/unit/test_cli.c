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
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/args.h"
#include "cli/command.h"
#include "cli/config.h"
#include "cli/http.h"
#include "cli/output.h"
#include "lib/cleanup.h"
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
    {"flavor", 0, ST_CLI_OPT_VALUE, "<flavor>", "flavor", NULL, true},
    {"property", 0, ST_CLI_OPT_APPEND, "<key=value>", "property", NULL, false},
    {"wait", 0, ST_CLI_OPT_FLAG, NULL, "wait", NULL, false},
    {"colour", 'C', ST_CLI_OPT_VALUE, NULL, "colour", colours, false},
    {NULL, 0, 0, NULL, NULL, NULL, false},
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

/* ---- whole runs against a tiny HTTP server ---- */

struct fake_route {
    const char *path;
    const char *status;  /* "200 OK" */
    const char *headers; /* extra header lines, each ending in \r\n */
    const char *body;
};

struct fake_server {
    int fd;
    uint16_t port;
    pthread_t thread;
    const struct fake_route *routes;
    size_t n_routes;
    int stop_pipe[2];
    char requests[8192]; /* every request's head, concatenated */
    size_t requests_len;
};

static void *fake_main(void *arg)
{
    struct fake_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
            return NULL;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[4096];
        size_t n = 0;
        while (n < sizeof(req) - 1) {
            ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
            if (k <= 0)
                break;
            n += (size_t)k;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[n] = '\0';
        if (s->requests_len + n < sizeof(s->requests)) {
            memcpy(s->requests + s->requests_len, req, n + 1);
            s->requests_len += n;
        }
        const struct fake_route *route = NULL;
        for (size_t i = 0; i < s->n_routes && !route; i++) {
            st_autofree char *line = st_sprintf("GET %s HTTP/", s->routes[i].path);
            if (strncmp(req, line, strlen(line)) == 0)
                route = &s->routes[i];
        }
        static const struct fake_route missing = {"", "404 Not Found", "",
                                                  "{\"error\": {\"message\": \"no route\"}}"};
        if (!route)
            route = &missing;
        st_autofree char *resp =
            st_sprintf("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n%s\r\n%s",
                       route->status, strlen(route->body), route->headers, route->body);
        ssize_t w = write(c, resp, strlen(resp));
        (void)w;
        close(c);
    }
}

static void fake_start(struct fake_server *s, const struct fake_route *routes, size_t n)
{
    memset(s, 0, sizeof(*s));
    s->routes = routes;
    s->n_routes = n;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pipe(s->stop_pipe), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, fake_main, s), 0);
}

static void fake_stop(struct fake_server *s)
{
    ssize_t w = write(s->stop_pipe[1], "x", 1);
    (void)w;
    pthread_join(s->thread, NULL);
    close(s->fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
}

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
    assert_string_equal(r.err, "stratos: No version here. (HTTP 404) (Request-ID: req-42)\n");
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
    st_autofree char *want =
        st_sprintf("stratos: cannot reach stratosd at %s: Connection refused\n", url);
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
    assert_non_null(strstr(r.out, "\n  status   Show whether stratosd is up and healthy\n"));
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
