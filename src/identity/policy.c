/* The policy engine; see policy.h. Roles and their patterns live in a small
 * table under a read-write lock: checks (every request) take the read side,
 * role changes (rare) the write side. */
#include "policy.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <string.h>

#include "lib/cleanup.h"

struct policy_role {
    char *name;
    char **allow;
    size_t n_allow;
    char **deny;
    size_t n_deny;
    bool all_projects;
    bool builtin;
};

struct st_policy {
    pthread_rwlock_t lock;
    struct policy_role *roles;
    size_t n_roles;
};

/* The services whose resources belong to projects. Identity management
 * (projects, users, roles, grants) is for admins only; tokens are anyone's. */
static const char *const project_services[] = {"compute", "network", "image",
                                               "volume",  "object",  "orchestrate"};

static const char *const read_verbs[] = {"list", "show", "get", "head"};

/* Writes that only a cloud admin makes, even within their own project. */
static const char *const admin_only[] = {
    "compute:flavor:create",    "compute:flavor:delete", "compute:flavor:update",
    "compute:hypervisor:*",     "compute:service:*",     "compute:quota:update",
    "network:network:external", "network:quota:update",  "image:image:publicize",
    "volume:quota:update",
};

bool st_policy_action_valid(const char *action)
{
    if (!action)
        return false;
    int parts = 1;
    size_t seg = 0;
    for (const char *c = action; *c; c++) {
        if (*c == ':') {
            if (seg == 0)
                return false;
            parts++;
            seg = 0;
        } else if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_') {
            seg++;
        } else {
            return false;
        }
    }
    return parts == 3 && seg > 0;
}

bool st_policy_action_is_read(const char *action)
{
    const char *verb = action ? strrchr(action, ':') : NULL;
    if (!verb)
        return false;
    for (size_t i = 0; i < ST_ARRAY_SIZE(read_verbs); i++)
        if (strcmp(verb + 1, read_verbs[i]) == 0)
            return true;
    return false;
}

static bool pattern_valid(const char *pat)
{
    if (!pat || !pat[0] || strlen(pat) > 256)
        return false;
    for (const char *c = pat; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == ':' ||
                  *c == '*' || *c == '?';
        if (!ok)
            return false;
    }
    return true;
}

static char **copy_patterns(const char *const *src, size_t n)
{
    char **dst = st_new0(char *, n);
    for (size_t i = 0; i < n; i++)
        dst[i] = st_strdup(src[i]);
    return dst;
}

static void role_clear(struct policy_role *r)
{
    free(r->name);
    for (size_t i = 0; i < r->n_allow; i++)
        free(r->allow[i]);
    for (size_t i = 0; i < r->n_deny; i++)
        free(r->deny[i]);
    free(r->allow);
    free(r->deny);
    *r = (struct policy_role){0};
}

static struct policy_role *find_role(const struct st_policy *p, const char *name)
{
    for (size_t i = 0; i < p->n_roles; i++)
        if (strcmp(p->roles[i].name, name) == 0)
            return &p->roles[i];
    return NULL;
}

static void put_role(struct st_policy *p, const char *name, char **allow, size_t n_allow,
                     char **deny, size_t n_deny, bool all_projects, bool builtin)
{
    struct policy_role *r = find_role(p, name);
    if (r) {
        role_clear(r);
    } else {
        p->roles = st_xrealloc(p->roles, (p->n_roles + 1) * sizeof(*p->roles));
        r = &p->roles[p->n_roles++];
    }
    *r = (struct policy_role){st_strdup(name), allow, n_allow, deny, n_deny, all_projects, builtin};
}

struct st_policy *st_policy_new(void)
{
    struct st_policy *p = st_new0(struct st_policy, 1);
    pthread_rwlock_init(&p->lock, NULL);
    size_t ns = ST_ARRAY_SIZE(project_services), nv = ST_ARRAY_SIZE(read_verbs);

