/* `stratos floating ip ...`: the openstack CLI's commands of that name. */
#pragma once

#include "command.h"

extern const struct st_cli_command st_cli_floatingip_commands[];
