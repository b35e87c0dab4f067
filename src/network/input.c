/* Checks of request fields that every core resource shares (name and
 * description lengths, booleans, the owning project), worded as Neutron
 * words them so that the openstack CLI shows the familiar message, and
 * the update of such a text field. */
#include "network/core-priv.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "network/network-priv.h"

int net_check_text(json_t *req, const char *field, size_t max, struct st_err **err)
{
    json_t *v = json_object_get(req, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return st_err_set(err, -EINVAL, "Invalid input for %s. Reason: '%s' is not a valid string.",
                          field, json_is_integer(v) ? "number" : "value");
    const char *s = json_string_value(v);
    if (strlen(s) > max)
        return st_err_set(err, -EINVAL,
                          "Invalid input for %s. Reason: '%s' exceeds maximum length of %zu.",
                          field, s, max);
    return 0;
}

void net_set_text(json_t *doc, json_t *req, const char *field)
{
    json_t *v = json_object_get(req, field);
    if (v)
        json_object_set_new(doc, field, json_string(json_string_value(v) ?: ""));
}

int net_get_bool(json_t *req, const char *field, bool *ret, struct st_err **err)
{
    json_t *v = json_object_get(req, field);
    if (!v)
        return 0;
    if (json_is_boolean(v)) {
        *ret = json_is_true(v);
        return 0;
    }
    /* Neutron converts "true"/"false" strings as well. */
    const char *s = json_string_value(v);
    if (s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0)) {
        *ret = strcasecmp(s, "true") == 0;
        return 0;
    }
    st_autofree char *text = json_dumps(v, JSON_ENCODE_ANY);
    return st_err_set(err, -EINVAL,
                      "Invalid input for %s. Reason: '%s' is not a valid boolean value.", field,
                      text ? text : "?");
}

int net_owner(const struct st_network_caller *who, json_t *req, const char **ret_project,
              struct st_err **err)
{
    const char *project = json_string_value(json_object_get(req, "project_id"));
    const char *tenant = json_string_value(json_object_get(req, "tenant_id"));
    if (project && tenant && strcmp(project, tenant) != 0)
        return st_err_set(err, -EINVAL, "'project_id' and 'tenant_id' do not match");
    const char *want = project ? project : tenant;
    if (want && !*want)
        want = NULL;
    if (want && (!who->project_id || strcmp(want, who->project_id) != 0) && !who->is_admin)
        return st_err_set(err, -EINVAL,
                          "Specifying 'project_id' or 'tenant_id' other than the authenticated "
                          "project in request requires admin privileges");
    *ret_project = want ? want : who->project_id;
    return 0;
}
