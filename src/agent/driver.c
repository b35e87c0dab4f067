/* The table of built-in compute drivers, looked up by name ("container",
 * "sim"). The container driver is referenced weakly so that the agent links
 * (and runs with the sim driver) in a build that does not have it; a row
 * whose driver is absent is skipped. Note for static archives: a weak
 * reference alone does not pull drivers/container.o out of libst_agent.a,
 * so the reference below is strong as soon as the file is part of the build
 * (ST_AGENT_HAVE_CONTAINER, set when drivers/container.c exists). */
#include "agent/driver.h"

#include <stddef.h>
#include <string.h>

#if __has_include("agent/drivers/container.c")
extern const struct st_driver st_driver_container;
#else
extern const struct st_driver st_driver_container __attribute__((weak));
#endif
extern const struct st_driver st_driver_sim;

static const struct st_driver *const drivers[] = {
    &st_driver_container,
    &st_driver_sim,
};

const struct st_driver *st_driver_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
        if (drivers[i] && drivers[i]->name && strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    }
    return NULL;
}

void st_instance_info_clear(struct st_instance_info *info)
{
    if (!info)
        return;
    json_decref(info->details);
    *info = (struct st_instance_info){0};
}
