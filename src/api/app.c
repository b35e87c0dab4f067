/* The catalog registry of struct st_api_app; see app.h. */
#include "app.h"

#include <stdlib.h>

void st_api_app_add_service(struct st_api_app *app, const char *type, const char *name,
                            const char *path)
{
    if (app->n_services >= ST_API_MAX_SERVICES)
        abort(); /* a programming error: raise the limit */
    app->services[app->n_services++] = (struct st_api_service){type, name, path};
}