    /* reader: service:*:<read verb> for each service, and its own tokens. */
    char **reader = st_new0(char *, ns *nv + 2);
    size_t n = 0;
    for (size_t s = 0; s < ns; s++)
        for (size_t v = 0; v < nv; v++)
            reader[n++] = st_sprintf("%s:*:%s", project_services[s], read_verbs[v]);
    reader[n++] = st_strdup("identity:token:*");
    /* its own project's record: the handler answers 404 for any other */
    reader[n++] = st_strdup("identity:project:show");
    /* admin-only actions include reads (hypervisors, services): denied too */
    char **reader_deny = copy_patterns(admin_only, ST_ARRAY_SIZE(admin_only));
    put_role(p, "reader", reader, n, reader_deny, ST_ARRAY_SIZE(admin_only), false, true);

    /* member: everything in the project services, minus admin-only writes. */
    char **member = st_new0(char *, ns + 2);
    for (size_t s = 0; s < ns; s++)
        member[s] = st_sprintf("%s:*", project_services[s]);
    member[ns] = st_strdup("identity:token:*");
    member[ns + 1] = st_strdup("identity:project:show");
    char **deny = copy_patterns(admin_only, ST_ARRAY_SIZE(admin_only));
    put_role(p, "member", member, ns + 2, deny, ST_ARRAY_SIZE(admin_only), false, true);

    char **all = st_new0(char *, 1);
    all[0] = st_strdup("*");
    put_role(p, "admin", all, 1, NULL, 0, true, true);
    return p;
}

void st_policy_free(struct st_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_roles; i++)
        role_clear(&p->roles[i]);
    free(p->roles);
    pthread_rwlock_destroy(&p->lock);
    free(p);
}

int st_policy_set_role(struct st_policy *p, const char *role, const char *const *allow,
                       size_t n_allow, const char *const *deny, size_t n_deny, bool all_projects,
                       struct st_err **err)
{
    for (size_t i = 0; i < n_allow; i++)
        if (!pattern_valid(allow[i]))
            return st_err_set(err, -EINVAL, "invalid action pattern '%s'", allow[i]);
    for (size_t i = 0; i < n_deny; i++)
        if (!pattern_valid(deny[i]))
            return st_err_set(err, -EINVAL, "invalid action pattern '%s'", deny[i]);
    pthread_rwlock_wrlock(&p->lock);
    struct policy_role *r = find_role(p, role);
    if (r && r->builtin) {
        pthread_rwlock_unlock(&p->lock);
        return st_err_set(err, -EINVAL, "role '%s' is built in and cannot be redefined", role);
    }
    put_role(p, role, copy_patterns(allow, n_allow), n_allow, copy_patterns(deny, n_deny), n_deny,
             all_projects, false);
    pthread_rwlock_unlock(&p->lock);
    return 0;
}

void st_policy_remove_role(struct st_policy *p, const char *role)
{
    pthread_rwlock_wrlock(&p->lock);
    struct policy_role *r = find_role(p, role);
    if (r && !r->builtin) {
        role_clear(r);
        *r = p->roles[--p->n_roles];
    }
    pthread_rwlock_unlock(&p->lock);
}

