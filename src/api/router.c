/* Route table and matching; see router.h. Each pattern is split once into
 * segments (literal text or a parameter name) and filed by segment count, so
 * a lookup compares only patterns of the right length, segment by segment,
 * against the already-decoded request path. Nothing is allocated per lookup. */
#include "router.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/log.h"

/* Methods as bits, in the order an Allow header lists them. */
static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
#define METHOD_GET  (1u << 0)
#define METHOD_HEAD (1u << 1)

struct segment {
    const char *text; /* literal text, or the parameter name */
    size_t len;
    bool param;
    bool rest; /* "{x+}": the rest of the path */
};

struct entry {
    struct st_route route; /* strings owned by the entry */
    unsigned method_bit;
    struct segment segs[ST_ROUTE_MAX_SEGMENTS];
    size_t n_segs;
    size_t n_params;
    bool rest;
    uint64_t rank; /* higher wins: literal positions, leftmost first; exact over rest */
};

struct owned {
    void *ptr;
    void (*free_fn)(void *);
};

struct st_router {
    void *app;
    st_router_auth_fn auth;
    void (*auth_free)(void *auth);
    st_router_observer_fn observer;
    void *observer_data;
    enum st_api_family family;
    struct entry **entries; /* registration order */
    size_t n_entries;
    /* by_len[n]: entries with exactly n segments and no "{x+}"; rest: the others */
    struct entry **by_len[ST_ROUTE_MAX_SEGMENTS + 1];
    size_t n_by_len[ST_ROUTE_MAX_SEGMENTS + 1];
    struct entry **rest;
    size_t n_rest;
    struct owned *owned;
    size_t n_owned;
};

struct st_router *st_router_new(void *app)
{
    struct st_router *r = st_new0(struct st_router, 1);
    r->app = app;
    r->family = ST_API_PLAIN;
    return r;
}

static void entry_free(struct entry *e)
{
    free((char *)e->route.method);
    free((char *)e->route.pattern);
    free((char *)e->route.action);
    for (size_t i = 0; i < e->n_segs; i++)
        free((char *)e->segs[i].text);
    free(e);
}

void st_router_free(struct st_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_entries; i++)
        entry_free(r->entries[i]);
    free(r->entries);
    for (size_t i = 0; i <= ST_ROUTE_MAX_SEGMENTS; i++)
        free(r->by_len[i]);
    free(r->rest);
    for (size_t i = r->n_owned; i > 0; i--)
        r->owned[i - 1].free_fn(r->owned[i - 1].ptr);
    free(r->owned);
    free(r);
}

void st_router_set_auth(struct st_router *r, st_router_auth_fn fn)
{
    r->auth = fn;
}

void st_router_set_auth_free(struct st_router *r, void (*free_fn)(void *auth))
{
    r->auth_free = free_fn;
}

void st_router_set_observer(struct st_router *r, st_router_observer_fn fn, void *userdata)
{
    r->observer = fn;
    r->observer_data = userdata;
}

void st_router_observe(const struct st_router *r, const struct st_http_request *req, int status)
{
    if (r->observer && req->route)
        r->observer(req, status, r->observer_data);
}

void st_router_auth_release(const struct st_router *r, void *auth)
{
    if (auth && r->auth_free)
        r->auth_free(auth);
}

void st_router_set_family(struct st_router *r, enum st_api_family family)
{
    r->family = family;
}

void st_router_own(struct st_router *r, void *ptr, void (*free_fn)(void *))
{
    r->owned = st_xrealloc(r->owned, (r->n_owned + 1) * sizeof(*r->owned));
    r->owned[r->n_owned++] = (struct owned){ptr, free_fn};
}

void *st_router_app(const struct st_router *r)
{
    return r->app;
}

st_router_auth_fn st_router_auth(const struct st_router *r)
{
    return r->auth;
}

static unsigned method_bit(const char *method)
{
    for (size_t i = 0; method && i < ST_ARRAY_SIZE(methods); i++)
        if (strcmp(method, methods[i]) == 0)
            return 1u << i;
    return 0;
}

