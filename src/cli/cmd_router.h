/* `stratos router ...`: the openstack CLI's commands of that name. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_router_commands[];
