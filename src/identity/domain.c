/* Domains: the namespaces of project and user names. Only the Default
 * domain exists (created with the context); lookups serve the Keystone
 * API's /v3/domains and the domain names given at login. */
#include "identity-priv.h"

#include <errno.h>
#include <string.h>

#include "identity/records.h"
#include "lib/json.h"

int st_identity_domain_get(struct st_identity *id, const char *domain_id, json_t **ret,
                           struct st_err **err)
{
    return st_identity_get_record(id, "domains", "domain", domain_id, ret, NULL, err);
}

int st_identity_domain_find(struct st_identity *id, const char *name, json_t **ret,
                            struct st_err **err)
{
    st_autoptr(st_err) local = NULL;
    int r = st_idrec_find(id->kv, "domains", NULL, name, ret, &local);
    if (r == -ENOENT)
        return st_err_set(err, r, "Could not find domain: %s.", name ? name : "");
    if (r < 0)
        return st_err_set(err, r, "finding domain '%s': %s", name, st_err_msg(local));
    return 0;
}

int st_identity_domain_list(struct st_identity *id, const char *name, json_t **ret,
                            struct st_err **err)
{
    st_autoptr(json_t) all = NULL;
    int r = st_idrec_list(id->kv, "domains", &all, err);
    if (r < 0)
        return st_err_prefix(err, r, "listing domains");
    st_autoptr(json_t) out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
    {
        if (name && strcmp(json_string_value(json_object_get(d, "name")) ?: "", name) != 0)
            continue;
        json_array_append(out, d);
    }
    *ret = st_steal(&out);
    return 0;
}