static bool param_name_valid(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Splits pattern into e->segs; a trailing slash is dropped as requests' are. */
static int parse_pattern(struct entry *e, const char *pattern, struct st_err **err)
{
    if (!pattern || pattern[0] != '/')
        return st_err_set(err, -EINVAL, "route pattern '%s' must start with '/'",
                          pattern ? pattern : "(null)");
    const char *p = pattern + 1;
    while (*p) {
        const char *end = strchrnul(p, '/');
        size_t len = (size_t)(end - p);
        if (len == 0)
            return st_err_set(err, -EINVAL, "route pattern '%s' has an empty segment", pattern);
        if (e->rest)
            return st_err_set(err, -EINVAL, "route pattern '%s': '{x+}' must be the last segment",
                              pattern);
        if (e->n_segs == ST_ROUTE_MAX_SEGMENTS)
            return st_err_set(err, -EINVAL, "route pattern '%s' has more than %d segments", pattern,
                              ST_ROUTE_MAX_SEGMENTS);
        struct segment *s = &e->segs[e->n_segs];
        if (p[0] == '{') {
            if (p[len - 1] != '}' || len < 3)
                return st_err_set(err, -EINVAL, "route pattern '%s': bad parameter '%.*s'", pattern,
                                  (int)len, p);
            size_t nlen = len - 2;
            if (p[len - 2] == '+') {
                s->rest = e->rest = true;
                nlen--;
            }
            if (!param_name_valid(p + 1, nlen))
                return st_err_set(err, -EINVAL, "route pattern '%s': bad parameter name '%.*s'",
                                  pattern, (int)len, p);
            for (size_t i = 0; i < e->n_segs; i++)
                if (e->segs[i].param && e->segs[i].len == nlen &&
                    memcmp(e->segs[i].text, p + 1, nlen) == 0)
                    return st_err_set(err, -EINVAL, "route pattern '%s' repeats parameter '%.*s'",
                                      pattern, (int)nlen, p + 1);
            if (e->n_params == ST_ROUTE_MAX_PARAMS)
                return st_err_set(err, -EINVAL, "route pattern '%s' has more than %d parameters",
                                  pattern, ST_ROUTE_MAX_PARAMS);
            s->param = true;
            s->text = st_strndup(p + 1, nlen);
            s->len = nlen;
            e->n_params++;
        } else {
            if (memchr(p, '{', len) || memchr(p, '}', len) || memchr(p, '%', len))
                return st_err_set(err, -EINVAL, "route pattern '%s': bad segment '%.*s'", pattern,
                                  (int)len, p);
            s->text = st_strndup(p, len);
            s->len = len;
            e->rank |= 1ull << (63 - e->n_segs);
        }
        e->n_segs++;
        p = *end ? end + 1 : end;
    }
    if (!e->rest)
        e->rank |= 1; /* an exact-length pattern beats a "{x+}" with the same literals */
    return 0;
}

/* Same method and same shape: literals equal, parameters in the same places. */
static bool same_shape(const struct entry *a, const struct entry *b)
{
    if (a->n_segs != b->n_segs || a->rest != b->rest)
        return false;
    for (size_t i = 0; i < a->n_segs; i++) {
        const struct segment *x = &a->segs[i], *y = &b->segs[i];
        if (x->param != y->param)
            return false;
        if (!x->param && (x->len != y->len || memcmp(x->text, y->text, x->len) != 0))
            return false;
    }
    return true;
}

static void list_append(struct entry ***list, size_t *n, struct entry *e)
{
    *list = st_xrealloc(*list, (*n + 1) * sizeof(**list));
    (*list)[(*n)++] = e;
}

int st_router_add(struct st_router *r, const struct st_route *route, struct st_err **err)
{
    const char *what = route->pattern ? route->pattern : "(null)";
    if (!route->action || !route->action[0])
        return st_err_set(err, -EINVAL, "route %s %s has no policy action",
                          route->method ? route->method : "(null)", what);
    if (!route->handler)
        return st_err_set(err, -EINVAL, "route %s %s has no handler",
                          route->method ? route->method : "(null)", what);
    unsigned bit = method_bit(route->method);
    if (!bit)
        return st_err_set(err, -EINVAL, "route %s: unknown method '%s'", what,
                          route->method ? route->method : "(null)");
    if ((route->flags & ST_ROUTE_STREAM) && !route->on_body_chunk)
        return st_err_set(err, -EINVAL, "streaming route %s %s has no on_body_chunk", route->method,
                          what);
    if (!(route->flags & ST_ROUTE_STREAM) && route->on_body_chunk)
        return st_err_set(err, -EINVAL, "route %s %s has on_body_chunk but no ST_ROUTE_STREAM",
                          route->method, what);

    struct entry *e = st_new0(struct entry, 1);
    int ret = parse_pattern(e, route->pattern, err);
    if (ret < 0) {
        entry_free(e);
        return ret;
    }
    for (size_t i = 0; i < r->n_entries; i++) {
        if (r->entries[i]->method_bit == bit && same_shape(r->entries[i], e)) {
            ret = st_err_set(err, -EEXIST, "route %s %s is already registered (as %s)",
                             route->method, route->pattern, r->entries[i]->route.pattern);
            entry_free(e);
            return ret;
        }
    }
    e->route = *route;
    e->route.method = st_strdup(route->method);
    e->route.pattern = st_strdup(route->pattern);
    e->route.action = st_strdup(route->action);
    e->method_bit = bit;

    list_append(&r->entries, &r->n_entries, e);
    if (e->rest)
        list_append(&r->rest, &r->n_rest, e);
    else
        list_append(&r->by_len[e->n_segs], &r->n_by_len[e->n_segs], e);
    return 0;
}

int st_router_add_all(struct st_router *r, const struct st_route *routes, size_t n,
                      struct st_err **err)
{
    for (size_t i = 0; i < n; i++) {
        int ret = st_router_add(r, &routes[i], err);
        if (ret < 0)
            return ret;
    }
    return 0;
}

void st_router_foreach(const struct st_router *r,
                       void (*fn)(const struct st_route *route, void *userdata), void *userdata)
{
    for (size_t i = 0; i < r->n_entries; i++)
        fn(&r->entries[i]->route, userdata);
}

static bool entry_matches(const struct entry *e, const struct st_http_path *path)
{
    size_t n = e->rest ? e->n_segs - 1 : e->n_segs;
    if (e->rest ? path->n_seg < e->n_segs : path->n_seg != e->n_segs)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct segment *s = &e->segs[i];
        const char *seg = path->seg[i];
        if (s->param) {
            if (!seg[0])
                return false;
        } else if (strncmp(seg, s->text, s->len) != 0 || seg[s->len] != '\0') {
            return false;
        }
    }
    /* "{x+}" needs something in the rest: at least one non-empty segment */
    if (e->rest)
        return path->decoded[path->seg_off[n]] != '\0' &&
               strcmp(path->decoded + path->seg_off[n], "/") != 0;
    return true;
}

