/* The table of built-in compute drivers, looked up by name ("container",
 * "sim"). A build without drivers/container.c (its header absent) still
 * links, with the sim driver only: the reference is then weak and its row,
 * NULL, skipped. When the file is there the reference must be strong, since
 * a weak reference alone would not pull container.o out of libst_agent.a. */
#include "agent/driver.h"

#include <stddef.h>
#include <string.h>

#if __has_include("agent/drivers/container.h")
#include "agent/drivers/container.h"
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