int st_policy_replace_custom(struct st_policy *p, const struct st_policy_rules *roles, size_t n,
                             struct st_err **err)
{
    for (size_t i = 0; i < n; i++) {
        const struct st_policy_rules *d = &roles[i];
        if (!d->name || !d->name[0])
            return st_err_set(err, -EINVAL, "a custom role needs a name");
        for (size_t j = 0; j < d->n_allow; j++)
            if (!pattern_valid(d->allow[j]))
                return st_err_set(err, -EINVAL, "role '%s': invalid action pattern '%s'", d->name,
                                  d->allow[j]);
        for (size_t j = 0; j < d->n_deny; j++)
            if (!pattern_valid(d->deny[j]))
                return st_err_set(err, -EINVAL, "role '%s': invalid action pattern '%s'", d->name,
                                  d->deny[j]);
    }
    /* Built before taking the lock, so checks wait only for the swap. */
    struct policy_role *fresh = st_new0(struct policy_role, n);
    for (size_t i = 0; i < n; i++) {
        const struct st_policy_rules *d = &roles[i];
        fresh[i] = (struct policy_role){st_strdup(d->name),
                                        copy_patterns(d->allow, d->n_allow),
                                        d->n_allow,
                                        copy_patterns(d->deny, d->n_deny),
                                        d->n_deny,
                                        d->all_projects,
                                        false};
    }
    pthread_rwlock_wrlock(&p->lock);
    for (size_t i = 0; i < n; i++) {
        struct policy_role *r = find_role(p, fresh[i].name);
        if (r && r->builtin) {
            pthread_rwlock_unlock(&p->lock);
            int code = st_err_set(err, -EINVAL, "role '%s' is built in and cannot be redefined",
                                  fresh[i].name);
            for (size_t j = 0; j < n; j++)
                role_clear(&fresh[j]);
            free(fresh);
            return code;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < p->n_roles; i++) {
        if (p->roles[i].builtin)
            p->roles[kept++] = p->roles[i];
        else
            role_clear(&p->roles[i]);
    }
    p->roles = st_xrealloc(p->roles, (kept + n) * sizeof(*p->roles));
    if (n)
        memcpy(&p->roles[kept], fresh, n * sizeof(*fresh));
    p->n_roles = kept + n;
    pthread_rwlock_unlock(&p->lock);
    free(fresh);
    return 0;
}

static bool matches_any(char *const *patterns, size_t n, const char *action)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(patterns[i], action, 0) == 0)
            return true;
    return false;
}

/* What the subject's roles grant for this action: in its own project, and
 * in every project. */
static void evaluate(const struct st_policy *p, const struct st_policy_subject *who,
                     const char *action, bool *ret_own, bool *ret_everywhere)
{
    *ret_own = *ret_everywhere = false;
    for (size_t i = 0; i < who->n_roles; i++) {
        const struct policy_role *r = find_role(p, who->roles[i]);
        if (!r || matches_any(r->deny, r->n_deny, action) ||
            !matches_any(r->allow, r->n_allow, action))
            continue;
        *ret_own = true;
        if (r->all_projects)
            *ret_everywhere = true;
    }
}

bool st_policy_is_cloud_admin(const struct st_policy *p, const struct st_policy_subject *who)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&p->lock);
    bool admin = false;
    for (size_t i = 0; i < who->n_roles && who->project_id; i++) {
        const struct policy_role *r = find_role(p, who->roles[i]);
        if (r && r->all_projects)
            admin = true;
    }
    pthread_rwlock_unlock((pthread_rwlock_t *)&p->lock);
    return admin;
}

int st_policy_check(const struct st_policy *p, const struct st_policy_subject *who,
                    const char *action, const char *target_project_id, struct st_err **err)
{
    if (!st_policy_action_valid(action))
        return st_err_set(err, -EPERM, "no policy for malformed action '%s'", action ? action : "");
    /* An unscoped token proves identity only: it may manage itself. */
    if (!who->project_id) {
        if (strncmp(action, "identity:token:", 15) == 0)
            return 0;
        return st_err_set(err, -EPERM,
                          "an unscoped token cannot perform %s; "
                          "authenticate with a project scope",
                          action);
    }
    bool own, everywhere;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&p->lock);
    evaluate(p, who, action, &own, &everywhere);
    pthread_rwlock_unlock((pthread_rwlock_t *)&p->lock);

    bool foreign = target_project_id && strcmp(target_project_id, who->project_id) != 0;
    if (foreign && !everywhere)
        return st_err_set(err, -ENOENT, "not found");
    if (!own)
        return st_err_set(err, -EPERM, "policy does not allow %s", action);
    return 0;
}