static void fill_params(const struct entry *e, const struct st_http_path *path,
                        struct st_route_match *ret)
{
    ret->n_params = 0;
    for (size_t i = 0; i < e->n_segs; i++) {
        if (!e->segs[i].param)
            continue;
        struct st_http_param *p = &ret->params[ret->n_params++];
        p->name = e->segs[i].text;
        p->value = e->segs[i].rest ? path->decoded + path->seg_off[i] : path->seg[i];
    }
}

/* How many leading literal segments e shares with path (for a 404's family). */
static size_t shared_prefix(const struct entry *e, const struct st_http_path *path)
{
    size_t i = 0;
    for (; i < e->n_segs && i < path->n_seg; i++) {
        const struct segment *s = &e->segs[i];
        if (s->param || strncmp(path->seg[i], s->text, s->len) != 0 || path->seg[i][s->len] != '\0')
            break;
    }
    return i;
}

static enum st_api_family guess_family(const struct st_router *r, const struct st_http_path *path)
{
    size_t best = 0;
    enum st_api_family family = r->family;
    for (size_t i = 0; i < r->n_entries; i++) {
        size_t n = shared_prefix(r->entries[i], path);
        if (n > best) {
            best = n;
            family = r->entries[i]->route.family;
        }
    }
    return family;
}

struct scan {
    const struct entry *best; /* best match for the method */
    const struct entry *any;  /* best match for any method */
    unsigned allowed;         /* methods of every matching pattern */
};

/* want: the methods that can answer (HEAD: HEAD or GET); exact: the one
 * that wins a tie (an explicit HEAD route over the GET one). */
static void scan_list(struct entry *const *list, size_t n, unsigned want, unsigned exact,
                      const struct st_http_path *path, struct scan *s)
{
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = list[i];
        if (!entry_matches(e, path))
            continue;
        s->allowed |= e->method_bit;
        if (!s->any || e->rank > s->any->rank)
            s->any = e;
        if (!(e->method_bit & want))
            continue;
        if (!s->best || e->rank > s->best->rank ||
            (e->rank == s->best->rank && e->method_bit == exact && s->best->method_bit != exact))
            s->best = e;
    }
}

int st_router_match(const struct st_router *r, const char *method, const struct st_http_path *path,
                    struct st_route_match *ret)
{
    ret->route = NULL;
    ret->n_params = 0;
    ret->allow[0] = '\0';
    ret->family = r->family;

    unsigned bit = method_bit(method);
    /* HEAD is answered by a HEAD route when there is one, else by GET */
    unsigned want = bit == METHOD_HEAD ? (METHOD_HEAD | METHOD_GET) : bit;
    struct scan s = {0};
    if (path->n_seg <= ST_ROUTE_MAX_SEGMENTS)
        scan_list(r->by_len[path->n_seg], r->n_by_len[path->n_seg], want, bit, path, &s);
    scan_list(r->rest, r->n_rest, want, bit, path, &s);
    if (s.best) {
        ret->route = &s.best->route;
        ret->family = s.best->route.family;
        fill_params(s.best, path, ret);
        return 0;
    }
    if (!s.any) {
        ret->family = guess_family(r, path);
        return -ENOENT;
    }
    ret->family = s.any->route.family;
    if (s.allowed & METHOD_GET)
        s.allowed |= METHOD_HEAD;
    size_t off = 0;
    for (size_t i = 0; i < ST_ARRAY_SIZE(methods); i++) {
        if (!(s.allowed & (1u << i)))
            continue;
        int w = snprintf(ret->allow + off, sizeof(ret->allow) - off, "%s%s", off ? ", " : "",
                         methods[i]);
        if (w > 0 && (size_t)w < sizeof(ret->allow) - off)
            off += (size_t)w;
    }
    return -EBADRQC;
}
