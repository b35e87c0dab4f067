/* Registration of every API family; see routes.h. */
#include "routes.h"

#include "api/app.h"
#include "api/auth.h"
#include "api/glance.h"
#include "api/internal.h"
#include "api/keystone.h"
#include "api/neutron.h"
#include "api/nova.h"
#include "api/router.h"
#include "api/system.h"

int st_daemon_routes_register(struct st_router *r, struct st_api_app *app,
                              const struct st_api_system *sys, struct st_err **err)
{
    st_api_auth_install(r);
    int ret = st_api_system_register(r, sys, err);
    if (ret < 0)
        return ret;
    ret = st_api_keystone_register(r, app, err);
    if (ret < 0)
        return st_err_prefix(err, ret, "registering Keystone routes");
    ret = st_api_glance_register(r, app, err);
    if (ret < 0)
        return st_err_prefix(err, ret, "registering Glance routes");
    if ((ret = st_api_nova_register(r, app, err)) < 0)
        return st_err_prefix(err, ret, "registering Nova routes");
    if ((ret = st_api_neutron_register(r, app, err)) < 0)
        return st_err_prefix(err, ret, "registering Neutron routes");
    if ((ret = st_api_internal_register(r, app, err)) < 0)
        return st_err_prefix(err, ret, "registering the internal API");
    return 0;
}
